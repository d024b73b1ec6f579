#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/fuzz_*.cpp) with clang + ASan/UBSan in build-fuzz/ and runs
# each for SECONDS (default 60), one after the other, in one process each:
#
#   tools/fuzz.sh [SECONDS]              # or: make fuzz FUZZ_SECONDS=300
#   FUZZ_TARGETS="gguf image_decode" tools/fuzz.sh 30    # a subset (names without fuzz_)
#
# Corpora grow in build-fuzz/corpus/<target>/ (kept between runs), seeded from the test data by
# make_fuzz_seeds (build-fuzz/seeds/<target>/). A crash, timeout or OOM leaves its input in
# build-fuzz/artifacts/<target>/ and the log in build-fuzz/logs/<target>.log; reproduce with
#   build-fuzz/fuzz/fuzz_<target> build-fuzz/artifacts/<target>/crash-...
# Prints per target: executions, exec/s, final cov: and ft:, and the result. Exit status 1 if any
# target failed.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_TARGET="${1:-${FUZZ_SECONDS:-60}}"
BUILD="${FUZZ_BUILD:-build-fuzz}"
JOBS="${FUZZ_BUILD_JOBS:-2}"

# max_len per target: a little above the largest seed, so each run stays fast.
declare -A MAX_LEN=(
  [safetensors]=16384 [gguf]=40000 [configs]=16384 [tokenizer_load]=16384 [tokenizer_encode]=4096
  [chat_template]=8192 [image_decode]=16384 [preprocess]=4096 [llama_gguf]=65536 [chat_request]=16384
  [video_demux]=262144
)
declare -A DICT=(
  [safetensors]=json [configs]=json [tokenizer_load]=json [chat_template]=jinja [chat_request]=json
)

if ! command -v clang++ >/dev/null; then
  echo "fuzz.sh: clang++ not found (apt-get install clang libclang-rt-dev)" >&2
  exit 2
fi
cmake -S . -B "$BUILD" -G Ninja -DQVL_FUZZ=ON -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DQVL_BUILD_TESTS=OFF -DQVL_BUILD_BENCH=OFF >/dev/null
cmake --build "$BUILD" --target fuzzers -j "$JOBS"

if [ ! -f "$BUILD/seeds/.done" ]; then
  echo "fuzz.sh: writing seed corpora to $BUILD/seeds"
  rm -rf "$BUILD/seeds"
  "$BUILD/fuzz/make_fuzz_seeds" tests/data "$BUILD/seeds"
  touch "$BUILD/seeds/.done"
fi

if [ -n "${FUZZ_TARGETS:-}" ]; then
  targets=($FUZZ_TARGETS)
else
  targets=()
  for src in fuzz/fuzz_*.cpp; do
    name="$(basename "$src" .cpp)"
    targets+=("${name#fuzz_}")
  done
fi

export QVL_TEST_DATA_DIR="$PWD/tests/data"
# abort_on_error: a UBSan/ASan report stops the run with the input saved.
export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:allocator_may_return_null=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

mkdir -p "$BUILD/logs"
summary=()
failed=0
for t in "${targets[@]}"; do
  exe="$BUILD/fuzz/fuzz_$t"
  [ -x "$exe" ] || { echo "fuzz.sh: no target $exe" >&2; exit 2; }
  corpus="$BUILD/corpus/$t"
  artifacts="$BUILD/artifacts/$t"
  log="$BUILD/logs/$t.log"
  mkdir -p "$corpus" "$artifacts"
  args=(-max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb=2048 -timeout=10 -max_len="${MAX_LEN[$t]:-4096}"
        -print_final_stats=1 -artifact_prefix="$artifacts/")
  if [ -n "${DICT[$t]:-}" ]; then args+=(-dict="fuzz/dicts/${DICT[$t]}.dict"); fi
  seeds=()
  if [ -d "$BUILD/seeds/$t" ]; then seeds=("$BUILD/seeds/$t"); fi
  echo "=== fuzz_$t: ${SECONDS_PER_TARGET}s"
  set +e
  "$exe" "${args[@]}" "$corpus" "${seeds[@]}" >"$log" 2>&1
  rc=$?
  set -e
  execs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | tail -1 | awk '{print $2}')"
  speed="$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | tail -1 | awk '{print $2}')"
  last="$(grep -E '^#[0-9]+' "$log" | tail -1)"
  cov="$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")"
  ft="$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")"
  corp="$(sed -n 's/.* corp: \([0-9]*\/[0-9]*[a-zA-Z]*\).*/\1/p' <<<"$last")"
  if [ "$rc" -eq 0 ]; then
    result="ok"
  else
    failed=1
    result="FAILED rc=$rc: $(grep -m1 -oE 'ERROR: [A-Za-z]+: [^ ]+( [^ ]+)?|runtime error: .*|==[0-9]+== ERROR: libFuzzer: [a-z-]+' "$log" | head -1) ($(ls -t "$artifacts" | head -1))"
    tail -40 "$log"
  fi
  line="$(printf '%-18s execs %-10s exec/s %-7s cov %-6s ft %-7s corpus %-12s %s' "$t" "${execs:-?}" "${speed:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$result")"
  echo "$line"
  summary+=("$line")
done
echo
echo "=== summary (${SECONDS_PER_TARGET}s per target; logs in $BUILD/logs, inputs that failed in $BUILD/artifacts)"
printf '%s\n' "${summary[@]}"
exit "$failed"

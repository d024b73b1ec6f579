#!/usr/bin/env bash
# Process-level tests of `qvl serve` on 127.0.0.1 with curl (ctest runs them; see tools/CMakeLists.txt).
# usage: serve_test.sh QVL MODEL_DIR MODE
#   ready     --port 0 prints one "listening on" line; /health is 503 "Loading model" during a delayed
#             load (the test-only --test-load-delay-ms), then 200
#   sigterm   SIGTERM during a stream: the stream ends with [DONE] and the server exits 0
#   load      64 requests from 16 concurrent clients against -np 4: each is 200 or 503 (full queue);
#             RSS and open descriptors after the run within 10 % of before (measured after one
#             warm-up round, so that thread stacks, malloc arenas and the kept KV caches exist)
# Every wait is bounded (counted tries, curl --max-time); prints what it checks and exits 1 at the
# first failure.
set -u
qvl=$1 model=$2 mode=$3
work=$(mktemp -d)
pid=""
cleanup() {
  [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  echo "--- server stderr (last 20 lines):"
  tail -20 "$work/err" 2>/dev/null
  exit 1
}

start_server() {
  "$qvl" serve -m "$model" --host 127.0.0.1 --port 0 -t 2 "$@" >"$work/out" 2>"$work/err" &
  pid=$!
  for _ in $(seq 100); do
    grep -q "listening on" "$work/out" 2>/dev/null && break
    sleep 0.1
  done
  line=$(cat "$work/out")
  port=$(printf '%s' "$line" | sed -n 's|^qvl serve: listening on http://127.0.0.1:\([0-9][0-9]*\)$|\1|p')
  [ -n "$port" ] || fail "no ready line (stdout: '$line')"
  url="http://127.0.0.1:$port"
}

wait_healthy() {
  for _ in $(seq 200); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$url/health")" = 200 ] && return 0
    sleep 0.05
  done
  fail "/health never answered 200"
}

stop_server() {
  kill -TERM "$pid"
  for _ in $(seq 300); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$pid" 2>/dev/null && fail "the server did not exit within 30 s of SIGTERM"
  wait "$pid"
  status=$?
  pid=""
  [ "$status" = 0 ] || fail "the server exited with status $status"
  echo "server exit status 0"
}

chat_body() {  # max_tokens, stream
  printf '{"messages":[{"role":"user","content":"Tell me about the sea."}],"max_tokens":%s,"stream":%s}' "$1" "$2"
}

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$pid/status"; }
fd_count() { ls "/proc/$pid/fd" | wc -l; }
within_10_percent() { awk -v a="$1" -v b="$2" 'BEGIN { d = b - a; if (d < 0) d = -d; exit !(d <= 0.1 * a) }'; }

case "$mode" in
ready)
  start_server --test-load-delay-ms 1500
  [ "$(wc -l <"$work/out")" = 1 ] || fail "expected one line on stdout, got: $(cat "$work/out")"
  echo "one line: listening on http://127.0.0.1:PORT"
  body=$(curl -s --max-time 5 -w ' %{http_code}' "$url/health")
  case "$body" in *'"Loading model"'*' 503') echo "loading: 503 Loading model" ;; *) fail "/health while loading: $body" ;; esac
  wait_healthy
  echo "ready: $(curl -s --max-time 5 "$url/health")"
  stop_server
  ;;
sigterm)
  start_server -np 2 --grace 1
  wait_healthy
  curl -sN --max-time 60 -H 'Content-Type: application/json' -d "$(chat_body 1000000 true)" \
    "$url/v1/chat/completions" >"$work/stream" &
  client=$!
  for _ in $(seq 200); do
    grep -q '"content"' "$work/stream" 2>/dev/null && break
    sleep 0.05
  done
  grep -q '"content"' "$work/stream" || fail "the stream did not start"
  echo "streaming"
  stop_server
  wait "$client"
  tail -c 14 "$work/stream" | grep -q '^data: \[DONE\]$' || fail "the stream did not end with [DONE]: $(tail -c 300 "$work/stream")"
  echo "stream ends with data: [DONE]"
  ;;
load)
  # Under AddressSanitizer, freed memory sits in a quarantine (256 MB by default) before reuse, so
  # RSS would track the allocations made rather than the memory held: no quarantine here.
  export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=0:thread_local_quarantine_size_kb=0"
  start_server -np 4
  wait_healthy
  fire() {  # N requests, 16 at a time; prints one status code per request
    seq "$1" | xargs -P 16 -I{} sh -c '
      if [ $(({} % 2)) = 0 ]; then s=true; else s=false; fi
      curl -s -o /dev/null -w "%{http_code}\n" --max-time 120 -H "Content-Type: application/json" \
        -d "{\"messages\":[{\"role\":\"user\",\"content\":\"Request {} about the sea.\"}],\"max_tokens\":$((8 + {} % 9)),\"stream\":$s}" \
        '"$url"'/v1/chat/completions'
  }
  fire 16 >"$work/warmup"
  sleep 0.5
  rss_before=$(rss_kb) fds_before=$(fd_count)
  fire 64 >"$work/codes"
  sleep 0.5
  rss_after=$(rss_kb) fds_after=$(fd_count)
  ok=$(grep -c '^200$' "$work/codes") busy=$(grep -c '^503$' "$work/codes") total=$(wc -l <"$work/codes")
  echo "64 requests: $ok answered, $busy refused with 503, $((total - ok - busy)) other"
  [ "$total" = 64 ] || fail "expected 64 answers, got $total"
  [ $((ok + busy)) = 64 ] || fail "unexpected statuses: $(sort "$work/codes" | uniq -c | tr '\n' ' ')"
  [ "$ok" -gt 0 ] || fail "no request succeeded"
  echo "rss ${rss_before} kB -> ${rss_after} kB, fds ${fds_before} -> ${fds_after}"
  within_10_percent "$rss_before" "$rss_after" || fail "RSS grew beyond 10 %"
  within_10_percent "$fds_before" "$fds_after" || fail "open descriptors changed beyond 10 %"
  echo "rss and fds within 10 %"
  [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$url/health")" = 200 ] || fail "/health after the load"
  stop_server
  ;;
*)
  fail "unknown mode '$mode'"
  ;;
esac
echo "PASS"

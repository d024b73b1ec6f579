# Thin wrapper over CMake for the README's commands.
BUILD ?= build
JOBS ?= $(shell nproc)
MODEL ?= tests/data/tiny-qwen3-vl
IMAGE ?= tests/data/golden/images/b_320x256.png
PROMPT ?= What is in this picture?

.PHONY: all deps configure build run test golden clean

all: build

deps:
	@tools/install_deps.sh

configure: deps
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

# The main job: image + question -> streamed answer (bundled tiny random-weight model by default).
run: build
	$(BUILD)/tools/qvl run -m $(MODEL) --image $(IMAGE) -p "$(PROMPT)" -n 32

# Build and pass every test.
test: build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

# Dump the bundled golden cases and compare them with the reference checker carried in tools/
# (python3-numpy comes with `make deps`).
golden: build
	rm -rf $(BUILD)/golden_dump
	$(BUILD)/tools/qvl dump tests/data/golden $(BUILD)/golden_dump
	@/usr/bin/python3 -c "import numpy" 2>/dev/null || { echo "make golden: the checker needs python3-numpy (apt-get install python3-numpy, or make deps)" >&2; exit 1; }
	/usr/bin/python3 tools/check_golden.py tests/data/golden $(BUILD)/golden_dump
	@# The video pixel goldens (25 MB) are not carried: the video cases compare with ../shared's.
	@if [ -f ../shared/fixtures/golden/manifest_video.json ]; then \
	  /usr/bin/python3 tools/check_golden.py ../shared/fixtures/golden $(BUILD)/golden_dump --video-only; \
	else echo "make golden: video cases not checked (their pixel goldens are in ../shared/fixtures/golden, absent here)"; fi

clean:
	rm -rf $(BUILD)

# --- Robustness: fuzzing and sanitizers (tools/fuzz.sh; needs clang + libclang-rt-dev for fuzz).
.PHONY: fuzz asan
FUZZ_SECONDS ?= 60
ASAN_BUILD ?= build-asan

# Builds every libFuzzer target in build-fuzz/ and runs each for FUZZ_SECONDS.
fuzz:
	tools/fuzz.sh $(FUZZ_SECONDS)

# Every test under AddressSanitizer + UndefinedBehaviorSanitizer (any report fails the test).
# -O1 (ASan's recommendation) builds in about half the time of -O3 for a few seconds more test time.
asan: deps
	@cmake -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release -DQVL_SANITIZE=ON -DQVL_BUILD_BENCH=OFF \
	  "-DCMAKE_CXX_FLAGS_RELEASE=-O1 -DNDEBUG" "-DCMAKE_C_FLAGS_RELEASE=-O1 -DNDEBUG" >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --test-dir $(ASAN_BUILD) --output-on-failure -j $(JOBS)

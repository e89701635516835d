# A thin layer over CMake. `make demo` runs Spine, `make test` runs every test.
BUILD ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?=
JOBS ?= $(shell nproc)

# Every C file of the project: the runtime's layers, the CLI, the intents, the tools, the C
# tests (the runtime's and the domain's), the fuzz harnesses.
C_SOURCES = $(wildcard runtime/*.[ch] runtime/*/*.[ch] intents/*.[ch] tools/*/*.[ch] \
                       tests/*.[ch] tests/c/*.[ch] tests/domain/*.[ch] tests/fuzz/*.[ch])

.PHONY: all deps build asan test test-asan fuzz demo bench format format-check clean

all: build

deps:
	@scripts/install-deps

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

asan: deps
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DSPINE_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)

# Every test: the C tests under ASan+UBSan, then the whole suite on the release build.
test: build asan format-check
	@cd $(ASAN_BUILD) && ctest --output-on-failure -L '^c$$' -j 2
	@cd $(BUILD) && ctest --output-on-failure -j 2

# The libFuzzer harnesses of tests/fuzz (clang), each run for FUZZ_SECONDS (FUZZ_TARGETS="http
# smtp": only those); a crash fails, its input in $(FUZZ_BUILD)/fuzz-artifacts (scripts/fuzz).
fuzz: deps
	@cmake -S . -B $(FUZZ_BUILD) -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DSPINE_FUZZ=ON >/dev/null
	@cmake --build $(FUZZ_BUILD) -j $(JOBS)
	@scripts/fuzz $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

demo: build
	@scripts/demo $(BUILD)/spine

bench: build
	@$(BUILD)/spine bench

format:
	@clang-format -i $(C_SOURCES) 2>/dev/null || true

format-check:
	@clang-format --dry-run -Werror $(C_SOURCES)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)

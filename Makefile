# A thin layer over CMake. `make demo` runs Spine, `make test` runs every test.
BUILD ?= build
ASAN_BUILD ?= build-asan
JOBS ?= $(shell nproc)

# Every C file of the project: the runtime's layers, the CLI, the intents, the C tests.
C_SOURCES = $(wildcard runtime/*.[ch] runtime/*/*.[ch] intents/*.[ch] tests/c/*.[ch])

.PHONY: all deps build asan test test-asan demo bench format format-check clean

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

demo: build
	@scripts/demo $(BUILD)/spine

bench: build
	@$(BUILD)/spine bench

format:
	@clang-format -i $(C_SOURCES) 2>/dev/null || true

format-check:
	@clang-format --dry-run -Werror $(C_SOURCES)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)

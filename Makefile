# A thin layer over CMake. `make demo` runs Spine, `make test` runs every test.
BUILD ?= build
ASAN_BUILD ?= build-asan
JOBS ?= $(shell nproc)

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
	@clang-format -i runtime/*.c runtime/*.h runtime/cli/*.c runtime/cli/*.h intents/*.c intents/*.h tests/c/*.c tests/c/*.h 2>/dev/null || true

format-check:
	@clang-format --dry-run -Werror runtime/*.c runtime/*.h runtime/cli/*.c runtime/cli/*.h $(wildcard intents/*.c intents/*.h tests/c/*.c tests/c/*.h)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)

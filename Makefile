# Thin wrapper over CMake. `make run` and `make test` are the README's contract: both
# install what is missing (Debian 12, as root), build, then run the main job / every test.

BUILD_DIR ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?= -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
export CCACHE_DIR ?= $(HOME)/.cache/orrery-ccache

.PHONY: all setup configure build run test bench clean

all: build

setup:
	@bash scripts/setup.sh

configure: setup
	@cmake -S . -B $(BUILD_DIR) $(CMAKE_FLAGS) >/dev/null

build: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS)

# The main job: a local cluster named "orrery", served until Ctrl-C (then cleaned up).
run: build
	@bash scripts/run.sh $(BUILD_DIR)

test: build
	@cd $(BUILD_DIR) && ctest --output-on-failure --timeout 900 -j 1 -LE bench

bench: build
	@cd $(BUILD_DIR) && ctest --output-on-failure -L bench -V

clean:
	@rm -rf $(BUILD_DIR)

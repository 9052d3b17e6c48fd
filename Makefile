# tinkerstack — `make up` runs the stack, `make test` checks it. See README.md.
SHELL := /bin/bash
.DEFAULT_GOAL := help
UV ?= uv
export PATH := $(HOME)/.local/bin:$(PATH)
# `make up DETACH=1` runs the stack in the background (`make down` stops it).
DETACH ?=
STACK := $(UV) run --frozen python -m deploy.local.stack
PYTEST_ARGS ?=
# `make bench BENCH=gateway` runs bench/gateway_bench.py alone.
BENCH ?= *

.PHONY: help
help:
	@echo "make up         prepare everything and run the stack (Ctrl-C stops it)"
	@echo "make up DETACH=1  the same, in the background"
	@echo "make down       stop what a detached 'make up' left running, and the private servers"
	@echo "make test       prepare everything and run the whole suite (lint, types, C++, pytest)"
	@echo "make lint       ruff check, ruff format --check, import contracts"
	@echo "make typecheck  mypy (strict)"
	@echo "make test-native  the C++ tests of native/ (GCC and Clang, x86-64 and arm64 under qemu)"
	@echo "make bench      run the benchmarks, write docs/BENCHMARKS.md (BENCH=name: one of them)"

# uv (installed when missing) and the locked dependencies.
.PHONY: sync
sync:
	@deploy/local/bootstrap.sh

.PHONY: up
up: sync
	$(STACK) up $(if $(DETACH),--detach)

# Standard library only: works even where the environment is gone.
.PHONY: down
down:
	@if [ -x .venv/bin/python ]; then .venv/bin/python -m deploy.local.stack down; \
	else python3 -m deploy.local.stack down; fi

.PHONY: prepare-test
prepare-test: sync
	$(STACK) prepare --for test

.PHONY: lint
lint: sync
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .
	$(UV) run --frozen lint-imports

.PHONY: typecheck
typecheck: sync
	$(UV) run --frozen mypy
	$(UV) run --frozen mypy --strict deploy

# The C++ tests in four builds, so that both compilers and both architectures the library
# promises are checked: GCC and Clang for this machine under ASan + UBSan (Debug), and GCC and
# Clang cross-compiled for arm64 (Release, as the wheel is built), run under qemu-aarch64.
# Warnings are errors in all four. Each build is one file on one core: two run side by side.
# `make test-native NATIVE_VARIANTS=gcc` runs one of them.
NATIVE_VARIANTS := gcc clang arm64-gcc arm64-clang
NATIVE_TOOLS := g++ clang++ aarch64-linux-gnu-g++ qemu-aarch64
ARM64 := --toolchain $(CURDIR)/native/cmake/aarch64-linux-gnu.cmake -DCMAKE_BUILD_TYPE=Release
SANITIZED := -DCMAKE_BUILD_TYPE=Debug -DCCRADIX_SANITIZE=ON
NATIVE_CMAKE_gcc := -DCMAKE_CXX_COMPILER=g++ $(SANITIZED)
NATIVE_CMAKE_clang := -DCMAKE_CXX_COMPILER=clang++ $(SANITIZED)
NATIVE_CMAKE_arm64-gcc := $(ARM64)
NATIVE_CMAKE_arm64-clang := $(ARM64) -DCMAKE_CXX_COMPILER=clang++

.PHONY: test-native
test-native: sync
	@for tool in $(NATIVE_TOOLS); do command -v $$tool >/dev/null || { \
		echo "make test-native: no $$tool; \`make prepare-test\` installs it (as root)"; exit 1; }; done
	@$(MAKE) --no-print-directory -j2 --output-sync=target $(NATIVE_TEST_TARGETS)

# MAKEFLAGS= : each build is one file, so cmake's make has no jobs to share with this one (and
# would warn that it cannot reach the job server).
NATIVE_TEST_TARGETS := $(addprefix native-test-,$(NATIVE_VARIANTS))
.PHONY: $(NATIVE_TEST_TARGETS)
$(NATIVE_TEST_TARGETS): native-test-%:
	@echo "== ccradix C++ tests: $*"
	cmake -S native -B native/build/test-$* -DCCRADIX_TESTS=ON -DCCRADIX_WERROR=ON $(NATIVE_CMAKE_$*) >/dev/null
	MAKEFLAGS= cmake --build native/build/test-$*
	ctest --test-dir native/build/test-$* --output-on-failure

# The C++ tests join in once native/ is there.
NATIVE_TESTS := $(if $(wildcard native/CMakeLists.txt),test-native)

.PHONY: test
test: prepare-test lint typecheck $(NATIVE_TESTS)
	$(UV) run --frozen pytest $(PYTEST_ARGS)

.PHONY: bench
bench: sync
	$(STACK) prepare --for bench
	@set -e; for module in bench/$(BENCH)_bench.py; do \
		[ -e "$$module" ] || { echo "no $$module"; exit 1; }; \
		name=$$(basename "$$module" .py); \
		echo "== bench.$$name"; \
		$(UV) run --frozen python -m "bench.$$name"; \
	done

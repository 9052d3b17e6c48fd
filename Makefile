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
	@echo "make test-native  the C++ tests of native/"
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

.PHONY: test-native
test-native: sync
	cmake -S native -B native/build/test -DCMAKE_BUILD_TYPE=Debug -DCCRADIX_TESTS=ON -DCCRADIX_SANITIZE=ON >/dev/null
	cmake --build native/build/test -j2
	ctest --test-dir native/build/test --output-on-failure

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

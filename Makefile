# tinkerstack — `make up` runs the stack, `make test` checks it. See README.md.
SHELL := /bin/bash
.DEFAULT_GOAL := help
UV ?= uv
export PATH := $(HOME)/.local/bin:$(PATH)

.PHONY: help
help:
	@echo "make up      prepare everything and run the stack (Ctrl-C stops it)"
	@echo "make test    prepare everything and run the whole suite"
	@echo "make down    stop what a detached 'make up' left running"
	@echo "make bench   run the benchmarks, write docs/BENCHMARKS.md"

.PHONY: sync
sync:
	@command -v $(UV) >/dev/null || deploy/local/install-uv.sh
	$(UV) sync --frozen

.PHONY: lint
lint: sync
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run lint-imports

.PHONY: typecheck
typecheck: sync
	$(UV) run mypy

.PHONY: test-native
test-native:
	cmake -S native -B native/build/test -DCMAKE_BUILD_TYPE=Debug -DCCRADIX_TESTS=ON -DCCRADIX_SANITIZE=ON >/dev/null
	cmake --build native/build/test -j2
	ctest --test-dir native/build/test --output-on-failure

.PHONY: test
test: lint typecheck
	$(UV) run pytest

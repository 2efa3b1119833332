# Cekpot — one entry point for every task. The README's two commands:
#   make run    build and serve http://127.0.0.1:3000
#   make test   format, lint, unit + integration, client-only build, browser tests
SHELL := /bin/bash
.DEFAULT_GOAL := help

# wasm-opt from npm's binaryen (see scripts/tools.sh) and cargo-installed tools.
export PATH := $(CURDIR)/.tools/node_modules/.bin:$(HOME)/.cargo/bin:$(PATH)
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)

.PHONY: help run test bench fmt clean

help:
	@echo "make run    build the app and serve it on http://127.0.0.1:3000"
	@echo "make test   the whole test suite (what CI runs)"
	@echo "make bench  contributions/s and spins/s with latency: group commit vs one transaction each"
	@echo "make fmt    format the code"
	@echo "make clean  remove build output and the private database"

run:
	@scripts/tools.sh run
	cargo leptos build --release
	@scripts/services.sh run -- $(TARGET_DIR)/release/server

test:
	@scripts/tools.sh test
	@scripts/services.sh test -- scripts/test.sh

bench:
	@scripts/services.sh test -- cargo bench --locked -p server --bench contributions --bench spins

fmt:
	cargo fmt --all

clean:
	cargo clean
	rm -rf .data dist end2end/test-results end2end/screenshots

# Missive: entry points. Every target installs what it needs (scripts/lib.sh).
#   make test [ARGS=filter]   the whole test run against moto and Prism (scripts/test.sh)
#   make demo                 the pipeline run locally (scripts/demo.sh)
#   make bench                the benchmark (scripts/bench.sh)
#   make lambdas              release bootstraps of the functions and their sizes (scripts/build-lambdas.sh)
#   make fuzz                 property/fuzz tests (names containing "fuzz") with many cases
#   make lint                 rustfmt check and clippy, as CI runs them
#   make tools                install the test tools (.venv, .venv-checkov, Prism)
#   make clean-tools          remove the installed tools and server logs

SHELL := /bin/bash
ARGS ?=
FUZZ_CASES ?= 20000

.PHONY: test demo bench lambdas fuzz lint tools clean-tools

test:
	bash scripts/test.sh $(ARGS)

demo:
	bash scripts/demo.sh $(ARGS)

bench:
	bash scripts/bench.sh $(ARGS)

lambdas:
	bash scripts/build-lambdas.sh

fuzz:
	PROPTEST_CASES=$(FUZZ_CASES) MISSIVE_SKIP_INFRA=1 MISSIVE_SKIP_DEMO=1 bash scripts/test.sh $(or $(ARGS),fuzz)

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

tools:
	bash -c 'source scripts/lib.sh && ensure_venv && ensure_checkov && ensure_prism'

clean-tools:
	rm -rf .venv .venv-checkov .tools .run

#!/usr/bin/env bash
# The whole test run: installs the tools if needed, starts moto and Prism on free loopback
# ports, runs the infra checks (when scripts/check-infra.sh exists) and every Rust test,
# then stops the servers. Exits non-zero if anything failed.
#
#   scripts/test.sh [ARGS…]     ARGS go to the test runner, e.g. a test-name filter:
#                               scripts/test.sh send_happy      (make test ARGS=send_happy)
#
# The tests find the servers through AWS_ENDPOINT_URL (= MOTO_URL), AWS_ACCESS_KEY_ID,
# AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_DEFAULT_REGION and PRISM_URL (see scripts/lib.sh).
# Debian's chromium is installed when missing (the staff report's page test needs it).
# MISSIVE_SKIP_INFRA=1 skips the infra checks and the release builds of the functions;
# MISSIVE_SKIP_DEMO=1 skips the local pipeline (scripts/demo.sh). A run given ARGS (a filter)
# skips both slow steps too: it is a developer's run of some tests, not the whole check.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$MISSIVE_ROOT"

if [[ $# -gt 0 ]]; then
  log "test filter given: skipping the release builds and the local pipeline"
  export MISSIVE_SKIP_DEMO=1
  skip_release_builds=1
fi

# A CI run starts from a clean checkout and builds once: the incremental cache (~2 GB) would
# only cost disk and time there.
if [[ "${CI:-}" == true ]]; then
  export CARGO_INCREMENTAL=0
fi

ensure_venv
ensure_prism
ensure_chromium # the staff report's page is checked in a real headless browser
start_moto
start_prism

status=0

# run_step TITLE SCRIPT: runs a check before the Rust tests; a failure is remembered (the exit
# status) and the tests still run, so that one run reports everything that is wrong.
run_step() {
  local title=$1 script=$2 rc=0
  log "$title: $script"
  run_tracked bash "$script" || rc=$?
  if [[ $rc -ne 0 ]]; then
    log "FAILED: $script (exit $rc); running the Rust tests all the same"
    status=$rc
  fi
}

if [[ -f scripts/check-infra.sh && "${MISSIVE_SKIP_INFRA:-0}" != 1 ]]; then
  run_step "infra checks" scripts/check-infra.sh
fi

# What Lambda runs: `cargo lambda build --release` of every function (x86_64; arm64 too where
# the rustup target is installed), and the size of each `bootstrap` (scripts/build-lambdas.sh).
if [[ "${MISSIVE_SKIP_INFRA:-0}" != 1 && -z "${skip_release_builds:-}" ]]; then
  run_step "release builds of the functions" scripts/build-lambdas.sh
fi

# The README's first command, end to end: the local pipeline under `cargo lambda watch`, which
# fails unless the sample campaign's final report is the expected one (scripts/demo.sh). It
# starts its own moto and fake Twilio on other free ports, and stops them.
if [[ "${MISSIVE_SKIP_DEMO:-0}" != 1 ]]; then
  run_step "the local pipeline (logs in .run/demo-*.log; MISSIVE_SKIP_DEMO=1 skips it)" scripts/demo.sh
fi

# Doc tests are not run (nextest does not run them).
if cargo nextest --version >/dev/null 2>&1; then
  if [[ "${CI:-}" == true && -z "${NEXTEST_PROFILE:-}" ]]; then
    export NEXTEST_PROFILE=ci # .config/nextest.toml: stops a hung test
  fi
  runner=(cargo nextest run --workspace --no-fail-fast)
else
  log "cargo-nextest is not installed: using cargo test"
  runner=(cargo test --workspace --no-fail-fast --lib --bins --tests)
fi
# The crash campaign runs the real `send` binary: build the functions' binaries first (a
# test build does not link them), and point the harness at them, so that no test builds
# inside its own time budget.
log "building the functions' binaries (debug) for the crash campaign"
run_tracked cargo build -p send -p twilio-webhook -p retry-sweep
export MISSIVE_BIN_DIR="${MISSIVE_BIN_DIR:-${CARGO_TARGET_DIR:-$MISSIVE_ROOT/target}/debug}"
log "running: ${runner[*]} $*"
tests=0
run_tracked "${runner[@]}" "$@" || tests=$?
if [[ $tests -ne 0 ]]; then
  status=$tests
fi

# Nothing is printed after the runner's own summary; cleanup (on EXIT) is silent.
exit "$status"

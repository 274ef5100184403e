#!/usr/bin/env bash
# scripts/build-lambdas.sh: release builds of the three functions with Cargo Lambda, as Lambda
# runs them (a `bootstrap` per function), and their sizes.
#
#   scripts/build-lambdas.sh            (make lambdas)
#
#   x86_64  always:                   target/lambda-x86_64/<function>/bootstrap
#   arm64   only when the rustup target aarch64-unknown-linux-gnu is installed (it is never
#           downloaded here; `rustup target add aarch64-unknown-linux-gnu` adds it):
#                                     target/lambda-arm64/<function>/bootstrap
#
# Then prints, per architecture and function, the size of `bootstrap` and of a zip of it (what
# a deployment package weighs), as a Markdown table (docs/sizes.md holds the measured one).
#
# Cargo Lambda 1.9.2 (from .venv, requirements.txt) compiles with zig, which it runs as
# `python -m ziglang`: ensure_venv puts .venv/bin first on PATH for that. Both architectures
# would write target/lambda/<bin>/bootstrap: --lambda-dir keeps them apart. Its --target-dir
# is broken: set CARGO_TARGET_DIR instead (the output then goes to $CARGO_TARGET_DIR/lambda-*).
# Cold, on 2 cores, each architecture takes ~4–6 minutes.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$MISSIVE_ROOT"

FUNCTIONS=(send twilio-webhook retry-sweep)
TARGET_DIR="${CARGO_TARGET_DIR:-$MISSIVE_ROOT/target}"

ensure_venv
command -v cargo-lambda >/dev/null 2>&1 || die "cargo-lambda not found on PATH (requirements.txt installs it into .venv)"

# The architectures to build: arm64 only where its standard library is already installed.
arches=(x86_64)
installed_targets=""
if command -v rustup >/dev/null 2>&1; then
  installed_targets="$(rustup target list --installed 2>/dev/null || true)"
fi
if grep -qx 'aarch64-unknown-linux-gnu' <<<"$installed_targets"; then
  arches+=(arm64)
else
  log "arm64: SKIPPED (the rustup target aarch64-unknown-linux-gnu is not installed; add it with: rustup target add aarch64-unknown-linux-gnu)"
fi

package_args=()
for f in "${FUNCTIONS[@]}"; do package_args+=(--package "$f"); done

for arch in "${arches[@]}"; do
  out="$TARGET_DIR/lambda-$arch"
  flag="--x86-64"
  [[ $arch == arm64 ]] && flag="--arm64"
  log "building ${FUNCTIONS[*]} for $arch: cargo lambda build --release $flag --lambda-dir ${out#"$MISSIVE_ROOT"/}"
  start=$SECONDS
  run_tracked cargo lambda build --release "$flag" --lambda-dir "$out" "${package_args[@]}" ||
    die "cargo lambda build --release $flag failed"
  log "$arch built in $((SECONDS - start)) s"
done

# Sizes: the bootstrap, and a zip of it (deflate, as `cargo lambda build --output-format zip`
# and `sam build` package it).
human() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
tmp="$RUN_DIR/build-lambdas-zips"
rm -rf "$tmp" && mkdir -p "$tmp"
printf '\n| function | arch | bootstrap | zipped |\n| --- | --- | ---: | ---: |\n'
for arch in "${arches[@]}"; do
  for f in "${FUNCTIONS[@]}"; do
    bin="$TARGET_DIR/lambda-$arch/$f/bootstrap"
    [[ -f "$bin" ]] || die "missing $bin"
    size=$(stat -c %s "$bin")
    rm -f "$tmp/$f.zip"
    (cd "$(dirname "$bin")" && zip -q -X "$tmp/$f.zip" bootstrap)
    zipped=$(stat -c %s "$tmp/$f.zip")
    printf '| `%s` | %s | %s (%s B) | %s (%s B) |\n' "$f" "$arch" "$(human "$size")" "$size" "$(human "$zipped")" "$zipped"
  done
done
rm -rf "$tmp"

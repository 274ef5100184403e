#!/usr/bin/env bash
# The benchmark (`make bench`): builds the release functions, starts moto, runs bench/
# (missive-bench), which writes docs/bench.md and docs/bench.png.
#
#   scripts/bench.sh [--quick]      --quick: fewer messages and starts (a smoke run, ~1 min)
#
# The functions measured are the Lambda artifacts when cargo-lambda is in .venv
# (`cargo lambda build --release`, x86_64, target/lambda-x86_64/<function>/bootstrap, the same
# place as scripts/build-lambdas.sh), else the plain release binaries (`cargo build
# --release`, target/release/<function>); docs/bench.md says which. BENCH_PLAIN=1 forces the
# plain release binaries (one release build fewer). The chart's text needs a font: Debian's
# fonts-dejavu-core, installed with apt-get when missing and possible; without it the chart
# is drawn without text.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$MISSIVE_ROOT"

ensure_venv
FUNCTIONS=(send twilio-webhook retry-sweep)
TARGET_DIR="${CARGO_TARGET_DIR:-$MISSIVE_ROOT/target}"

# The load generator (fake Twilio, event source, proxy, Runtime API) in release too, so
# that its own overhead stays out of the figures.
log "building the benchmark: cargo build --release -p missive-bench"
run_tracked cargo build --release -p missive-bench || die "cargo build --release -p missive-bench failed"

package_args=()
for f in "${FUNCTIONS[@]}"; do package_args+=(--package "$f"); done
if [[ "${BENCH_PLAIN:-0}" != 1 ]] && command -v cargo-lambda >/dev/null 2>&1; then
  bin_dir="$TARGET_DIR/lambda-x86_64"
  build="\`cargo lambda build --release --x86-64\` (cargo-lambda $(cargo lambda --version 2>/dev/null | awk '{print $2}'); the Lambda artifacts, \`bootstrap\`)"
  log "building ${FUNCTIONS[*]}: cargo lambda build --release --x86-64"
  run_tracked cargo lambda build --release --x86-64 --lambda-dir "$bin_dir" "${package_args[@]}" ||
    die "cargo lambda build --release failed"
  path_of() { printf '%s/%s/bootstrap' "$bin_dir" "$1"; }
else
  build="\`cargo build --release\` (plain release binaries: cargo-lambda was not used)"
  log "building ${FUNCTIONS[*]}: cargo build --release"
  run_tracked cargo build --release "${package_args[@]}" || die "cargo build --release failed"
  path_of() { printf '%s/release/%s' "$TARGET_DIR" "$1"; }
fi

font=/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf
if [[ ! -f $font ]] && command -v apt-get >/dev/null 2>&1 && [[ $(id -u) == 0 ]]; then
  log "installing fonts-dejavu-core (the chart's text)"
  { apt-get install -y -q fonts-dejavu-core || { apt-get update -q && apt-get install -y -q fonts-dejavu-core; }; } \
    </dev/null >&2 || log "could not install fonts-dejavu-core: the chart will have no text"
fi
font_args=()
[[ -f $font ]] && font_args=(--font "$font")

start_moto
moto_pid=$SPAWNED_PID # its CPU time tells whether moto set the pace

size_args=()
for f in "${FUNCTIONS[@]}"; do size_args+=(--size "$f=$(path_of "$f")"); done
commit="$(git rev-parse --short HEAD 2>/dev/null || echo '?')"
git diff --quiet HEAD 2>/dev/null || commit="$commit + uncommitted changes"

log "running the benchmark (a few minutes)"
run_tracked "$TARGET_DIR/release/missive-bench" \
  --send "$(path_of send)" --sweep "$(path_of retry-sweep)" "${size_args[@]}" \
  --build "$build" --commit "$commit" --moto-pid "$moto_pid" --out docs --log-dir "$RUN_DIR" "${font_args[@]}" "$@"

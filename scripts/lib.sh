# shellcheck shell=bash
# scripts/lib.sh: shared helpers for the scripts in scripts/. Source it, do not run it:
#
#     source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
#   ensure_venv      .venv from requirements.txt (moto, boto3, cfn-lint, cargo-lambda + zig);
#                    puts .venv/bin first on PATH (cargo lambda needs python -m ziglang there)
#   ensure_checkov   .venv-checkov from requirements-checkov.txt; exports CHECKOV_BIN
#   ensure_prism     Prism under .tools/node; exports PRISM_BIN
#   ensure_chromium  Debian's chromium (apt-get install, after apt-get update when the package
#                    is unknown); exports CHROMIUM_BIN; fails (never skips) when it cannot
#   free_port        prints a free TCP port on 127.0.0.1 (asks the OS)
#   start_moto       moto server (through scripts/moto_server.py) on 127.0.0.1:<free port>;
#                    exports AWS_ENDPOINT_URL (= MOTO_URL), AWS_ACCESS_KEY_ID=test,
#                    AWS_SECRET_ACCESS_KEY=test, AWS_REGION=AWS_DEFAULT_REGION=eu-west-3
#   start_prism      Prism mocking tests/contract/twilio-oai/twilio_api_v2010.json (without
#                    --errors) on 127.0.0.1:<free port>; exports PRISM_URL
#   spawn NAME CMD…  starts CMD in the background in its own process group, logged to
#                    .run/<tag>-NAME.log; sets SPAWNED_PID; cleanup stops it
#   run_tracked CMD… runs CMD (in its own process group, so a signal to this script stops it
#                    and its children too) and returns its exit status
#   cleanup          stops every process started through these functions, and only those;
#                    registered on EXIT (INT, TERM and HUP exit, which runs it)
#
# Installs are idempotent: a stamp file in each tool directory holds the hash of what was
# installed, and nothing is done while it matches. Nothing here needs anything but python3,
# node/npm and the package registries.

if [[ -n "${_MISSIVE_LIB_LOADED:-}" ]]; then
  return 0
fi
_MISSIVE_LIB_LOADED=1

set -euo pipefail

MISSIVE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUN_DIR="$MISSIVE_ROOT/.run"
VENV_DIR="$MISSIVE_ROOT/.venv"
CHECKOV_VENV_DIR="$MISSIVE_ROOT/.venv-checkov"
NODE_TOOLS_DIR="$MISSIVE_ROOT/.tools/node"
PRISM_PACKAGE="@stoplight/prism-cli@5.16.0"
PRISM_BIN="$NODE_TOOLS_DIR/node_modules/.bin/prism"
TWILIO_OAI_SPEC="$MISSIVE_ROOT/tests/contract/twilio-oai/twilio_api_v2010.json"
export MISSIVE_ROOT

# Bounded waits for readiness, in seconds (a slow CI machine may need more than a laptop).
MOTO_START_TIMEOUT="${MOTO_START_TIMEOUT:-60}"
PRISM_START_TIMEOUT="${PRISM_START_TIMEOUT:-120}"

# Log files of servers: .run/<tag>-<name>.log, the tag being the calling script's name, so
# that test.sh and demo.sh running at once do not write into each other's logs.
RUN_TAG="${RUN_TAG:-$(basename "${0%.sh}")}"

mkdir -p "$RUN_DIR"

# Loopback traffic never goes through a proxy (reqwest and urllib honour *_PROXY variables).
for _v in NO_PROXY no_proxy; do
  case ",${!_v:-}," in
    *,127.0.0.1,*) ;;
    *) export "$_v=127.0.0.1,localhost${!_v:+,${!_v}}" ;;
  esac
done
unset _v

log() { printf '[%s] %s\n' "$RUN_TAG" "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

# The interpreter that builds the venvs (MISSIVE_PYTHON overrides).
bootstrap_python() {
  if [[ -n "${MISSIVE_PYTHON:-}" ]]; then
    printf '%s\n' "$MISSIVE_PYTHON"
  elif command -v python3.11 >/dev/null 2>&1; then
    printf 'python3.11\n'
  elif command -v python3 >/dev/null 2>&1; then
    printf 'python3\n'
  else
    die "python3 not found (Python 3.11 is needed for the test tools)"
  fi
}

# _locked NAME CMD…: runs CMD while holding .run/NAME.lock, so that two scripts started at
# once do not install into the same directory together.
_locked() {
  local name=$1
  shift
  if command -v flock >/dev/null 2>&1; then
    (
      flock 9
      "$@"
    ) 9>"$RUN_DIR/$name.lock"
  else
    "$@"
  fi
}

_sha256() { sha256sum "$@" | cut -d' ' -f1; }

_path_prepend() {
  case ":$PATH:" in
    *":$1:"*) ;;
    *) export PATH="$1:$PATH" ;;
  esac
}

# _install_venv DIR REQUIREMENTS: DIR holds exactly what REQUIREMENTS pins, reinstalled
# whenever the stamp (hash of the requirements file) is missing or different.
_install_venv() {
  local dir=$1 req=$2 want stamp py
  want="$(_sha256 "$req")"
  stamp="$dir/.missive-stamp"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]] && "$dir/bin/python" -c '' 2>/dev/null; then
    return 0
  fi
  py="$(bootstrap_python)"
  log "installing ${req#"$MISSIVE_ROOT"/} into ${dir#"$MISSIVE_ROOT"/} (once; ~30 s)"
  rm -f "$stamp"
  if ! "$dir/bin/python" -c '' 2>/dev/null; then
    "$py" -m venv --clear "$dir" || die "could not create the venv $dir with $py"
  fi
  "$dir/bin/python" -m pip install --disable-pip-version-check --no-input -q -r "$req" \
    </dev/null || die "pip install -r $req failed"
  printf '%s\n' "$want" >"$stamp"
}

ensure_venv() {
  _locked venv _install_venv "$VENV_DIR" "$MISSIVE_ROOT/requirements.txt" || return 1
  _path_prepend "$VENV_DIR/bin"
}

ensure_checkov() {
  _locked venv-checkov _install_venv "$CHECKOV_VENV_DIR" "$MISSIVE_ROOT/requirements-checkov.txt" || return 1
  export CHECKOV_BIN="$CHECKOV_VENV_DIR/bin/checkov"
}

_install_prism() {
  local stamp="$NODE_TOOLS_DIR/.missive-stamp" want
  command -v node >/dev/null 2>&1 || die "node not found (Node 20 is needed for Prism)"
  command -v npm >/dev/null 2>&1 || die "npm not found (Node 20 is needed for Prism)"
  want="$PRISM_PACKAGE node $(node --version)"
  if [[ -x "$PRISM_BIN" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    return 0
  fi
  log "installing $PRISM_PACKAGE into ${NODE_TOOLS_DIR#"$MISSIVE_ROOT"/} (once; ~10 s)"
  rm -f "$stamp"
  mkdir -p "$NODE_TOOLS_DIR"
  npm install --prefix "$NODE_TOOLS_DIR" --no-package-lock --no-save --no-audit --no-fund \
    --loglevel=error "$PRISM_PACKAGE" </dev/null >&2 || die "npm install $PRISM_PACKAGE failed"
  [[ -x "$PRISM_BIN" ]] || die "npm installed $PRISM_PACKAGE but $PRISM_BIN is missing"
  printf '%s\n' "$want" >"$stamp"
}

ensure_prism() {
  _locked prism _install_prism || return 1
  export PRISM_BIN
}

# The staff report's test opens the page in a real headless browser: Debian's chromium, from
# the distribution's own packages (no browser build fetched from elsewhere). Installed as root
# (how this project's machines and CI run); anyone else is told what to install.
_install_chromium() {
  command -v chromium >/dev/null 2>&1 && return 0
  command -v apt-get >/dev/null 2>&1 || die "chromium not found and no apt-get to install it: install Debian's chromium package"
  [[ "$(id -u)" == 0 ]] || die "chromium not found: install it (as root: apt-get install -y chromium)"
  log "installing Debian's chromium (once; ~1 min)"
  # An apt cache that was never filled (a fresh machine) does not know the package yet.
  if ! apt-cache show chromium >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null >&2 || die "apt-get update failed"
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium \
    </dev/null >&2 || die "apt-get install chromium failed"
  command -v chromium >/dev/null 2>&1 || die "apt-get installed chromium but it is not on PATH"
}

ensure_chromium() {
  _locked chromium _install_chromium || return 1
  CHROMIUM_BIN="$(command -v chromium)"
  export CHROMIUM_BIN
}

free_port() {
  "$(bootstrap_python)" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# ---- processes --------------------------------------------------------------------------

_MISSIVE_PIDS=()
_MISSIVE_NAMES=()

_track() {
  _MISSIVE_PIDS+=("$1")
  _MISSIVE_NAMES+=("$2")
}

_untrack() {
  local i
  for i in "${!_MISSIVE_PIDS[@]}"; do
    if [[ "${_MISSIVE_PIDS[$i]}" == "$1" ]]; then
      unset '_MISSIVE_PIDS[i]' '_MISSIVE_NAMES[i]'
    fi
  done
}

# _alive PID: true while the process, or any process left in its process group, exists.
_alive() {
  kill -0 "$1" 2>/dev/null || kill -0 -- "-$1" 2>/dev/null
}

# _stop PID: TERM to the process group the process leads (the process and its children),
# then KILL after 5 s.
_stop() {
  local pid=$1 i
  _alive "$pid" || return 0
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    _alive "$pid" || return 0
    sleep 0.1
  done
  kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
}

# _bg CMD…: starts CMD in the background as the leader of a process group of its own (so
# that _stop reaches its children too). setsid keeps the PID when, as in a script, the job
# is not already a group leader; with job control on (an interactive shell), bash gives
# the job its own group itself. Bash makes background commands of a script ignore SIGINT;
# env --default-signal gives CMD the default back (a test may signal what CMD starts).
_bg() {
  local -a pre=()
  if [[ $- != *m* ]] && command -v setsid >/dev/null 2>&1; then
    pre+=(setsid)
  fi
  if env --default-signal=INT true 2>/dev/null; then
    pre+=(env --default-signal=INT,QUIT)
  fi
  "${pre[@]}" "$@" &
}

# spawn NAME CMD…: CMD runs in the background, stdin from /dev/null, output to
# .run/<tag>-NAME.log; cleanup stops it. Sets SPAWNED_PID and SPAWNED_LOG.
spawn() {
  local name=$1
  shift
  SPAWNED_LOG="$RUN_DIR/$RUN_TAG-$name.log"
  _bg "$@" </dev/null >"$SPAWNED_LOG" 2>&1
  SPAWNED_PID=$!
  disown "$SPAWNED_PID" 2>/dev/null || true # no "Terminated" notice when cleanup stops it
  _track "$SPAWNED_PID" "$name"
}

# run_tracked CMD…: runs CMD (stdin from /dev/null) and waits for it; returns its status.
# CMD runs in the background of this shell so that a signal to the script interrupts the
# wait at once and cleanup stops CMD with all its children (a foreground command would
# hold the EXIT trap until it ended by itself).
run_tracked() {
  local pid rc=0
  _bg "$@" </dev/null
  pid=$!
  _track "$pid" "$1"
  wait "$pid" || rc=$?
  _untrack "$pid"
  return "$rc"
}

# _wait_http NAME URL PID TIMEOUT: waits until URL gives any HTTP answer; fails at once if
# PID dies, or after TIMEOUT seconds.
_wait_http() {
  local name=$1 url=$2 pid=$3 timeout=$4 rc=0
  "$(bootstrap_python)" - "$url" "$pid" "$timeout" <<'PY' || rc=$?
import os, sys, time, urllib.error, urllib.request

url, pid, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
deadline = time.monotonic() + timeout
while True:
    try:
        opener.open(url, timeout=2).read()
        sys.exit(0)
    except urllib.error.HTTPError:
        sys.exit(0)  # an HTTP error answer still means the server is up
    except Exception:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        sys.exit(3)
    if time.monotonic() > deadline:
        sys.exit(4)
    time.sleep(0.05)
PY
  case $rc in
    0) return 0 ;;
    3) log "error: $name exited before answering on $url; last lines of $SPAWNED_LOG:" ;;
    4) log "error: $name did not answer on $url within ${timeout}s; last lines of $SPAWNED_LOG:" ;;
    *) log "error: waiting for $name on $url failed ($rc); last lines of $SPAWNED_LOG:" ;;
  esac
  tail -n 20 "$SPAWNED_LOG" >&2 || true
  return 1
}

# _start_server NAME TIMEOUT READY_PATH CMD… (the word {port} in CMD's arguments stands for
# the port): starts it on a free port and waits; retries on another port if it dies at
# once (the port was taken between free_port and the bind). Sets STARTED_PORT.
_start_server() {
  local name=$1 timeout=$2 ready_path=$3 attempt port arg
  shift 3
  local -a cmd
  for attempt in 1 2 3; do
    port="$(free_port)"
    cmd=()
    for arg in "$@"; do cmd+=("${arg//\{port\}/$port}"); done
    spawn "$name" "${cmd[@]}"
    if _wait_http "$name" "http://127.0.0.1:$port$ready_path" "$SPAWNED_PID" "$timeout"; then
      STARTED_PORT=$port
      log "$name listening on 127.0.0.1:$port (pid $SPAWNED_PID, log ${SPAWNED_LOG#"$MISSIVE_ROOT"/})"
      return 0
    fi
    _stop "$SPAWNED_PID"
    _untrack "$SPAWNED_PID"
    grep -qi 'address already in use\|EADDRINUSE' "$SPAWNED_LOG" || break
    log "retrying $name on another port"
  done
  die "could not start $name (log: $SPAWNED_LOG)"
}

start_moto() {
  ensure_venv
  # scripts/moto_server.py: moto's server with DynamoDB's conditional writes made atomic, as
  # they are on AWS (see that file); plain moto_server only if the launcher is absent.
  local -a moto=("$VENV_DIR/bin/moto_server")
  if [[ -f "$MISSIVE_ROOT/scripts/moto_server.py" ]]; then
    moto=("$VENV_DIR/bin/python" "$MISSIVE_ROOT/scripts/moto_server.py")
  fi
  _start_server moto "$MOTO_START_TIMEOUT" /moto-api/ "${moto[@]}" -H 127.0.0.1 -p {port}
  export MOTO_URL="http://127.0.0.1:$STARTED_PORT"
  export AWS_ENDPOINT_URL="$MOTO_URL"
  export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
  export AWS_REGION=eu-west-3 AWS_DEFAULT_REGION=eu-west-3
  export AWS_EC2_METADATA_DISABLED=true
  # Never mix in a developer's real session or profile.
  unset AWS_SESSION_TOKEN AWS_PROFILE AWS_DEFAULT_PROFILE
}

start_prism() {
  ensure_prism
  [[ -f "$TWILIO_OAI_SPEC" ]] || die "missing $TWILIO_OAI_SPEC"
  # Without --errors: the spec's list example fails validation under it (see twilio-oai/README.md).
  _start_server prism "$PRISM_START_TIMEOUT" / \
    "$PRISM_BIN" mock "$TWILIO_OAI_SPEC" -h 127.0.0.1 -p {port}
  export PRISM_URL="http://127.0.0.1:$STARTED_PORT"
}

# ---- cleanup ----------------------------------------------------------------------------

cleanup() {
  local rc=$? i
  local -a idx
  trap - EXIT INT TERM HUP
  idx=("${!_MISSIVE_PIDS[@]}")
  for ((i = ${#idx[@]} - 1; i >= 0; i--)); do # the last started is stopped first
    _stop "${_MISSIVE_PIDS[${idx[$i]}]}"
  done
  _MISSIVE_PIDS=()
  _MISSIVE_NAMES=()
  return "$rc"
}

trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

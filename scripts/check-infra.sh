#!/usr/bin/env bash
# scripts/check-infra.sh: static checks of the SAM template, offline, no AWS credentials.
#
#   cfn-lint infra/template.yaml      no errors (it runs the SAM transform too)
#   checkov  infra/template.yaml      no failed check; every skip is written in the template,
#                                     in the resource's Metadata, with its reason
#
# The agreement between the template and the code (tables, indexes, environment variables,
# binaries, timeouts) is checked by `cargo test -p missive --test template`, not here.
# Called by scripts/test.sh; runs on its own too. Installs its tools on first use:
# cfn-lint in .venv (requirements.txt), checkov in .venv-checkov (requirements-checkov.txt).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TEMPLATE="$ROOT/infra/template.yaml"
cd "$ROOT"

if [[ -f "$ROOT/scripts/lib.sh" ]]; then
  # shellcheck source=scripts/lib.sh
  source "$ROOT/scripts/lib.sh"
  ensure_venv
  ensure_checkov
  CFN_LINT_BIN="$ROOT/.venv/bin/cfn-lint"
else
  # Standalone fallback: the same venvs, built from the same pinned requirements files.
  log() { printf '[check-infra] %s\n' "$*" >&2; }
  py="${MISSIVE_PYTHON:-python3}"
  if [[ ! -x "$ROOT/.venv/bin/cfn-lint" ]]; then
    log "installing cfn-lint into .venv"
    [[ -x "$ROOT/.venv/bin/python" ]] || "$py" -m venv "$ROOT/.venv"
    cfn_lint_pin="$(grep -E '^cfn-lint==' "$ROOT/requirements.txt" 2>/dev/null || echo 'cfn-lint==1.58.0')"
    "$ROOT/.venv/bin/python" -m pip install --disable-pip-version-check -q "$cfn_lint_pin"
  fi
  if [[ ! -x "$ROOT/.venv-checkov/bin/checkov" ]]; then
    log "installing checkov into .venv-checkov"
    "$py" -m venv "$ROOT/.venv-checkov"
    if [[ -f "$ROOT/requirements-checkov.txt" ]]; then
      "$ROOT/.venv-checkov/bin/python" -m pip install --disable-pip-version-check -q -r "$ROOT/requirements-checkov.txt"
    else
      "$ROOT/.venv-checkov/bin/python" -m pip install --disable-pip-version-check -q 'checkov==3.3.30'
    fi
  fi
  CFN_LINT_BIN="$ROOT/.venv/bin/cfn-lint"
  CHECKOV_BIN="$ROOT/.venv-checkov/bin/checkov"
fi

[[ -f "$TEMPLATE" ]] || { echo "missing $TEMPLATE" >&2; exit 1; }

status=0

echo "== cfn-lint infra/template.yaml"
if "$CFN_LINT_BIN" infra/template.yaml; then
  echo "cfn-lint: no errors"
else
  echo "cfn-lint: FAILED" >&2
  status=1
fi

echo "== checkov -f infra/template.yaml --framework cloudformation"
# --skip-download: no call to the vendor's API (it would fail offline, with a traceback).
if "$CHECKOV_BIN" -f infra/template.yaml --framework cloudformation --compact --skip-download --quiet; then
  echo "checkov: no failed checks (skips are listed, with their reasons, in the template's Metadata)"
else
  echo "checkov: FAILED" >&2
  status=1
fi

exit "$status"

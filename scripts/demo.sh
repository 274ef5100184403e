#!/usr/bin/env bash
# TODO(demo): placeholder. The real demo (written later) runs the whole pipeline locally:
# moto + fake-twilio, the three functions, the CLI enqueuing messages, statuses shown.
# For now it only starts moto (to check the tooling) and says what it will do.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$MISSIVE_ROOT"

start_moto
log "demo: not yet built (TODO). It will run, against moto at $AWS_ENDPOINT_URL:"
log "  create the table and queues, start fake-twilio, enqueue messages with the missive CLI,"
log "  run send / twilio-webhook / retry-sweep, and print every message's final status."
exit 1

#!/usr/bin/env bash
# TODO(bench): placeholder. The real benchmark (written later) measures the send path
# against moto and fake-twilio (throughput, latency, requests per message, cold start).
# For now it only starts moto (to check the tooling) and says what it will do.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$MISSIVE_ROOT"

start_moto
log "bench: not yet built (TODO). It will measure, against moto at $AWS_ENDPOINT_URL and"
log "  fake-twilio: messages per second, latency percentiles, requests per message, cold start."
exit 1

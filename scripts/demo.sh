#!/usr/bin/env bash
# make demo: the whole pipeline on this machine, fed as AWS would feed it.
#
#   moto (DynamoDB + SQS)      the tables and queues of infra/template.yaml (`missive setup`)
#   fake Twilio                events/campaign/behaviour.json; signed status callbacks
#                              (unless real TWILIO_* credentials are set: then it really sends)
#   cargo lambda watch         one per function: send, twilio-webhook, retry-sweep
#   missive local-poller       SQS → `send` with real batches (deletes what the response does
#                              not list as failed); `retry-sweep` every 5 s
#
# Then: a parent replies STOP on WhatsApp (a signed request to the webhook), the sample
# campaign (events/campaign/parents.csv) goes out with `missive bulk`, `missive report --watch`
# runs until it settles, two parents answer (a question, a quick-reply button), staff are
# told through the replies topic (SNS, read back from a subscribed queue), and
# `missive replies` lists them, and the final report, the failures and one message are printed;
# the staff report page (`missive report --html`, in SCHOOL_LANG) and its paper list of the
# families not reached are written under .run/, and their paths printed.
# With the sample campaign and the fake Twilio, the final counts must be those of
# events/campaign/README.md, else the demo exits 1. Everything started here is stopped at the
# end, or on Ctrl-C, the functions that each `cargo lambda watch` started included.
#
# Settings (environment):
#   DEMO_CAMPAIGN      campaign name (spring-trip)
#   DEMO_CSV           the parents file (events/campaign/parents.csv)
#   DEMO_TEMPLATE_SID  the template's Content SID (a dummy HX… for the fake Twilio)
#   DEMO_VAR_COLUMNS   template variables from columns ("first_name=1 child=2")
#   DEMO_TIMEOUT       seconds report --watch waits for the campaign to settle (180)
#   DEMO_PUBLIC_URL    real Twilio only: a public URL forwarding to the webhook's local
#                      Function URL (http://127.0.0.1:$DEMO_WEBHOOK_PORT/lambda-url/twilio-webhook);
#                      without it, real sends get no status callbacks (Twilio cannot reach loopback)
#   DEMO_WEBHOOK_PORT  the webhook's local port (a free one)
#   CARGO_TARGET_DIR   where cargo builds (target/), as for every cargo command
#
# With TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_WHATSAPP_FROM (or
# TWILIO_MESSAGING_SERVICE_SID) set, the demo sends for real through Twilio, and so refuses
# the sample file's made-up numbers: set DEMO_CSV (your own test phones) and DEMO_TEMPLATE_SID
# (an approved template).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$MISSIVE_ROOT"
demo_started=$SECONDS

CAMPAIGN="${DEMO_CAMPAIGN:-spring-trip}"
SAMPLE_CSV=events/campaign/parents.csv
CSV="${DEMO_CSV:-$SAMPLE_CSV}"
BEHAVIOUR=events/campaign/behaviour.json
TEMPLATE_SID="${DEMO_TEMPLATE_SID:-HX0123456789abcdef0123456789abcdef}"
read -r -a VAR_COLUMNS <<<"${DEMO_VAR_COLUMNS:-first_name=1 child=2}"
TIMEOUT="${DEMO_TIMEOUT:-180}"
# Where cargo puts the binaries: CARGO_TARGET_DIR (relative to the workspace, as cargo reads it
# here) or target/.
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
[[ $TARGET_DIR == /* ]] || TARGET_DIR="$MISSIVE_ROOT/$TARGET_DIR"
BIN="$TARGET_DIR/debug"
MISSIVE="$BIN/missive"

# What the sample campaign ends with against the fake Twilio (events/campaign/README.md);
# every other status must be at 0.
SAMPLE_EXPECTED=(delivered=5 skipped=4 undelivered=1 failed=1)

step() {
  if [[ -t 2 ]]; then printf '\n\033[1m== %s\033[0m\n' "$*" >&2; else printf '\n== %s\n' "$*" >&2; fi
}

# ---- stopping what the watches started ---------------------------------------------------

# `cargo lambda watch` runs each function in a session of its own, out of reach of the
# process-group signal that stops the watch (scripts/lib.sh): the watches are listed here
# ("PID:START_TIME"), and at exit their descendants are found (while the watches still run)
# and stopped by PID.
WATCH_PIDS=()

# _children PID: the PIDs of PID's children.
_children() {
  local files=(/proc/"$1"/task/*/children)
  if [[ -r ${files[0]:-} ]]; then
    cat "${files[@]}" 2>/dev/null || true
  else
    ps -o pid= --ppid "$1" 2>/dev/null || true
  fi
}

# _start_time PID: the process's start time (field 22 of /proc/PID/stat), empty once it is
# gone (or a zombie); it tells the process found at exit from a later one that reused its PID.
_start_time() {
  local stat
  local -a fields
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 0
  read -r -a fields <<<"${stat##*) }" # after "PID (COMM) ", the fields start at the 3rd: state
  [[ ${fields[0]:-Z} != Z ]] || return 0
  printf '%s' "${fields[19]:-}"
}

# _descendants PID: "PID:START_TIME" of every process under PID, parents first.
_descendants() {
  local child
  for child in $(_children "$1"); do
    printf '%s:%s\n' "$child" "$(_start_time "$child")"
    _descendants "$child"
  done
}

# _kill_same SIGNAL PID:START…: sends SIGNAL to each process still alive under its start time;
# true if one was.
_kill_same() {
  local signal=$1 entry alive=1
  shift
  for entry in "$@"; do
    if [[ -n ${entry#*:} && "$(_start_time "${entry%%:*}")" == "${entry#*:}" ]]; then
      kill "-$signal" "${entry%%:*}" 2>/dev/null && alive=0
    fi
  done
  return "$alive"
}

# On exit: the lib's cleanup (every process this script started, the last first), then what
# the watches started and left running: TERM, and KILL after 5 s.
demo_cleanup() {
  local watch i
  local -a tree=()
  set +e # a process that vanishes while it is looked at is no error here
  for watch in "${WATCH_PIDS[@]}"; do
    # Only a watch still alive under its start time: a PID reused since is someone else's.
    if [[ -n ${watch#*:} && "$(_start_time "${watch%%:*}")" == "${watch#*:}" ]]; then
      mapfile -t -O "${#tree[@]}" tree < <(_descendants "${watch%%:*}")
    fi
  done
  cleanup
  if ((${#tree[@]} > 0)) && _kill_same TERM "${tree[@]}"; then
    for ((i = 0; i < 50; i++)); do
      _kill_same 0 "${tree[@]}" || return 0
      sleep 0.1
    done
    _kill_same KILL "${tree[@]}"
  fi
  return 0
}
trap demo_cleanup EXIT

# ---- what is needed ---------------------------------------------------------------------

command -v cargo >/dev/null 2>&1 || die "cargo not found: install Rust first (https://rustup.rs)"

real_twilio=0
if [[ -n "${TWILIO_ACCOUNT_SID:-}" && -n "${TWILIO_AUTH_TOKEN:-}" &&
  -n "${TWILIO_WHATSAPP_FROM:-}${TWILIO_MESSAGING_SERVICE_SID:-}" ]]; then
  real_twilio=1
  [[ -n "${DEMO_CSV:-}" && -n "${DEMO_TEMPLATE_SID:-}" ]] ||
    die "real Twilio credentials are set: the demo would really send. Set DEMO_CSV (a file of your own test phones, columns parent_id,phone,whatsapp_optin,${VAR_COLUMNS[*]%%=*}) and DEMO_TEMPLATE_SID (an approved template), or unset TWILIO_ACCOUNT_SID to use the fake Twilio"
fi

step "tools: moto and cargo-lambda (.venv, installed once)"
ensure_venv

step "build: missive, fake-twilio and the three functions (debug; the first time takes a few minutes)"
run_tracked cargo build -p missive-cli -p fake-twilio
for function in send twilio-webhook retry-sweep; do
  # Built exactly as `cargo lambda watch` runs them (cargo run in the function's package).
  run_tracked cargo build --manifest-path "functions/$function/Cargo.toml"
done
build_done=$SECONDS

# ---- the emulated AWS -------------------------------------------------------------------

step "AWS, emulated: moto, then the tables and queues (missive setup)"
start_moto
exports="$("$MISSIVE" setup --queue-name missive-demo-send)" || die "missive setup failed"
eval "$exports"
log "MESSAGE_LOG_TABLE=$MESSAGE_LOG_TABLE CONSENT_TABLE=$CONSENT_TABLE"
log "SEND_QUEUE_URL=$SEND_QUEUE_URL DLQ_URL=$DLQ_URL"

if [[ $real_twilio == 1 ]]; then
  step "Twilio: REAL (TWILIO_ACCOUNT_SID is set): messages are really sent"
  unset TWILIO_API_BASE_URL
else
  step "Twilio: the fake one, with $BEHAVIOUR"
  _start_server fake-twilio 30 / "$BIN/fake-twilio" --port {port} --callbacks --callback-delay-ms 300 \
    --behaviour "$BEHAVIOUR"
  export TWILIO_API_BASE_URL="http://127.0.0.1:$STARTED_PORT"
  export TWILIO_ACCOUNT_SID=AC00000000000000000000000000000001 TWILIO_AUTH_TOKEN=test-auth-token
  export TWILIO_WHATSAPP_FROM=whatsapp:+14155238886
  unset TWILIO_MESSAGING_SERVICE_SID TWILIO_API_KEY_SID TWILIO_API_KEY_SECRET TWILIO_SECRET_ARN
fi
export TWILIO_ENABLED=true # never a silent dry run

# ---- the functions ----------------------------------------------------------------------

# The sample run shows quiet hours: the school's quiet hours are set around now, so that a
# normal message waits for their end while the sample campaign, sent urgent, goes at once.
sample_quiet=0
if [[ $real_twilio == 0 && $CSV == "$SAMPLE_CSV" ]]; then
  sample_quiet=1
  export SCHOOL_TIMEZONE=Europe/Paris QUIET_SPREAD_SECONDS=60
  QUIET_HOURS="$("$(bootstrap_python)" -c '
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo
now = datetime.now(ZoneInfo("Europe/Paris"))
print((now - timedelta(hours=1)).strftime("%H:%M") + "-" + (now + timedelta(hours=1)).strftime("%H:%M"))')"
  export QUIET_HOURS
  log "quiet hours for this run: $QUIET_HOURS ($SCHOOL_TIMEZONE); the sample campaign is sent --urgent"
fi

# Staff are told of replies through SNS (REPLIES_TOPIC_ARN): on moto, a topic with an SQS
# queue subscribed to it stands for the staff's mailbox, and the demo prints what arrives.
if [[ $sample_quiet == 1 ]]; then
  topics="$("$VENV_DIR/bin/python" -c '
import boto3
topic = boto3.client("sns").create_topic(Name="missive-demo-replies")["TopicArn"]
sqs = boto3.client("sqs")
url = sqs.create_queue(QueueName="missive-demo-staff-mailbox")["QueueUrl"]
arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
boto3.client("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
print(topic, url)')" || die "could not create the replies topic on moto"
  read -r REPLIES_TOPIC_ARN STAFF_MAILBOX_URL <<<"$topics"
  export REPLIES_TOPIC_ARN
  log "replies topic: $REPLIES_TOPIC_ARN (its notices are read from the queue $STAFF_MAILBOX_URL)"
fi

# Short delays, so that the retries of a demo take seconds, not minutes.
export BACKOFF_BASE_SECONDS=1 RECONCILE_DELAY_SECONDS=2 SWEEP_GRACE_SECONDS=10 SWEEP_RESCHEDULE_SECONDS=30
export TWILIO_TIMEOUT_MS=5000 LEASE_SECONDS=60 RUST_LOG="${RUST_LOG:-info}"

# start_function NAME PORT [VAR=VALUE …]: one `cargo lambda watch` for functions/NAME, with
# VAR=VALUE in its environment (the word {port} there stands for the port). PORT empty: a
# free port, and another one (3 tries) if it was taken between free_port and the bind
# (cargo lambda watch then logs "Address in use" and exits, which _start_server in
# scripts/lib.sh does not recognise). `cargo lambda watch` runs `cargo run --bin NAME` in the
# package it is given, and the workspace's root package is the library. Sets FUNCTION_PORT.
start_function() {
  local name=$1 fixed=$2 attempt port
  shift 2
  for attempt in 1 2 3; do
    port="${fixed:-$(free_port)}"
    spawn "lambda-$name" env "${@//\{port\}/$port}" cargo lambda watch --ignore-changes \
      --manifest-path "functions/$name/Cargo.toml" --invoke-address 127.0.0.1 --invoke-port "$port"
    WATCH_PIDS+=("$SPAWNED_PID:$(_start_time "$SPAWNED_PID")")
    if _wait_http "cargo lambda watch ($name)" "http://127.0.0.1:$port/" "$SPAWNED_PID" 60; then
      FUNCTION_PORT=$port
      log "$name: cargo lambda watch on 127.0.0.1:$port (pid $SPAWNED_PID, log ${SPAWNED_LOG#"$MISSIVE_ROOT"/})"
      return 0
    fi
    _stop "$SPAWNED_PID"
    _untrack "$SPAWNED_PID"
    unset 'WATCH_PIDS[${#WATCH_PIDS[@]}-1]'
    if [[ -n $fixed ]] || ! grep -qiE 'address (already )?in use|EADDRINUSE|os error 98' "$SPAWNED_LOG"; then
      break
    fi
    log "port $port was taken meanwhile: retrying $name on another port"
  done
  die "cargo lambda watch for $name did not start (log: $SPAWNED_LOG)"
}

# demo_http METHOD URL [BODY]: prints the HTTP status and the body; "-" as BODY reads a
# Twilio-signed form from the arguments after it (NAME=VALUE …), signed with TWILIO_AUTH_TOKEN.
demo_http() {
  "$(bootstrap_python)" - "$@" <<'PY'
import base64, hashlib, hmac, os, sys, urllib.error, urllib.parse, urllib.request
method, url, body = sys.argv[1], sys.argv[2], (sys.argv[3] if len(sys.argv) > 3 else None)
headers = {"Content-Type": "application/json"}
data = body.encode() if body not in (None, "-") else None
if body == "-":
    params = [tuple(p.split("=", 1)) for p in sys.argv[4:]]
    signed = url + "".join(k + v for k, v in sorted(set(params)))
    key = os.environ["TWILIO_AUTH_TOKEN"].encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded",
               "X-Twilio-Signature": base64.b64encode(hmac.new(key, signed.encode(), hashlib.sha1).digest()).decode()}
    data = urllib.parse.urlencode(params).encode()
request = urllib.request.Request(url, data=data, method=method, headers=headers)
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
try:
    with opener.open(request, timeout=900) as answer:
        print(answer.status, answer.read().decode(errors="replace")[:400])
except urllib.error.HTTPError as error:
    print(error.code, error.read().decode(errors="replace")[:400])
PY
}

invoke() { demo_http POST "http://127.0.0.1:$1/2015-03-31/functions/$2/invocations" "$3"; }

step "functions: twilio-webhook, send and retry-sweep under cargo lambda watch"
# The webhook first: the URL Twilio signs, and send's STATUS_CALLBACK_URL, contain its port.
# cargo lambda watch passes the webhook rawPath without /lambda-url/twilio-webhook and
# domainName "localhost": the URL Twilio signed is rebuilt from WEBHOOK_BASE_URL.
local_webhook_url='http://127.0.0.1:{port}/lambda-url/twilio-webhook'
start_function twilio-webhook "${DEMO_WEBHOOK_PORT:-}" "WEBHOOK_BASE_URL=${DEMO_PUBLIC_URL:-$local_webhook_url}"
WEBHOOK_PORT=$FUNCTION_PORT
WEBHOOK_LOCAL_URL="http://127.0.0.1:$WEBHOOK_PORT/lambda-url/twilio-webhook"
export WEBHOOK_BASE_URL="${DEMO_PUBLIC_URL:-$WEBHOOK_LOCAL_URL}"
if [[ $real_twilio == 1 && -z "${DEMO_PUBLIC_URL:-}" ]]; then
  log "no DEMO_PUBLIC_URL: Twilio cannot reach the webhook on loopback, so the report stops at 'sent'"
  unset STATUS_CALLBACK_URL
else
  export STATUS_CALLBACK_URL="$WEBHOOK_BASE_URL/twilio/status"
fi
start_function send ""
SEND_PORT=$FUNCTION_PORT
start_function retry-sweep ""
SWEEP_PORT=$FUNCTION_PORT
log "first invocations (each function starts; cargo compiles what changed)"
answer="$(invoke "$SEND_PORT" send '{"Records": []}')"
[[ $answer == 200* ]] || die "send did not answer: $answer (log: $RUN_DIR/$RUN_TAG-lambda-send.log)"
answer="$(invoke "$SWEEP_PORT" retry-sweep '{}')"
[[ $answer == 200* ]] || die "retry-sweep did not answer: $answer (log: $RUN_DIR/$RUN_TAG-lambda-retry-sweep.log)"
answer="$(demo_http GET "$WEBHOOK_LOCAL_URL/")"
[[ $answer == 404* ]] || die "twilio-webhook did not answer: $answer (log: $RUN_DIR/$RUN_TAG-lambda-twilio-webhook.log)"
log "send, retry-sweep and twilio-webhook are up"

spawn poller "$MISSIVE" local-poller --send-api "http://127.0.0.1:$SEND_PORT" \
  --sweep-api "http://127.0.0.1:$SWEEP_PORT" --sweep-every 5 --run-for $((TIMEOUT + 300))
log "local pipeline polling $SEND_QUEUE_URL (log: ${SPAWNED_LOG#"$MISSIVE_ROOT"/})"
functions_up=$SECONDS

# ---- the campaign -----------------------------------------------------------------------

if [[ $real_twilio == 0 && $CSV == "$SAMPLE_CSV" ]]; then
  step "a parent (p11) replies STOP on WhatsApp: Twilio → the webhook (signed)"
  answer="$(demo_http POST "$WEBHOOK_BASE_URL/twilio/inbound" - \
    MessageSid=SM0000000000000000000000000000d011 AccountSid="$TWILIO_ACCOUNT_SID" \
    From=whatsapp:+33612345611 To="$TWILIO_WHATSAPP_FROM" Body=STOP)"
  [[ $answer == 200* ]] || die "the webhook refused the reply: $answer"
  log "webhook answered: ${answer#200 }"
  run_tracked "$MISSIVE" consent show --phone +33612345611
fi

step "missive bulk $CSV --campaign $CAMPAIGN (the invalid row is listed and left out)"
var_args=()
for column in "${VAR_COLUMNS[@]}"; do var_args+=(--var-column "$column"); done
urgent_args=()
if [[ $sample_quiet == 1 ]]; then urgent_args=(--urgent); fi
run_tracked "$MISSIVE" bulk "$CSV" --campaign "$CAMPAIGN" --template "$TEMPLATE_SID" "${var_args[@]}" --skip-invalid \
  "${urgent_args[@]}" --as secretariat --description "Spring trip: the permission slip"
campaign_sent=$SECONDS

# The last lines of the pipeline's logs, for a run that went wrong.
log_tails() {
  local name
  for name in poller lambda-send lambda-twilio-webhook lambda-retry-sweep; do
    log "--- $RUN_TAG-$name.log"
    tail -n 15 "$RUN_DIR/$RUN_TAG-$name.log" >&2 || true
  done
}

step "missive report --campaign $CAMPAIGN --watch (until the queue is empty and nothing is in flight)"
rc=0
run_tracked "$MISSIVE" report --campaign "$CAMPAIGN" --watch --interval 1 --timeout "$TIMEOUT" || rc=$?
if [[ $rc -ne 0 ]]; then
  log "the campaign did not settle (exit $rc); the last lines of the logs:"
  log_tails
  exit 1
fi
settled=$SECONDS

# report_check EXPECTED…: reads `missive report --json` on stdin; prints how the counts
# compare with EXPECTED (STATUS=N …, every other status at 0) and succeeds when they match.
report_check() {
  "$(bootstrap_python)" -c '
import json, sys
report = json.load(sys.stdin)
want = {s: int(n) for s, n in (a.split("=") for a in sys.argv[1:])}
got = {s: n for s, n in report["by_status"].items() if n}
show = lambda counts: ", ".join(f"{s} {n}" for s, n in counts.items()) or "nothing"
if got == want:
    print(show(got))
else:
    items, in_flight = report["items"], report["in_flight"]
    print(f"expected {show(want)}; got {show(got)} ({items} items, {in_flight} in flight)")
    sys.exit(1)
' "$@"
}

# The sample campaign against the fake Twilio has one right answer: check it.
check_sample=0
if [[ $real_twilio == 0 && $CSV == "$SAMPLE_CSV" ]]; then
  check_sample=1
fi

# Delivery reports trail the sends by a few hundred milliseconds: wait (at most 15 s) until
# the sample's counts are reached, or no item is left at `sent`, when callbacks are expected.
if [[ -n "${STATUS_CALLBACK_URL:-}" ]]; then
  for _ in $(seq 30); do
    if [[ $check_sample == 1 ]]; then
      "$MISSIVE" report --campaign "$CAMPAIGN" --json | report_check "${SAMPLE_EXPECTED[@]}" >/dev/null && break
    else
      sent="$("$MISSIVE" report --campaign "$CAMPAIGN" --json |
        "$(bootstrap_python)" -c 'import json, sys; print(json.load(sys.stdin)["by_status"]["sent"])')" || sent=unknown
      [[ $sent == 0 ]] && break
    fi
    sleep 0.5
  done
fi

if [[ $check_sample == 1 ]]; then
  # Replies (DESIGN.md, "Conversations"): kept in the Inbox, attributed to the campaign's
  # message of each parent (by recency), the button's ack:yes recorded on p02's message.
  step "parents answer: p01 asks a question, p02 taps a quick-reply button (signed, to the webhook)"
  answer="$(demo_http POST "$WEBHOOK_BASE_URL/twilio/inbound" - \
    MessageSid=SM0000000000000000000000000000e001 AccountSid="$TWILIO_ACCOUNT_SID" \
    From=whatsapp:+33612345601 To="$TWILIO_WHATSAPP_FROM" NumMedia=0 ProfileName=Jean \
    "Body=Bonjour, à quelle heure part le car ?")"
  [[ $answer == 200* ]] || die "the webhook refused the question: $answer"
  answer="$(demo_http POST "$WEBHOOK_BASE_URL/twilio/inbound" - \
    MessageSid=SM0000000000000000000000000000e002 AccountSid="$TWILIO_ACCOUNT_SID" \
    From=whatsapp:+33612345602 To="$TWILIO_WHATSAPP_FROM" NumMedia=0 ProfileName=Marie \
    "Body=Oui, elle viendra" "ButtonText=Oui, elle viendra" ButtonPayload=ack:yes)"
  [[ $answer == 200* ]] || die "the webhook refused the button: $answer"
  step "missive replies --campaign $CAMPAIGN"
  run_tracked "$MISSIVE" replies --campaign "$CAMPAIGN"
  step "what staff were told (the SNS notices, read from the queue subscribed to the topic)"
  STAFF_MAILBOX_URL="$STAFF_MAILBOX_URL" "$VENV_DIR/bin/python" -c '
import json, os, sys, time
import boto3
sqs, url, seen, deadline = boto3.client("sqs"), os.environ["STAFF_MAILBOX_URL"], 0, time.time() + 15
while seen < 2 and time.time() < deadline:
    for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
        note = json.loads(m["Body"])
        print("--- " + note.get("Subject", "(no subject)"))
        print(note["Message"])
        seen += 1
sys.exit(0 if seen >= 2 else "expected 2 notices for the 2 replies, got %d" % seen)' ||
    die "the staff were not told of the replies"
fi

step "final report"
run_tracked "$MISSIVE" report --campaign "$CAMPAIGN"
step "missive failures --campaign $CAMPAIGN"
run_tracked "$MISSIVE" failures --campaign "$CAMPAIGN"
if [[ $CSV == "$SAMPLE_CSV" ]]; then
  step "missive status $CAMPAIGN:p03 (two 503s from Twilio, then through)"
  run_tracked "$MISSIVE" status "$CAMPAIGN:p03"
fi

# wait_for_status CAMPAIGN STATUS N [SECONDS]: until N of the campaign's messages have STATUS.
wait_for_status() {
  local campaign=$1 status=$2 want=$3 budget=${4:-30} started=$SECONDS got
  while ((SECONDS - started < budget)); do
    got="$("$MISSIVE" report --campaign "$campaign" --json |
      "$(bootstrap_python)" -c "import json, sys; print(json.load(sys.stdin)['by_status'].get('$status', 0))")" || got=0
    [[ $got -ge $want ]] && return 0
    sleep 1
  done
  die "campaign $campaign: $want message(s) $status expected within $budget s, got $got"
}

if [[ $sample_quiet == 1 ]]; then
  step "campaign control: a normal message during quiet hours waits for their end"
  run_tracked "$MISSIVE" send --to "06 12 34 56 01" --template "$TEMPLATE_SID" --var 1=Jean --var 2=Léo \
    --campaign evening-note --as secretariat --description "A normal message sent at night"
  wait_for_status evening-note scheduled 1
  run_tracked "$MISSIVE" report --campaign evening-note

  step "campaign control: a message for tomorrow 08:00 (missive send --at)"
  tomorrow="$("$(bootstrap_python)" -c '
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo
print((datetime.now(ZoneInfo("Europe/Paris")) + timedelta(days=1)).strftime("%Y-%m-%d 08:00"))')"
  run_tracked "$MISSIVE" send --to "06 12 34 56 02" --template "$TEMPLATE_SID" --var 1=Marie --var 2=Emma \
    --campaign canteen-menu --at "$tomorrow" --urgent --as secretariat
  wait_for_status canteen-menu scheduled 1

  step "campaign control: a campaign cancelled before its messages went (missive cancel)"
  soon="$(date -u -d '+25 seconds' +%Y-%m-%dT%H:%M:%SZ)"
  for parent in 01 02 03; do
    run_tracked "$MISSIVE" send --to "06 12 34 56 $parent" --template "$TEMPLATE_SID" --var 1=parent --var 2=child \
      --campaign wrong-date --at "$soon" --urgent --as secretariat --description "Sports day (wrong date)" >/dev/null
  done
  wait_for_status wrong-date scheduled 3
  run_tracked "$MISSIVE" cancel --campaign wrong-date --reason "the date in the text was wrong" --as head-teacher
  wait_for_status wrong-date cancelled 3 60
  run_tracked "$MISSIVE" campaign show wrong-date
  step "missive campaign list"
  run_tracked "$MISSIVE" campaign list
  step "missive history --phone 06 12 34 56 01 (a parent's messages across campaigns, and consent)"
  run_tracked "$MISSIVE" history --phone "06 12 34 56 01"
fi

step "the staff report page: what the head teacher and the secretary open"
REPORT_PAGE="$RUN_DIR/$CAMPAIGN-report.html"
PAPER_LIST="$RUN_DIR/$CAMPAIGN-families-not-reached.csv"
run_tracked "$MISSIVE" report --campaign "$CAMPAIGN" --html "$REPORT_PAGE" --csv "$PAPER_LIST" ||
  die "missive report --html failed"

step "done in $((SECONDS - demo_started)) s: build $((build_done - demo_started)) s, start-up $((functions_up - build_done)) s, enqueue $((campaign_sent - functions_up)) s, settle $((settled - campaign_sent)) s"
log "logs: $RUN_DIR/$RUN_TAG-*.log"

if [[ $check_sample == 1 ]]; then
  final="$("$MISSIVE" report --campaign "$CAMPAIGN" --json)" || die "missive report failed"
  if verdict="$(report_check "${SAMPLE_EXPECTED[@]}" <<<"$final")"; then
    log "the final report matches events/campaign/README.md: $verdict"
  else
    log "FAILED: the final report of the sample campaign does not match events/campaign/README.md:"
    log "  $verdict"
    log_tails
    exit 1
  fi
fi
log "the staff report page (open it in a browser): $REPORT_PAGE"
log "the families not reached (CSV): $PAPER_LIST"
log "stopping everything this demo started"

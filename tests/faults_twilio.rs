//! Fault campaign: Twilio misbehaving — 500, 503, 429 bursts (per recipient and
//! account-wide), 401, connections reset before and after the request was read, answers
//! slower than the timeout (after creating, and without creating), a body cut half way,
//! invalid JSON — scripted per recipient, then drawn at random.
//!
//! The `send` handler runs as the function builds it, fed from a moto queue by an event
//! source mapping, with the sweep every second. Every message must end `sent` or `failed`
//! with a reason; no message may meet more than `max_attempts` create requests that could
//! create (a 429 is refused before any processing and does not count, as DESIGN.md says);
//! no message may be created twice. `FAULTS_SEED` replays the random part.

mod common;
mod faults_support;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use fake_twilio::{Fault, Options};
use faults_support::*;
use lambda_harness::SqsEventSource;
use missive::adapters::provision::create_queues;
use missive::domain::status::Status;
use rand::{Rng, SeedableRng};

const MAX_ATTEMPTS: usize = 3;
/// Longer than the client's timeout (`TWILIO_TIMEOUT_MS` = 500).
const SLOW: Duration = Duration::from_millis(1200);

fn timeout_after_create() -> Fault {
    Fault::AcceptThenStall(SLOW)
}

fn timeout_without_create() -> Fault {
    Fault::StallThenReject(SLOW)
}

fn internal_error() -> Fault {
    Fault::error(500, 20500, "Internal Server Error")
}

/// What a scripted message must end as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// `sent`, after this many create requests that could create (429s not counted: the
    /// account-wide burst below may add some to any message whose own faults are spent).
    Sent(usize),
    /// `failed`, with a `last_error` starting so.
    Failed(&'static str),
}

fn scripted() -> Vec<(&'static str, Vec<Fault>, Expect)> {
    vec![
        ("500-once", vec![internal_error()], Expect::Sent(2)),
        (
            "500-thrice",
            vec![internal_error(), internal_error(), internal_error()],
            Expect::Failed("in doubt and not found"),
        ),
        ("503-once", vec![Fault::service_unavailable()], Expect::Sent(2)),
        (
            "503-thrice",
            vec![Fault::service_unavailable(), Fault::service_unavailable(), Fault::service_unavailable()],
            Expect::Failed("20503"),
        ),
        ("429-burst", vec![Fault::too_many_requests(None); 3], Expect::Sent(1)),
        ("429-then-500", vec![Fault::too_many_requests(None), internal_error()], Expect::Sent(2)),
        ("reset-before-read", vec![Fault::ResetBeforeAccept], Expect::Sent(2)),
        ("reset-after-create", vec![Fault::ResetAfterAccept], Expect::Sent(1)),
        ("slow-after-create", vec![timeout_after_create()], Expect::Sent(1)),
        ("slow-no-create", vec![timeout_without_create()], Expect::Sent(2)),
        ("broken-body", vec![Fault::BrokenBodyAfterAccept], Expect::Sent(1)),
        ("invalid-json", vec![Fault::InvalidJson], Expect::Sent(2)),
        ("invalid-json-thrice", vec![Fault::InvalidJson; 3], Expect::Failed("in doubt and not found")),
        ("permanent-21211", vec![Fault::error(400, 21211, "Invalid 'To' Phone Number")], Expect::Failed("21211")),
        ("unauthorized-once", vec![Fault::error(401, 20003, "Authenticate")], Expect::Sent(2)),
        (
            "mixed-exhausted",
            vec![Fault::ResetBeforeAccept, Fault::service_unavailable(), timeout_without_create()],
            Expect::Failed("in doubt and not found"),
        ),
        (
            "reset-after-create-then-more",
            vec![Fault::ResetAfterAccept, internal_error(), internal_error()],
            Expect::Sent(1),
        ),
    ]
}

/// One fault drawn at random (a 429 four times as rare as the rest).
fn random_fault(rng: &mut impl Rng) -> Fault {
    match rng.random_range(0..11) {
        0 => internal_error(),
        1 => Fault::service_unavailable(),
        2 => Fault::too_many_requests(None),
        3 => Fault::ResetBeforeAccept,
        4 => Fault::ResetAfterAccept,
        5 => timeout_after_create(),
        6 => timeout_without_create(),
        7 => Fault::InvalidJson,
        8 => Fault::BrokenBodyAfterAccept,
        9 => Fault::error(502, 0, "Bad Gateway"),
        _ => Fault::Delay(Duration::from_millis(rng.random_range(0..300))),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_twilio_every_message_ends_sent_or_failed_and_is_never_created_twice() {
    let deadline = campaign_deadline(120);
    let seed = seed("faults_twilio");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut env = TestEnv::with_twilio(Options { latency: Duration::from_millis(20), ..Options::default() }).await;
    let queues = create_queues(&env.sqs, &unique("twilio-faults"), 2).await.expect("queues");
    for (name, value) in [
        ("SEND_QUEUE_URL", queues.queue_url.as_str()),
        ("CONSENT_POLICY", "honour-optout"),
        ("SEND_CONCURRENCY", "16"),
        ("LEASE_SECONDS", "5"),
        ("RECONCILE_DELAY_SECONDS", "0"),
        ("BACKOFF_BASE_SECONDS", "0"),
        ("SWEEP_GRACE_SECONDS", "1"),
        ("CLOCK_SKEW_SECONDS", "0"),
        ("MAX_ATTEMPTS", "3"),
        ("TWILIO_TIMEOUT_MS", "500"),
    ] {
        env.set(name, Some(value));
    }

    let mut ids = Vec::new();
    let mut bodies = Vec::new();
    let mut expected = BTreeMap::new();
    let mut n = 0;
    let mut next_phone = || {
        n += 1;
        phone(n)
    };
    for (name, faults, expect) in scripted() {
        let id = format!("script-{name}");
        let to = next_phone();
        for fault in faults {
            env.twilio.push_fault(Some(&to), fault);
        }
        bodies.push(body_message(&id, &to, &format!("Message {id}")));
        expected.insert(id.clone(), expect);
        ids.push(id);
    }
    for i in 0..40 {
        let id = format!("random-{i:02}");
        let to = next_phone();
        for _ in 0..rng.random_range(0..=4) {
            env.twilio.push_fault(Some(&to), random_fault(&mut rng));
        }
        bodies.push(body_message(&id, &to, &format!("Message {id}")));
        ids.push(id);
    }
    // A burst of 429s for the whole account, met by whichever messages come first.
    for i in 0..20 {
        let id = format!("burst-{i:02}");
        bodies.push(body_message(&id, &next_phone(), &format!("Message {id}")));
        ids.push(id);
    }
    for _ in 0..12 {
        env.twilio.push_fault(None, Fault::too_many_requests(None));
    }

    enqueue(&env.sqs, &queues.queue_url, &bodies).await;
    let source = SqsEventSource::new(env.sqs.clone(), &queues.queue_url, 10).await.expect("event source");
    let handler = env.send_handler().await;
    let _sweep = SweepLoop::start(sweeper(&env, &queues.queue_url, 5), Duration::from_secs(1));
    let settled_in_time = drive_in_process(&env, &source, &handler, &ids, 2, deadline).await;

    let items = all_items(&env).await;
    let creates = env.twilio.creates();
    let by_id = creates_by_message(&creates);
    let mut problems = Vec::new();
    let mut outcomes: BTreeMap<&str, usize> = BTreeMap::new();
    for id in &ids {
        let Some(item) = items.get(id) else {
            problems.push(format!("{id}: no item"));
            continue;
        };
        let (requests, could_create, sids) = by_id.get(id).cloned().unwrap_or_default();
        let status = item.status.expect("status");
        *outcomes.entry(status.as_str()).or_default() += 1;
        let summary = format!(
            "{id}: {status} attempts {} throttled {} last_error {:?}; {requests} create requests, {could_create} could create, SIDs {sids:?}",
            item.attempts, item.throttled, item.last_error
        );
        match status {
            Status::Sent => {
                if sids.len() != 1 || item.twilio_sid.as_deref() != Some(sids[0].as_str()) {
                    problems.push(format!("sent but not created exactly once: {summary}"));
                }
            }
            Status::Failed => {
                if !sids.is_empty() {
                    problems.push(format!("failed although created: {summary}"));
                }
                if item.last_error.as_deref().is_none_or(str::is_empty) {
                    problems.push(format!("failed without a reason: {summary}"));
                }
            }
            _ => problems.push(format!("not final: {summary}")),
        }
        if could_create > MAX_ATTEMPTS {
            problems.push(format!("more than {MAX_ATTEMPTS} creates that could create: {summary}"));
        }
        if sids.len() > 1 {
            problems.push(format!("DUPLICATE: {summary}"));
        }
        if item.retry_due_at.is_some() || item.lease_owner.is_some() || item.extra_sids.is_some() {
            problems.push(format!("in-flight attributes left: {item:?}"));
        }
        match expected.get(id) {
            Some(Expect::Sent(n)) if status != Status::Sent || could_create != *n => {
                problems.push(format!("expected sent after {n} create requests that could create: {summary}"))
            }
            Some(Expect::Failed(reason))
                if status != Status::Failed || !item.last_error.as_deref().unwrap_or_default().contains(reason) =>
            {
                problems.push(format!("expected failed with {reason:?}: {summary}"))
            }
            _ => {}
        }
    }
    eprintln!("faults_twilio: {} messages, {} create requests, outcomes {outcomes:?}", ids.len(), creates.len());
    assert!(problems.is_empty(), "seed {seed}:\n{}", problems.join("\n"));
    assert!(settled_in_time, "the queue did not empty in time (seed {seed})");
}

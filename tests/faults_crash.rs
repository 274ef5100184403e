//! Fault campaign: the `send` process killed (SIGKILL) at random points.
//!
//! The real `send` binary runs under a loopback Lambda Runtime API, fed from a moto queue by
//! an event source mapping (receive → invoke → delete what succeeded; visibility timeout
//! 2 s). While 300 messages go through, the process is killed at random moments — during
//! its start, or at a random time into an invocation — and started again, as Lambda does.
//! The retry sweep runs every second. At the end: every `message_id` was created at Twilio
//! exactly once, and every item is `sent` with that SID.
//!
//! The binary: `target/<profile>/send` next to this test's executable, built by
//! `cargo build -p send` if it is missing or older than `libmissive.rlib` (see
//! `lambda_harness::workspace_bin`); `MISSIVE_BIN_DIR` points at other builds.
//! `FAULTS_SEED` replays a run.

mod common;
mod faults_support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use fake_twilio::Options;
use faults_support::*;
use lambda_harness::{FunctionSpec, Instance, SqsEventSource};
use missive::adapters::provision::create_queues;
use rand::{Rng, SeedableRng};

const MESSAGES: usize = 300;
const MAX_KILLS: usize = 25;
/// Execution environments running at once.
const ENVIRONMENTS: u64 = 2;
/// The whole campaign, start to end.
const CAMPAIGN_SECONDS: u64 = 300;

fn function(env: &TestEnv, program: std::path::PathBuf, log: &std::path::Path) -> FunctionSpec {
    let mut spec = FunctionSpec::new(program, "send").inherit_aws().log_to(log);
    for (name, value) in &env.vars {
        spec = spec.env(name, value.clone());
    }
    spec.env("RUST_LOG", "warn")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_crash_sigkill_at_random_points_sends_each_message_exactly_once() {
    let seed = seed("faults_crash");
    let program =
        lambda_harness::workspace_bin(env!("CARGO_MANIFEST_DIR"), "send", "send", "missive").expect("the send binary");
    // The budget counts from here: finding (or building) the binary is not the campaign.
    let deadline = campaign_deadline(CAMPAIGN_SECONDS);

    let mut env = TestEnv::with_twilio(Options { latency: Duration::from_millis(40), ..Options::default() }).await;
    let queues = create_queues(&env.sqs, &unique("crash"), 2).await.expect("queues");
    for (name, value) in [
        ("SEND_QUEUE_URL", queues.queue_url.as_str()),
        ("CONSENT_POLICY", "honour-optout"),
        ("SEND_CONCURRENCY", "10"),
        ("LEASE_SECONDS", "5"),
        ("RECONCILE_DELAY_SECONDS", "0"),
        ("BACKOFF_BASE_SECONDS", "0"),
        ("SWEEP_GRACE_SECONDS", "1"),
        ("CLOCK_SKEW_SECONDS", "0"),
        ("MAX_ATTEMPTS", "10"),
        ("TWILIO_TIMEOUT_MS", "2000"),
    ] {
        env.set(name, Some(value));
    }
    let log = std::env::temp_dir().join(format!("{}.log", unique("faults-crash-send")));
    let spec = function(&env, program, &log);

    let ids: Vec<String> = (0..MESSAGES).map(|i| format!("crash-{i:03}")).collect();
    let bodies: Vec<String> =
        ids.iter().enumerate().map(|(i, id)| body_message(id, &phone(i as u32), &format!("Message {id}"))).collect();
    enqueue(&env.sqs, &queues.queue_url, &bodies).await;

    let source = SqsEventSource::new(env.sqs.clone(), &queues.queue_url, 10).await.expect("event source");
    let sweep = SweepLoop::start(sweeper(&env, &queues.queue_url, 5), Duration::from_secs(1));

    // Two execution environments at once, as Lambda scales an SQS trigger; they share the
    // kill budget.
    let kills = Arc::new(AtomicUsize::new(0));
    let kills_in_init = Arc::new(AtomicUsize::new(0));
    let invocations = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..ENVIRONMENTS)
        .map(|worker| {
            let (source, spec) = (source.clone(), spec.clone());
            let (kills, kills_in_init, invocations, done) =
                (Arc::clone(&kills), Arc::clone(&kills_in_init), Arc::clone(&invocations), Arc::clone(&done));
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed.wrapping_add(worker));
            tokio::spawn(async move {
                let mut instance = Instance::start(&spec).await.expect("start send");
                while !done.load(Ordering::SeqCst) {
                    let messages = source.receive(Duration::from_millis(500)).await.expect("receive");
                    if messages.is_empty() {
                        continue;
                    }
                    invocations.fetch_add(1, Ordering::SeqCst);
                    let pending = instance.api().submit(&source.event(&messages), Duration::from_secs(60));
                    let kill = rng.random_bool(0.4)
                        && kills
                            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |k| (k < MAX_KILLS).then_some(k + 1))
                            .is_ok();
                    let response = if kill {
                        if rng.random_bool(0.15) {
                            // Killed while starting, or before it took the event.
                            tokio::time::sleep(Duration::from_millis(rng.random_range(0..30))).await;
                            kills_in_init.fetch_add(1, Ordering::SeqCst);
                        } else {
                            // Killed at a random moment of the invocation: reading, claiming,
                            // creating, recording, re-enqueueing.
                            let taken = instance.api().delivered() + 1;
                            let _ = tokio::time::timeout(Duration::from_secs(10), instance.api().wait_delivered(taken))
                                .await;
                            tokio::time::sleep(Duration::from_micros(rng.random_range(0..400_000))).await;
                        }
                        instance.kill().await;
                        let outcome = pending.wait(Duration::from_secs(1)).await;
                        instance = Instance::start(&spec).await.expect("restart send");
                        outcome
                    } else {
                        pending.wait(Duration::from_secs(61)).await
                    };
                    source.settle(&messages, response.as_ref().ok().map(|i| &i.response)).await;
                }
            })
        })
        .collect();

    let mut last_report = Instant::now();
    loop {
        if Instant::now() > deadline {
            done.store(true, Ordering::SeqCst);
            panic!("campaign not settled within {CAMPAIGN_SECONDS} s (seed {seed}); log {}", log.display());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        if settled(&source, &env, &ids).await {
            break;
        }
        if last_report.elapsed() > Duration::from_secs(10) {
            last_report = Instant::now();
            eprintln!("faults_crash: {}", progress(&source, &env).await);
        }
    }
    done.store(true, Ordering::SeqCst);
    for worker in workers {
        worker.await.expect("worker");
    }
    let (kills, kills_in_init, invocations) =
        (kills.load(Ordering::SeqCst), kills_in_init.load(Ordering::SeqCst), invocations.load(Ordering::SeqCst));

    let final_sweep =
        sweeper(&env, &queues.queue_url, 5).run(std::time::SystemTime::now() + Duration::from_secs(30)).await;
    assert_eq!(final_sweep.due, 0, "nothing left in flight: {final_sweep:?}");
    let items = all_items(&env).await;
    let creates = env.twilio.creates();
    eprintln!(
        "faults_crash: {MESSAGES} messages, {invocations} invocations, {kills} kills ({kills_in_init} at start), \
         {} create requests, {} sweep runs enqueued {}",
        creates.len(),
        sweep.runs(),
        sweep.enqueued()
    );
    assert!(kills >= MAX_KILLS / 2, "the campaign killed too little to mean anything: {kills}");
    assert_sent_exactly_once(&ids, &items, &creates);
    assert_eq!(env.twilio.messages().len(), MESSAGES, "Twilio holds one message per message_id");
    let _ = std::fs::remove_file(&log);
}

/// Queue depth and items by status, for the log of a long campaign.
async fn progress(source: &SqsEventSource, env: &TestEnv) -> String {
    let mut by_status = std::collections::BTreeMap::new();
    for item in all_items(env).await.values() {
        *by_status.entry(item.status.map(|s| s.as_str()).unwrap_or("?")).or_insert(0) += 1;
    }
    format!("queue (visible, in flight, delayed) {:?}, items {by_status:?}", source.depth().await)
}

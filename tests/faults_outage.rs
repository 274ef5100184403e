//! Fault campaign: the AWS emulator unreachable in the middle of a batch, then back.
//!
//! The `send` handler (and the sweep) reach moto through a loopback TCP proxy; the event
//! source mapping, which is AWS's side, reaches it directly. While batches are in progress
//! the proxy first refuses every connection (accepted then reset, live ones broken) for
//! 3 s, lets traffic through, then black-holes it (accepted, never answered) for 3 s — moto
//! itself keeps running, because it keeps no state across a restart. The messages whose
//! consent read, claim or outcome write failed come back — from the queue (batch item
//! failures, visibility timeout) or through the sweep (a claim without an outcome) — and
//! every one ends `sent`, created once at Twilio.

mod common;
mod faults_support;

use std::time::{Duration, Instant};

use common::*;
use fake_twilio::Options;
use faults_support::*;
use lambda_harness::{Mode, SqsEventSource, TcpProxy};
use missive::adapters::provision::create_queues;

const MESSAGES: usize = 120;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_outage_of_the_emulator_mid_batch_every_message_comes_back_and_is_sent_once() {
    let deadline = campaign_deadline(120);
    let mut env = TestEnv::with_twilio(Options { latency: Duration::from_millis(60), ..Options::default() }).await;
    let queues = create_queues(&env.sqs, &unique("outage"), 2).await.expect("queues");
    for (name, value) in [
        ("SEND_QUEUE_URL", queues.queue_url.as_str()),
        ("CONSENT_POLICY", "honour-optout"),
        ("SEND_CONCURRENCY", "8"),
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
    let moto = std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL");
    let proxy = TcpProxy::in_front_of(&moto).await.expect("proxy");
    // The function's view of AWS: everything through the proxy. Calls that hang (the
    // black-hole) end when the proxy breaks the connections as the outage ends.
    let function_aws =
        aws_config::defaults(aws_config::BehaviorVersion::latest()).endpoint_url(proxy.url()).load().await;
    let handler = missive::wiring::send_handler(env.send_config(), &function_aws).await.expect("send handler");
    let mut sweep_handler = sweeper(&env, &queues.queue_url, 5);
    let sweep_via_proxy = missive::wiring::sweep_handler(sweep_handler.config.clone(), &function_aws);
    sweep_handler.index = sweep_via_proxy.index;
    sweep_handler.queue = sweep_via_proxy.queue;

    let ids: Vec<String> = (0..MESSAGES).map(|i| format!("outage-{i:03}")).collect();
    let bodies: Vec<String> =
        ids.iter().enumerate().map(|(i, id)| body_message(id, &phone(i as u32), &format!("Message {id}"))).collect();
    enqueue(&env.sqs, &queues.queue_url, &bodies).await;
    let mut source = SqsEventSource::new(env.sqs.clone(), &queues.queue_url, 20).await.expect("event source");
    source.window = Duration::from_millis(100);
    let _sweep = SweepLoop::start(sweep_handler, Duration::from_secs(1));

    let outages = async {
        let mut seen = Vec::new();
        for (mode, after_creates) in [(Mode::Refuse, 15), (Mode::Blackhole, 60)] {
            // Start the outage once Twilio has seen that many creates: batches are running.
            while env.twilio.creates().len() < after_creates && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let before = proxy.counts().values().sum::<u64>();
            proxy.set_mode(mode);
            tokio::time::sleep(Duration::from_secs(3)).await;
            proxy.set_mode(Mode::Pass);
            seen.push((mode, before, env.twilio.creates().len()));
        }
        seen
    };
    let (settled_in_time, seen) = tokio::join!(drive_in_process(&env, &source, &handler, &ids, 2, deadline), outages);

    let items = all_items(&env).await;
    let creates = env.twilio.creates();
    let returned = creates_by_message(&creates).values().filter(|(requests, _, _)| *requests > 1).count();
    eprintln!(
        "faults_outage: {MESSAGES} messages, outages {seen:?}, {} create requests ({returned} messages met more than one create request), \
         requests through the proxy {:?}",
        creates.len(),
        proxy.counts()
    );
    assert_sent_exactly_once(&ids, &items, &creates);
    assert!(settled_in_time, "the queue did not empty in time");
    let retried = items.values().filter(|i| i.attempts > 1).count();
    eprintln!("faults_outage: {retried} messages needed more than one attempt");
}

//! What the fault campaigns share: the pipeline as it runs on AWS — an SQS queue with a
//! short visibility timeout, an event source mapping (receive → invoke → delete what
//! succeeded), the `send` handler (in process, or the real binary under a loopback Lambda
//! Runtime API), the retry sweep in a loop — and the checks of the promise: every
//! `message_id` created at Twilio at most once, every message final.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use fake_twilio::CreateRecord;
use lambda_harness::SqsEventSource;
use missive::config::SweepConfig;
use missive::domain::status::Status;
use missive::handlers::sweep::{SweepHandler, SweepReport};
use missive::ports::LogItem;

use crate::common::TestEnv;

/// A hard bound on every campaign: a hung campaign fails instead of holding CI.
pub fn campaign_deadline(seconds: u64) -> Instant {
    Instant::now() + Duration::from_secs(seconds)
}

/// A seed from `FAULTS_SEED`, or a fresh one; printed so that a failure can be replayed.
pub fn seed(campaign: &str) -> u64 {
    let seed = std::env::var("FAULTS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random);
    eprintln!("{campaign}: FAULTS_SEED={seed}");
    seed
}

/// Sends bodies to a queue, 10 per call.
pub async fn enqueue(sqs: &aws_sdk_sqs::Client, queue_url: &str, bodies: &[String]) {
    for chunk in bodies.chunks(10) {
        let entries: Vec<SendMessageBatchRequestEntry> = chunk
            .iter()
            .enumerate()
            .map(|(i, body)| {
                SendMessageBatchRequestEntry::builder().id(i.to_string()).message_body(body).build().unwrap()
            })
            .collect();
        let output = sqs
            .send_message_batch()
            .queue_url(queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .expect("SendMessageBatch");
        assert!(output.failed.is_empty(), "{:?}", output.failed);
    }
}

/// Every item of the test's own table (a Scan of a table only this test uses).
pub async fn all_items(env: &TestEnv) -> HashMap<String, LogItem> {
    let mut items = HashMap::new();
    let mut start = None;
    loop {
        let output = env
            .dynamo
            .scan()
            .table_name(&env.log_table)
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("Scan");
        for raw in output.items.unwrap_or_default() {
            let item: LogItem = serde_dynamo::aws_sdk_dynamodb_1::from_item(raw).expect("a MessageLog item");
            items.insert(item.message_id.clone(), item);
        }
        match output.last_evaluated_key {
            Some(key) if !key.is_empty() => start = Some(key),
            _ => return items,
        }
    }
}

/// The `message_id` a create was made for (from its `StatusCallback` URL).
pub fn create_message_id(create: &CreateRecord) -> Option<String> {
    let callback = url::Url::parse(create.param("StatusCallback")?).ok()?;
    let id = callback.query_pairs().find(|(k, _)| k == "message_id").map(|(_, v)| v.into_owned());
    id
}

/// Create requests per message_id: (all that reached the server, those answered other than
/// 429 — the ones that could create —, the SIDs created).
pub fn creates_by_message(creates: &[CreateRecord]) -> BTreeMap<String, (usize, usize, Vec<String>)> {
    let mut by_id: BTreeMap<String, (usize, usize, Vec<String>)> = BTreeMap::new();
    for create in creates {
        let Some(id) = create_message_id(create) else { continue };
        let entry = by_id.entry(id).or_default();
        entry.0 += 1;
        if create.status != Some(429) {
            entry.1 += 1;
        }
        if let Some(sid) = &create.sid {
            entry.2.push(sid.clone());
        }
    }
    by_id
}

/// The promise, for messages that must all end `sent`: each created exactly once at Twilio,
/// the item `sent` with that SID, nothing in flight, no duplicate SID recorded.
pub fn assert_sent_exactly_once(ids: &[String], items: &HashMap<String, LogItem>, creates: &[CreateRecord]) {
    let by_id = creates_by_message(creates);
    let mut problems = Vec::new();
    for id in ids {
        let sids = by_id.get(id).map(|(_, _, sids)| sids.clone()).unwrap_or_default();
        let item = items.get(id);
        match (item, sids.as_slice()) {
            (None, _) => problems.push(format!("{id}: lost (no item), {} created", sids.len())),
            (Some(item), [sid]) => {
                if item.status != Some(Status::Sent) || item.twilio_sid.as_deref() != Some(sid.as_str()) {
                    problems.push(format!(
                        "{id}: created once as {sid} but the item is {:?} / {:?}",
                        item.status, item.twilio_sid
                    ));
                }
                if item.extra_sids.is_some() || item.retry_due_at.is_some() || item.lease_owner.is_some() {
                    problems.push(format!("{id}: {item:?}"));
                }
            }
            (Some(item), []) => {
                problems.push(format!("{id}: never created; item {:?} {:?}", item.status, item.last_error))
            }
            (Some(_), many) => problems.push(format!("{id}: DUPLICATE, created {} times: {many:?}", many.len())),
        }
    }
    assert!(
        problems.is_empty(),
        "{} of {} messages break the promise:\n{}",
        problems.len(),
        ids.len(),
        problems.join("\n")
    );
}

/// The retry sweep as the `retry-sweep` function builds it, on the test's table and queue.
pub fn sweeper(env: &TestEnv, queue_url: &str, reschedule_seconds: i64) -> SweepHandler {
    let config = SweepConfig {
        message_log_table: env.log_table.clone(),
        send_queue_url: queue_url.to_owned(),
        reschedule_seconds,
        margin: Duration::from_secs(1),
    };
    missive::wiring::sweep_handler(config, &env.aws)
}

/// Runs the sweep every `period` until dropped (as EventBridge would, much faster).
pub struct SweepLoop {
    task: tokio::task::JoinHandle<()>,
    reports: Arc<std::sync::Mutex<Vec<SweepReport>>>,
}

impl SweepLoop {
    pub fn start(handler: SweepHandler, period: Duration) -> SweepLoop {
        let reports = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = Arc::clone(&reports);
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(period).await;
                let report = handler.run(SystemTime::now() + Duration::from_secs(30)).await;
                sink.lock().unwrap().push(report);
            }
        });
        SweepLoop { task, reports }
    }

    /// Items enqueued by the sweep so far.
    pub fn enqueued(&self) -> u64 {
        self.reports.lock().unwrap().iter().map(|r| r.enqueued).sum()
    }

    pub fn runs(&self) -> usize {
        self.reports.lock().unwrap().len()
    }
}

impl Drop for SweepLoop {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// True when the queue holds nothing (visible, in flight or delayed) and every one of `ids`
/// has a final status.
pub async fn settled(source: &SqsEventSource, env: &TestEnv, ids: &[String]) -> bool {
    if source.depth().await.map(|d| d != (0, 0, 0)).unwrap_or(true) {
        return false;
    }
    let items = all_items(env).await;
    ids.iter().all(|id| items.get(id).and_then(|i| i.status).is_some_and(|s| s.is_final()))
}

/// Invokes the `send` handler in process with an event as Lambda delivers it (JSON), and
/// answers its JSON response: the same path as the binary's, without the process.
pub async fn invoke_in_process(
    handler: &missive::handlers::send::SendHandler,
    event: serde_json::Value,
) -> Result<serde_json::Value, String> {
    let event: aws_lambda_events::event::sqs::SqsEvent =
        serde_json::from_value(event).map_err(|e| format!("not an SqsEvent: {e}"))?;
    let response = handler.handle(event, SystemTime::now() + Duration::from_secs(60)).await;
    serde_json::to_value(response).map_err(|e| e.to_string())
}

/// Runs `pumps` event source pollers over the in-process handler, with the sweep every
/// second, until every one of `ids` is final and the queue is empty, or `deadline`.
/// Answers whether it settled.
pub async fn drive_in_process(
    env: &TestEnv,
    source: &SqsEventSource,
    handler: &missive::handlers::send::SendHandler,
    ids: &[String],
    pumps: usize,
    deadline: Instant,
) -> bool {
    use std::sync::atomic::{AtomicBool, Ordering};
    let done = AtomicBool::new(false);
    let pump = || async {
        while !done.load(Ordering::SeqCst) {
            let round = source.run_once(Duration::from_millis(300), |event| invoke_in_process(handler, event)).await;
            if let Err(err) = round {
                eprintln!("event source: {err}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let monitor = async {
        let settled_ok = loop {
            if Instant::now() > deadline {
                break false;
            }
            tokio::time::sleep(Duration::from_millis(700)).await;
            if settled(source, env, ids).await {
                break true;
            }
        };
        done.store(true, Ordering::SeqCst);
        settled_ok
    };
    let (settled_ok, _) = tokio::join!(monitor, futures::future::join_all((0..pumps).map(|_| pump())));
    settled_ok
}

//! The retry sweep against moto: what it reads, what it takes, what it enqueues.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use common::*;
use fake_twilio::Fault;
use futures::StreamExt;
use missive::adapters::dynamo::RetryDueIndex;
use missive::adapters::dynamo::{n, s, DynamoMessageLog};
use missive::config::SweepConfig;
use missive::domain::item::retry_shard;
use missive::domain::status::Status;
use missive::handlers::sweep::{SweepHandler, SweepReport};
use missive::ports::{Clock, DueCursor, LogItem, RetryIndex, StoreError, SweepAction};
use missive::schema::RETRY_SHARDS;

/// The machine's clock, shifted: a sweep "later" without waiting.
struct Shifted(i64);

impl Clock for Shifted {
    fn now_ms(&self) -> i64 {
        chrono::Utc::now().timestamp_millis() + self.0 * 1000
    }
}

fn sweeper(env: &TestEnv, shift: i64) -> SweepHandler {
    sweeper_with(env, &env.queue_url, shift, env.dynamo.clone())
}

fn sweeper_with(env: &TestEnv, queue_url: &str, shift: i64, dynamo: aws_sdk_dynamodb::Client) -> SweepHandler {
    let config = SweepConfig {
        message_log_table: env.log_table.clone(),
        send_queue_url: queue_url.to_owned(),
        reschedule_seconds: 300,
        margin: Duration::from_secs(5),
    };
    let mut handler = missive::wiring::sweep_handler(config, &env.aws);
    handler.index = Arc::new(RetryDueIndex::new(DynamoMessageLog::new(dynamo, &env.log_table)));
    handler.clock = Arc::new(Shifted(shift));
    handler
}

async fn sweep(handler: &SweepHandler) -> SweepReport {
    handler.run(handler.clock.deadline_in(Duration::from_secs(60))).await
}

/// Writes an in-flight item as `send` leaves it.
async fn in_flight(env: &TestEnv, id: &str, status: Status, retry_due_at: i64, lease: Option<(&str, i64)>) -> String {
    let now = chrono::Utc::now().timestamp();
    let request = body_message(id, PHONE, &format!("message {id}"));
    let mut put = env
        .dynamo
        .put_item()
        .table_name(&env.log_table)
        .item("message_id", s(id))
        .item("status", s(status.as_str()))
        .item("phone", s(PHONE))
        .item("request", s(&request))
        .item("attempts", n(1))
        .item("max_attempts", n(3))
        .item("created_at", n(now - 60))
        .item("updated_at", n(now - 60))
        .item("attempt_started_at", n(now - 60))
        .item("next_attempt_at", n(retry_due_at - 120))
        .item("retry_shard", n(retry_shard(id)))
        .item("retry_due_at", n(retry_due_at))
        .item("expires_at", n(now + 86_400));
    if let Some((owner, until)) = lease {
        put = put.item("lease_owner", s(owner)).item("lease_until", n(until));
    }
    put.send().await.expect("PutItem");
    request
}

#[tokio::test]
async fn due_items_are_enqueued_once_and_stay_findable() {
    let env = TestEnv::start().await;
    let now = chrono::Utc::now().timestamp();
    let due_a = in_flight(&env, "due-a", Status::Retrying, now - 10, None).await;
    let due_b = in_flight(&env, "due-b", Status::InDoubt, now - 500, None).await;
    in_flight(&env, "later", Status::Retrying, now + 3600, None).await;

    let report = sweep(&sweeper(&env, 0)).await;
    assert_eq!((report.due, report.enqueued, report.skipped, report.enqueue_failed), (2, 2, 0, 0));
    assert!(!report.left_for_next_run);
    let mut enqueued = env.requeued().await;
    enqueued.sort();
    let mut expected = vec![due_a, due_b];
    expected.sort();
    assert_eq!(enqueued, expected, "the original requests, verbatim, once each");

    for id in ["due-a", "due-b"] {
        let item = env.item(id).await;
        assert!(item.retry_due_at.unwrap() >= now + 300, "pushed forward, still in the index: {item:?}");
        assert!(item.status.unwrap().is_in_flight());
    }
    let later = env.item("later").await;
    assert_eq!(later.retry_due_at, Some(now + 3600), "an item not yet due is not touched");
    assert_eq!(later.updated_at, Some(now - 60));

    let again = sweep(&sweeper(&env, 0)).await;
    assert_eq!((again.due, again.enqueued), (0, 0), "nothing is due twice within the reschedule time");
}

/// The `retry-due` index, with every page read held until `readers` pages have been read:
/// sweeps sharing it have all read their shards before any of them takes an item.
struct ReadTogether {
    index: RetryDueIndex,
    barrier: tokio::sync::Barrier,
}

#[async_trait::async_trait]
impl RetryIndex for ReadTogether {
    async fn due_page(
        &self,
        shard: u32,
        now: i64,
        after: Option<DueCursor>,
    ) -> Result<(Vec<LogItem>, Option<DueCursor>), StoreError> {
        let page = self.index.due_page(shard, now, after).await;
        self.barrier.wait().await;
        page
    }

    async fn sweep_take(&self, item: &LogItem, action: SweepAction, now: i64, at: i64) -> Result<bool, StoreError> {
        self.index.sweep_take(item, action, now, at).await
    }
}

#[tokio::test]
async fn two_sweeps_at_once_enqueue_each_item_once() {
    let env = TestEnv::start().await;
    let now = chrono::Utc::now().timestamp();
    for i in 0..30 {
        in_flight(&env, &format!("race-{i}"), Status::Retrying, now - 5, None).await;
    }
    // Both sweeps read every shard (one page each: 30 items) before either takes anything, so
    // they race for every item.
    let index = Arc::new(ReadTogether {
        index: RetryDueIndex::new(DynamoMessageLog::new(env.dynamo.clone(), &env.log_table)),
        barrier: tokio::sync::Barrier::new(2 * RETRY_SHARDS as usize),
    });
    let (mut a, mut b) = (sweeper(&env, 0), sweeper(&env, 0));
    a.index = index.clone();
    b.index = index;
    let (ra, rb) = tokio::join!(sweep(&a), sweep(&b));
    assert_eq!((ra.due, rb.due), (30, 30), "both read every item: {ra:?} {rb:?}");
    assert_eq!(ra.enqueued + rb.enqueued, 30, "{ra:?} {rb:?}");
    assert_eq!(ra.skipped + rb.skipped, 30, "each item's second take lost its condition: {ra:?} {rb:?}");
    assert_eq!((ra.errors, rb.errors), (0, 0));
    let enqueued = env.requeued().await;
    assert_eq!(enqueued.len(), 30);
    let distinct: std::collections::HashSet<_> = enqueued.iter().collect();
    assert_eq!(distinct.len(), 30, "no item enqueued twice");
}

#[tokio::test]
async fn a_stale_sending_item_is_made_in_doubt_and_reconciled_not_resent() {
    let env = TestEnv::start().await;
    env.opt_in(&[PHONE]).await;
    let now = chrono::Utc::now().timestamp();
    let request = in_flight(&env, "stale-1", Status::Sending, now - 1, Some(("dead-invocation", now - 1))).await;
    in_flight(&env, "live-1", Status::Sending, now - 1, Some(("live-invocation", now + 100))).await;
    // The dead invocation's create reached Twilio before it died.
    env.create_at_twilio(PHONE, "message stale-1").await;

    let report = sweep(&sweeper(&env, 0)).await;
    assert_eq!((report.due, report.enqueued, report.skipped), (2, 1, 1), "{report:?}");
    let stale = env.item("stale-1").await;
    assert_eq!(stale.status, Some(Status::InDoubt));
    assert!(stale.lease_owner.is_none() && stale.next_attempt_at.is_some());
    let live = env.item("live-1").await;
    assert_eq!((live.status, live.retry_due_at), (Some(Status::Sending), Some(now + 100)), "follows the live lease");

    let enqueued = env.requeued().await;
    assert_eq!(enqueued, vec![request]);
    let handler = env.send_handler().await;
    env.run_send(&handler, &enqueued).await;
    let stale = env.item("stale-1").await;
    assert_eq!((stale.status, stale.attempts), (Some(Status::Sent), 1));
    assert_eq!(env.twilio.messages().len(), 1, "reconciled, not sent twice");
    assert!(env.twilio.creates().len() == 1);
}

#[tokio::test]
async fn an_item_whose_enqueue_fails_comes_due_again() {
    let env = TestEnv::start().await;
    let now = chrono::Utc::now().timestamp();
    let request = in_flight(&env, "lost-1", Status::Retrying, now - 1, None).await;
    let missing_queue = format!("{}-missing", env.queue_url);
    let report = sweep(&sweeper_with(&env, &missing_queue, 0, env.dynamo.clone())).await;
    assert_eq!((report.due, report.enqueued, report.enqueue_failed), (1, 0, 1));

    let next_run = sweep(&sweeper(&env, 600)).await;
    assert_eq!((next_run.due, next_run.enqueued), (1, 1), "due again at the next run");
    assert_eq!(env.requeued().await, vec![request]);
}

/// `n` message ids that fall in one shard of `retry-due`.
fn ids_in_one_shard(prefix: &str, n: usize) -> Vec<String> {
    let shard = retry_shard(&format!("{prefix}-0"));
    (0..).map(|i| format!("{prefix}-{i}")).filter(|id| retry_shard(id) == shard).take(n).collect()
}

#[tokio::test]
async fn small_pages_reach_every_due_item_of_a_shard_once() {
    let env = TestEnv::start().await;
    let now = chrono::Utc::now().timestamp();
    let ids = ids_in_one_shard("page", 10);
    let mut expected = Vec::new();
    for id in &ids {
        // The same due time for all: the cursor must tell them apart by message_id.
        expected.push(in_flight(&env, id, Status::Retrying, now - 5, None).await);
    }
    let counter = Counter::default();
    let counted = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&env.aws).interceptor(counter.clone()).build(),
    );
    let mut handler = sweeper(&env, 0);
    handler.index = Arc::new(RetryDueIndex::new(DynamoMessageLog::new(counted, &env.log_table)).with_page_size(3));
    let report = sweep(&handler).await;
    assert_eq!((report.due, report.enqueued, report.skipped, report.errors), (10, 10, 0, 0), "{report:?}");
    assert!(!report.left_for_next_run);
    let queries = counter.operations.lock().unwrap().get("DynamoDB_20120810.Query").copied();
    assert_eq!(queries, Some(15 + 4), "one page for each empty shard, pages of 3, 3, 3, 1 for this one");
    let mut enqueued = env.requeued().await;
    enqueued.sort();
    expected.sort();
    assert_eq!(enqueued, expected, "every item once");
}

#[tokio::test]
async fn a_deadline_inside_the_margin_takes_nothing_and_leaves_the_rest() {
    let env = TestEnv::start().await;
    let now = chrono::Utc::now().timestamp();
    let ids = ["budget-a", "budget-b", "budget-c"];
    for id in ids {
        in_flight(&env, id, Status::Retrying, now - 5, None).await;
    }
    // SWEEP_MARGIN_SECONDS is 5: a deadline 2 s away is already spent.
    let handler = sweeper(&env, 0);
    let report = handler.run(SystemTime::now() + Duration::from_secs(2)).await;
    assert!(report.left_for_next_run, "{report:?}");
    assert_eq!((report.due, report.enqueued, report.skipped, report.errors), (0, 0, 0, 0));
    for id in ids {
        assert_eq!(env.item(id).await.retry_due_at, Some(now - 5), "{id} untouched, still due");
    }
    assert!(env.requeued().await.is_empty());

    let next = sweep(&handler).await;
    assert_eq!((next.due, next.enqueued, next.left_for_next_run), (3, 3, false), "the next run does it");
}

/// The `retry-due` index whose takes all fail, as in an outage between the Query and the takes.
struct TakesFail(RetryDueIndex);

#[async_trait::async_trait]
impl RetryIndex for TakesFail {
    async fn due_page(
        &self,
        shard: u32,
        now: i64,
        after: Option<DueCursor>,
    ) -> Result<(Vec<LogItem>, Option<DueCursor>), StoreError> {
        self.0.due_page(shard, now, after).await
    }

    async fn sweep_take(&self, _: &LogItem, _: SweepAction, _: i64, _: i64) -> Result<bool, StoreError> {
        Err(StoreError::new("UpdateItem MessageLog", "connection refused"))
    }
}

#[tokio::test]
async fn store_errors_are_counted_as_errors_not_skips_nor_the_time_budget() {
    let env = TestEnv::start().await;
    let now = chrono::Utc::now().timestamp();
    in_flight(&env, "err-a", Status::Retrying, now - 5, None).await;
    in_flight(&env, "err-b", Status::InDoubt, now - 5, None).await;

    // Every Query fails (no such table): 16 errors, and not the time budget.
    let mut unreadable = sweeper(&env, 0);
    unreadable.index = Arc::new(RetryDueIndex::new(DynamoMessageLog::new(env.dynamo.clone(), unique("NoSuchTable"))));
    let report = sweep(&unreadable).await;
    assert_eq!((report.due, report.errors, report.left_for_next_run), (0, 16, false), "{report:?}");
    assert!(report.into_result().is_err(), "the Lambda reports a run with store errors");

    // Every take fails: errors, not lost conditions.
    let mut untakeable = sweeper(&env, 0);
    untakeable.index =
        Arc::new(TakesFail(RetryDueIndex::new(DynamoMessageLog::new(env.dynamo.clone(), &env.log_table))));
    let report = sweep(&untakeable).await;
    assert_eq!((report.due, report.enqueued, report.skipped, report.errors), (2, 0, 0, 2), "{report:?}");
    assert!(!report.left_for_next_run);
    assert!(env.requeued().await.is_empty());
    for id in ["err-a", "err-b"] {
        assert_eq!(env.item(id).await.retry_due_at, Some(now - 5), "{id} still due");
    }
    let next = sweep(&sweeper(&env, 0)).await;
    assert_eq!((next.due, next.enqueued, next.errors), (2, 2, 0));
    assert_eq!(next.into_result().map(|r| r.enqueued), Ok(2));
}

/// Counts DynamoDB requests by operation, and the items Query read, on one client.
#[derive(Debug, Default, Clone)]
struct Counter {
    operations: Arc<Mutex<HashMap<String, u64>>>,
    scanned: Arc<Mutex<u64>>,
}

impl Intercept for Counter {
    fn name(&self) -> &'static str {
        "request counter"
    }

    fn read_before_transmit(
        &self,
        context: &aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        let target = context.request().headers().get("x-amz-target").unwrap_or("?").to_owned();
        *self.operations.lock().unwrap().entry(target).or_default() += 1;
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        context: &aws_sdk_dynamodb::config::interceptors::AfterDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        if let Ok(output) = context.output_or_error() {
            if let Some(query) = output.downcast_ref::<aws_sdk_dynamodb::operation::query::QueryOutput>() {
                *self.scanned.lock().unwrap() += query.scanned_count as u64;
            }
        }
        Ok(())
    }
}

#[tokio::test]
async fn the_sweep_reads_only_due_items_and_never_scans() {
    let env = TestEnv::start().await;
    let now = chrono::Utc::now().timestamp();
    let total = 20_000;
    let due = 50;
    let not_yet_due = 200;
    let items: Vec<HashMap<String, AttributeValue>> = (0..total)
        .map(|i| {
            let id = format!("bulk-{i:05}");
            let mut item = HashMap::from([
                ("message_id".to_owned(), s(&id)),
                ("phone".to_owned(), s(PHONE)),
                ("created_at".to_owned(), n(now - 3600)),
                ("request".to_owned(), s(body_message(&id, PHONE, "x"))),
            ]);
            let (status, retry_due_at) = if i < due {
                (Status::Retrying, Some(now - 30))
            } else if i < due + not_yet_due {
                (Status::Retrying, Some(now + 3600))
            } else {
                (Status::Sent, None)
            };
            item.insert("status".into(), s(status.as_str()));
            if let Some(at) = retry_due_at {
                item.insert("retry_shard".into(), n(retry_shard(&id)));
                item.insert("retry_due_at".into(), n(at));
            }
            item
        })
        .collect();
    let writes = items.chunks(25).map(|chunk| {
        let requests: Vec<WriteRequest> = chunk
            .iter()
            .map(|item| {
                WriteRequest::builder()
                    .put_request(PutRequest::builder().set_item(Some(item.clone())).build().unwrap())
                    .build()
            })
            .collect();
        let request = env.dynamo.batch_write_item().request_items(&env.log_table, requests);
        async move { request.send().await.expect("BatchWriteItem") }
    });
    futures::stream::iter(writes)
        .buffer_unordered(8)
        .for_each(|output| async move {
            assert!(output.unprocessed_items.unwrap_or_default().is_empty());
        })
        .await;

    let counter = Counter::default();
    let counted = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&env.aws).interceptor(counter.clone()).build(),
    );
    let report = sweep(&sweeper_with(&env, &env.queue_url, 0, counted)).await;
    assert_eq!((report.due, report.enqueued), (due as u64, due as u64));
    let operations = counter.operations.lock().unwrap().clone();
    assert!(!operations.keys().any(|op| op.ends_with(".Scan")), "no Scan: {operations:?}");
    assert_eq!(operations.get("DynamoDB_20120810.Query"), Some(&16), "one page per shard: {operations:?}");
    assert_eq!(operations.get("DynamoDB_20120810.UpdateItem"), Some(&(due as u64)));
    assert_eq!(operations.len(), 2, "{operations:?}");
    assert_eq!(*counter.scanned.lock().unwrap(), due as u64, "the index read only the due items");
    assert_eq!(env.requeued().await.len(), due);
}

#[tokio::test]
async fn two_503s_are_retried_by_send_and_by_the_sweep_then_sent_once() {
    let env = TestEnv::start().await;
    env.opt_in(&[PHONE]).await;
    env.twilio.push_fault(Some(PHONE), Fault::service_unavailable());
    env.twilio.push_fault(Some(PHONE), Fault::service_unavailable());
    let handler = env.send_handler().await;
    let body = body_message("e2e-1", PHONE, "Conseil de classe");

    env.run_send(&handler, std::slice::from_ref(&body)).await;
    let retry = env.requeued().await;
    assert_eq!(retry, vec![body.clone()], "send's own delayed re-enqueue");
    env.run_send(&handler, &retry).await;
    let item = env.item("e2e-1").await;
    assert_eq!((item.status, item.attempts), (Some(Status::Retrying), 2));

    // The second delayed copy is lost; the sweep, later, brings the message back.
    assert_eq!(env.requeued().await.len(), 1);
    assert_eq!(sweep(&sweeper(&env, 0)).await.due, 0, "not due before its grace time");
    let report = sweep(&sweeper(&env, 200)).await;
    assert_eq!((report.due, report.enqueued), (1, 1));
    let swept = env.requeued().await;
    assert_eq!(swept, vec![body]);
    env.run_send(&handler, &swept).await;

    let item = env.item("e2e-1").await;
    assert_eq!((item.status, item.attempts), (Some(Status::Sent), 3));
    assert!(item.retry_due_at.is_none());
    let succeeded: Vec<_> = env.twilio.creates().into_iter().filter(|c| c.sid.is_some()).collect();
    assert_eq!(succeeded.len(), 1, "one create succeeded");
    assert_eq!(env.twilio.creates().len(), 3);
}

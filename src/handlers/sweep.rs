//! The retry sweep: every 10 minutes, re-enqueue what is due (DESIGN.md, "Retry sweep").
//!
//! The safety net under `send`'s own delayed re-enqueues: it finds, through the sparse
//! `retry-due` index and never a Scan, every item whose retry time or lease has passed, so
//! that nothing waits on a message SQS lost or a function that died.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;
use tracing::{error, info, warn};

use crate::config::SweepConfig;
use crate::domain::item::{LogItem, RETRY_SHARDS};
use crate::domain::sweep::{action_for, SweepAction};
use crate::metrics::Metrics;
use crate::ports::{Clock, RetryIndex, SendQueue};

/// Items taken and enqueued between two looks at the deadline: one `SendMessageBatch`.
pub const CHUNK: usize = 10;

/// What a run did: its response, and its one log line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    /// Items this run read as due.
    pub due: u64,
    pub enqueued: u64,
    /// Conditional updates lost to another sweep or a `send`, and live leases followed.
    pub skipped: u64,
    pub enqueue_failed: u64,
    /// Store errors: a `retry-due` Query, or a take's conditional update, that failed. What
    /// they left is still due: the next run reads it again.
    pub errors: u64,
    /// True when the time budget ended the run before every due item was worked.
    pub left_for_next_run: bool,
    pub duration_ms: u64,
}

/// A run that met store errors (see [`SweepReport::into_result`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "retry sweep: {} store error(s); {} due, {} enqueued (what they left is still due)",
    .0.errors, .0.due, .0.enqueued
)]
pub struct SweepFailed(pub SweepReport);

impl SweepReport {
    /// The report as the Lambda should answer it: an error when the run met store errors.
    ///
    /// Why an error, though the work is idempotent and the next run redoes it: the template's
    /// `RetrySweepErrorsAlarm` reads the function's Lambda `Errors`, so an invocation that
    /// always succeeds would hide a sweep that cannot read its index (lost permissions, an
    /// outage) until messages pile up. Nothing is lost by failing: the log line and the EMF
    /// metrics are written before the report is returned, a scheduled invocation's response
    /// is discarded anyway, and its one asynchronous retry (`MaximumRetryAttempts: 1`) only
    /// sweeps again, which conditional takes make safe. Conditions lost to another sweep
    /// (`skipped`), SQS failures (`enqueue_failed`, with their own alarm) and the time budget
    /// (`left_for_next_run`) are not errors of the run.
    pub fn into_result(self) -> Result<SweepReport, SweepFailed> {
        if self.errors == 0 {
            Ok(self)
        } else {
            Err(SweepFailed(self))
        }
    }

    /// The run's EMF counts, zeros included, so that the alarms on them see a data point every
    /// run rather than missing data.
    pub fn metrics(&self) -> Metrics {
        let metrics = Metrics::new("retry-sweep");
        for (name, value) in [
            ("Due", self.due),
            ("Enqueued", self.enqueued),
            ("EnqueueFailed", self.enqueue_failed),
            ("LeftForNextRun", u64::from(self.left_for_next_run)),
        ] {
            metrics.add(name, value as f64);
        }
        metrics
    }
}

/// What the sweep needs, built once per cold start. The `retry-due` Query's page size is the
/// index adapter's (`adapters::retry_index::RetryDueIndex`).
pub struct SweepHandler {
    pub config: SweepConfig,
    pub index: Arc<dyn RetryIndex>,
    pub queue: Arc<dyn SendQueue>,
    pub clock: Arc<dyn Clock>,
}

#[derive(Default)]
struct Counters {
    due: AtomicU64,
    enqueued: AtomicU64,
    skipped: AtomicU64,
    enqueue_failed: AtomicU64,
    errors: AtomicU64,
    left_for_next_run: AtomicBool,
}

impl Counters {
    fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Ordering::SeqCst);
    }

    fn report(&self, started: Instant) -> SweepReport {
        SweepReport {
            due: self.due.load(Ordering::SeqCst),
            enqueued: self.enqueued.load(Ordering::SeqCst),
            skipped: self.skipped.load(Ordering::SeqCst),
            enqueue_failed: self.enqueue_failed.load(Ordering::SeqCst),
            errors: self.errors.load(Ordering::SeqCst),
            left_for_next_run: self.left_for_next_run.load(Ordering::SeqCst),
            duration_ms: started.elapsed().as_millis() as u64,
        }
    }
}

impl SweepHandler {
    /// One run; `deadline` is the Lambda's. The event's payload is not read. The report is
    /// logged and its metrics printed before it is returned.
    pub async fn run(&self, deadline: SystemTime) -> SweepReport {
        let started = Instant::now();
        let deadline_ms = deadline.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
        let stop_at = deadline_ms - self.config.margin.as_millis() as i64;
        let counters = Counters::default();
        let shards = (0..RETRY_SHARDS).map(|shard| self.sweep_shard(shard, stop_at, &counters));
        futures::future::join_all(shards).await;
        let report = counters.report(started);
        report.metrics().flush();
        info!(
            due = report.due,
            enqueued = report.enqueued,
            skipped = report.skipped,
            enqueue_failed = report.enqueue_failed,
            errors = report.errors,
            left_for_next_run = report.left_for_next_run,
            duration_ms = report.duration_ms,
            "sweep finished"
        );
        report
    }

    /// Whether the time budget (until `stop_at`, Unix ms) is spent; records that the run
    /// leaves work for the next one.
    fn out_of_time(&self, stop_at: i64, counters: &Counters) -> bool {
        let spent = self.clock.now_ms() >= stop_at;
        if spent {
            counters.left_for_next_run.store(true, Ordering::SeqCst);
        }
        spent
    }

    /// The shard's due items, page after page, each page worked in chunks of [`CHUNK`] with
    /// a look at the deadline before each: a run stops within one chunk's time of its budget.
    async fn sweep_shard(&self, shard: u32, stop_at: i64, counters: &Counters) {
        let mut cursor = None;
        loop {
            if self.out_of_time(stop_at, counters) {
                return;
            }
            let (items, next) = match self.index.due_page(shard, self.clock.now(), cursor).await {
                Ok(page) => page,
                Err(err) => {
                    // Not the time budget: counted as an error; the next run reads it again.
                    error!(shard, error = %err, "could not read the retry-due index; the next run tries again");
                    Counters::add(&counters.errors, 1);
                    return;
                }
            };
            Counters::add(&counters.due, items.len());
            for chunk in items.chunks(CHUNK) {
                if self.out_of_time(stop_at, counters) {
                    return;
                }
                self.sweep_chunk(chunk, counters).await;
            }
            match next {
                Some(next) => cursor = Some(next),
                None => return,
            }
        }
    }

    /// Takes a chunk's items (their conditional updates at once), then enqueues those taken.
    async fn sweep_chunk(&self, chunk: &[LogItem], counters: &Counters) {
        let now = self.clock.now();
        let takes = chunk.iter().map(|item| self.take(item, now, counters));
        let requests: Vec<(&str, &str)> = futures::future::join_all(takes)
            .await
            .into_iter()
            .zip(chunk)
            .filter_map(|(request, item)| Some((item.message_id.as_str(), request?)))
            .collect();
        if !requests.is_empty() {
            self.enqueue(&requests, counters).await;
        }
    }

    /// The conditional take of one due item; its `request` when it is to be enqueued.
    async fn take<'a>(&self, item: &'a LogItem, now: i64, counters: &Counters) -> Option<&'a str> {
        let action = action_for(item, now)?;
        let reschedule_at = now + self.config.reschedule_seconds;
        match self.index.sweep_take(item, action, now, reschedule_at).await {
            Ok(true) if action == SweepAction::FollowLease => {
                Counters::add(&counters.skipped, 1);
                None
            }
            Ok(true) => match item.request.as_deref() {
                Some(request) => Some(request),
                None => {
                    error!(message_id = %item.message_id, "in-flight item without its request: cannot re-enqueue");
                    Counters::add(&counters.enqueue_failed, 1);
                    None
                }
            },
            Ok(false) => {
                Counters::add(&counters.skipped, 1);
                None
            }
            Err(err) => {
                // Not a lost condition (`skipped`): the item was not taken and stays due.
                warn!(message_id = %item.message_id, error = %err, "sweep take failed; due again at the next run");
                Counters::add(&counters.errors, 1);
                None
            }
        }
    }

    /// `SendMessageBatch`, failed entries retried once; one that still fails stays in the
    /// index and comes due again at `retry_due_at`.
    async fn enqueue(&self, requests: &[(&str, &str)], counters: &Counters) {
        let bodies: Vec<&str> = requests.iter().map(|(_, body)| *body).collect();
        // Indexes outside the batch (a queue adapter's bug) are dropped rather than panicking.
        let failed: Vec<usize> =
            self.queue.send_batch(&bodies).await.into_iter().filter(|&i| i < bodies.len()).collect();
        let retry: Vec<&str> = failed.iter().map(|&i| bodies[i]).collect();
        let still_failed: Vec<usize> = if retry.is_empty() {
            Vec::new()
        } else {
            self.queue.send_batch(&retry).await.into_iter().filter_map(|i| failed.get(i).copied()).collect()
        };
        for &i in &still_failed {
            warn!(message_id = %requests[i].0, "could not enqueue; due again at the next run");
        }
        Counters::add(&counters.enqueue_failed, still_failed.len());
        Counters::add(&counters.enqueued, bodies.len() - still_failed.len());
    }
}

/// The default deadline when the caller has none (the CLI): five minutes.
pub fn default_deadline() -> SystemTime {
    SystemTime::now() + Duration::from_secs(300)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory::{MemoryMessageLog, MemoryQueue};
    use crate::domain::item::retry_shard;
    use crate::domain::status::Status;
    use crate::ports::SystemClock;

    /// `n` ids that land in shard 0 (so that a test sees one shard's pages).
    fn ids_in_shard_zero(n: usize) -> Vec<String> {
        (0..).map(|i| format!("m{i}")).filter(|id| retry_shard(id) == 0).take(n).collect()
    }

    fn retrying(id: &str, now: i64) -> LogItem {
        LogItem {
            message_id: id.into(),
            status: Some(Status::Retrying),
            request: Some(format!("{{\"message_id\":\"{id}\"}}")),
            retry_shard: Some(retry_shard(id)),
            retry_due_at: Some(now - 100),
            next_attempt_at: Some(now - 220),
            ..LogItem::default()
        }
    }

    /// A MessageLog in memory holding `ids` as due `retrying` items.
    fn log_with(ids: &[String], page_size: usize) -> MemoryMessageLog {
        let log = MemoryMessageLog::new().with_page_size(page_size);
        let now = SystemClock.now();
        for id in ids {
            log.insert(retrying(id, now));
        }
        log
    }

    fn handler(log: &MemoryMessageLog, queue: &MemoryQueue) -> SweepHandler {
        SweepHandler {
            config: SweepConfig {
                message_log_table: "MessageLog".into(),
                send_queue_url: "queue".into(),
                reschedule_seconds: 300,
                margin: Duration::from_secs(5),
            },
            index: Arc::new(log.clone()),
            queue: Arc::new(queue.clone()),
            clock: Arc::new(SystemClock),
        }
    }

    fn queue() -> MemoryQueue {
        MemoryQueue::new(Arc::new(SystemClock))
    }

    fn far_deadline() -> SystemTime {
        SystemTime::now() + Duration::from_secs(600)
    }

    #[tokio::test]
    async fn pages_are_worked_in_batches_of_at_most_ten() {
        let log = log_with(&ids_in_shard_zero(23), 15);
        let queue = queue();
        let report = handler(&log, &queue).run(far_deadline()).await;
        assert_eq!((report.due, report.enqueued, report.skipped, report.errors), (23, 23, 0, 0));
        assert!(!report.left_for_next_run);
        assert_eq!(queue.batch_sizes(), [10, 5, 8], "pages of 15 and 8, chunks of at most 10");
        assert_eq!(log.faults.count("sweep_take"), 23);
        let rescheduled = log.items().iter().filter(|i| i.retry_due_at > Some(SystemClock.now())).count();
        assert_eq!(rescheduled, 23, "every taken item is due again only after SWEEP_RESCHEDULE_SECONDS");
    }

    #[tokio::test]
    async fn a_spent_budget_takes_nothing_and_says_so() {
        let log = log_with(&ids_in_shard_zero(3), 100);
        let queue = queue();
        // A deadline inside the margin: the budget is spent before the first look.
        let report = handler(&log, &queue).run(SystemTime::now() + Duration::from_secs(1)).await;
        assert!(report.left_for_next_run);
        assert_eq!((report.due, report.enqueued, report.errors), (0, 0, 0));
        assert_eq!(log.faults.count("sweep_take"), 0);
        assert!(queue.batch_sizes().is_empty());
    }

    #[tokio::test]
    async fn the_budget_is_looked_at_before_each_chunk_of_a_page() {
        let log = log_with(&ids_in_shard_zero(25), 100);
        log.faults.delay("sweep_take", None, Duration::from_millis(1500));
        let queue = queue();
        // The budget ends 1 s after the start, and a chunk's takes last 1.5 s: whatever chunk
        // began before the end, no other may begin after it (however slow the machine).
        let deadline = SystemTime::now() + Duration::from_secs(5) + Duration::from_secs(1);
        let report = handler(&log, &queue).run(deadline).await;
        assert!(report.left_for_next_run, "{report:?}");
        let taken = log.faults.count("sweep_take");
        assert!(taken <= CHUNK, "at most the one chunk begun in time: {taken} taken");
        assert_eq!(report.enqueued, taken as u64);
        assert!(queue.batch_sizes().len() <= 1);
    }

    #[tokio::test]
    async fn store_errors_are_errors_not_skips_nor_the_budget() {
        let ids = ids_in_shard_zero(4);
        let log = log_with(&ids, 100);
        log.faults.fail("due_page", Some("3"));
        log.faults.fail("due_page", Some("7"));
        log.faults.fail("sweep_take", Some(&ids[1]));
        let queue = queue();
        let report = handler(&log, &queue).run(far_deadline()).await;
        assert_eq!((report.due, report.enqueued, report.skipped, report.errors), (4, 3, 0, 3), "{report:?}");
        assert!(!report.left_for_next_run, "a failed Query is not the time budget");
        assert_eq!(report.clone().into_result(), Err(SweepFailed(report)));
    }

    #[tokio::test]
    async fn an_item_taken_meanwhile_is_skipped() {
        let ids = ids_in_shard_zero(2);
        let log = log_with(&ids, 100);
        // A `send` took the first item between the sweep's read and its take.
        log.faults.delay("sweep_take", None, Duration::from_millis(50));
        let queue = queue();
        let sweep = handler(&log, &queue);
        let taken_meanwhile = async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            let mut item = log.items().into_iter().find(|i| i.message_id == ids[0]).unwrap();
            item.status = Some(Status::Sending);
            log.insert(item);
        };
        let (report, ()) = tokio::join!(sweep.run(far_deadline()), taken_meanwhile);
        assert_eq!((report.due, report.enqueued, report.skipped), (2, 1, 1), "{report:?}");
    }

    #[test]
    fn a_run_without_errors_is_a_success_whatever_it_left() {
        let report = SweepReport { skipped: 3, enqueue_failed: 2, left_for_next_run: true, ..SweepReport::default() };
        assert_eq!(report.clone().into_result(), Ok(report));
    }

    #[test]
    fn the_four_metrics_are_reported_even_when_zero() {
        let emf = SweepReport::default().metrics().to_emf(0).expect("zeros are reported");
        for name in ["Due", "Enqueued", "EnqueueFailed", "LeftForNextRun"] {
            assert_eq!(emf[name].as_f64(), Some(0.0), "{name}: {emf}");
        }
        assert_eq!(emf["Function"], "retry-sweep");
    }
}

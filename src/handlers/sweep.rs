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
use crate::domain::status::Status;
use crate::metrics::Metrics;
use crate::ports::{Clock, LogItem, RetryIndex, SendQueue, SweepAction};
use crate::schema::RETRY_SHARDS;

/// What a run did: its response, and its one log line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    /// Items this run read as due.
    pub due: u64,
    pub enqueued: u64,
    /// Conditional updates lost to another sweep or a `send`, and live leases followed.
    pub skipped: u64,
    pub enqueue_failed: u64,
    /// True when the time budget ended the run before every shard was read.
    pub left_for_next_run: bool,
    pub duration_ms: u64,
}

/// What the sweep needs, built once per cold start.
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
    left_for_next_run: AtomicBool,
}

/// Which write the sweep makes for an item as read.
fn action_for(item: &LogItem, now: i64) -> Option<SweepAction> {
    match item.status? {
        Status::Retrying | Status::InDoubt => Some(SweepAction::Reschedule),
        Status::Sending if item.lease_until.is_some_and(|until| until < now) => Some(SweepAction::MarkInDoubt),
        Status::Sending => Some(SweepAction::FollowLease),
        // A final item left in the index would be a bug of a writer: nothing to re-enqueue.
        _ => None,
    }
}

impl SweepHandler {
    /// One run; `deadline` is the Lambda's. The event's payload is not read.
    pub async fn run(&self, deadline: SystemTime) -> SweepReport {
        let started = Instant::now();
        let stop_at = deadline.checked_sub(self.config.margin).unwrap_or(deadline);
        let counters = Counters::default();
        let shards = (0..RETRY_SHARDS).map(|shard| self.sweep_shard(shard, stop_at, &counters));
        futures::future::join_all(shards).await;
        let report = SweepReport {
            due: counters.due.load(Ordering::SeqCst),
            enqueued: counters.enqueued.load(Ordering::SeqCst),
            skipped: counters.skipped.load(Ordering::SeqCst),
            enqueue_failed: counters.enqueue_failed.load(Ordering::SeqCst),
            left_for_next_run: counters.left_for_next_run.load(Ordering::SeqCst),
            duration_ms: started.elapsed().as_millis() as u64,
        };
        let metrics = Metrics::new("retry-sweep");
        for (name, value) in [
            ("Due", report.due),
            ("Enqueued", report.enqueued),
            ("EnqueueFailed", report.enqueue_failed),
            ("LeftForNextRun", u64::from(report.left_for_next_run)),
        ] {
            (0..value).for_each(|_| metrics.count(name));
        }
        metrics.flush();
        info!(
            due = report.due,
            enqueued = report.enqueued,
            skipped = report.skipped,
            enqueue_failed = report.enqueue_failed,
            left_for_next_run = report.left_for_next_run,
            duration_ms = report.duration_ms,
            "sweep finished"
        );
        report
    }

    async fn sweep_shard(&self, shard: u32, stop_at: SystemTime, counters: &Counters) {
        let mut cursor = None;
        loop {
            if SystemTime::now() >= stop_at {
                counters.left_for_next_run.store(true, Ordering::SeqCst);
                return;
            }
            let now = self.clock.now();
            let (items, next) = match self.index.due_page(shard, now, cursor).await {
                Ok(page) => page,
                Err(err) => {
                    error!(shard, error = %err, "could not read the retry-due index; the next run tries again");
                    counters.left_for_next_run.store(true, Ordering::SeqCst);
                    return;
                }
            };
            counters.due.fetch_add(items.len() as u64, Ordering::SeqCst);
            let mut requests = Vec::new();
            for item in &items {
                if let Some(request) = self.take(item, now, counters).await {
                    requests.push((item.message_id.as_str(), request));
                }
            }
            self.enqueue(&requests, counters).await;
            match next {
                Some(next) => cursor = Some(next),
                None => return,
            }
        }
    }

    /// The conditional take of one due item; its `request` when it is to be enqueued.
    async fn take<'a>(&self, item: &'a LogItem, now: i64, counters: &Counters) -> Option<&'a str> {
        let action = action_for(item, now)?;
        let reschedule_at = now + self.config.reschedule_seconds;
        match self.index.sweep_take(item, action, now, reschedule_at).await {
            Ok(true) if action == SweepAction::FollowLease => {
                counters.skipped.fetch_add(1, Ordering::SeqCst);
                None
            }
            Ok(true) => match item.request.as_deref() {
                Some(request) => Some(request),
                None => {
                    error!(message_id = %item.message_id, "in-flight item without its request: cannot re-enqueue");
                    counters.enqueue_failed.fetch_add(1, Ordering::SeqCst);
                    None
                }
            },
            Ok(false) => {
                counters.skipped.fetch_add(1, Ordering::SeqCst);
                None
            }
            Err(err) => {
                warn!(message_id = %item.message_id, error = %err, "sweep take failed; due again at the next run");
                counters.skipped.fetch_add(1, Ordering::SeqCst);
                None
            }
        }
    }

    /// `SendMessageBatch`, failed entries retried once; one that still fails stays in the
    /// index and comes due again at `retry_due_at`.
    async fn enqueue(&self, requests: &[(&str, &str)], counters: &Counters) {
        let bodies: Vec<&str> = requests.iter().map(|(_, body)| *body).collect();
        let failed = self.queue.send_batch(&bodies).await;
        let retry: Vec<&str> = failed.iter().map(|&i| bodies[i]).collect();
        let still_failed: Vec<usize> = if retry.is_empty() {
            Vec::new()
        } else {
            self.queue.send_batch(&retry).await.into_iter().map(|i| failed[i]).collect()
        };
        for &i in &still_failed {
            warn!(message_id = %requests[i].0, "could not enqueue; due again at the next run");
        }
        counters.enqueue_failed.fetch_add(still_failed.len() as u64, Ordering::SeqCst);
        counters.enqueued.fetch_add((bodies.len() - still_failed.len()) as u64, Ordering::SeqCst);
    }
}

/// The default deadline when the caller has none (the CLI): five minutes.
pub fn default_deadline() -> SystemTime {
    SystemTime::now() + Duration::from_secs(300)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(status: Status, lease_until: Option<i64>) -> LogItem {
        LogItem { status: Some(status), lease_until, ..LogItem::default() }
    }

    #[test]
    fn each_in_flight_status_has_its_action() {
        assert_eq!(action_for(&item(Status::Retrying, None), 100), Some(SweepAction::Reschedule));
        assert_eq!(action_for(&item(Status::InDoubt, None), 100), Some(SweepAction::Reschedule));
        assert_eq!(action_for(&item(Status::Sending, Some(99)), 100), Some(SweepAction::MarkInDoubt));
        assert_eq!(action_for(&item(Status::Sending, Some(100)), 100), Some(SweepAction::FollowLease));
        assert_eq!(action_for(&item(Status::Sent, None), 100), None);
    }
}

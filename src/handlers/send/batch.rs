//! What one invocation's records share: the Lambda's deadline, the throttle pause, the stop
//! after an account-level error, and the metrics. Time comes from the `Clock` port.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use crate::domain::budget::BudgetWindow;
use crate::domain::campaign::CampaignItem;
use crate::metrics::Metrics;
use crate::ports::Clock;

/// What the batch read once for all its records (`None`: the read failed, and the records
/// that need it go back to the queue).
#[derive(Default)]
pub(super) struct BatchReads {
    /// The items of the batch's campaigns (a campaign without an item is absent).
    pub(super) campaigns: Option<HashMap<String, CampaignItem>>,
    /// The daily budget's last 24 hours, when a budget is set; records add to it as they go.
    pub(super) budget: Option<Mutex<BudgetWindow>>,
}

/// The state one invocation shares between its records.
pub(super) struct Batch {
    clock: Arc<dyn Clock>,
    /// The Lambda's deadline, Unix ms.
    deadline_ms: i64,
    stop_creating: AtomicBool,
    /// No create starts before this (Unix ms; 0: no pause).
    pause_until_ms: AtomicI64,
    pub(super) metrics: Metrics,
    pub(super) reads: BatchReads,
}

impl Batch {
    pub(super) fn new(clock: Arc<dyn Clock>, deadline: SystemTime) -> Self {
        let deadline_ms = deadline.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
        Batch {
            clock,
            deadline_ms,
            stop_creating: AtomicBool::new(false),
            pause_until_ms: AtomicI64::new(0),
            metrics: Metrics::new("send"),
            reads: BatchReads::default(),
        }
    }

    /// What is left of the invocation's time.
    pub(super) fn remaining(&self) -> Duration {
        Duration::from_millis((self.deadline_ms - self.clock.now_ms()).max(0) as u64)
    }

    /// An account-level error: no further create in this invocation.
    pub(super) fn stop_creating(&self) {
        self.stop_creating.store(true, Ordering::SeqCst);
    }

    pub(super) fn stopped(&self) -> bool {
        self.stop_creating.load(Ordering::SeqCst)
    }

    /// Waits out a throttle pause, if one is on.
    pub(super) async fn wait_for_pause(&self) {
        let wait = self.pause_until_ms.load(Ordering::SeqCst) - self.clock.now_ms();
        if wait > 0 {
            tokio::time::sleep(Duration::from_millis(wait as u64)).await;
        }
    }

    /// Pauses the next creates for `ms` (a later end wins over an earlier one).
    pub(super) fn pause_for(&self, ms: u64) {
        let until = self.clock.now_ms() + ms as i64;
        self.pause_until_ms.fetch_max(until, Ordering::SeqCst);
    }
}

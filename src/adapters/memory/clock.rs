//! A clock a test or the benchmark sets by hand.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::ports::Clock;

/// A clock that stands still until told to move. `Clone` shares the time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    ms: Arc<AtomicI64>,
}

impl ManualClock {
    /// At `seconds` since the epoch.
    pub fn at(seconds: i64) -> Self {
        ManualClock { ms: Arc::new(AtomicI64::new(seconds * 1000)) }
    }

    /// At the machine's time now (then still).
    pub fn now_from_system() -> Self {
        ManualClock { ms: Arc::new(AtomicI64::new(chrono::Utc::now().timestamp_millis())) }
    }

    pub fn set(&self, seconds: i64) {
        self.ms.store(seconds * 1000, Ordering::SeqCst);
    }

    pub fn advance(&self, by: Duration) {
        self.ms.fetch_add(by.as_millis() as i64, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.ms.load(Ordering::SeqCst)
    }
}

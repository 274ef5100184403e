//! Time: every handler reads it here, so that a test or the benchmark can set it.

/// Time since the Unix epoch.
pub trait Clock: Send + Sync {
    /// Milliseconds.
    fn now_ms(&self) -> i64;

    /// Seconds (the unit of every time stored in the tables).
    fn now(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }

    /// The instant `after` from now on this clock, as a deadline (a test's or the CLI's
    /// stand-in for Lambda's).
    fn deadline_in(&self, after: std::time::Duration) -> std::time::SystemTime {
        std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(self.now_ms().max(0) as u64) + after
    }
}

/// The machine's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        chrono::Utc::now().timestamp_millis()
    }
}

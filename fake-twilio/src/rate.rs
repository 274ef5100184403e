//! A token bucket per sender.

use std::time::Instant;

/// Holds at most one second's worth of tokens, refilled continuously.
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate: u32, now: Instant) -> Self {
        Self { tokens: f64::from(rate), last: now }
    }

    /// Takes one token if there is one.
    pub fn try_take(&mut self, rate: u32, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        let capacity = f64::from(rate);
        self.tokens = (self.tokens + elapsed * capacity).min(capacity);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn allows_a_burst_then_refills() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(2, t0);
        assert!(bucket.try_take(2, t0));
        assert!(bucket.try_take(2, t0));
        assert!(!bucket.try_take(2, t0));
        assert!(bucket.try_take(2, t0 + Duration::from_millis(500)));
        assert!(!bucket.try_take(2, t0 + Duration::from_millis(600)));
    }

    #[test]
    fn zero_refuses_everything() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(0, t0);
        assert!(!bucket.try_take(0, t0 + Duration::from_secs(10)));
    }
}

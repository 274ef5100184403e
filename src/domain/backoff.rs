//! Exponential backoff with jitter, and `Retry-After`.
//!
//! Pure: the caller passes the random draw (`unit`, uniform in `[0, 1)`), so tests are exact.

/// The longest delay: SQS's `DelaySeconds` maximum.
pub const MAX_DELAY_SECONDS: u64 = 900;

/// The `DelaySeconds` of a copy of a message due at `at`: `min(at − now, 900)`, never below
/// 0 (the sweep brings back what is due later than SQS can delay).
pub fn delay_until(at: i64, now: i64) -> u32 {
    (at - now).clamp(0, MAX_DELAY_SECONDS as i64) as u32
}

/// Delay before the next attempt after a transient failure:
/// `b = min(900, base × 2^(attempts − 1))`, uniform in `[b/2, b]`, at least `Retry-After`.
pub fn transient_delay(base_seconds: u64, attempts: u32, retry_after: Option<u64>, unit: f64) -> u64 {
    let exponent = attempts.saturating_sub(1).min(20);
    let b = base_seconds.saturating_mul(1 << exponent).min(MAX_DELAY_SECONDS) as f64;
    let delay = (b / 2.0 + unit.clamp(0.0, 1.0) * b / 2.0).round() as u64;
    delay.max(retry_after.unwrap_or(0)).min(MAX_DELAY_SECONDS)
}

/// Delay after a throttled or account-level answer, with `throttled` counted after this
/// answer: `min(900, 2^(throttled − 1)) × uniform[1, 2]`, at least `Retry-After`.
pub fn throttled_delay(throttled: u32, retry_after: Option<u64>, unit: f64) -> u64 {
    let exponent = throttled.saturating_sub(1).min(20);
    let b = (1u64 << exponent).min(MAX_DELAY_SECONDS) as f64;
    let delay = (b * (1.0 + unit.clamp(0.0, 1.0))).round() as u64;
    delay.max(retry_after.unwrap_or(0)).min(MAX_DELAY_SECONDS)
}

/// How long this invocation pauses its next creates after a throttled answer.
pub fn throttle_pause_ms(retry_after: Option<u64>) -> u64 {
    retry_after.unwrap_or(1).min(5) * 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_backoff_doubles_with_jitter_and_caps() {
        assert_eq!(transient_delay(30, 1, None, 0.0), 15);
        assert_eq!(transient_delay(30, 1, None, 1.0), 30);
        assert_eq!(transient_delay(30, 2, None, 1.0), 60);
        assert_eq!(transient_delay(30, 3, None, 0.5), 90);
        assert_eq!(transient_delay(30, 10, None, 1.0), 900);
        assert_eq!(transient_delay(30, 40, None, 1.0), 900);
        assert_eq!(transient_delay(0, 1, None, 1.0), 0);
    }

    #[test]
    fn a_queue_delay_is_between_zero_and_nine_hundred_seconds() {
        assert_eq!(delay_until(100, 40), 60);
        assert_eq!(delay_until(100, 200), 0);
        assert_eq!(delay_until(10_000, 0), 900);
    }

    #[test]
    fn retry_after_is_a_floor() {
        assert_eq!(transient_delay(30, 1, Some(120), 0.0), 120);
        assert_eq!(throttled_delay(1, Some(7), 0.0), 7);
        assert_eq!(throttled_delay(1, Some(5000), 0.0), 900);
    }

    #[test]
    fn throttled_backoff_grows_from_one_second() {
        assert_eq!(throttled_delay(1, None, 0.0), 1);
        assert_eq!(throttled_delay(1, None, 1.0), 2);
        assert_eq!(throttled_delay(4, None, 0.0), 8);
        assert_eq!(throttled_delay(30, None, 1.0), 900);
        assert_eq!(throttle_pause_ms(None), 1000);
        assert_eq!(throttle_pause_ms(Some(3)), 3000);
        assert_eq!(throttle_pause_ms(Some(60)), 5000);
    }
}

//! The send path's numbers (DESIGN.md, "Configuration"): how many attempts, how long a lease,
//! how long to wait, when to give up. Configuration parses into [`SendPolicy`]; the domain's
//! decisions read it and nothing else.

use super::consent::ConsentPolicy;

/// What the send path's decisions depend on besides the message and its item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendPolicy {
    /// `MAX_ATTEMPTS`: the default cap of a message without its own `max_attempts`.
    pub max_attempts: u32,
    /// `BACKOFF_BASE_SECONDS`
    pub backoff_base_seconds: u64,
    /// `LEASE_SECONDS`
    pub lease_seconds: i64,
    /// `RECONCILE_DELAY_SECONDS`
    pub reconcile_delay_seconds: i64,
    /// `SWEEP_GRACE_SECONDS`: how long after `next_attempt_at` the sweep steps in.
    pub sweep_grace_seconds: i64,
    /// `CLOCK_SKEW_SECONDS`: "due" means `next_attempt_at <= now + skew`.
    pub clock_skew_seconds: i64,
    /// `GIVE_UP_HOURS`
    pub give_up_hours: i64,
    /// `CONSENT_POLICY`
    pub consent_policy: ConsentPolicy,
    /// `WINDOW_MARGIN_SECONDS`: the 24-hour window is taken to close this much earlier.
    pub window_margin_seconds: i64,
}

impl Default for SendPolicy {
    /// DESIGN.md's defaults.
    fn default() -> Self {
        SendPolicy {
            max_attempts: 3,
            backoff_base_seconds: 30,
            lease_seconds: 120,
            reconcile_delay_seconds: 30,
            sweep_grace_seconds: 120,
            clock_skew_seconds: 5,
            give_up_hours: 24,
            consent_policy: ConsentPolicy::RequireOptin,
            window_margin_seconds: 300,
        }
    }
}

impl SendPolicy {
    /// The latest `next_attempt_at` that counts as due at `now`.
    pub fn due(&self, now: i64) -> i64 {
        now + self.clock_skew_seconds
    }
}

//! How a fake Twilio server is configured.

use std::time::Duration;

/// The account SID used when none is given: `AC` + 32 lowercase hex digits.
pub const TEST_ACCOUNT_SID: &str = "AC00000000000000000000000000000001";

/// The auth token used when none is given.
pub const TEST_AUTH_TOKEN: &str = "test-auth-token";

/// The number a Messaging Service sends from (its sender pool of one), in E.164.
pub const DEFAULT_SERVICE_SENDER: &str = "+14155238886";

/// Configuration of [`crate::FakeTwilio::start`].
#[derive(Debug, Clone)]
pub struct Options {
    /// Loopback port to bind; 0 picks a free one.
    pub port: u16,
    /// The only account SID the server knows (`AC` + 32 hex).
    pub account_sid: String,
    /// The account's auth token: the Basic auth password with the account SID, and the key
    /// that signs status callbacks.
    pub auth_token: String,
    /// API keys accepted as Basic auth: (`SK…` SID, secret).
    pub api_keys: Vec<(String, String)>,
    /// Latency added before every API request is handled.
    pub latency: Duration,
    /// Messages per second accepted per sender (`From`, or `MessagingServiceSid` without
    /// `From`), as a token bucket holding one second's worth; beyond it a create answers
    /// 429 with code 20429. `Some(0)` refuses every create. `None`: no limit.
    pub rate_per_sender: Option<u32>,
    /// When set, created messages progress through their statuses in the background and,
    /// when the create had a `StatusCallback`, each status is POSTed to it, signed.
    pub callbacks: Option<CallbackOptions>,
    /// The E.164 number a Messaging Service picks as sender once a message leaves the
    /// `accepted` status (its channel prefix, e.g. `whatsapp:`, is copied from `To`).
    pub service_sender: String,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            port: 0,
            account_sid: TEST_ACCOUNT_SID.to_owned(),
            auth_token: TEST_AUTH_TOKEN.to_owned(),
            api_keys: Vec::new(),
            latency: Duration::ZERO,
            rate_per_sender: None,
            callbacks: None,
            service_sender: DEFAULT_SERVICE_SENDER.to_owned(),
        }
    }
}

/// How status progression and status callbacks behave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackOptions {
    /// Time before each status change (the first one counts from the create).
    pub delay: Duration,
    /// Also report `read` after `delivered`.
    pub read: bool,
}

impl Default for CallbackOptions {
    fn default() -> Self {
        Self { delay: Duration::from_millis(100), read: false }
    }
}

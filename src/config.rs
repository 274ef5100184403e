//! Environment → typed configuration, read once at start.
//!
//! Every function calls one `from_env` at cold start; a missing or malformed value fails
//! initialisation with a message naming the variable. The lists of variables each function
//! reads are public so that the SAM template test can compare them with the template.

use std::time::Duration;

use crate::domain::budget::DailyBudget;
use crate::domain::consent::ConsentPolicy;
use crate::domain::policy::SendPolicy;
use crate::domain::schedule::{QuietDays, QuietHours, SchoolCalendar};
use crate::domain::twilio::Sender;
use crate::secret::Secret;

/// Variables read by `send`.
pub const SEND_ENV_VARS: &[&str] = &[
    "MESSAGE_LOG_TABLE",
    "CONSENT_TABLE",
    "SEND_QUEUE_URL",
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "TWILIO_API_KEY_SID",
    "TWILIO_API_KEY_SECRET",
    "TWILIO_SECRET_ARN",
    "TWILIO_WHATSAPP_FROM",
    "TWILIO_MESSAGING_SERVICE_SID",
    "TWILIO_ENABLED",
    "TWILIO_API_BASE_URL",
    "TWILIO_TIMEOUT_MS",
    "STATUS_CALLBACK_URL",
    "SEND_CONCURRENCY",
    "MAX_ATTEMPTS",
    "BACKOFF_BASE_SECONDS",
    "LEASE_SECONDS",
    "RECONCILE_DELAY_SECONDS",
    "SWEEP_GRACE_SECONDS",
    "CLOCK_SKEW_SECONDS",
    "GIVE_UP_HOURS",
    "CONSENT_POLICY",
    "RETENTION_DAYS",
    "CAMPAIGN_TABLE",
    "SCHOOL_TIMEZONE",
    "QUIET_HOURS",
    "QUIET_DAYS",
    "QUIET_SPREAD_SECONDS",
    "DAILY_RECIPIENT_LIMIT",
    "URGENT_RESERVE",
    "WINDOW_MARGIN_SECONDS",
];

/// Variables read by `twilio-webhook`.
pub const WEBHOOK_ENV_VARS: &[&str] = &[
    "MESSAGE_LOG_TABLE",
    "CONSENT_TABLE",
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "TWILIO_SECRET_ARN",
    "WEBHOOK_BASE_URL",
    "INBOX_TABLE",
    "RETENTION_DAYS",
    "REPLIES_TOPIC_ARN",
    "AUTO_REPLY_TEXT",
];

/// Variables read by `retry-sweep`.
pub const SWEEP_ENV_VARS: &[&str] =
    &["MESSAGE_LOG_TABLE", "SEND_QUEUE_URL", "SWEEP_RESCHEDULE_SECONDS", "SWEEP_MARGIN_SECONDS"];

/// A configuration value that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{name} is required")]
    Missing { name: &'static str },
    #[error("{name}: {reason}")]
    Invalid { name: &'static str, reason: String },
    #[error("TWILIO_ENABLED is true but Twilio is not configured: {missing}")]
    TwilioRequired { missing: String },
}

/// Reads variables through a lookup function, so tests need not touch the process environment.
pub struct Env<'a> {
    lookup: Lookup<'a>,
}

type Lookup<'a> = Box<dyn Fn(&str) -> Option<String> + 'a>;

impl Env<'static> {
    /// The process environment.
    pub fn process() -> Self {
        Env { lookup: Box::new(|name| std::env::var(name).ok()) }
    }
}

impl<'a> Env<'a> {
    /// Any lookup (a map in tests).
    pub fn from_fn(lookup: impl Fn(&str) -> Option<String> + 'a) -> Self {
        Env { lookup: Box::new(lookup) }
    }

    /// The value, or `None` when unset or blank.
    pub fn optional(&self, name: &'static str) -> Option<String> {
        (self.lookup)(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
    }

    pub fn string_or(&self, name: &'static str, default: &str) -> String {
        self.optional(name).unwrap_or_else(|| default.to_owned())
    }

    pub fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        self.optional(name).ok_or(ConfigError::Missing { name })
    }

    /// A whole number within `range`, or the default when unset.
    pub fn number_or(
        &self,
        name: &'static str,
        default: u64,
        range: std::ops::RangeInclusive<u64>,
    ) -> Result<u64, ConfigError> {
        let Some(raw) = self.optional(name) else { return Ok(default) };
        let value: u64 = raw
            .parse()
            .map_err(|_| ConfigError::Invalid { name, reason: format!("expected a whole number, got {raw:?}") })?;
        if !range.contains(&value) {
            return Err(ConfigError::Invalid {
                name,
                reason: format!("{value} is outside {}..={}", range.start(), range.end()),
            });
        }
        Ok(value)
    }

    /// `SCHOOL_TIMEZONE`: an IANA name (default `Europe/Paris`).
    pub fn school_timezone(&self) -> Result<chrono_tz::Tz, ConfigError> {
        let raw = self.string_or("SCHOOL_TIMEZONE", "Europe/Paris");
        raw.parse().map_err(|_| ConfigError::Invalid {
            name: "SCHOOL_TIMEZONE",
            reason: format!("unknown time zone {raw:?} (an IANA name such as Europe/Paris)"),
        })
    }

    /// The school's calendar: `SCHOOL_TIMEZONE`, `QUIET_HOURS`, `QUIET_DAYS`,
    /// `QUIET_SPREAD_SECONDS`.
    pub fn school_calendar(&self) -> Result<SchoolCalendar, ConfigError> {
        let quiet_hours = self
            .optional("QUIET_HOURS")
            .map(|raw| QuietHours::parse(&raw))
            .transpose()
            .map_err(|reason| ConfigError::Invalid { name: "QUIET_HOURS", reason })?;
        let quiet_days = QuietDays::parse(&self.string_or("QUIET_DAYS", ""))
            .map_err(|reason| ConfigError::Invalid { name: "QUIET_DAYS", reason })?;
        Ok(SchoolCalendar {
            timezone: self.school_timezone()?,
            quiet_hours,
            quiet_days,
            spread_seconds: self.number_or("QUIET_SPREAD_SECONDS", 600, 0..=3600)? as u32,
        })
    }

    pub fn flag(&self, name: &'static str) -> Result<bool, ConfigError> {
        match self.optional(name).as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("false") | Some("0") | Some("no") => Ok(false),
            Some("true") | Some("1") | Some("yes") => Ok(true),
            Some(other) => Err(ConfigError::Invalid { name, reason: format!("expected true or false, got {other:?}") }),
        }
    }
}

/// Twilio settings as read from the environment, before the secret is merged in.
#[derive(Debug, Clone, Default)]
pub struct TwilioEnv {
    pub account_sid: Option<String>,
    pub auth_token: Option<Secret>,
    pub api_key_sid: Option<String>,
    pub api_key_secret: Option<Secret>,
    pub secret_arn: Option<String>,
    pub whatsapp_from: Option<String>,
    pub messaging_service_sid: Option<String>,
    pub enabled: bool,
}

impl TwilioEnv {
    fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(TwilioEnv {
            account_sid: env.optional("TWILIO_ACCOUNT_SID"),
            auth_token: env.optional("TWILIO_AUTH_TOKEN").map(Secret::new),
            api_key_sid: env.optional("TWILIO_API_KEY_SID"),
            api_key_secret: env.optional("TWILIO_API_KEY_SECRET").map(Secret::new),
            secret_arn: env.optional("TWILIO_SECRET_ARN"),
            whatsapp_from: env.optional("TWILIO_WHATSAPP_FROM").map(|from| {
                if from.starts_with("whatsapp:") {
                    from
                } else {
                    format!("whatsapp:{from}")
                }
            }),
            messaging_service_sid: env.optional("TWILIO_MESSAGING_SERVICE_SID"),
            enabled: env.flag("TWILIO_ENABLED")?,
        })
    }

    /// Merges the values of the Secrets Manager secret (they win over the environment).
    pub fn with_secret(mut self, secret: TwilioSecret) -> Self {
        self.auth_token = Some(secret.auth_token);
        if secret.api_key_sid.is_some() {
            self.api_key_sid = secret.api_key_sid;
        }
        if secret.api_key_secret.is_some() {
            self.api_key_secret = secret.api_key_secret;
        }
        self
    }

    /// Live credentials, or why Twilio is not configured.
    pub fn resolve(&self) -> Result<TwilioAccount, String> {
        let mut missing = Vec::new();
        if self.account_sid.is_none() {
            missing.push("TWILIO_ACCOUNT_SID");
        }
        let credentials = match (&self.api_key_sid, &self.api_key_secret, &self.auth_token) {
            (Some(sid), Some(secret), _) => Some(Credentials::ApiKey { sid: sid.clone(), secret: secret.clone() }),
            (_, _, Some(token)) => Some(Credentials::AuthToken(token.clone())),
            _ => None,
        };
        if credentials.is_none() {
            missing.push("TWILIO_AUTH_TOKEN (or TWILIO_SECRET_ARN, or TWILIO_API_KEY_SID and TWILIO_API_KEY_SECRET)");
        }
        let sender = match (&self.messaging_service_sid, &self.whatsapp_from) {
            (Some(mg), _) => Some(Sender::MessagingService(mg.clone())),
            (None, Some(from)) => Some(Sender::From(from.clone())),
            (None, None) => None,
        };
        if sender.is_none() {
            missing.push("TWILIO_WHATSAPP_FROM or TWILIO_MESSAGING_SERVICE_SID");
        }
        match (&self.account_sid, credentials, sender) {
            (Some(account_sid), Some(credentials), Some(sender)) => {
                Ok(TwilioAccount { account_sid: account_sid.clone(), credentials, sender })
            }
            _ => Err(missing.join(", ")),
        }
    }
}

/// The JSON of the Secrets Manager secret named by `TWILIO_SECRET_ARN`.
#[derive(Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwilioSecret {
    pub auth_token: Secret,
    #[serde(default)]
    pub auth_token_secondary: Option<Secret>,
    #[serde(default)]
    pub api_key_sid: Option<String>,
    #[serde(default)]
    pub api_key_secret: Option<Secret>,
}

impl std::fmt::Debug for TwilioSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwilioSecret").finish_non_exhaustive()
    }
}

/// How requests to Twilio authenticate.
#[derive(Debug, Clone)]
pub enum Credentials {
    AuthToken(Secret),
    ApiKey { sid: String, secret: Secret },
}

/// A Twilio account ready to send.
#[derive(Debug, Clone)]
pub struct TwilioAccount {
    pub account_sid: String,
    pub credentials: Credentials,
    pub sender: Sender,
}

/// Configuration of the `send` function.
#[derive(Debug, Clone)]
pub struct SendConfig {
    pub message_log_table: String,
    pub consent_table: String,
    pub send_queue_url: String,
    pub twilio: TwilioEnv,
    pub twilio_api_base_url: String,
    pub twilio_timeout: Duration,
    pub status_callback_url: Option<String>,
    pub send_concurrency: usize,
    pub retention_days: i64,
    /// The numbers the send path's decisions read.
    pub policy: SendPolicy,
    /// `CAMPAIGN_TABLE`: the campaigns (cancelled or not) and the daily budget's items.
    pub campaign_table: String,
    /// When messages may go: the school's time zone and quiet hours.
    pub calendar: SchoolCalendar,
    /// `DAILY_RECIPIENT_LIMIT` and `URGENT_RESERVE`; `None`: no budget.
    pub budget: Option<DailyBudget>,
}

impl SendConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let raw_policy = env.string_or("CONSENT_POLICY", "require-optin");
        let consent_policy = ConsentPolicy::parse(&raw_policy).ok_or_else(|| ConfigError::Invalid {
            name: "CONSENT_POLICY",
            reason: format!("expected require-optin or honour-optout, got {raw_policy:?}"),
        })?;
        let status_callback_url = env.optional("STATUS_CALLBACK_URL");
        if let Some(url) = &status_callback_url {
            url::Url::parse(url)
                .map_err(|e| ConfigError::Invalid { name: "STATUS_CALLBACK_URL", reason: e.to_string() })?;
        }
        let twilio_api_base_url = env.string_or("TWILIO_API_BASE_URL", "https://api.twilio.com");
        url::Url::parse(&twilio_api_base_url)
            .map_err(|e| ConfigError::Invalid { name: "TWILIO_API_BASE_URL", reason: e.to_string() })?;
        Ok(SendConfig {
            message_log_table: env.string_or("MESSAGE_LOG_TABLE", "MessageLog"),
            consent_table: env.string_or("CONSENT_TABLE", "Consent"),
            send_queue_url: env.required("SEND_QUEUE_URL")?,
            twilio: TwilioEnv::from_env(env)?,
            twilio_api_base_url: twilio_api_base_url.trim_end_matches('/').to_owned(),
            twilio_timeout: Duration::from_millis(env.number_or("TWILIO_TIMEOUT_MS", 10_000, 100..=60_000)?),
            status_callback_url,
            send_concurrency: env.number_or("SEND_CONCURRENCY", 16, 1..=256)? as usize,
            retention_days: env.number_or("RETENTION_DAYS", 365, 1..=3650)? as i64,
            policy: SendPolicy {
                max_attempts: env.number_or("MAX_ATTEMPTS", 3, 1..=10)? as u32,
                backoff_base_seconds: env.number_or("BACKOFF_BASE_SECONDS", 30, 0..=900)?,
                lease_seconds: env.number_or("LEASE_SECONDS", 120, 1..=43_200)? as i64,
                reconcile_delay_seconds: env.number_or("RECONCILE_DELAY_SECONDS", 30, 0..=900)? as i64,
                sweep_grace_seconds: env.number_or("SWEEP_GRACE_SECONDS", 120, 0..=86_400)? as i64,
                clock_skew_seconds: env.number_or("CLOCK_SKEW_SECONDS", 5, 0..=300)? as i64,
                give_up_hours: env.number_or("GIVE_UP_HOURS", 24, 1..=24 * 14)? as i64,
                consent_policy,
                window_margin_seconds: env.number_or("WINDOW_MARGIN_SECONDS", 300, 0..=3600)? as i64,
            },
            campaign_table: env.string_or("CAMPAIGN_TABLE", "Campaigns"),
            calendar: env.school_calendar()?,
            budget: daily_budget(env)?,
        })
    }
}

/// `DAILY_RECIPIENT_LIMIT` (empty: no budget) and `URGENT_RESERVE` (default 10 % of it).
fn daily_budget(env: &Env) -> Result<Option<DailyBudget>, ConfigError> {
    let Some(_) = env.optional("DAILY_RECIPIENT_LIMIT") else {
        if env.optional("URGENT_RESERVE").is_some() {
            return Err(ConfigError::Invalid {
                name: "URGENT_RESERVE",
                reason: "set without DAILY_RECIPIENT_LIMIT (a reserve of no limit)".into(),
            });
        }
        return Ok(None);
    };
    let limit = env.number_or("DAILY_RECIPIENT_LIMIT", 0, 1..=10_000_000)? as u32;
    let reserve = match env.optional("URGENT_RESERVE") {
        Some(_) => Some(env.number_or("URGENT_RESERVE", 0, 0..=10_000_000)? as u32),
        None => None,
    };
    DailyBudget::new(limit, reserve).map(Some).map_err(|reason| match reason.split_once(": ") {
        Some(("URGENT_RESERVE", rest)) => ConfigError::Invalid { name: "URGENT_RESERVE", reason: rest.to_owned() },
        _ => ConfigError::Invalid { name: "DAILY_RECIPIENT_LIMIT", reason },
    })
}

/// Configuration of the `twilio-webhook` function.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    pub message_log_table: String,
    pub consent_table: String,
    pub twilio: TwilioEnv,
    pub webhook_base_url: Option<String>,
    /// `INBOX_TABLE`: the parents' replies.
    pub inbox_table: String,
    /// `RETENTION_DAYS`: how long a reply is kept (its `expires_at`).
    pub retention_days: i64,
    /// `REPLIES_TOPIC_ARN`: the SNS topic staff are told of replies on (none: not told).
    pub replies_topic_arn: Option<String>,
    /// `AUTO_REPLY_TEXT`: the TwiML answer to a reply (none: an empty answer).
    pub auto_reply_text: Option<String>,
}

impl WebhookConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let webhook_base_url = env.optional("WEBHOOK_BASE_URL");
        if let Some(url) = &webhook_base_url {
            url::Url::parse(url)
                .map_err(|e| ConfigError::Invalid { name: "WEBHOOK_BASE_URL", reason: e.to_string() })?;
        }
        Ok(WebhookConfig {
            message_log_table: env.string_or("MESSAGE_LOG_TABLE", "MessageLog"),
            consent_table: env.string_or("CONSENT_TABLE", "Consent"),
            twilio: TwilioEnv::from_env(env)?,
            webhook_base_url,
            inbox_table: env.string_or("INBOX_TABLE", "Inbox"),
            retention_days: env.number_or("RETENTION_DAYS", 365, 1..=3650)? as i64,
            replies_topic_arn: env.optional("REPLIES_TOPIC_ARN"),
            auto_reply_text: env.optional("AUTO_REPLY_TEXT"),
        })
    }
}

/// Configuration of the `retry-sweep` function.
#[derive(Debug, Clone)]
pub struct SweepConfig {
    pub message_log_table: String,
    pub send_queue_url: String,
    pub reschedule_seconds: i64,
    pub margin: Duration,
}

impl SweepConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(SweepConfig {
            message_log_table: env.string_or("MESSAGE_LOG_TABLE", "MessageLog"),
            send_queue_url: env.required("SEND_QUEUE_URL")?,
            reschedule_seconds: env.number_or("SWEEP_RESCHEDULE_SECONDS", 300, 1..=86_400)? as i64,
            margin: Duration::from_secs(env.number_or("SWEEP_MARGIN_SECONDS", 5, 0..=600)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(vars: &[(&str, &str)]) -> HashMap<String, String> {
        vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn send_config(vars: &[(&str, &str)]) -> Result<SendConfig, ConfigError> {
        let vars = env(vars);
        let env = Env::from_fn(|name| vars.get(name).cloned());
        SendConfig::from_env(&env)
    }

    #[test]
    fn defaults_are_those_of_the_design() {
        let config = send_config(&[("SEND_QUEUE_URL", "http://q")]).unwrap();
        assert_eq!(config.message_log_table, "MessageLog");
        assert_eq!(config.consent_table, "Consent");
        assert_eq!(config.twilio_timeout, Duration::from_millis(10_000));
        assert_eq!((config.send_concurrency, config.retention_days), (16, 365));
        assert_eq!(config.policy, SendPolicy::default(), "the policy's defaults are DESIGN.md's");
        assert_eq!(config.twilio_api_base_url, "https://api.twilio.com");
    }

    #[test]
    fn errors_name_the_variable() {
        assert_eq!(send_config(&[]).unwrap_err().to_string(), "SEND_QUEUE_URL is required");
        let cases = [
            ("MAX_ATTEMPTS", "three", "MAX_ATTEMPTS: expected a whole number, got \"three\""),
            ("MAX_ATTEMPTS", "11", "MAX_ATTEMPTS: 11 is outside 1..=10"),
            ("CONSENT_POLICY", "yolo", "CONSENT_POLICY: expected require-optin or honour-optout, got \"yolo\""),
            ("TWILIO_ENABLED", "maybe", "TWILIO_ENABLED: expected true or false, got \"maybe\""),
        ];
        for (name, value, expected) in cases {
            let err = send_config(&[("SEND_QUEUE_URL", "http://q"), (name, value)]).unwrap_err();
            assert_eq!(err.to_string(), expected);
        }
        let err = send_config(&[("SEND_QUEUE_URL", "http://q"), ("STATUS_CALLBACK_URL", "not a url")]).unwrap_err();
        assert!(err.to_string().starts_with("STATUS_CALLBACK_URL: "), "{err}");
    }

    #[test]
    fn the_school_calendar_and_the_budget_name_their_variable() {
        let config = send_config(&[("SEND_QUEUE_URL", "http://q")]).unwrap();
        assert_eq!(config.calendar, SchoolCalendar::default(), "Europe/Paris, no quiet hours, spread 600");
        assert_eq!((config.budget, config.campaign_table.as_str()), (None, "Campaigns"));
        assert_eq!(config.policy.window_margin_seconds, 300);
        let config = send_config(&[
            ("SEND_QUEUE_URL", "http://q"),
            ("SCHOOL_TIMEZONE", "America/Montreal"),
            ("QUIET_HOURS", "20:00-07:30"),
            ("QUIET_DAYS", "sat,sun"),
            ("DAILY_RECIPIENT_LIMIT", "250"),
        ])
        .unwrap();
        assert_eq!(config.calendar.timezone, chrono_tz::America::Montreal);
        assert_eq!(config.calendar.quiet_hours.map(|q| q.to_string()).as_deref(), Some("20:00-07:30"));
        assert_eq!(config.budget, Some(DailyBudget { limit: 250, reserve: 25 }));
        let cases = [
            (
                "SCHOOL_TIMEZONE",
                "Europe/Pariss",
                "SCHOOL_TIMEZONE: unknown time zone \"Europe/Pariss\" (an IANA name such as Europe/Paris)",
            ),
            ("QUIET_HOURS", "8pm-7am", "QUIET_HOURS: expected HH:MM-HH:MM (such as 20:00-07:30), got \"8pm-7am\""),
            ("QUIET_DAYS", "samedi", "QUIET_DAYS: unknown day \"samedi\" (expected mon, tue, wed, thu, fri, sat, sun)"),
            ("URGENT_RESERVE", "3", "URGENT_RESERVE: set without DAILY_RECIPIENT_LIMIT (a reserve of no limit)"),
            ("DAILY_RECIPIENT_LIMIT", "0", "DAILY_RECIPIENT_LIMIT: 0 is outside 1..=10000000"),
        ];
        for (name, value, expected) in cases {
            let err = send_config(&[("SEND_QUEUE_URL", "http://q"), (name, value)]).unwrap_err();
            assert_eq!(err.to_string(), expected);
        }
        let err =
            send_config(&[("SEND_QUEUE_URL", "http://q"), ("DAILY_RECIPIENT_LIMIT", "5"), ("URGENT_RESERVE", "5")])
                .unwrap_err();
        assert_eq!(err.to_string(), "URGENT_RESERVE: 5 leaves nothing of the limit 5 to normal messages");
    }

    #[test]
    fn twilio_resolution_says_what_is_missing_and_prefers_api_keys() {
        let twilio = |vars: &[(&str, &str)]| {
            let vars = env(vars);
            let env = Env::from_fn(|name| vars.get(name).cloned());
            TwilioEnv::from_env(&env).unwrap()
        };
        assert_eq!(
            twilio(&[("TWILIO_ACCOUNT_SID", "AC1"), ("TWILIO_AUTH_TOKEN", "t")]).resolve().unwrap_err(),
            "TWILIO_WHATSAPP_FROM or TWILIO_MESSAGING_SERVICE_SID"
        );
        let account = twilio(&[
            ("TWILIO_ACCOUNT_SID", "AC1"),
            ("TWILIO_AUTH_TOKEN", "t"),
            ("TWILIO_API_KEY_SID", "SK1"),
            ("TWILIO_API_KEY_SECRET", "s"),
            ("TWILIO_WHATSAPP_FROM", "+14155238886"),
        ])
        .resolve()
        .unwrap();
        assert!(matches!(account.credentials, Credentials::ApiKey { ref sid, .. } if sid == "SK1"));
        assert_eq!(account.sender, Sender::From("whatsapp:+14155238886".into()));
        let with_service = twilio(&[
            ("TWILIO_ACCOUNT_SID", "AC1"),
            ("TWILIO_AUTH_TOKEN", "t"),
            ("TWILIO_WHATSAPP_FROM", "whatsapp:+14155238886"),
            ("TWILIO_MESSAGING_SERVICE_SID", "MG1"),
        ]);
        assert_eq!(with_service.resolve().unwrap().sender, Sender::MessagingService("MG1".into()));
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let twilio = TwilioEnv { auth_token: Some(Secret::new("hunter2-token")), ..TwilioEnv::default() };
        let secret: TwilioSecret =
            serde_json::from_str(r#"{"auth_token": "hunter2-token", "api_key_secret": "hunter2-key"}"#).unwrap();
        for shown in [format!("{twilio:?}"), format!("{secret:?}"), format!("{:?}", twilio.with_secret(secret.clone()))]
        {
            assert!(!shown.contains("hunter2"), "{shown}");
        }
        let err = serde_json::from_str::<TwilioSecret>(r#"{"auth_token": "hunter2-token", "typo": 1}"#).unwrap_err();
        assert!(!err.to_string().contains("hunter2"));
    }
}

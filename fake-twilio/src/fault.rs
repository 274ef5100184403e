//! Scripted faults, delivery outcomes, and the behaviour file that lists them.
//!
//! Serde form (the behaviour file uses it), one JSON value per fault:
//!
//! | fault | JSON |
//! | --- | --- |
//! | [`Fault::Error`] | `{"error": {"http": 503, "code": 20503, "message": "Service unavailable", "retry_after": 2}}` (`code`, `message`, `retry_after` optional) |
//! | [`Fault::AcceptThenStall`] | `{"accept_then_stall_ms": 5000}` |
//! | [`Fault::StallThenReject`] | `{"stall_then_reject_ms": 5000}` |
//! | [`Fault::ResetAfterAccept`] | `"reset_after_accept"` |
//! | [`Fault::BrokenBodyAfterAccept`] | `"broken_body_after_accept"` |
//! | [`Fault::ResetBeforeAccept`] | `"reset_before_accept"` |
//! | [`Fault::InvalidJson`] | `"invalid_json"` |
//! | [`Fault::Delay`] | `{"delay_ms": 300}` |

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

/// What the next create request for a recipient meets instead of (or before) the normal
/// handling. Each create consumes at most one fault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// Answer with Twilio's error JSON and this HTTP status; nothing is created. Without
    /// `code`, the JSON has no `code` nor `more_info` (a bare 429, for instance). An empty
    /// `message` is replaced by the status' reason phrase. `retry_after` sets the
    /// `Retry-After` header (seconds).
    Error {
        /// HTTP status.
        http: u16,
        /// Twilio error code.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<u32>,
        /// Error message.
        #[serde(default)]
        message: String,
        /// `Retry-After` header, in seconds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after: Option<u64>,
    },
    /// The request is handled normally (a valid one creates the message, listed at once),
    /// but the answer comes only after this stall: a client timeout after Twilio accepted.
    #[serde(rename = "accept_then_stall_ms", with = "millis")]
    AcceptThenStall(Duration),
    /// Nothing is created; after this stall the answer is 503 with code 20503.
    #[serde(rename = "stall_then_reject_ms", with = "millis")]
    StallThenReject(Duration),
    /// The request is handled normally (a valid one creates the message), then the
    /// connection is reset instead of answering: the client sees a transport error.
    ResetAfterAccept,
    /// The request is handled normally (a valid one creates the message); the answer's
    /// status line and headers are sent (201 for a created message), then the body breaks
    /// off half way and the connection is closed.
    BrokenBodyAfterAccept,
    /// Nothing is created; the connection is reset without an answer.
    ResetBeforeAccept,
    /// Nothing is created, yet the answer is a 201 whose body is not JSON (with a
    /// `Content-Type: application/json` header all the same).
    InvalidJson,
    /// This extra latency, then normal handling. The message is created even if the client
    /// gave up meanwhile.
    #[serde(rename = "delay_ms", with = "millis")]
    Delay(Duration),
}

impl Fault {
    /// An error answer with a Twilio error code.
    pub fn error(http: u16, code: u32, message: impl Into<String>) -> Self {
        Fault::Error { http, code: Some(code), message: message.into(), retry_after: None }
    }

    /// 503 with code 20503, as Twilio answers when it is unavailable.
    pub fn service_unavailable() -> Self {
        Fault::error(503, 20503, "Service Unavailable")
    }

    /// 429 with code 20429, with an optional `Retry-After` (seconds).
    pub fn too_many_requests(retry_after: Option<u64>) -> Self {
        Fault::Error { http: 429, code: Some(20429), message: "Too Many Requests".to_owned(), retry_after }
    }
}

/// How the statuses of a created message progress when [`crate::CallbackOptions`] are set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum CallbackOutcome {
    /// `sent`, `delivered` (and `read` when [`crate::CallbackOptions::read`]).
    #[default]
    Delivered,
    /// `sent`, and nothing after.
    Sent,
    /// `sent`, then `undelivered` with this `ErrorCode` (JSON: `{"undelivered": 63016}`).
    Undelivered(u32),
    /// `failed` with this `ErrorCode` (JSON: `{"failed": 63003}`).
    Failed(u32),
}

/// A behaviour file: faults and delivery outcomes per recipient.
///
/// JSON object whose keys are recipients in E.164 (a `whatsapp:` prefix is ignored), or
/// `"*"` for the global fault queue, and whose values are either a list of faults (in the
/// order they are met) or an object `{"faults": [...], "callback": <CallbackOutcome>}`:
///
/// ```json
/// {
///   "+33612345603": [{"error": {"http": 503, "code": 20503, "message": "Service unavailable"}},
///                    "reset_after_accept"],
///   "+33612345604": {"callback": {"undelivered": 63016}},
///   "*": [{"delay_ms": 200}]
/// }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Behaviour {
    /// Fault queues per recipient (E.164, no prefix).
    pub faults: BTreeMap<String, Vec<Fault>>,
    /// The global queue, met by a create whose recipient has no queued fault.
    pub global: Vec<Fault>,
    /// Delivery outcome per recipient (E.164, no prefix).
    pub outcomes: BTreeMap<String, CallbackOutcome>,
}

/// The object form of one recipient's entry.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    #[serde(default)]
    faults: Vec<Fault>,
    #[serde(default)]
    callback: Option<CallbackOutcome>,
}

impl Behaviour {
    /// Parses a behaviour file's text.
    pub fn from_json(text: &str) -> anyhow::Result<Self> {
        let raw: BTreeMap<String, serde_json::Value> =
            serde_json::from_str(text).context("a behaviour file is a JSON object")?;
        let mut behaviour = Behaviour::default();
        for (key, value) in raw {
            let entry = if value.is_array() {
                Entry {
                    faults: serde_json::from_value(value).with_context(|| format!("faults of {key:?}"))?,
                    callback: None,
                }
            } else {
                serde_json::from_value(value).with_context(|| format!("entry {key:?}"))?
            };
            if key == "*" {
                anyhow::ensure!(entry.callback.is_none(), "\"*\" takes no callback outcome");
                behaviour.global.extend(entry.faults);
                continue;
            }
            let to = crate::strip_channel(&key).to_owned();
            if let Some(outcome) = entry.callback {
                behaviour.outcomes.insert(to.clone(), outcome);
            }
            if !entry.faults.is_empty() {
                behaviour.faults.entry(to).or_default().extend(entry.faults);
            }
        }
        Ok(behaviour)
    }

    /// Reads and parses a behaviour file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Self::from_json(&text).with_context(|| format!("parsing {}", path.display()))
    }
}

/// A [`Duration`] as whole milliseconds.
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_round_trip_through_json() {
        let faults = vec![
            Fault::service_unavailable(),
            Fault::AcceptThenStall(Duration::from_millis(1500)),
            Fault::ResetAfterAccept,
            Fault::Delay(Duration::from_millis(20)),
        ];
        let json = serde_json::to_string(&faults).unwrap();
        assert_eq!(
            json,
            r#"[{"error":{"http":503,"code":20503,"message":"Service Unavailable"}},{"accept_then_stall_ms":1500},"reset_after_accept",{"delay_ms":20}]"#
        );
        let back: Vec<Fault> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, faults);
    }

    #[test]
    fn behaviour_file_accepts_both_forms() {
        let b = Behaviour::from_json(
            r#"{
              "+33612345603": [{"error": {"http": 503, "code": 20503, "message": "Service unavailable"}},
                               {"error": {"http": 429}}],
              "whatsapp:+33612345604": {"callback": {"undelivered": 63016}, "faults": ["invalid_json"]},
              "*": [{"delay_ms": 5}]
            }"#,
        )
        .unwrap();
        assert_eq!(b.faults["+33612345603"].len(), 2);
        assert_eq!(b.faults["+33612345604"], vec![Fault::InvalidJson]);
        assert_eq!(b.outcomes["+33612345604"], CallbackOutcome::Undelivered(63016));
        assert_eq!(b.global, vec![Fault::Delay(Duration::from_millis(5))]);
    }

    #[test]
    fn behaviour_file_refuses_unknown_things() {
        assert!(Behaviour::from_json(r#"{"+33612345603": ["explode"]}"#).is_err());
        assert!(Behaviour::from_json(r#"{"+33612345603": {"fautls": []}}"#).is_err());
        assert!(Behaviour::from_json("[]").is_err());
    }
}

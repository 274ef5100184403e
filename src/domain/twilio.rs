//! Twilio's side of a message as the domain reads it: where messages come from ([`Sender`]),
//! a message as Twilio describes it ([`TwilioMessage`]), the answer to a create before it is
//! classified ([`CreateAnswer`]), and the error codes Missive names.

use serde::Deserialize;

/// Where messages come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sender {
    /// `whatsapp:+1415…`
    From(String),
    /// `MG…`
    MessagingService(String),
}

/// A message as Twilio describes it (the fields Missive reads).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TwilioMessage {
    pub sid: String,
    pub status: String,
    #[serde(default)]
    pub to: Option<String>,
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub messaging_service_sid: Option<String>,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub direction: Option<String>,
    /// RFC 2822, as Twilio writes it.
    #[serde(default)]
    pub date_created: Option<String>,
    #[serde(default)]
    pub error_code: Option<i64>,
}

impl TwilioMessage {
    /// `date_created` as Unix seconds.
    pub fn created_at(&self) -> Option<i64> {
        chrono::DateTime::parse_from_rfc2822(self.date_created.as_deref()?).ok().map(|t| t.timestamp())
    }

    /// Sent by the account (`outbound-api`, `outbound-reply`, …), not received.
    pub fn is_outbound(&self) -> bool {
        self.direction.as_deref().is_some_and(|d| d.starts_with("outbound"))
    }

    /// Sent from `sender` (its number, or its Messaging Service).
    pub fn is_from(&self, sender: &Sender) -> bool {
        match sender {
            Sender::From(from) => self.from.as_deref() == Some(from.as_str()),
            Sender::MessagingService(sid) => self.messaging_service_sid.as_deref() == Some(sid.as_str()),
        }
    }
}

/// Twilio's answer to a create, before classification.
#[derive(Debug, Clone)]
pub enum CreateAnswer {
    /// A 2xx with a Message.
    Accepted(TwilioMessage),
    /// Any other HTTP answer, with Twilio's error where it sent one.
    Error { http_status: u16, code: Option<u32>, message: String, retry_after: Option<u64> },
    /// No answer: `connection_opened` says whether the request may have left.
    Transport { connection_opened: bool, detail: String },
}

/// Twilio's error codes that Missive acts on by name (the whole classification table is
/// `classify.rs`).
pub mod codes {
    /// The recipient unsubscribed (replied STOP at Twilio's level): also an opt-out.
    pub const UNSUBSCRIBED: u32 = 21610;
    /// A free-text message outside the parent's 24-hour window: only a template goes.
    pub const OUTSIDE_WINDOW: u32 = 63016;
}

/// Readable descriptions of the delivery errors Twilio reports most often in status
/// callbacks, for `last_error` when the callback carries no `ErrorMessage`.
pub fn error_description(code: u32) -> Option<&'static str> {
    Some(match code {
        codes::UNSUBSCRIBED => "Attempt to send to unsubscribed recipient",
        30003 => "Unreachable destination handset",
        30004 => "Message blocked",
        30005 => "Unknown destination handset",
        30006 => "Landline or unreachable carrier",
        30007 => "Message filtered",
        30008 => "Unknown error",
        codes::OUTSIDE_WINDOW => "Failed to send freeform message because you are outside the allowed window",
        _ => return None,
    })
}

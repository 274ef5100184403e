//! The Message resource, shaped as Twilio's API v2010 returns it.

use chrono::{DateTime, Utc};
use rand::Rng as _;
use serde::{Deserialize, Serialize};

/// The API version every resource reports.
pub const API_VERSION: &str = "2010-04-01";

/// A Message resource, serialised field for field as Twilio does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// `SM` + 32 lowercase hex.
    pub sid: String,
    /// The account that owns the message.
    pub account_sid: String,
    /// Recipient, as given (`whatsapp:+33…`).
    pub to: String,
    /// Sender, as given; `null` for a Messaging Service until it picks a sender.
    pub from: Option<String>,
    /// The Messaging Service, when one was used.
    pub messaging_service_sid: Option<String>,
    /// Text; `null` when the create had no `Body`.
    pub body: Option<String>,
    /// `accepted`, `queued`, `sending`, `sent`, `delivered`, `read`, `undelivered`, `failed`…
    pub status: String,
    /// Always `outbound-api` here.
    pub direction: String,
    /// RFC 2822, e.g. `Tue, 24 Nov 2026 05:45:39 +0000`.
    pub date_created: String,
    /// RFC 2822.
    pub date_updated: String,
    /// RFC 2822; `null` until the message is sent.
    pub date_sent: Option<String>,
    /// Always `"1"` here.
    pub num_segments: String,
    /// Number of `MediaUrl`s, as a string.
    pub num_media: String,
    /// `null` here.
    pub price: Option<String>,
    /// `null` here.
    pub price_unit: Option<String>,
    /// Error code of a failed or undelivered message.
    pub error_code: Option<u32>,
    /// `null` here.
    pub error_message: Option<String>,
    /// `2010-04-01`.
    pub api_version: String,
    /// `/2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json`.
    pub uri: String,
    /// `{"media": …/Media.json}`.
    pub subresource_uris: SubresourceUris,
}

/// The `subresource_uris` of a Message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubresourceUris {
    /// `/2010-04-01/Accounts/{AccountSid}/Messages/{Sid}/Media.json`.
    pub media: String,
}

/// What a create asked for, once validated.
#[derive(Debug, Clone)]
pub(crate) struct NewMessage {
    pub to: String,
    pub from: Option<String>,
    pub messaging_service_sid: Option<String>,
    pub body: Option<String>,
    pub num_media: usize,
}

impl Message {
    /// A freshly created message: `queued`, or `accepted` when sent through a Messaging
    /// Service without `From`.
    pub(crate) fn create(account_sid: &str, new: NewMessage, now: DateTime<Utc>) -> Self {
        let sid = new_sid("SM");
        let base = format!("/{API_VERSION}/Accounts/{account_sid}/Messages/{sid}");
        let status = if new.from.is_none() { "accepted" } else { "queued" };
        let date = rfc2822(now);
        Message {
            uri: format!("{base}.json"),
            subresource_uris: SubresourceUris { media: format!("{base}/Media.json") },
            sid,
            account_sid: account_sid.to_owned(),
            to: new.to,
            from: new.from,
            messaging_service_sid: new.messaging_service_sid,
            body: new.body,
            status: status.to_owned(),
            direction: "outbound-api".to_owned(),
            date_created: date.clone(),
            date_updated: date,
            date_sent: None,
            num_segments: "1".to_owned(),
            num_media: new.num_media.to_string(),
            price: None,
            price_unit: None,
            error_code: None,
            error_message: None,
            api_version: API_VERSION.to_owned(),
        }
    }
}

impl Message {
    /// Moves the message to `status`. Once it leaves the queue (any status but `accepted`,
    /// `queued`, `scheduled`, `canceled`) it gets a `date_sent`, and a Messaging Service
    /// message gets its sender (`service_sender` with the channel prefix of `to`).
    pub(crate) fn set_status(&mut self, status: &str, error_code: Option<u32>, service_sender: &str) {
        let now = rfc2822(Utc::now());
        self.status = status.to_owned();
        self.date_updated = now.clone();
        if !matches!(status, "accepted" | "queued" | "scheduled" | "canceled") {
            self.date_sent.get_or_insert(now);
            if self.from.is_none() {
                let prefix = self.to.split_once(':').map_or("", |(channel, _)| channel);
                let colon = if prefix.is_empty() { "" } else { ":" };
                self.from = Some(format!("{prefix}{colon}{service_sender}"));
            }
        }
        if error_code.is_some() {
            self.error_code = error_code;
        }
    }
}

/// A Twilio SID: the prefix and 32 random lowercase hex digits.
pub fn new_sid(prefix: &str) -> String {
    format!("{prefix}{:032x}", rand::rng().random::<u128>())
}

/// A date as Twilio writes it: `Tue, 24 Nov 2026 05:45:39 +0000`.
pub fn rfc2822(at: DateTime<Utc>) -> String {
    at.format("%a, %d %b %Y %H:%M:%S +0000").to_string()
}

/// Parses a date written by [`rfc2822`] (or any RFC 2822 date).
pub(crate) fn parse_rfc2822(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc2822(text).ok().map(|d| d.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone as _;

    use super::*;

    #[test]
    fn dates_are_written_as_twilio_does() {
        let at = Utc.with_ymd_and_hms(2026, 11, 4, 5, 45, 39).unwrap();
        assert_eq!(rfc2822(at), "Wed, 04 Nov 2026 05:45:39 +0000");
        assert_eq!(parse_rfc2822(&rfc2822(at)), Some(at));
    }

    #[test]
    fn sids_are_prefix_and_32_hex() {
        let sid = new_sid("SM");
        assert_eq!(sid.len(), 34);
        assert!(sid[2..].chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)));
    }
}

//! The parents' replies (DESIGN.md, "Conversations"): an inbound message as the Inbox table
//! keeps it, which of our messages it answers, and a quick-reply acknowledgement.

use serde::{Deserialize, Serialize};

use super::status::Status;

/// A reply is attributed by recency to a message sent at most this long before it.
pub const ATTRIBUTION_SECONDS: i64 = 7 * 86_400;
/// The by-recipient Query of an attribution reads at most this many items.
pub const ATTRIBUTION_ITEMS: i32 = 20;
/// The longest acknowledgement word kept (`ack:<word>`).
pub const MAX_ACK_CHARS: usize = 32;

/// An Inbox item: one inbound message that is not a consent keyword.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxItem {
    pub phone: String,
    /// `<epoch seconds zero-padded to 10>#<MessageSid>`: the sort key, in time order.
    pub received_at_sid: String,
    pub received_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_name: Option<String>,
    #[serde(default)]
    pub num_media: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub media_urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub button_payload: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub button_text: Option<String>,
    /// Twilio's `OriginalRepliedMessageSid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replied_to_sid: Option<String>,
    /// The message of ours it answers, and its campaign.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign: Option<String>,
    /// The word of an `ack:<word>` button.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ack: Option<String>,
    pub expires_at: i64,
}

/// The Inbox sort key.
pub fn sort_key(received_at: i64, sid: &str) -> String {
    format!("{received_at:010}#{sid}")
}

/// One of a phone's MessageLog items as `by-recipient` gives it, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecentItem {
    pub message_id: String,
    pub created_at: i64,
    pub twilio_sid: Option<String>,
    pub status: Option<Status>,
}

/// Which of the phone's recent items a reply answers: the one whose SID it names
/// (`OriginalRepliedMessageSid`), else the newest that Twilio accepted within 7 days of `now`.
pub fn answered<'a>(recent: &'a [RecentItem], replied_to_sid: Option<&str>, now: i64) -> Option<&'a RecentItem> {
    if let Some(sid) = replied_to_sid {
        if let Some(item) = recent.iter().find(|item| item.twilio_sid.as_deref() == Some(sid)) {
            return Some(item);
        }
    }
    recent
        .iter()
        .filter(|item| item.created_at >= now - ATTRIBUTION_SECONDS)
        .filter(|item| matches!(item.status, Some(Status::Sent | Status::Delivered | Status::Read)))
        .max_by_key(|item| item.created_at)
}

/// The word of a quick-reply payload `ack:<word>` (trimmed, lower case, letters, digits, `_`
/// and `-`, at most 32 characters); `None` for any other payload, or `ack:` with no usable
/// word.
pub fn ack_word(payload: &str) -> Option<String> {
    let word = payload.strip_prefix("ack:")?.trim().to_lowercase();
    let usable = !word.is_empty()
        && word.chars().count() <= MAX_ACK_CHARS
        && word.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '-');
    usable.then_some(word)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn recent(id: &str, created_at: i64, sid: Option<&str>, status: Status) -> RecentItem {
        RecentItem { message_id: id.into(), created_at, twilio_sid: sid.map(str::to_owned), status: Some(status) }
    }

    #[test]
    fn a_reply_is_attributed_by_its_sid_then_by_recency() {
        let items = vec![
            recent("new-failed", NOW - 10, None, Status::Failed),
            recent("new", NOW - 100, Some("SM2"), Status::Delivered),
            recent("old", NOW - 3 * 86_400, Some("SM1"), Status::Read),
            recent("ancient", NOW - 8 * 86_400, Some("SM0"), Status::Read),
        ];
        assert_eq!(answered(&items, Some("SM1"), NOW).map(|i| i.message_id.as_str()), Some("old"));
        assert_eq!(
            answered(&items, Some("SM0"), NOW).map(|i| i.message_id.as_str()),
            Some("ancient"),
            "named, whatever its age"
        );
        assert_eq!(answered(&items, Some("SMunknown"), NOW).map(|i| i.message_id.as_str()), Some("new"));
        assert_eq!(answered(&items, None, NOW).map(|i| i.message_id.as_str()), Some("new"));
        assert_eq!(answered(&items[3..], None, NOW), None, "nothing sent within 7 days: no campaign");
        assert_eq!(answered(&[], None, NOW), None);
    }

    #[test]
    fn only_ack_payloads_with_a_word_acknowledge() {
        assert_eq!(ack_word("ack:yes"), Some("yes".into()));
        assert_eq!(ack_word("ack: Oui "), Some("oui".into()));
        assert_eq!(ack_word("ack:"), None);
        assert_eq!(ack_word("ack:   "), None);
        assert_eq!(ack_word("ack:yes please"), None);
        assert_eq!(ack_word(&format!("ack:{}", "y".repeat(33))), None);
        assert_eq!(ack_word("yes"), None);
        assert_eq!(sort_key(1_800_000_000, "SM1"), "1800000000#SM1");
        assert_eq!(sort_key(5, "SM1"), "0000000005#SM1");
    }
}

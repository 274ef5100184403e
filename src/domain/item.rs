//! A MessageLog item as the domain sees it: the stored attributes ([`LogItem`], names as in
//! DESIGN.md), the fields every first write sets ([`ItemIdentity`]), and the typed state
//! derived from them ([`ItemState`]) that the send path's decisions match on.

use serde::{Deserialize, Serialize};

use super::message::MessageId;
use super::phone::PhoneNumber;
use super::status::Status;

/// Number of shards of the `retry-due` index.
pub const RETRY_SHARDS: u32 = 16;

/// The `retry-due` shard of a message: a stable hash (FNV-1a) of its id, so that a message
/// always lands in the same shard whatever process computes it.
pub fn retry_shard(message_id: &str) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in message_id.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash % RETRY_SHARDS
}

/// A MessageLog item as read back (attribute names as in DESIGN.md).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LogItem {
    pub message_id: String,
    pub status: Option<Status>,
    pub phone: Option<String>,
    pub campaign: Option<String>,
    pub recipient_id: Option<String>,
    pub request: Option<String>,
    #[serde(default)]
    pub attempts: u32,
    pub max_attempts: Option<u32>,
    #[serde(default)]
    pub throttled: u32,
    pub last_error: Option<String>,
    pub last_error_code: Option<u32>,
    pub twilio_sid: Option<String>,
    pub twilio_status: Option<String>,
    pub twilio_rank: Option<u8>,
    pub extra_sids: Option<Vec<String>>,
    pub created_at: Option<i64>,
    pub updated_at: Option<i64>,
    pub sent_at: Option<i64>,
    pub delivered_at: Option<i64>,
    pub read_at: Option<i64>,
    pub next_attempt_at: Option<i64>,
    pub attempt_started_at: Option<i64>,
    pub lease_owner: Option<String>,
    pub lease_until: Option<i64>,
    pub retry_shard: Option<u32>,
    pub retry_due_at: Option<i64>,
    pub expires_at: Option<i64>,
    /// Who asked for it (the queue message's `requested_by`).
    pub requested_by: Option<String>,
    /// 1 (absent), or the round a `missive requeue` gave it.
    pub round: Option<u32>,
    /// What was sent: `body` or `template` (a body message's fallback when the parent's
    /// 24-hour window was closed).
    pub content_kind: Option<ContentKind>,
    /// The parent's quick-reply answer (`ack:<word>`), and when.
    pub ack: Option<String>,
    pub ack_at: Option<i64>,
    /// When a `scheduled` message was first allowed to go.
    pub released_at: Option<i64>,
}

/// What a message was sent as (`content_kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContentKind {
    Body,
    Template,
}

impl ContentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ContentKind::Body => "body",
            ContentKind::Template => "template",
        }
    }
}

/// The fields an item gets when it is first written, whatever the first write is.
#[derive(Debug, Clone)]
pub struct ItemIdentity {
    pub message_id: MessageId,
    pub phone: Option<PhoneNumber>,
    pub campaign: Option<String>,
    pub recipient_id: Option<String>,
    /// The queue body verbatim, when at most 64 KiB.
    pub request: Option<String>,
    pub max_attempts: u32,
    pub requested_by: Option<String>,
}

/// Where an item stands, as the send path's decisions need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemState<'a> {
    /// No item: the message was never recorded.
    Absent,
    /// A `send` invocation holds (or held) the lease until `lease_until`.
    Sending { lease_owner: Option<&'a str>, lease_until: Option<i64> },
    /// `retrying`, `in_doubt`: waiting for `next_attempt_at` (`None`: due at once).
    Waiting { status: Status, next_attempt_at: Option<i64> },
    /// Nothing more will be attempted (a status callback may still move it).
    Final(Status),
}

impl LogItem {
    /// The item's state. An item without `status` (never written so by Missive) is read as
    /// `sending` with no lease, which any taker may reconcile.
    pub fn state(&self) -> ItemState<'_> {
        match self.status.unwrap_or(Status::Sending) {
            Status::Sending => {
                ItemState::Sending { lease_owner: self.lease_owner.as_deref(), lease_until: self.lease_until }
            }
            status if status.is_in_flight() => ItemState::Waiting { status, next_attempt_at: self.next_attempt_at },
            status => ItemState::Final(status),
        }
    }

    /// The item's `max_attempts`, or the configured default for an item written before it had one.
    pub fn max_attempts_or(&self, default: u32) -> u32 {
        self.max_attempts.unwrap_or(default)
    }

    /// When `GIVE_UP_HOURS` start counting: the later of `created_at` and `released_at` (the
    /// time a hold ended), never while the message was held.
    pub fn give_up_base(&self) -> Option<i64> {
        match (self.created_at, self.released_at) {
            (Some(created), Some(released)) => Some(created.max(released)),
            (created, released) => created.or(released),
        }
    }
}

/// The state of an item that may not exist.
pub fn state_of(item: Option<&LogItem>) -> ItemState<'_> {
    item.map_or(ItemState::Absent, LogItem::state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_shard_is_stable_and_in_range() {
        assert_eq!(retry_shard("trip:p-1"), retry_shard("trip:p-1"));
        let shards: std::collections::HashSet<u32> = (0..1000).map(|i| retry_shard(&format!("m{i}"))).collect();
        assert_eq!(shards.len(), RETRY_SHARDS as usize);
        assert!(shards.iter().all(|s| *s < RETRY_SHARDS));
    }

    #[test]
    fn the_state_of_an_item() {
        let item = |status| LogItem { status: Some(status), next_attempt_at: Some(5), ..LogItem::default() };
        assert_eq!(state_of(None), ItemState::Absent);
        assert_eq!(
            item(Status::Retrying).state(),
            ItemState::Waiting { status: Status::Retrying, next_attempt_at: Some(5) }
        );
        assert_eq!(item(Status::Sent).state(), ItemState::Final(Status::Sent));
        assert_eq!(LogItem::default().state(), ItemState::Sending { lease_owner: None, lease_until: None });
    }
}

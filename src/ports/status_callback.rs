//! The webhook's view of MessageLog (DESIGN.md, "Webhook", "Status callback",
//! "Conversations"): the status callback's write, and what a reply needs (the phone's recent
//! messages, an acknowledgement).

use async_trait::async_trait;

use super::StoreError;
use crate::domain::inbox::RecentItem;
use crate::domain::item::LogItem;
use crate::domain::status::Status;

/// A status callback from Twilio, as the webhook applies it to a MessageLog item.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusReport {
    /// `MessageSid`.
    pub sid: String,
    /// `MessageStatus` (`queued`, `sent`, `delivered`, `read`, `failed`, `undelivered`, …).
    pub twilio_status: String,
    /// Its rank in Twilio's lifecycle (`domain::status::twilio_rank`).
    pub rank: u8,
    /// Our status for it (`domain::status::status_for_twilio`).
    pub status: Status,
    /// For `failed` / `undelivered`: `ErrorCode`, and the readable `last_error`.
    pub error_code: Option<u32>,
    pub last_error: Option<String>,
    pub now: i64,
}

impl StatusReport {
    /// The callback write's condition, as the domain states it: the item exists, holds no SID
    /// or this one, its `twilio_rank` is below the report's, and it reached Twilio at all
    /// (neither `rejected` nor `dry_run`).
    pub fn applies_to(&self, item: Option<&LogItem>) -> bool {
        item.is_some_and(|item| {
            item.twilio_sid.as_deref().is_none_or(|sid| sid == self.sid)
                && item.twilio_rank.is_none_or(|rank| rank < self.rank)
                && item.status.is_none_or(Status::accepts_callback)
        })
    }
}

/// The result of applying a status callback.
#[derive(Debug, Clone, PartialEq)]
pub enum CallbackWrite {
    /// Applied; the item as it was before the write.
    Applied(LogItem),
    /// The condition failed; the item as it was (`None`: there is no item).
    Refused(Option<LogItem>),
}

/// The webhook's view of MessageLog.
#[async_trait]
pub trait StatusCallbackLog: Send + Sync {
    /// The one conditional `UpdateItem` ([`StatusReport::applies_to`]).
    async fn apply_status(&self, message_id: &str, report: &StatusReport) -> Result<CallbackWrite, StoreError>;

    /// Adds `sid` to the item's `extra_sids` (a duplicate create); `false` when there is no item.
    async fn add_extra_sid(&self, message_id: &str, sid: &str, now: i64) -> Result<bool, StoreError>;

    /// The phone's items, newest first, at most `limit` (one `by-recipient` Query).
    async fn recent_for_phone(&self, phone: &str, limit: i32) -> Result<Vec<RecentItem>, StoreError>;

    /// The campaign of an item (`None`: no item, or no campaign).
    async fn campaign_of(&self, message_id: &str) -> Result<Option<String>, StoreError>;

    /// The parent's quick-reply answer: `ack` = `word`, `ack_at` = `at`, on an item that
    /// exists and has no `ack_at` or an older one (the last answer wins). `false` when refused.
    async fn record_ack(&self, message_id: &str, word: &str, at: i64) -> Result<bool, StoreError>;
}

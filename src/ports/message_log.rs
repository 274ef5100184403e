//! The MessageLog table as the send path writes it (DESIGN.md, "The send path"): every write
//! conditional, every refusal returning the item as it was.

use async_trait::async_trait;

use super::{Conditional, StoreError};
use crate::domain::claim::Take;
use crate::domain::item::{ContentKind, ItemIdentity, LogItem};
use crate::domain::message::MessageId;
use crate::domain::outcome::{EarlyFinal, Outcome};
use crate::domain::phone::PhoneNumber;
use crate::domain::schedule::Hold;

/// The MessageLog table.
#[async_trait]
pub trait MessageLog: Send + Sync {
    async fn get(&self, message_id: &str) -> Result<Option<LogItem>, StoreError>;

    /// Steps 1–2 and a cancelled campaign: `rejected` (only if no item); `skipped`, `expired`,
    /// `cancelled` (no item, or one waiting for its next take: `retrying`, `scheduled`).
    async fn record_early_final(
        &self,
        identity: &ItemIdentity,
        kind: EarlyFinal,
        reason: &str,
        now: i64,
        retention_days: i64,
    ) -> Result<Conditional, StoreError>;

    /// A hold (DESIGN.md, "Schedule"): `scheduled` until `hold.until` (`next_attempt_at`,
    /// `retry_due_at`, and `released_at`: the time it may go), written as steps 1–2 are (no
    /// item, or `retrying` or `scheduled`).
    async fn hold(
        &self,
        identity: &ItemIdentity,
        hold: &Hold,
        now: i64,
        retention_days: i64,
    ) -> Result<Conditional, StoreError>;

    /// Step 3: the create claim (new item, or `retrying` or `scheduled` and due); counts one
    /// attempt, and records what it will send (`content_kind`).
    async fn claim(
        &self,
        identity: &ItemIdentity,
        take: &Take,
        content_kind: ContentKind,
        retention_days: i64,
    ) -> Result<Conditional, StoreError>;

    /// Step 3b: the reconcile claim (`in_doubt` and due, or `sending` with an expired lease).
    async fn reconcile_claim(&self, message_id: &MessageId, take: &Take) -> Result<Conditional, StoreError>;

    /// After a reconcile found nothing: counts the new attempt (`attempts = seen + 1`) and
    /// what it will send.
    async fn record_new_attempt(
        &self,
        message_id: &MessageId,
        take: &Take,
        seen_attempts: u32,
        content_kind: ContentKind,
    ) -> Result<Conditional, StoreError>;

    /// Step 5: the outcome, under the lease.
    async fn record_outcome(
        &self,
        message_id: &MessageId,
        owner: &str,
        outcome: &Outcome,
        now: i64,
    ) -> Result<Conditional, StoreError>;

    /// After a lost lease: records an accepted SID on an item that has none, or adds it to
    /// `extra_sids` when the item holds another. `true` when it went to `extra_sids`: Twilio
    /// accepted two creates for one `message_id`.
    async fn record_orphan_sid(&self, message_id: &MessageId, sid: &str, now: i64) -> Result<bool, StoreError>;

    /// Twilio SIDs already held by the phone's items (through `by-recipient`), with their
    /// `message_id`.
    async fn sids_for_phone(&self, phone: &PhoneNumber) -> Result<Vec<(String, String)>, StoreError>;
}

//! The MessageLog table as the send path writes it (DESIGN.md, "The send path"): every write
//! conditional, every refusal returning the item as it was.

use async_trait::async_trait;

use super::{Conditional, StoreError};
use crate::domain::claim::Take;
use crate::domain::item::{ItemIdentity, LogItem};
use crate::domain::message::MessageId;
use crate::domain::outcome::{EarlyFinal, Outcome};
use crate::domain::phone::PhoneNumber;

/// The MessageLog table.
#[async_trait]
pub trait MessageLog: Send + Sync {
    async fn get(&self, message_id: &str) -> Result<Option<LogItem>, StoreError>;

    /// Steps 1–2: `rejected` (only if no item), `skipped` / `expired` (no item, or `retrying`).
    async fn record_early_final(
        &self,
        identity: &ItemIdentity,
        kind: EarlyFinal,
        reason: &str,
        now: i64,
        retention_days: i64,
    ) -> Result<Conditional, StoreError>;

    /// Step 3: the create claim (new item, or `retrying` and due); counts one attempt.
    async fn claim(&self, identity: &ItemIdentity, take: &Take, retention_days: i64)
        -> Result<Conditional, StoreError>;

    /// Step 3b: the reconcile claim (`in_doubt` and due, or `sending` with an expired lease).
    async fn reconcile_claim(&self, message_id: &MessageId, take: &Take) -> Result<Conditional, StoreError>;

    /// After a reconcile found nothing: counts the new attempt (`attempts = seen + 1`).
    async fn record_new_attempt(
        &self,
        message_id: &MessageId,
        take: &Take,
        seen_attempts: u32,
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

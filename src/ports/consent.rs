//! The Consent table's port. An adapter reads an item and replaces it under the condition
//! that it is still the one read; what a change writes is the domain's decision
//! (`domain::consent::plan_change`), made here once for every adapter.

use async_trait::async_trait;

use super::StoreError;
use crate::domain::consent::{plan_change, ConsentChange, ConsentItem, CurrentConsent};
use crate::domain::phone::PhoneNumber;

/// A change is retried this many times while the item keeps changing under it.
const CHANGE_ATTEMPTS: usize = 5;

/// The Consent table.
#[async_trait]
pub trait ConsentStore: Send + Sync {
    /// Strongly consistent read of the phone's whole item.
    async fn item(&self, phone: &PhoneNumber) -> Result<Option<ConsentItem>, StoreError>;

    /// Writes `new` in place of `read` (`None`: there was no item); `false` when the item is
    /// no longer the one read.
    async fn replace(&self, new: &ConsentItem, read: Option<&ConsentItem>) -> Result<bool, StoreError>;

    /// Records the parent's inbound message at `at` as `last_inbound_at` (their 24-hour
    /// window), only forward (`attribute_not_exists OR < at`); an item is created without a
    /// `state` when the phone has none. No history entry: it is not a consent change. `false`
    /// when a later message was already recorded.
    async fn record_inbound(&self, phone: &PhoneNumber, at: i64) -> Result<bool, StoreError>;

    /// The phone's current consent.
    async fn current(&self, phone: &PhoneNumber) -> Result<Option<CurrentConsent>, StoreError> {
        Ok(self.item(phone).await?.and_then(|item| item.current()))
    }

    /// Applies a change if the precedence rules allow it; returns whether it was applied. A
    /// read, then a write conditioned on what was read: a concurrent change makes the write
    /// fail and the change is decided again on a fresh read.
    async fn change(
        &self,
        phone: &PhoneNumber,
        change: ConsentChange,
        evidence: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        for _ in 0..CHANGE_ATTEMPTS {
            let existing = self.item(phone).await?;
            let Some(new) = plan_change(phone.as_str(), existing.as_ref(), change, evidence, now) else {
                return Ok(false);
            };
            if self.replace(&new, existing.as_ref()).await? {
                return Ok(true);
            }
        }
        Err(StoreError::new("PutItem Consent", "the item kept changing under five attempts"))
    }
}

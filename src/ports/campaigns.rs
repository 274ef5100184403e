//! The Campaigns table's ports: the campaigns themselves (`send` reads whether they are
//! cancelled, once per batch; the CLI creates, cancels and lists them), and the daily
//! budget's hourly items, which live in the same table.

use std::collections::HashMap;

use async_trait::async_trait;

use super::StoreError;
use crate::domain::campaign::{CampaignEvent, CampaignItem};

/// The Campaigns table's campaign items.
#[async_trait]
pub trait CampaignStore: Send + Sync {
    /// The items of these campaigns (one `BatchGetItem` per 100 names); absent ones are left
    /// out.
    async fn get_many(&self, names: &[String]) -> Result<HashMap<String, CampaignItem>, StoreError>;

    async fn get(&self, name: &str) -> Result<Option<CampaignItem>, StoreError>;

    /// A `bulk` or `send` enqueued `count` messages for the campaign: creates it on its first
    /// enqueue (`state` active, `created_at`, `created_by`, `description`, history `created`),
    /// adds `count` to `enqueued` (and a history `enqueued` event on a later one). Returns the
    /// item as it is now.
    async fn record_enqueued(
        &self,
        name: &str,
        by: &str,
        description: Option<&str>,
        count: u64,
        now: i64,
    ) -> Result<CampaignItem, StoreError>;

    /// `missive cancel` (`cancelled` true: `state` cancelled, `cancelled_at/by`,
    /// `cancel_reason`) or `--undo` (`state` active); a history event either way. `None`: no
    /// such campaign.
    async fn set_cancelled(
        &self,
        name: &str,
        cancelled: bool,
        by: &str,
        reason: &str,
        now: i64,
    ) -> Result<Option<CampaignItem>, StoreError>;

    /// Appends an event (at most the last 50 kept). `false`: no such campaign.
    async fn add_event(&self, name: &str, event: CampaignEvent) -> Result<bool, StoreError>;

    /// Every campaign (budget items left out), newest first.
    async fn list(&self) -> Result<Vec<CampaignItem>, StoreError>;
}

/// The daily budget's hourly items (`#budget:<hour>[:<part>]`, a string set `phones`).
#[async_trait]
pub trait RecipientBudget: Send + Sync {
    /// The phones of each of these items (one `BatchGetItem` per 100 keys); absent ones are
    /// left out.
    async fn phones(&self, keys: &[String]) -> Result<HashMap<String, Vec<String>>, StoreError>;

    /// `ADD phones :p` to the item `key`, which expires at `expires_at`.
    async fn add(&self, key: &str, phone: &str, expires_at: i64) -> Result<(), StoreError>;
}

//! The Inbox table's port (the parents' replies) and the staff's notifier (SNS).

use async_trait::async_trait;

use super::StoreError;
use crate::domain::inbox::InboxItem;

/// The Inbox table: partition `phone`, sort `received_at_sid`, GSI `by-campaign`.
#[async_trait]
pub trait Inbox: Send + Sync {
    /// Puts a reply unless it is already there (`attribute_not_exists(phone)`): a retried
    /// webhook writes it once. `false`: it was.
    async fn put_once(&self, item: &InboxItem) -> Result<bool, StoreError>;

    /// A phone's replies, oldest first.
    async fn for_phone(&self, phone: &str) -> Result<Vec<InboxItem>, StoreError>;

    /// A campaign's replies (`by-campaign`), oldest first.
    async fn for_campaign(&self, campaign: &str) -> Result<Vec<InboxItem>, StoreError>;

    /// Deletes a phone's replies (`missive forget`); how many.
    async fn forget_phone(&self, phone: &str) -> Result<usize, StoreError>;
}

/// Where staff are told of a reply (`REPLIES_TOPIC_ARN`).
#[async_trait]
pub trait Notifier: Send + Sync {
    async fn notify(&self, subject: &str, message: &str) -> Result<(), StoreError>;
}

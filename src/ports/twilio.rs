//! Twilio's Messages API as a port: create, and the list the reconcile reads.

use async_trait::async_trait;

use super::StoreError;
use crate::domain::message::{MessageId, Template};
use crate::domain::phone::PhoneNumber;
use crate::domain::twilio::{CreateAnswer, Sender, TwilioMessage};

/// A create request, as Missive means it (the adapter turns it into Twilio's form fields).
#[derive(Debug, Clone)]
pub struct CreateRequest {
    pub message_id: MessageId,
    pub to: PhoneNumber,
    pub sender: Sender,
    pub body: Option<String>,
    pub template: Option<Template>,
    pub media_url: Option<String>,
    pub status_callback: Option<String>,
    pub validity_period: Option<u32>,
}

/// Twilio's Messages API.
#[async_trait]
pub trait Messenger: Send + Sync {
    /// The sender messages go from.
    fn sender(&self) -> &Sender;

    async fn create(&self, request: &CreateRequest, timeout: std::time::Duration) -> CreateAnswer;

    /// Outbound messages to `to` (from `from` when given), newest first, created at or after
    /// `since` (Unix seconds); pages until older.
    async fn list_since(
        &self,
        to: &PhoneNumber,
        from: Option<&str>,
        since: i64,
    ) -> Result<Vec<TwilioMessage>, StoreError>;

    /// Reads the credentials again after an account-level error (at most once a minute).
    async fn refresh_credentials(&self) {}
}

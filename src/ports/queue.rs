//! The send queue's port.

use async_trait::async_trait;

use super::StoreError;

/// The send queue.
#[async_trait]
pub trait SendQueue: Send + Sync {
    /// Sends one body, delivered after `delay_seconds` (at most 900).
    async fn send(&self, body: &str, delay_seconds: u32) -> Result<(), StoreError>;

    /// Sends up to 10 bodies in one call; returns the indexes of the entries that failed.
    async fn send_batch(&self, bodies: &[&str]) -> Vec<usize>;
}

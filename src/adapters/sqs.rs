//! The SQS adapter of the send queue.

use async_trait::async_trait;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use aws_sdk_sqs::Client;

use super::describe;
use crate::ports::{SendQueue, StoreError};

/// The send queue (also the sweep's and the CLI's target).
#[derive(Clone)]
pub struct SqsSendQueue {
    client: Client,
    queue_url: String,
}

impl SqsSendQueue {
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        SqsSendQueue { client, queue_url: queue_url.into() }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }
}

#[async_trait]
impl SendQueue for SqsSendQueue {
    async fn send(&self, body: &str, delay_seconds: u32) -> Result<(), StoreError> {
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .delay_seconds(delay_seconds.min(900) as i32)
            .send()
            .await
            .map_err(|e| StoreError::new("SendMessage", describe(&e)))?;
        Ok(())
    }

    /// `SendMessageBatch`, 10 entries a call; a whole-call failure fails each of its entries.
    async fn send_batch(&self, bodies: &[&str]) -> Vec<usize> {
        let mut failed = Vec::new();
        for (chunk_index, chunk) in bodies.chunks(10).enumerate() {
            failed.extend(self.send_chunk(chunk).await.into_iter().map(|i| chunk_index * 10 + i));
        }
        failed
    }
}

impl SqsSendQueue {
    async fn send_chunk(&self, bodies: &[&str]) -> Vec<usize> {
        let entries: Vec<_> = bodies
            .iter()
            .enumerate()
            .map(|(i, body)| SendMessageBatchRequestEntry::builder().id(i.to_string()).message_body(*body).build())
            .collect::<Result<_, _>>()
            .unwrap_or_default();
        if entries.len() != bodies.len() {
            return (0..bodies.len()).collect();
        }
        match self.client.send_message_batch().queue_url(&self.queue_url).set_entries(Some(entries)).send().await {
            Ok(output) => output.failed.iter().filter_map(|f| f.id.parse().ok()).collect(),
            Err(err) => {
                tracing::warn!(error = %describe(&err), "SendMessageBatch failed");
                (0..bodies.len()).collect()
            }
        }
    }
}

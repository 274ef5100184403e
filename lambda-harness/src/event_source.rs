//! An SQS event source mapping as Lambda runs one, with `ReportBatchItemFailures`:
//! receive up to a batch, invoke with an `SqsEvent`, delete what the response does not list
//! in `batchItemFailures`; an invocation that fails (error, crash, timeout) deletes nothing,
//! and its messages come back when their visibility timeout ends.

use std::future::Future;
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName, QueueAttributeName};
use serde_json::{json, Value};

/// Where the events come from, and how they are batched.
#[derive(Clone, Debug)]
pub struct SqsEventSource {
    pub client: aws_sdk_sqs::Client,
    pub queue_url: String,
    pub queue_arn: String,
    pub region: String,
    /// Records per invocation at most (Lambda: `BatchSize`).
    pub batch_size: usize,
    /// How long to gather a batch once a first message arrived (Lambda:
    /// `MaximumBatchingWindowInSeconds`).
    pub window: Duration,
}

/// What one round did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Round {
    /// Records in the event.
    pub records: usize,
    /// Deleted after the invocation.
    pub deleted: usize,
    /// Listed in `batchItemFailures` (left to come back).
    pub returned: usize,
    /// The invocation failed: nothing deleted.
    pub invocation_failed: bool,
}

impl SqsEventSource {
    /// Reads the queue's ARN.
    pub async fn new(client: aws_sdk_sqs::Client, queue_url: &str, batch_size: usize) -> Result<Self, String> {
        let attributes = client
            .get_queue_attributes()
            .queue_url(queue_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|e| format!("GetQueueAttributes: {e:?}"))?;
        let queue_arn =
            attributes.attributes.and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned()).unwrap_or_default();
        let region = client.config().region().map(|r| r.to_string()).unwrap_or_else(|| "eu-west-3".into());
        Ok(SqsEventSource {
            client,
            queue_url: queue_url.to_owned(),
            queue_arn,
            region,
            batch_size,
            window: Duration::from_millis(50),
        })
    }

    /// Up to `batch_size` messages: waits at most `wait` for a first one (long polls of at
    /// most a second), then gathers more for at most `window`.
    pub async fn receive(&self, wait: Duration) -> Result<Vec<Message>, String> {
        let started = Instant::now();
        let mut messages: Vec<Message> = Vec::new();
        let mut first_at: Option<Instant> = None;
        loop {
            let wanted = (self.batch_size - messages.len()).min(10);
            let long_poll =
                if messages.is_empty() { wait.saturating_sub(started.elapsed()).as_secs().min(1) as i32 } else { 0 };
            let output = self
                .client
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(wanted as i32)
                .wait_time_seconds(long_poll)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .send()
                .await
                .map_err(|e| format!("ReceiveMessage: {e:?}"))?;
            let got = output.messages.unwrap_or_default();
            if !got.is_empty() && first_at.is_none() {
                first_at = Some(Instant::now());
            }
            let empty = got.is_empty();
            messages.extend(got);
            if messages.len() >= self.batch_size {
                return Ok(messages);
            }
            match first_at {
                Some(at) if at.elapsed() >= self.window || empty => return Ok(messages),
                Some(_) => {}
                None if started.elapsed() >= wait => return Ok(messages),
                None => {
                    if long_poll == 0 {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
        }
    }

    /// The `SqsEvent` Lambda would deliver for these messages.
    pub fn event(&self, messages: &[Message]) -> Value {
        let records: Vec<Value> = messages
            .iter()
            .map(|m| {
                let attributes: serde_json::Map<String, Value> = m
                    .attributes
                    .iter()
                    .flatten()
                    .map(|(k, v)| (k.as_str().to_owned(), Value::String(v.clone())))
                    .collect();
                json!({
                    "messageId": m.message_id,
                    "receiptHandle": m.receipt_handle,
                    "body": m.body,
                    "attributes": attributes,
                    "messageAttributes": {},
                    "md5OfBody": m.md5_of_body,
                    "eventSource": "aws:sqs",
                    "eventSourceARN": self.queue_arn,
                    "awsRegion": self.region,
                })
            })
            .collect();
        json!({ "Records": records })
    }

    /// Deletes what the invocation handled: everything but its `batchItemFailures`, or
    /// nothing when `response` is `None` (the invocation failed).
    pub async fn settle(&self, messages: &[Message], response: Option<&Value>) -> Round {
        let mut round = Round { records: messages.len(), ..Round::default() };
        let Some(response) = response else {
            round.invocation_failed = true;
            return round;
        };
        let failed: Vec<&str> = response
            .get("batchItemFailures")
            .and_then(Value::as_array)
            .map(|items| items.iter().filter_map(|i| i.get("itemIdentifier").and_then(Value::as_str)).collect())
            .unwrap_or_default();
        // An identifier that names no record of the batch makes Lambda retry the whole batch.
        let known = failed.iter().all(|id| messages.iter().any(|m| m.message_id.as_deref() == Some(*id)));
        if !known {
            round.invocation_failed = true;
            return round;
        }
        let to_delete: Vec<&Message> =
            messages.iter().filter(|m| !failed.contains(&m.message_id.as_deref().unwrap_or_default())).collect();
        round.returned = messages.len() - to_delete.len();
        for chunk in to_delete.chunks(10) {
            let entries: Vec<DeleteMessageBatchRequestEntry> = chunk
                .iter()
                .enumerate()
                .filter_map(|(i, m)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(m.receipt_handle.clone().unwrap_or_default())
                        .build()
                        .ok()
                })
                .collect();
            if let Ok(output) = self
                .client
                .delete_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries.clone()))
                .send()
                .await
            {
                round.deleted += entries.len() - output.failed.len();
            }
        }
        round
    }

    /// One round: receive (waiting at most `wait`), invoke, settle. `None` when no message
    /// came.
    pub async fn run_once<F, Fut, E>(&self, wait: Duration, invoke: F) -> Result<Option<Round>, String>
    where
        F: FnOnce(Value) -> Fut,
        Fut: Future<Output = Result<Value, E>>,
    {
        let messages = self.receive(wait).await?;
        if messages.is_empty() {
            return Ok(None);
        }
        let response = invoke(self.event(&messages)).await.ok();
        Ok(Some(self.settle(&messages, response.as_ref()).await))
    }

    /// Messages waiting plus in flight (approximate, as SQS reports them).
    pub async fn depth(&self) -> Result<(u64, u64, u64), String> {
        let output = self
            .client
            .get_queue_attributes()
            .queue_url(&self.queue_url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
            .send()
            .await
            .map_err(|e| format!("GetQueueAttributes: {e:?}"))?;
        let attributes = output.attributes.unwrap_or_default();
        let read = |name: QueueAttributeName| attributes.get(&name).and_then(|v| v.parse().ok()).unwrap_or(0);
        Ok((
            read(QueueAttributeName::ApproximateNumberOfMessages),
            read(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
            read(QueueAttributeName::ApproximateNumberOfMessagesDelayed),
        ))
    }
}

//! The `send` function: an SQS batch in, each message claimed, sent at most once in effect,
//! and its outcome recorded (DESIGN.md, "The send path", steps 1–6).
//!
//! Every decision is the domain's (`domain::admission`, `domain::claim`, `domain::outcome`,
//! `domain::reconcile`); this module only sequences the ports' calls around them:
//! - here: the batch, each record parsed, refused (steps 1–2) or taken;
//! - [`take`]: the claim, what a refused claim means, and the reconcile (steps 3, 3b);
//! - [`attempt`]: the create, its answer, the outcome and the re-enqueue (steps 4–6).

mod attempt;
mod batch;
mod take;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use futures::StreamExt;
use tracing::{error, info, warn};

use self::batch::Batch;
use crate::config::SendConfig;
use crate::domain::admission::{consent_refusal, expiry_refusal, Refusal};
use crate::domain::item::ItemIdentity;
use crate::domain::message::{QueueMessage, Rejection};
use crate::domain::outcome::EarlyFinal;
use crate::domain::status::Status;
use crate::ports::{Clock, Conditional, ConsentStore, MessageLog, Messenger, SendQueue, StoreError};

/// No record is claimed when less than the Twilio timeout plus this remains.
const DEADLINE_MARGIN: Duration = Duration::from_secs(5);

/// What the send function needs, built once per cold start.
pub struct SendHandler {
    pub config: SendConfig,
    pub log: Arc<dyn MessageLog>,
    pub consent: Arc<dyn ConsentStore>,
    pub queue: Arc<dyn SendQueue>,
    /// `None`: Twilio is not configured, every message is recorded `dry_run`.
    pub messenger: Option<Arc<dyn Messenger>>,
    pub clock: Arc<dyn Clock>,
}

/// What becomes of one SQS record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Disposition {
    /// Something durable records it: delete it from the queue.
    Acknowledge,
    /// Nothing records it: SQS must deliver it again (a batch item failure).
    ReturnToQueue,
}
use Disposition::{Acknowledge, ReturnToQueue};

/// The uniform draw of a back-off's jitter.
fn random_unit() -> f64 {
    rand::random::<f64>()
}

impl SendHandler {
    /// Processes one SQS batch; `deadline` is the Lambda's.
    pub async fn handle(&self, event: SqsEvent, deadline: SystemTime) -> SqsBatchResponse {
        let batch = Batch::new(self.clock.clone(), deadline);
        // Records are moved into their futures: a future borrowing its record through the
        // closure's argument would not be `Send` (the borrow's lifetime cannot be generalised).
        let shared = &batch;
        let results: Vec<(Option<String>, Disposition)> = futures::stream::iter(event.records)
            .map(move |record| async move {
                let disposition = self.process(shared, &record).await;
                (record.message_id, disposition)
            })
            .buffer_unordered(self.config.send_concurrency)
            .collect()
            .await;
        batch.metrics.flush();
        let mut response = SqsBatchResponse::default();
        for (id, disposition) in results {
            if disposition == ReturnToQueue {
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id.unwrap_or_default();
                response.batch_item_failures.push(failure);
            }
        }
        response
    }

    async fn process(&self, batch: &Batch, record: &SqsMessage) -> Disposition {
        let Some(body) = record.body.as_deref() else {
            error!(sqs_message_id = ?record.message_id, "record without a body: returned to the queue");
            return ReturnToQueue;
        };
        let message = match QueueMessage::parse(body) {
            Ok(message) => message,
            Err(rejection) => return self.reject(batch, body, *rejection).await,
        };
        if batch.stopped() {
            return ReturnToQueue;
        }
        if batch.remaining() < self.config.twilio_timeout + DEADLINE_MARGIN {
            warn!(message_id = %message.message_id, "too little time left in this invocation: returned to the queue");
            return ReturnToQueue;
        }
        let identity = ItemIdentity {
            message_id: message.message_id.clone(),
            phone: Some(message.to.clone()),
            campaign: message.campaign.as_ref().map(|c| c.as_str().to_owned()),
            recipient_id: message.recipient_id.as_ref().map(|r| r.as_str().to_owned()),
            request: Some(body.to_owned()),
            max_attempts: message.max_attempts.unwrap_or(self.config.policy.max_attempts),
        };
        let now = self.clock.now();
        let refusal = match self.refusal(&message, now).await {
            Ok(refusal) => refusal,
            Err(err) => {
                error!(message_id = %message.message_id, error = %err, "consent could not be read: returned to the queue");
                return ReturnToQueue;
            }
        };
        if let Some((kind, reason)) = refusal {
            match self.log.record_early_final(&identity, kind, &reason, now, self.config.retention_days).await {
                Ok(Conditional::Applied(_)) => {
                    count_status(batch, kind.status());
                    info!(message_id = %message.message_id, phone = %message.to, outcome = kind.status().as_str(), reason = %reason, "not sent");
                    return Acknowledge;
                }
                // The item exists in another state: a redelivery, handled by the claim below.
                Ok(Conditional::Refused(_)) => {}
                Err(err) => {
                    error!(message_id = %message.message_id, error = %err, "could not record the message: returned to the queue");
                    return ReturnToQueue;
                }
            }
        }
        self.claim(batch, &message, &identity).await
    }

    /// Step 1: a refused body is recorded `rejected` when it has a usable id.
    async fn reject(&self, batch: &Batch, body: &str, rejection: Rejection) -> Disposition {
        let Some(message_id) = rejection.message_id.clone() else {
            error!(reason = %rejection.reason, "message without a usable message_id: returned to the queue (it reaches the DLQ)");
            return ReturnToQueue;
        };
        let identity = ItemIdentity {
            message_id,
            phone: rejection.phone.clone(),
            campaign: rejection.campaign.as_ref().map(|c| c.as_str().to_owned()),
            recipient_id: rejection.recipient_id.as_ref().map(|r| r.as_str().to_owned()),
            request: rejection.storable.then(|| body.to_owned()),
            max_attempts: self.config.policy.max_attempts,
        };
        let now = self.clock.now();
        let written = self
            .log
            .record_early_final(&identity, EarlyFinal::Rejected, &rejection.reason, now, self.config.retention_days)
            .await;
        match written {
            Ok(Conditional::Applied(_)) => {
                batch.metrics.count("Rejected");
                warn!(message_id = %identity.message_id, outcome = "rejected", reason = %rejection.reason, "message rejected");
                Acknowledge
            }
            Ok(Conditional::Refused(_)) => {
                batch.metrics.count("Duplicate");
                warn!(message_id = %identity.message_id, reason = %rejection.reason, "invalid redelivery of an existing message: ignored");
                Acknowledge
            }
            Err(err) => {
                error!(message_id = %identity.message_id, error = %err, "could not record the rejection: returned to the queue");
                ReturnToQueue
            }
        }
    }

    /// Step 2: expiry, then consent (one strongly consistent read, only when not expired).
    async fn refusal(&self, message: &QueueMessage, now: i64) -> Result<Option<Refusal>, StoreError> {
        if let Some(refusal) = expiry_refusal(message, now) {
            return Ok(Some(refusal));
        }
        let consent = self.consent.current(&message.to).await?;
        Ok(consent_refusal(self.config.policy.consent_policy, consent))
    }
}

/// Counts an outcome's status in the invocation's metrics.
fn count_status(batch: &Batch, status: Status) {
    let name = match status {
        Status::Sent | Status::Delivered | Status::Read | Status::Undelivered => "Sent",
        Status::Retrying => "Retrying",
        Status::InDoubt => "InDoubt",
        Status::Failed => "Failed",
        Status::Rejected => "Rejected",
        Status::Skipped => "Skipped",
        Status::Expired => "Expired",
        Status::DryRun => "DryRun",
        Status::Sending => return,
    };
    batch.metrics.count(name);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>(_: &T) {}

    /// Compiled, never run: the handler's future can be spawned on a multi-threaded runtime.
    #[allow(dead_code)]
    fn the_batch_future_is_send(handler: &SendHandler) {
        let future = handler.handle(SqsEvent::default(), SystemTime::now());
        assert_send(&future);
    }
}

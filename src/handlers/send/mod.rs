//! The `send` function: an SQS batch in, each message claimed, sent at most once in effect,
//! and its outcome recorded (DESIGN.md, "The send path", steps 1–6, with the campaigns,
//! schedule, budget and window rules of the sections that follow it).
//!
//! Every decision is the domain's (`domain::admission`, `domain::claim`, `domain::outcome`,
//! `domain::reconcile`); this module only sequences the ports' calls around them:
//! - here: the batch (its records parsed, its campaigns and budget read once), each record
//!   refused, held or taken (steps 1–2);
//! - [`take`]: the claim, what a refused claim means, and the reconcile (steps 3, 3b);
//! - [`attempt`]: the create, its answer, the outcome and the re-enqueue (steps 4–6).

mod attempt;
mod batch;
mod take;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use futures::StreamExt;
use tracing::{error, info, warn};

use self::batch::Batch;
use crate::config::SendConfig;
use crate::domain::admission::{admit, admit_unheld, before_consent, budget_hold, Admission, Go, Refusal};
use crate::domain::backoff::{delay_until, MAX_DELAY_SECONDS};
use crate::domain::budget::{window_keys, BudgetWindow};
use crate::domain::campaign::CampaignItem;
use crate::domain::item::{ContentKind, ItemIdentity};
use crate::domain::message::{Content, QueueMessage, Rejection};
use crate::domain::outcome::EarlyFinal;
use crate::domain::schedule::{describe_local, Hold, HoldReason};
use crate::domain::status::Status;
use crate::ports::{
    CampaignStore, Clock, Conditional, ConsentStore, MessageLog, Messenger, RecipientBudget, SendQueue, StoreError,
};

/// No record is claimed when less than the Twilio timeout plus this remains.
const DEADLINE_MARGIN: Duration = Duration::from_secs(5);

/// What the send function needs, built once per cold start.
pub struct SendHandler {
    pub config: SendConfig,
    pub log: Arc<dyn MessageLog>,
    pub consent: Arc<dyn ConsentStore>,
    pub queue: Arc<dyn SendQueue>,
    /// The Campaigns table: whether a message's campaign is cancelled.
    pub campaigns: Arc<dyn CampaignStore>,
    /// The daily budget's hourly items (read only when `DAILY_RECIPIENT_LIMIT` is set).
    pub budget: Arc<dyn RecipientBudget>,
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

/// What a take will send, as admission decided it.
#[derive(Debug, Clone)]
struct Sending {
    content: Content,
    content_kind: ContentKind,
    /// The parent's window is closed: the phone is added to the daily budget before the
    /// create (when a budget is set).
    counts_budget: bool,
}

/// A record, and its body parsed (`None`: it has no body).
type ParsedRecord = (SqsMessage, Option<Result<QueueMessage, Box<Rejection>>>);

/// The uniform draw of a back-off's jitter.
fn random_unit() -> f64 {
    rand::random::<f64>()
}

impl SendHandler {
    /// Processes one SQS batch; `deadline` is the Lambda's.
    pub async fn handle(&self, event: SqsEvent, deadline: SystemTime) -> SqsBatchResponse {
        let mut batch = Batch::new(self.clock.clone(), deadline);
        let parsed: Vec<ParsedRecord> = event
            .records
            .into_iter()
            .map(|record| {
                let parsed = record.body.as_deref().map(QueueMessage::parse);
                (record, parsed)
            })
            .collect();
        batch.reads.campaigns = self.read_campaigns(&parsed).await;
        batch.reads.budget = self.read_budget().await;
        // Records are moved into their futures: a future borrowing its record through the
        // closure's argument would not be `Send` (the borrow's lifetime cannot be generalised).
        let shared = &batch;
        let results: Vec<(Option<String>, Disposition)> = futures::stream::iter(parsed)
            .map(move |(record, parsed)| async move {
                let disposition = self.process(shared, &record, parsed).await;
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

    /// The items of the batch's campaigns, in one read (`None`: it failed).
    async fn read_campaigns(&self, parsed: &[ParsedRecord]) -> Option<HashMap<String, CampaignItem>> {
        let names: BTreeSet<String> = parsed
            .iter()
            .filter_map(|(_, parsed)| parsed.as_ref()?.as_ref().ok()?.campaign.as_ref())
            .map(|campaign| campaign.as_str().to_owned())
            .collect();
        if names.is_empty() {
            return Some(HashMap::new());
        }
        let names: Vec<String> = names.into_iter().collect();
        match self.campaigns.get_many(&names).await {
            Ok(items) => Some(items),
            Err(err) => {
                error!(error = %err, campaigns = names.len(), "could not read the batch's campaigns: their messages go back to the queue");
                None
            }
        }
    }

    /// The daily budget's last 24 hours, when a budget is set (`None` inside: the read failed).
    async fn read_budget(&self) -> Option<Mutex<BudgetWindow>> {
        let budget = self.config.budget.as_ref()?;
        let keys = window_keys(self.clock.now(), budget);
        let names: Vec<String> = keys.iter().map(|(_, key)| key.clone()).collect();
        match self.budget.phones(&names).await {
            Ok(items) => {
                let mut window = BudgetWindow::default();
                for (hour, key) in keys {
                    if let Some(phones) = items.get(&key) {
                        window.add_hour(hour, phones.iter().cloned());
                    }
                }
                Some(Mutex::new(window))
            }
            Err(err) => {
                error!(error = %err, "could not read the daily budget: messages outside their window go back to the queue");
                None
            }
        }
    }

    async fn process(
        &self,
        batch: &Batch,
        record: &SqsMessage,
        parsed: Option<Result<QueueMessage, Box<Rejection>>>,
    ) -> Disposition {
        let (Some(body), Some(parsed)) = (record.body.as_deref(), parsed) else {
            error!(sqs_message_id = ?record.message_id, "record without a body: returned to the queue");
            return ReturnToQueue;
        };
        let message = match parsed {
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
            requested_by: message.requested_by.clone(),
        };
        let admission = match self.admission(batch, &message).await {
            Ok(admission) => admission,
            Err(err) => {
                error!(message_id = %message.message_id, error = %err, "could not decide whether it may go: returned to the queue");
                return ReturnToQueue;
            }
        };
        match admission {
            Admission::Refuse((kind, reason)) => self.refuse(batch, &message, &identity, kind, &reason).await,
            Admission::Hold(hold) => self.hold(batch, &message, &identity, hold).await,
            Admission::Go(go) => {
                let sending = self.sending(go);
                self.claim(batch, &message, &identity, sending).await
            }
        }
    }

    /// Steps 1–2 and the campaign, schedule, budget and window rules: what `message` may do
    /// now. Reads the phone's Consent item (unless refused before); the budget's check and
    /// count are made under the batch's lock on its window.
    async fn admission(&self, batch: &Batch, message: &QueueMessage) -> Result<Admission, StoreError> {
        let now = self.clock.now();
        let campaign = match (&message.campaign, &batch.reads.campaigns) {
            (None, _) => None,
            (Some(name), Some(items)) => items.get(name.as_str()),
            (Some(_), None) => return Err(StoreError::new("BatchGetItem Campaigns", "the batch's read failed")),
        };
        if let Some(refusal) = before_consent(message, campaign, now) {
            return Ok(Admission::Refuse(refusal));
        }
        let consent = self.consent.item(&message.to).await?;
        let calendar = &self.config.calendar;
        let admission = admit(message, consent.as_ref(), &self.config.policy, calendar, now);
        let (Admission::Go(Go { outside_window: true, .. }), Some(budget)) = (&admission, &self.config.budget) else {
            return Ok(admission);
        };
        let Some(window) = &batch.reads.budget else {
            return Err(StoreError::new("BatchGetItem Campaigns", "the daily budget's read failed"));
        };
        let mut window = window.lock().expect("budget window lock");
        if let Some(held) = budget_hold(message, &window, budget, calendar, now) {
            return Ok(held);
        }
        window.record(message.to.as_str(), now);
        Ok(admission)
    }

    /// A final status without any send (`expired`, `skipped`, `cancelled`, `rejected` for a
    /// `not_before` too far ahead). A refused write means the item exists in another state:
    /// a redelivery, which the claim handles.
    async fn refuse(
        &self,
        batch: &Batch,
        message: &QueueMessage,
        identity: &ItemIdentity,
        kind: EarlyFinal,
        reason: &str,
    ) -> Disposition {
        let now = self.clock.now();
        match self.log.record_early_final(identity, kind, reason, now, self.config.retention_days).await {
            Ok(Conditional::Applied(_)) => {
                count_status(batch, kind.status());
                info!(message_id = %message.message_id, phone = %message.to, outcome = kind.status().as_str(), reason = %reason, "not sent");
                Acknowledge
            }
            Ok(Conditional::Refused(_)) => self.redelivered(batch, message, identity).await,
            Err(err) => {
                error!(message_id = %message.message_id, error = %err, "could not record the message: returned to the queue");
                ReturnToQueue
            }
        }
    }

    /// `scheduled` until the hold ends, with a delayed copy when SQS can delay it that long
    /// (the sweep brings back the later ones at their `retry_due_at`).
    async fn hold(&self, batch: &Batch, message: &QueueMessage, identity: &ItemIdentity, hold: Hold) -> Disposition {
        let now = self.clock.now();
        match self.log.hold(identity, &hold, now, self.config.retention_days).await {
            Ok(Conditional::Applied(_)) => {
                batch.metrics.count("Scheduled");
                if hold.reason == HoldReason::Budget {
                    batch.metrics.count("BudgetHeld");
                }
                let until = describe_local(self.config.calendar.timezone, hold.until);
                info!(message_id = %message.message_id, outcome = "scheduled", hold = hold.reason.as_str(), until = %until, "held");
                if hold.until - now <= MAX_DELAY_SECONDS as i64 {
                    let request = identity.request.as_deref().unwrap_or_default();
                    if let Err(err) = self.queue.send(request, delay_until(hold.until, now)).await {
                        warn!(message_id = %message.message_id, error = %err, "delayed copy not enqueued; the sweep will bring it back");
                    }
                }
                Acknowledge
            }
            Ok(Conditional::Refused(_)) => self.redelivered(batch, message, identity).await,
            Err(err) => {
                error!(message_id = %message.message_id, error = %err, "could not record the hold: returned to the queue");
                ReturnToQueue
            }
        }
    }

    /// A copy of a message whose item is in a state a refusal or a hold may not replace: the
    /// claim says what it is (a duplicate, an early copy, a doubt to reconcile). Nothing it
    /// would send is decided here: a claim over a final or leased item is refused.
    async fn redelivered(&self, batch: &Batch, message: &QueueMessage, identity: &ItemIdentity) -> Disposition {
        let sending = Sending {
            content: message.content.clone(),
            content_kind: match message.content {
                Content::Body(_) => ContentKind::Body,
                Content::Template(_) => ContentKind::Template,
            },
            counts_budget: false,
        };
        self.claim(batch, message, identity, sending).await
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
            requested_by: None,
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

    /// What a reconcile that found nothing may still do: refused (consent or expiry now
    /// refuse, the campaign was cancelled), or a new attempt with the content the window
    /// allows. A reconcile's new attempt is not held: the message was allowed to go when it
    /// was first attempted, and the attempt in doubt may already have reached the parent.
    async fn readmission(&self, batch: &Batch, message: &QueueMessage) -> Result<Result<Sending, Refusal>, StoreError> {
        let now = self.clock.now();
        let campaign = match (&message.campaign, &batch.reads.campaigns) {
            (Some(name), Some(items)) => items.get(name.as_str()),
            _ => None,
        };
        if let Some(refusal) = before_consent(message, campaign, now) {
            return Ok(Err(refusal));
        }
        let consent = self.consent.item(&message.to).await?;
        Ok(admit_unheld(message, consent.as_ref(), &self.config.policy, now).map(|go| self.sending(go)))
    }

    /// What a take sends, from what admission decided.
    fn sending(&self, go: Go) -> Sending {
        Sending {
            content: go.content,
            content_kind: go.content_kind,
            counts_budget: go.outside_window && self.config.budget.is_some(),
        }
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
        Status::Cancelled => "Cancelled",
        Status::Scheduled => "Scheduled",
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

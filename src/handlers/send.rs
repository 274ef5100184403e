//! The `send` function: an SQS batch in, each message claimed, sent at most once in effect,
//! and its outcome recorded (DESIGN.md, "The send path", steps 1–6).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use futures::StreamExt;
use tracing::{error, info, warn};

use crate::config::{SendConfig, Sender};
use crate::domain::backoff::{throttle_pause_ms, throttled_delay, transient_delay, MAX_DELAY_SECONDS};
use crate::domain::classify::{classify_error, classify_transport, ErrorClass};
use crate::domain::consent::{refusal, ConsentChange, ConsentSource, ConsentState};
use crate::domain::message::{Content, MessageId, QueueMessage, Rejection};
use crate::domain::phone::mask_phones_in;
use crate::domain::status::Status;
use crate::metrics::Metrics;
use crate::ports::{
    Clock, Conditional, ConsentStore, CreateAnswer, CreateRequest, EarlyFinal, GiveBack, ItemIdentity, LogItem,
    MessageLog, Messenger, Outcome, SendQueue, Take, TwilioMessage,
};

/// Twilio's `ValidityPeriod` maximum, in seconds.
const MAX_VALIDITY_SECONDS: i64 = 36_000;
/// A reconcile accepts candidates created this long before the attempt started or after its
/// lease ended (clock differences between Twilio and us).
const RECONCILE_SLACK_SECONDS: i64 = 60;
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

/// The state one invocation shares between its records.
struct Batch {
    deadline: SystemTime,
    stop_creating: AtomicBool,
    pause_until: Mutex<Option<Instant>>,
    metrics: Metrics,
}

impl Batch {
    fn remaining(&self) -> Duration {
        self.deadline.duration_since(SystemTime::now()).unwrap_or_default()
    }

    async fn wait_for_pause(&self) {
        let until = *self.pause_until.lock().expect("pause lock");
        if let Some(until) = until {
            tokio::time::sleep_until(until.into()).await;
        }
    }

    fn pause_for(&self, duration: Duration) {
        let until = Instant::now() + duration;
        let mut pause = self.pause_until.lock().expect("pause lock");
        if pause.is_none_or(|current| current < until) {
            *pause = Some(until);
        }
    }
}

/// One message's take: the parsed message, its identity and the lease.
struct Attempt<'a> {
    message: &'a QueueMessage,
    identity: &'a ItemIdentity,
    take: Take,
}

fn random_unit() -> f64 {
    rand::random::<f64>()
}

impl SendHandler {
    /// Processes one SQS batch; `deadline` is the Lambda's.
    pub async fn handle(&self, event: SqsEvent, deadline: SystemTime) -> SqsBatchResponse {
        let batch = Batch {
            deadline,
            stop_creating: AtomicBool::new(false),
            pause_until: Mutex::new(None),
            metrics: Metrics::new("send"),
        };
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
        if batch.stop_creating.load(Ordering::SeqCst) {
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
            max_attempts: message.max_attempts.unwrap_or(self.config.max_attempts),
        };
        let now = self.clock.now();
        let refusal = match self.early_refusal(&message, now).await {
            Ok(refusal) => refusal,
            Err(err) => {
                error!(message_id = %message.message_id, error = %err, "consent could not be read: returned to the queue");
                return ReturnToQueue;
            }
        };
        if let Some((kind, reason)) = refusal {
            match self.log.record_early_final(&identity, kind, &reason, now, self.config.retention_days).await {
                Ok(Conditional::Applied(_)) => {
                    self.count_final(batch, kind.status());
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
            max_attempts: self.config.max_attempts,
        };
        let now = self.clock.now();
        match self
            .log
            .record_early_final(&identity, EarlyFinal::Rejected, &rejection.reason, now, self.config.retention_days)
            .await
        {
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

    /// Step 2: expiry and consent.
    async fn early_refusal(
        &self,
        message: &QueueMessage,
        now: i64,
    ) -> Result<Option<(EarlyFinal, String)>, crate::ports::StoreError> {
        if message.not_after.is_some_and(|not_after| not_after <= now) {
            return Ok(Some((EarlyFinal::Expired, "not_after passed before it could be sent".into())));
        }
        let consent = self.consent.current(&message.to).await?;
        Ok(refusal(self.config.consent_policy, consent).map(|reason| (EarlyFinal::Skipped, reason.to_owned())))
    }

    fn new_take(&self) -> Take {
        let now = self.clock.now();
        Take {
            owner: format!("{:032x}", rand::random::<u128>()),
            now,
            lease_until: now + self.config.lease_seconds,
            due: now + self.config.clock_skew_seconds,
        }
    }

    /// Step 3: the create claim.
    async fn claim(&self, batch: &Batch, message: &QueueMessage, identity: &ItemIdentity) -> Disposition {
        let take = self.new_take();
        match self.log.claim(identity, &take, self.config.retention_days).await {
            Ok(Conditional::Applied(item)) => self.attempt(batch, Attempt { message, identity, take }, item).await,
            Ok(Conditional::Refused(Some(old))) if old.lease_owner.as_deref() == Some(take.owner.as_str()) => {
                // The SDK retried a claim that had already applied.
                self.attempt(batch, Attempt { message, identity, take }, old).await
            }
            Ok(Conditional::Refused(old)) => self.on_conflict(batch, message, identity, old, true).await,
            Err(err) => {
                error!(message_id = %message.message_id, error = %err, "claim failed: returned to the queue");
                ReturnToQueue
            }
        }
    }

    /// Why a claim failed, read from the item as it was.
    async fn on_conflict(
        &self,
        batch: &Batch,
        message: &QueueMessage,
        identity: &ItemIdentity,
        old: Option<LogItem>,
        may_reconcile: bool,
    ) -> Disposition {
        let Some(old) = old else {
            warn!(message_id = %message.message_id, "the item vanished during the claim: returned to the queue");
            return ReturnToQueue;
        };
        let now = self.clock.now();
        let status = old.status.unwrap_or(Status::Sending);
        let due = old.next_attempt_at.is_none_or(|at| at <= now + self.config.clock_skew_seconds);
        match status {
            status if status.is_final() => {
                batch.metrics.count("Duplicate");
                info!(message_id = %message.message_id, status = status.as_str(), outcome = "duplicate", "already final: acknowledged");
                Acknowledge
            }
            Status::Sending if old.lease_until.is_some_and(|until| until >= now) => {
                batch.metrics.count("Duplicate");
                info!(message_id = %message.message_id, outcome = "in_flight_elsewhere", "another taker holds the lease: acknowledged");
                Acknowledge
            }
            Status::Retrying | Status::InDoubt if !due => {
                let delay = (old.next_attempt_at.unwrap_or(now) - now).clamp(0, MAX_DELAY_SECONDS as i64) as u32;
                let request = old.request.as_deref().or(identity.request.as_deref()).unwrap_or_default();
                if let Err(err) = self.queue.send(request, delay).await {
                    warn!(message_id = %message.message_id, error = %err, "early copy not re-enqueued; the sweep will bring it back");
                }
                info!(message_id = %message.message_id, delay_seconds = delay, outcome = "early", "came before its time: re-enqueued");
                Acknowledge
            }
            Status::InDoubt | Status::Sending if may_reconcile => {
                Box::pin(self.reconcile(batch, message, identity)).await
            }
            _ => {
                info!(message_id = %message.message_id, status = status.as_str(), "taken by another invocation meanwhile: acknowledged");
                Acknowledge
            }
        }
    }

    /// Step 3b: the reconcile claim, then the reconcile.
    async fn reconcile(&self, batch: &Batch, message: &QueueMessage, identity: &ItemIdentity) -> Disposition {
        let take = self.new_take();
        let item = match self.log.reconcile_claim(&message.message_id, &take).await {
            Ok(Conditional::Applied(item)) => item,
            Ok(Conditional::Refused(Some(old))) if old.lease_owner.as_deref() == Some(take.owner.as_str()) => old,
            Ok(Conditional::Refused(old)) => return self.on_conflict(batch, message, identity, old, false).await,
            Err(err) => {
                error!(message_id = %message.message_id, error = %err, "reconcile claim failed: returned to the queue");
                return ReturnToQueue;
            }
        };
        let attempt = Attempt { message, identity, take };
        if let Some(sid) = &item.twilio_sid {
            // A status callback already told us Twilio has it.
            let twilio_status = item.twilio_status.clone().unwrap_or_else(|| "sent".into());
            let outcome = Outcome::Accepted { sid: sid.clone(), twilio_status };
            return self.record(batch, &attempt, &item, outcome, None).await;
        }
        let Some(messenger) = &self.messenger else {
            let outcome = self.in_doubt_or_give_up(&item, "Twilio is not configured: cannot reconcile".into());
            return self.record(batch, &attempt, &item, outcome, None).await;
        };
        let found = match self.find_at_twilio(messenger.as_ref(), message, &item).await {
            Ok(found) => found,
            Err(reason) => {
                let outcome = self.in_doubt_or_give_up(&item, reason);
                return self.record(batch, &attempt, &item, outcome, None).await;
            }
        };
        if let Some(found) = found {
            info!(message_id = %message.message_id, twilio_sid = %found.sid, outcome = "reconciled", "found at Twilio: no new create");
            let outcome = Outcome::Accepted { sid: found.sid, twilio_status: found.status };
            return self.record(batch, &attempt, &item, outcome, None).await;
        }
        let now = self.clock.now();
        match self.early_refusal(message, now).await {
            Ok(Some((kind, reason))) => {
                let outcome = Outcome::Final { status: kind.status(), last_error: reason, last_error_code: None };
                return self.record(batch, &attempt, &item, outcome, None).await;
            }
            Ok(None) => {}
            Err(err) => {
                let outcome = self.in_doubt_or_give_up(&item, format!("consent could not be read: {err}"));
                return self.record(batch, &attempt, &item, outcome, None).await;
            }
        }
        if let Some(outcome) = self.given_up(&item, now) {
            return self.record(batch, &attempt, &item, outcome, None).await;
        }
        let max_attempts = item.max_attempts.unwrap_or(self.config.max_attempts);
        if item.attempts >= max_attempts {
            let outcome = Outcome::Final {
                status: Status::Failed,
                last_error: "in doubt and not found at Twilio".into(),
                last_error_code: None,
            };
            return self.record(batch, &attempt, &item, outcome, None).await;
        }
        let mut take = attempt.take;
        take.now = now;
        match self.log.record_new_attempt(&message.message_id, &take, item.attempts).await {
            Ok(Conditional::Applied(item)) => self.create(batch, Attempt { take, ..attempt }, item).await,
            // The SDK retried a write that had already applied: our lease, our count, our time.
            Ok(Conditional::Refused(Some(old)))
                if old.lease_owner.as_deref() == Some(take.owner.as_str())
                    && old.attempts == item.attempts + 1
                    && old.attempt_started_at == Some(take.now) =>
            {
                self.create(batch, Attempt { take, ..attempt }, old).await
            }
            Ok(Conditional::Refused(_)) => {
                batch.metrics.count("LeaseLost");
                warn!(message_id = %message.message_id, outcome = "lease_lost", "lease lost before a new attempt");
                Acknowledge
            }
            Err(err) => {
                // The lease expires and the sweep makes the item in doubt again.
                error!(message_id = %message.message_id, error = %err, "could not count the new attempt; the sweep will retry");
                Acknowledge
            }
        }
    }

    /// Looks the message up at Twilio: an outbound message from our sender, created within
    /// the attempt's window, with the same text, whose SID no other item of the phone holds.
    async fn find_at_twilio(
        &self,
        messenger: &dyn Messenger,
        message: &QueueMessage,
        item: &LogItem,
    ) -> Result<Option<TwilioMessage>, String> {
        let started = item.attempt_started_at.unwrap_or_else(|| self.clock.now());
        let window =
            (started - RECONCILE_SLACK_SECONDS)..=(started + self.config.lease_seconds + RECONCILE_SLACK_SECONDS);
        let sender = messenger.sender();
        let from = match sender {
            Sender::From(from) => Some(from.as_str()),
            Sender::MessagingService(_) => None,
        };
        let listed = messenger
            .list_since(&message.to, from, *window.start())
            .await
            .map_err(|e| format!("reconcile failed: {e}"))?;
        tracing::debug!(message_id = %message.message_id, listed = listed.len(), window_start = *window.start(), window_end = *window.end(), "reconcile: listed at Twilio");
        let mut candidates: Vec<TwilioMessage> = listed
            .into_iter()
            .filter(|m| m.direction.as_deref().is_some_and(|d| d.starts_with("outbound")))
            .filter(|m| match sender {
                Sender::From(from) => m.from.as_deref() == Some(from.as_str()),
                Sender::MessagingService(sid) => m.messaging_service_sid.as_deref() == Some(sid.as_str()),
            })
            .filter(|m| m.created_at().is_some_and(|at| window.contains(&at)))
            .filter(|m| match &message.content {
                Content::Body(body) => m.body.as_deref() == Some(body.as_str()),
                Content::Template(_) => true,
            })
            .collect();
        if candidates.is_empty() {
            return Ok(None);
        }
        let held = self.log.sids_for_phone(&message.to).await.map_err(|e| format!("reconcile failed: {e}"))?;
        candidates.retain(|m| !held.iter().any(|(id, sid)| sid == &m.sid && id != message.message_id.as_str()));
        if candidates.len() > 1 {
            warn!(message_id = %message.message_id, candidates = candidates.len(), outcome = "reconcile_ambiguous", "several messages at Twilio match: the oldest is taken");
        }
        candidates.sort_by_key(|m| m.created_at());
        Ok(candidates.into_iter().next())
    }

    fn in_doubt_again(&self, item: &LogItem, reason: String) -> Outcome {
        let now = self.clock.now();
        let delay = transient_delay(self.config.backoff_base_seconds, item.attempts.max(1), None, random_unit()) as i64;
        let next_attempt_at = now + delay.max(self.config.reconcile_delay_seconds);
        Outcome::InDoubt {
            last_error: reason,
            next_attempt_at,
            retry_due_at: next_attempt_at + self.config.sweep_grace_seconds,
        }
    }

    /// The reconcile could not look at Twilio (or consent): in doubt again, or `failed` once
    /// `GIVE_UP_HOURS` have passed, so that a reconcile that keeps failing still ends.
    fn in_doubt_or_give_up(&self, item: &LogItem, reason: String) -> Outcome {
        let latest = LogItem { last_error: Some(reason.clone()), ..item.clone() };
        self.given_up(&latest, self.clock.now()).unwrap_or_else(|| self.in_doubt_again(item, reason))
    }

    /// `failed` when the message is still not final `GIVE_UP_HOURS` after it was created.
    fn given_up(&self, item: &LogItem, now: i64) -> Option<Outcome> {
        let created_at = item.created_at?;
        (now >= created_at + self.config.give_up_hours * 3600).then(|| Outcome::Final {
            status: Status::Failed,
            last_error: format!(
                "gave up after {} h: {}",
                self.config.give_up_hours,
                item.last_error.as_deref().unwrap_or("no attempt succeeded")
            ),
            last_error_code: item.last_error_code,
        })
    }

    /// After a create claim: give up, or create.
    async fn attempt(&self, batch: &Batch, attempt: Attempt<'_>, item: LogItem) -> Disposition {
        if let Some(outcome) = self.given_up(&item, self.clock.now()) {
            return self.record(batch, &attempt, &item, outcome, None).await;
        }
        self.create(batch, attempt, item).await
    }

    /// Step 4: the create, classified, then recorded.
    async fn create(&self, batch: &Batch, attempt: Attempt<'_>, item: LogItem) -> Disposition {
        let Some(messenger) = &self.messenger else {
            return self.record(batch, &attempt, &item, Outcome::DryRun, None).await;
        };
        let message = attempt.message;
        batch.wait_for_pause().await;
        let not_started = if batch.stop_creating.load(Ordering::SeqCst) {
            Some("not attempted: the batch stopped after an account-level error")
        } else if batch.remaining() < self.config.twilio_timeout + DEADLINE_MARGIN {
            // A reconcile or a throttle pause used the time: a create cut short would only
            // leave the message in doubt.
            Some("not attempted: too little of the invocation's time was left")
        } else {
            None
        };
        if let Some(reason) = not_started {
            let outcome = self.give_back(&item, reason.into(), None, None, GiveBack::NotStarted);
            return self.record(batch, &attempt, &item, outcome, None).await;
        }
        let now = self.clock.now();
        let timeout = self.config.twilio_timeout.min(batch.remaining().saturating_sub(Duration::from_secs(1)));
        let request = CreateRequest {
            message_id: message.message_id.clone(),
            to: message.to.clone(),
            sender: messenger.sender().clone(),
            body: message.body().map(str::to_owned),
            template: match &message.content {
                Content::Template(template) => Some(template.clone()),
                Content::Body(_) => None,
            },
            media_url: message.media_url.clone(),
            status_callback: self.status_callback(message),
            validity_period: message.not_after.map(|at| (at - now).clamp(1, MAX_VALIDITY_SECONDS) as u32),
        };
        let started = Instant::now();
        let answer = messenger.create(&request, timeout).await;
        let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
        batch.metrics.twilio_latency(latency_ms);
        let (outcome, code) = self.classify(batch, messenger.as_ref(), &message.message_id, &item, answer).await;
        if code == Some(21610) {
            let change =
                ConsentChange { state: ConsentState::OptedOut, source: ConsentSource::Twilio21610, has_evidence: true };
            if let Err(err) =
                self.consent.change(&message.to, change, &format!("create of {}", message.message_id), now).await
            {
                error!(message_id = %message.message_id, error = %err, "could not record the opt-out of a 21610");
            }
        }
        self.record(batch, &attempt, &item, outcome, Some((code, latency_ms))).await
    }

    fn status_callback(&self, message: &QueueMessage) -> Option<String> {
        let mut url = url::Url::parse(self.config.status_callback_url.as_deref()?).ok()?;
        url.query_pairs_mut().append_pair("message_id", message.message_id.as_str());
        Some(url.into())
    }

    /// `retrying` with the attempt returned, after the throttled back-off.
    fn give_back(
        &self,
        item: &LogItem,
        last_error: String,
        code: Option<u32>,
        retry_after: Option<u64>,
        give_back: GiveBack,
    ) -> Outcome {
        let now = self.clock.now();
        let delay = throttled_delay(item.throttled + 1, retry_after, random_unit()) as i64;
        Outcome::Retrying {
            last_error,
            last_error_code: code,
            next_attempt_at: now + delay,
            retry_due_at: now + delay + self.config.sweep_grace_seconds,
            give_back,
        }
    }

    /// The create's answer as an outcome, with Twilio's error code.
    async fn classify(
        &self,
        batch: &Batch,
        messenger: &dyn Messenger,
        message_id: &MessageId,
        item: &LogItem,
        answer: CreateAnswer,
    ) -> (Outcome, Option<u32>) {
        let (class, last_error, code, retry_after) = match answer {
            CreateAnswer::Accepted(message) => {
                return (Outcome::Accepted { sid: message.sid, twilio_status: message.status }, None);
            }
            CreateAnswer::Error { http_status, code, message, retry_after } => {
                (classify_error(http_status, code), message, code, retry_after)
            }
            CreateAnswer::Transport { connection_opened, detail } => {
                let class = classify_transport(connection_opened);
                let text = if class == ErrorClass::InDoubt {
                    format!("{detail} (in doubt)")
                } else {
                    format!("connection failed: {detail}")
                };
                (class, text, None, None)
            }
        };
        let now = self.clock.now();
        let max_attempts = item.max_attempts.unwrap_or(self.config.max_attempts);
        let outcome = match class {
            ErrorClass::Throttled => {
                batch.pause_for(Duration::from_millis(throttle_pause_ms(retry_after)));
                self.give_back(item, last_error, code, retry_after, GiveBack::Answered)
            }
            ErrorClass::AccountLevel => {
                batch.stop_creating.store(true, Ordering::SeqCst);
                batch.metrics.count("AccountError");
                error!(message_id = %message_id, account_error = true, twilio_code = code, error = %mask_phones_in(&last_error), "account-level error from Twilio: this batch stops creating");
                messenger.refresh_credentials().await;
                self.give_back(item, last_error, code, retry_after, GiveBack::Answered)
            }
            ErrorClass::Transient if item.attempts < max_attempts => {
                let delay =
                    transient_delay(self.config.backoff_base_seconds, item.attempts, retry_after, random_unit()) as i64;
                Outcome::Retrying {
                    last_error,
                    last_error_code: code,
                    next_attempt_at: now + delay,
                    retry_due_at: now + delay + self.config.sweep_grace_seconds,
                    give_back: GiveBack::No,
                }
            }
            ErrorClass::InDoubt => {
                let next_attempt_at = now + self.config.reconcile_delay_seconds;
                Outcome::InDoubt {
                    last_error,
                    next_attempt_at,
                    retry_due_at: next_attempt_at + self.config.sweep_grace_seconds,
                }
            }
            ErrorClass::Transient | ErrorClass::Permanent => {
                Outcome::Final { status: Status::Failed, last_error, last_error_code: code }
            }
        };
        (outcome, code)
    }

    /// Steps 5–6: the outcome under the lease, then the delayed re-enqueue.
    async fn record(
        &self,
        batch: &Batch,
        attempt: &Attempt<'_>,
        item: &LogItem,
        outcome: Outcome,
        twilio: Option<(Option<u32>, f64)>,
    ) -> Disposition {
        let message_id = &attempt.message.message_id;
        let now = self.clock.now();
        let written = match self.log.record_outcome(message_id, &attempt.take.owner, &outcome, now).await {
            Ok(written) => written,
            Err(err) => {
                // The claim is durable: the lease expires, and the sweep makes it in doubt.
                error!(message_id = %message_id, error = %err, outcome = outcome.status().as_str(), "could not record the outcome; the sweep will reconcile");
                return Acknowledge;
            }
        };
        let ours = match &written {
            Conditional::Applied(_) => true,
            Conditional::Refused(Some(old)) => match &outcome {
                Outcome::Accepted { sid, .. } => {
                    old.twilio_sid.as_deref() == Some(sid.as_str())
                        && old.lease_owner.is_none()
                        && old.updated_at == Some(now)
                }
                _ => old.status == Some(outcome.status()) && old.lease_owner.is_none() && old.updated_at == Some(now),
            },
            Conditional::Refused(None) => false,
        };
        let status = outcome.status();
        let (twilio_code, latency_ms) = twilio.map_or((None, None), |(code, ms)| (code, Some(ms.round() as u64)));
        if !ours {
            batch.metrics.count("LeaseLost");
            warn!(message_id = %message_id, attempt = item.attempts, outcome = "lease_lost", "the lease was lost: the outcome is not written over");
            if let Outcome::Accepted { sid, .. } = &outcome {
                match self.log.record_orphan_sid(message_id, sid, now).await {
                    Ok(false) => {}
                    Ok(true) => {
                        error!(message_id = %message_id, twilio_sid = %sid, outcome = "duplicate_create", "Twilio accepted a second create for this message_id: its SID is kept in extra_sids");
                    }
                    Err(err) => {
                        error!(message_id = %message_id, twilio_sid = %sid, error = %err, "could not record the SID after a lost lease");
                    }
                }
            }
            return Acknowledge;
        }
        self.count_final(batch, status);
        if matches!(outcome, Outcome::Retrying { give_back: GiveBack::Answered, .. }) {
            batch.metrics.count("Throttled");
        }
        // Twilio's texts can quote the recipient: masked here, kept whole in MessageLog.
        let last_error = match &outcome {
            Outcome::Retrying { last_error, .. }
            | Outcome::InDoubt { last_error, .. }
            | Outcome::Final { last_error, .. } => Some(mask_phones_in(last_error)),
            Outcome::Accepted { .. } | Outcome::DryRun => None,
        };
        info!(
            message_id = %message_id,
            phone = %attempt.message.to,
            attempt = item.attempts,
            outcome = status.as_str(),
            twilio_code,
            latency_ms,
            last_error,
            "outcome recorded"
        );
        if let Outcome::Retrying { next_attempt_at, .. } | Outcome::InDoubt { next_attempt_at, .. } = outcome {
            let delay = (next_attempt_at - now).clamp(0, MAX_DELAY_SECONDS as i64) as u32;
            let request = attempt.identity.request.as_deref().unwrap_or_default();
            if let Err(err) = self.queue.send(request, delay).await {
                warn!(message_id = %message_id, error = %err, "re-enqueue failed; the sweep will bring it back");
            }
        }
        Acknowledge
    }

    fn count_final(&self, batch: &Batch, status: Status) {
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

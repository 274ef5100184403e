//! Steps 3 and 3b: the create claim, what a refused claim means, and the reconcile claim
//! with the look at Twilio that decides whether a new create may be made.

use tracing::{error, info, warn};

use super::attempt::Attempt;
use super::batch::Batch;
use super::{random_unit, Acknowledge, Disposition, ReturnToQueue, SendHandler, Sending};
use crate::domain::claim::{claim_conflict, shows_own_take, ClaimConflict, Take};
use crate::domain::item::{ContentKind, ItemIdentity, LogItem};
use crate::domain::message::QueueMessage;
use crate::domain::outcome::{in_doubt_or_give_up, Outcome};
use crate::domain::reconcile::{self, after_not_found, Found, NotFound};
use crate::domain::twilio::{Sender, TwilioMessage};
use crate::domain::window::content_to_send;
use crate::ports::{Conditional, Messenger};

impl SendHandler {
    /// A fresh take: a random owner token, the lease from now.
    pub(super) fn new_take(&self) -> Take {
        let now = self.clock.now();
        Take {
            owner: format!("{:032x}", rand::random::<u128>()),
            now,
            lease_until: now + self.config.policy.lease_seconds,
            due: self.config.policy.due(now),
        }
    }

    /// Step 3: the create claim.
    pub(super) async fn claim(
        &self,
        batch: &Batch,
        message: &QueueMessage,
        identity: &ItemIdentity,
        sending: Sending,
    ) -> Disposition {
        let take = self.new_take();
        match self.log.claim(identity, &take, sending.content_kind, self.config.retention_days).await {
            Ok(Conditional::Applied(item)) => {
                self.attempt(batch, Attempt { message, identity, take }, item, sending).await
            }
            // The SDK retried a claim that had already applied.
            Ok(Conditional::Refused(Some(old))) if shows_own_take(Some(&old), &take) => {
                self.attempt(batch, Attempt { message, identity, take }, old, sending).await
            }
            Ok(Conditional::Refused(old)) => self.on_conflict(batch, message, identity, old, true).await,
            Err(err) => {
                error!(message_id = %message.message_id, error = %err, "claim failed: returned to the queue");
                ReturnToQueue
            }
        }
    }

    /// Acts on why a claim failed, read from the item as it was.
    async fn on_conflict(
        &self,
        batch: &Batch,
        message: &QueueMessage,
        identity: &ItemIdentity,
        old: Option<LogItem>,
        may_reconcile: bool,
    ) -> Disposition {
        let now = self.clock.now();
        let message_id = &message.message_id;
        match claim_conflict(old.as_ref(), now, self.config.policy.due(now), may_reconcile) {
            ClaimConflict::Vanished => {
                warn!(message_id = %message_id, "the item vanished during the claim: returned to the queue");
                ReturnToQueue
            }
            ClaimConflict::Duplicate(status) => {
                batch.metrics.count("Duplicate");
                info!(message_id = %message_id, status = status.as_str(), outcome = "duplicate", "already final: acknowledged");
                Acknowledge
            }
            ClaimConflict::HeldElsewhere => {
                batch.metrics.count("Duplicate");
                info!(message_id = %message_id, outcome = "in_flight_elsewhere", "another taker holds the lease: acknowledged");
                Acknowledge
            }
            ClaimConflict::HeldForLater => {
                info!(message_id = %message_id, outcome = "early", "scheduled further ahead than a delay reaches: the sweep brings it back at its time");
                Acknowledge
            }
            ClaimConflict::Early { delay_seconds } => {
                let stored = old.as_ref().and_then(|item| item.request.as_deref());
                let request = stored.or(identity.request.as_deref()).unwrap_or_default();
                if let Err(err) = self.queue.send(request, delay_seconds).await {
                    warn!(message_id = %message_id, error = %err, "early copy not re-enqueued; the sweep will bring it back");
                }
                info!(message_id = %message_id, delay_seconds, outcome = "early", "came before its time: re-enqueued");
                Acknowledge
            }
            ClaimConflict::Reconcile => Box::pin(self.reconcile(batch, message, identity)).await,
            ClaimConflict::TakenMeanwhile(status) => {
                info!(message_id = %message_id, status = status.as_str(), "taken by another invocation meanwhile: acknowledged");
                Acknowledge
            }
        }
    }

    /// Step 3b: the reconcile claim, then the reconcile.
    async fn reconcile(&self, batch: &Batch, message: &QueueMessage, identity: &ItemIdentity) -> Disposition {
        let take = self.new_take();
        let item = match self.log.reconcile_claim(&message.message_id, &take).await {
            Ok(Conditional::Applied(item)) => item,
            Ok(Conditional::Refused(Some(old))) if shows_own_take(Some(&old), &take) => old,
            Ok(Conditional::Refused(old)) => return self.on_conflict(batch, message, identity, old, false).await,
            Err(err) => {
                error!(message_id = %message.message_id, error = %err, "reconcile claim failed: returned to the queue");
                return ReturnToQueue;
            }
        };
        let attempt = Attempt { message, identity, take };
        let policy = &self.config.policy;
        if let Some(sid) = &item.twilio_sid {
            // A status callback already told us Twilio has it.
            let twilio_status = item.twilio_status.clone().unwrap_or_else(|| "sent".into());
            let outcome = Outcome::Accepted { sid: sid.clone(), twilio_status };
            return self.record(batch, &attempt, &item, outcome, None).await;
        }
        let Some(messenger) = &self.messenger else {
            let reason = "Twilio is not configured: cannot reconcile".to_owned();
            let outcome = in_doubt_or_give_up(policy, &item, reason, self.clock.now(), random_unit());
            return self.record(batch, &attempt, &item, outcome, None).await;
        };
        match self.find_at_twilio(messenger.as_ref(), message, &item).await {
            Ok(Found::Message { message: found, candidates }) => {
                if candidates > 1 {
                    warn!(message_id = %message.message_id, candidates, outcome = "reconcile_ambiguous", "several messages at Twilio match: the oldest is taken");
                }
                info!(message_id = %message.message_id, twilio_sid = %found.sid, outcome = "reconciled", "found at Twilio: no new create");
                let TwilioMessage { sid, status, .. } = *found;
                let outcome = Outcome::Accepted { sid, twilio_status: status };
                self.record(batch, &attempt, &item, outcome, None).await
            }
            Ok(Found::Nothing) => self.not_found(batch, attempt, item).await,
            Err(reason) => {
                let outcome = in_doubt_or_give_up(policy, &item, reason, self.clock.now(), random_unit());
                self.record(batch, &attempt, &item, outcome, None).await
            }
        }
    }

    /// Nothing at Twilio: a final status, or a new attempt counted and created.
    async fn not_found(&self, batch: &Batch, attempt: Attempt<'_>, item: LogItem) -> Disposition {
        let message = attempt.message;
        let now = self.clock.now();
        let (refusal, sending) = match self.readmission(batch, message).await {
            Ok(Ok(sending)) => (None, Some(sending)),
            Ok(Err(refusal)) => (Some(refusal), None),
            Err(err) => {
                let reason = format!("consent could not be read: {err}");
                let outcome = in_doubt_or_give_up(&self.config.policy, &item, reason, now, random_unit());
                return self.record(batch, &attempt, &item, outcome, None).await;
            }
        };
        let sending = match (after_not_found(&self.config.policy, &item, refusal, now), sending) {
            (NotFound::Record(outcome), _) => return self.record(batch, &attempt, &item, outcome, None).await,
            (NotFound::NewAttempt, Some(sending)) => sending,
            (NotFound::NewAttempt, None) => {
                // `after_not_found` records every refusal: a new attempt always comes with
                // what to send. Kept total rather than trusted: in doubt again.
                let outcome =
                    in_doubt_or_give_up(&self.config.policy, &item, "no content decided".into(), now, random_unit());
                return self.record(batch, &attempt, &item, outcome, None).await;
            }
        };
        let mut take = attempt.take;
        take.now = now;
        match self.log.record_new_attempt(&message.message_id, &take, item.attempts, sending.content_kind).await {
            Ok(Conditional::Applied(item)) => self.create(batch, Attempt { take, ..attempt }, item, sending).await,
            // The SDK retried a write that had already applied: our lease, our count, our time.
            Ok(Conditional::Refused(Some(old)))
                if shows_own_take(Some(&old), &take)
                    && old.attempts == item.attempts + 1
                    && old.attempt_started_at == Some(take.now) =>
            {
                self.create(batch, Attempt { take, ..attempt }, old, sending).await
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

    /// Looks the message up at Twilio: the candidates of the attempt's window, then those
    /// whose SID no other item of the phone holds (read only when there are candidates).
    async fn find_at_twilio(
        &self,
        messenger: &dyn Messenger,
        message: &QueueMessage,
        item: &LogItem,
    ) -> Result<Found, String> {
        let started = item.attempt_started_at.unwrap_or_else(|| self.clock.now());
        let window = reconcile::window(started, self.config.policy.lease_seconds);
        let sender = messenger.sender();
        let from = match sender {
            Sender::From(from) => Some(from.as_str()),
            Sender::MessagingService(_) => None,
        };
        let listed: Vec<TwilioMessage> = messenger
            .list_since(&message.to, from, *window.start())
            .await
            .map_err(|e| format!("reconcile failed: {e}"))?;
        tracing::debug!(message_id = %message.message_id, listed = listed.len(), window_start = *window.start(), window_end = *window.end(), "reconcile: listed at Twilio");
        // What the attempt in doubt sent: its body, or the fallback template it was sent as.
        let window_was_open = item.content_kind != Some(ContentKind::Template);
        let (sent, _) = content_to_send(message, window_was_open);
        let candidates = reconcile::candidates(listed, sender, &window, &sent);
        if candidates.is_empty() {
            return Ok(Found::Nothing);
        }
        let held = self.log.sids_for_phone(&message.to).await.map_err(|e| format!("reconcile failed: {e}"))?;
        Ok(reconcile::pick(candidates, &message.message_id, &held))
    }
}

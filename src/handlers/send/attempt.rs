//! Steps 4–6: the create at Twilio, its answer decided, the outcome written under the lease,
//! and the delayed re-enqueue of what is to be tried again.

use std::time::{Duration, Instant};

use tracing::{error, info, warn};

use super::batch::Batch;
use super::{count_status, random_unit, Acknowledge, Disposition, SendHandler, Sending, DEADLINE_MARGIN};
use crate::domain::backoff::delay_until;
use crate::domain::budget::{hour_of, item_key, BUDGET_TTL_SECONDS};
use crate::domain::claim::Take;
use crate::domain::consent::{ConsentChange, ConsentSource, ConsentState};
use crate::domain::item::{ItemIdentity, LogItem};
use crate::domain::message::{Content, QueueMessage};
use crate::domain::outcome::{decide_answer, give_back, given_up, shows_own_outcome, GiveBack, Outcome};
use crate::domain::phone::mask_phones_in;
use crate::ports::{Conditional, CreateRequest};

/// Twilio's `ValidityPeriod` maximum, in seconds.
const MAX_VALIDITY_SECONDS: i64 = 36_000;

/// One message's take: the parsed message, its identity and the lease.
pub(super) struct Attempt<'a> {
    pub(super) message: &'a QueueMessage,
    pub(super) identity: &'a ItemIdentity,
    pub(super) take: Take,
}

impl SendHandler {
    /// After a create claim: give up, or create.
    pub(super) async fn attempt(
        &self,
        batch: &Batch,
        attempt: Attempt<'_>,
        item: LogItem,
        sending: Sending,
    ) -> Disposition {
        if let Some(outcome) = given_up(&self.config.policy, &item, self.clock.now()) {
            return self.record(batch, &attempt, &item, outcome, None).await;
        }
        self.create(batch, attempt, item, sending).await
    }

    /// Step 4: the create, its answer decided, then recorded.
    pub(super) async fn create(
        &self,
        batch: &Batch,
        attempt: Attempt<'_>,
        item: LogItem,
        sending: Sending,
    ) -> Disposition {
        let Some(messenger) = &self.messenger else {
            return self.record(batch, &attempt, &item, Outcome::DryRun, None).await;
        };
        let message = attempt.message;
        batch.wait_for_pause().await;
        let not_started = if batch.stopped() {
            Some("not attempted: the batch stopped after an account-level error")
        } else if batch.remaining() < self.config.twilio_timeout + DEADLINE_MARGIN {
            // A reconcile or a throttle pause used the time: a create cut short would only
            // leave the message in doubt.
            Some("not attempted: too little of the invocation's time was left")
        } else {
            None
        };
        let policy = &self.config.policy;
        if let Some(reason) = not_started {
            let outcome = give_back(
                policy,
                &item,
                reason.into(),
                None,
                None,
                GiveBack::NotStarted,
                self.clock.now(),
                random_unit(),
            );
            return self.record(batch, &attempt, &item, outcome, None).await;
        }
        let now = self.clock.now();
        if sending.counts_budget {
            self.count_in_budget(message, now).await;
        }
        let timeout = self.config.twilio_timeout.min(batch.remaining().saturating_sub(Duration::from_secs(1)));
        let (body, template) = match sending.content {
            Content::Body(body) => (Some(body), None),
            Content::Template(template) => (None, Some(template)),
        };
        let request = CreateRequest {
            message_id: message.message_id.clone(),
            to: message.to.clone(),
            sender: messenger.sender().clone(),
            body,
            template,
            media_url: message.media_url.clone(),
            status_callback: self.status_callback(message),
            validity_period: message.not_after.map(|at| (at - now).clamp(1, MAX_VALIDITY_SECONDS) as u32),
        };
        let started = Instant::now();
        let answer = messenger.create(&request, timeout).await;
        let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
        batch.metrics.twilio_latency(latency_ms);
        let decided = decide_answer(policy, &item, answer, self.clock.now(), random_unit());
        if let Some(ms) = decided.effects.pause_ms {
            batch.pause_for(ms);
        }
        if decided.effects.account_error {
            batch.stop_creating();
            batch.metrics.count("AccountError");
            let last_error = mask_phones_in(decided.outcome.last_error().unwrap_or_default());
            error!(message_id = %message.message_id, account_error = true, twilio_code = decided.code, error = %last_error, "account-level error from Twilio: this batch stops creating");
            messenger.refresh_credentials().await;
        }
        if decided.effects.opt_out {
            let change =
                ConsentChange { state: ConsentState::OptedOut, source: ConsentSource::Twilio21610, has_evidence: true };
            let evidence = format!("create of {}", message.message_id);
            if let Err(err) = self.consent.change(&message.to, change, &evidence, now).await {
                error!(message_id = %message.message_id, error = %err, "could not record the opt-out of a 21610");
            }
        }
        self.record(batch, &attempt, &item, decided.outcome, Some((decided.code, latency_ms))).await
    }

    /// `ADD phones :p` to the hour's budget item, before a create outside the window. A
    /// failure is logged and the create goes on: the budget is a guard, not Meta's counter,
    /// and holding a message for it would cost more than an overshoot of one.
    async fn count_in_budget(&self, message: &QueueMessage, now: i64) {
        let Some(budget) = &self.config.budget else { return };
        let hour = hour_of(now);
        let key = item_key(hour, message.to.as_str(), budget);
        if let Err(err) = self.budget.add(&key, message.to.as_str(), hour + BUDGET_TTL_SECONDS).await {
            warn!(message_id = %message.message_id, error = %err, "could not count the parent in the daily budget; sent all the same");
        }
    }

    fn status_callback(&self, message: &QueueMessage) -> Option<String> {
        let mut url = url::Url::parse(self.config.status_callback_url.as_deref()?).ok()?;
        url.query_pairs_mut().append_pair("message_id", message.message_id.as_str());
        Some(url.into())
    }

    /// Steps 5–6: the outcome under the lease, then the delayed re-enqueue.
    pub(super) async fn record(
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
            Conditional::Refused(Some(old)) => shows_own_outcome(old, &outcome, now),
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
        count_status(batch, status);
        if matches!(outcome, Outcome::Retrying { give_back: GiveBack::Answered, .. }) {
            batch.metrics.count("Throttled");
        }
        // Twilio's texts can quote the recipient: masked here, kept whole in MessageLog.
        let last_error = outcome.last_error().map(mask_phones_in);
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
        if let Some(next_attempt_at) = outcome.next_attempt_at() {
            let delay = delay_until(next_attempt_at, now);
            let request = attempt.identity.request.as_deref().unwrap_or_default();
            if let Err(err) = self.queue.send(request, delay).await {
                warn!(message_id = %message_id, error = %err, "re-enqueue failed; the sweep will bring it back");
            }
        }
        Acknowledge
    }
}

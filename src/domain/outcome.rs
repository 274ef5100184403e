//! What an attempt ends in, decided without I/O: a create's answer classified into an
//! [`Outcome`] with its back-off, the effects the answer has on the rest of the batch
//! ([`AnswerEffects`]), giving up after `GIVE_UP_HOURS`, and telling our own write from
//! another taker's when a conditional write comes back refused.
//!
//! The random draw of the jitter (`unit`, uniform in `[0, 1)`) is a parameter, so every
//! decision here is exact in tests.

use super::backoff::{throttle_pause_ms, throttled_delay, transient_delay};
use super::classify::{classify_error, classify_transport, ErrorClass};
use super::item::LogItem;
use super::policy::SendPolicy;
use super::status::{status_for_twilio, Status};
use super::twilio::{codes, CreateAnswer};

/// What an attempt ended in, to be written under the lease (step 5).
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Twilio has the message.
    Accepted { sid: String, twilio_status: String },
    /// Try again at `next_attempt_at`; `give_back` says whether the claim's attempt is
    /// returned.
    Retrying {
        last_error: String,
        last_error_code: Option<u32>,
        next_attempt_at: i64,
        retry_due_at: i64,
        give_back: GiveBack,
    },
    /// The attempt's outcome is unknown; reconcile at `next_attempt_at`.
    InDoubt { last_error: String, next_attempt_at: i64, retry_due_at: i64 },
    /// Final without success.
    Final { status: Status, last_error: String, last_error_code: Option<u32> },
    /// Twilio not configured: checked and logged, nothing sent.
    DryRun,
}

/// Whether a `retrying` outcome returns the attempt its claim counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GiveBack {
    /// The create was made and failed: the attempt counts.
    No,
    /// Twilio answered throttled or account-level: the request was never processed. The
    /// attempt is returned and `throttled` counts the answer (DESIGN.md, MessageLog).
    Answered,
    /// No create was started (the batch stopped after an account-level error, or too little of
    /// the invocation's time was left): the attempt is returned, and nothing else counted.
    NotStarted,
}

/// A final status written without any send (steps 1–2, and a cancelled campaign).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EarlyFinal {
    /// Written only when no item exists.
    Rejected,
    /// Written when no item exists, or the item waits (`retrying`, `scheduled`).
    Skipped,
    Expired,
    Cancelled,
}

impl EarlyFinal {
    pub fn status(self) -> Status {
        match self {
            EarlyFinal::Rejected => Status::Rejected,
            EarlyFinal::Skipped => Status::Skipped,
            EarlyFinal::Expired => Status::Expired,
            EarlyFinal::Cancelled => Status::Cancelled,
        }
    }

    /// Whether the write may replace an item already in `status` (DESIGN.md, steps 1–2: a bad
    /// redelivery never overwrites a good message; a refusal may end one that waits for its
    /// next take, `retrying` or `scheduled`, which no create is under).
    pub fn may_replace(self, status: Status) -> bool {
        match self {
            EarlyFinal::Rejected => false,
            EarlyFinal::Skipped | EarlyFinal::Expired | EarlyFinal::Cancelled => {
                matches!(status, Status::Retrying | Status::Scheduled)
            }
        }
    }
}

impl Outcome {
    /// The status this outcome writes.
    pub fn status(&self) -> Status {
        match self {
            Outcome::Accepted { twilio_status, .. } => status_for_twilio(twilio_status).unwrap_or(Status::Sent),
            Outcome::Retrying { .. } => Status::Retrying,
            Outcome::InDoubt { .. } => Status::InDoubt,
            Outcome::Final { status, .. } => *status,
            Outcome::DryRun => Status::DryRun,
        }
    }

    /// The readable failure it records, if any.
    pub fn last_error(&self) -> Option<&str> {
        match self {
            Outcome::Retrying { last_error, .. }
            | Outcome::InDoubt { last_error, .. }
            | Outcome::Final { last_error, .. } => Some(last_error),
            Outcome::Accepted { .. } | Outcome::DryRun => None,
        }
    }

    /// When the next attempt is due, for the outcomes that re-enqueue.
    pub fn next_attempt_at(&self) -> Option<i64> {
        match self {
            Outcome::Retrying { next_attempt_at, .. } | Outcome::InDoubt { next_attempt_at, .. } => {
                Some(*next_attempt_at)
            }
            _ => None,
        }
    }
}

/// What a create's answer asks of the rest of the batch, besides its own outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AnswerEffects {
    /// Throttled: pause this invocation's next creates for this long (ms).
    pub pause_ms: Option<u64>,
    /// Account-level: this invocation starts no further create, and reads its credentials
    /// again.
    pub account_error: bool,
    /// 21610: the recipient unsubscribed; record an opt-out.
    pub opt_out: bool,
}

/// A create's answer, decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Decided {
    pub outcome: Outcome,
    /// Twilio's error code, when it sent one.
    pub code: Option<u32>,
    pub effects: AnswerEffects,
}

/// The outcome of a create's answer for `item` (as claimed: `attempts` counts this attempt).
pub fn decide_answer(policy: &SendPolicy, item: &LogItem, answer: CreateAnswer, now: i64, unit: f64) -> Decided {
    let (class, last_error, code, retry_after) = match answer {
        CreateAnswer::Accepted(message) => {
            return Decided {
                outcome: Outcome::Accepted { sid: message.sid, twilio_status: message.status },
                code: None,
                effects: AnswerEffects::default(),
            };
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
    let mut effects = AnswerEffects { opt_out: code == Some(codes::UNSUBSCRIBED), ..AnswerEffects::default() };
    let outcome = match class {
        ErrorClass::Throttled => {
            effects.pause_ms = Some(throttle_pause_ms(retry_after));
            give_back(policy, item, last_error, code, retry_after, GiveBack::Answered, now, unit)
        }
        ErrorClass::AccountLevel => {
            effects.account_error = true;
            give_back(policy, item, last_error, code, retry_after, GiveBack::Answered, now, unit)
        }
        ErrorClass::Transient if item.attempts < item.max_attempts_or(policy.max_attempts) => {
            let delay = transient_delay(policy.backoff_base_seconds, item.attempts, retry_after, unit) as i64;
            Outcome::Retrying {
                last_error,
                last_error_code: code,
                next_attempt_at: now + delay,
                retry_due_at: now + delay + policy.sweep_grace_seconds,
                give_back: GiveBack::No,
            }
        }
        ErrorClass::InDoubt => {
            let next_attempt_at = now + policy.reconcile_delay_seconds;
            Outcome::InDoubt { last_error, next_attempt_at, retry_due_at: next_attempt_at + policy.sweep_grace_seconds }
        }
        ErrorClass::Transient | ErrorClass::Permanent => {
            Outcome::Final { status: Status::Failed, last_error, last_error_code: code }
        }
    };
    Decided { outcome, code, effects }
}

/// `retrying` with the attempt returned, after the throttled back-off (counted with this
/// answer: `throttled + 1`).
#[allow(clippy::too_many_arguments)]
pub fn give_back(
    policy: &SendPolicy,
    item: &LogItem,
    last_error: String,
    code: Option<u32>,
    retry_after: Option<u64>,
    give_back: GiveBack,
    now: i64,
    unit: f64,
) -> Outcome {
    let delay = throttled_delay(item.throttled + 1, retry_after, unit) as i64;
    Outcome::Retrying {
        last_error,
        last_error_code: code,
        next_attempt_at: now + delay,
        retry_due_at: now + delay + policy.sweep_grace_seconds,
        give_back,
    }
}

/// `failed` when the message is still not final `GIVE_UP_HOURS` after it was created, or
/// released from a hold if that came later.
pub fn given_up(policy: &SendPolicy, item: &LogItem, now: i64) -> Option<Outcome> {
    let base = item.give_up_base()?;
    (now >= base + policy.give_up_hours * 3600).then(|| Outcome::Final {
        status: Status::Failed,
        last_error: format!(
            "gave up after {} h: {}",
            policy.give_up_hours,
            item.last_error.as_deref().unwrap_or("no attempt succeeded")
        ),
        last_error_code: item.last_error_code,
    })
}

/// In doubt again after a reconcile that could not look: back-off by the attempts made, at
/// least `RECONCILE_DELAY_SECONDS`.
pub fn in_doubt_again(policy: &SendPolicy, item: &LogItem, reason: String, now: i64, unit: f64) -> Outcome {
    let delay = transient_delay(policy.backoff_base_seconds, item.attempts.max(1), None, unit) as i64;
    let next_attempt_at = now + delay.max(policy.reconcile_delay_seconds);
    Outcome::InDoubt { last_error: reason, next_attempt_at, retry_due_at: next_attempt_at + policy.sweep_grace_seconds }
}

/// The reconcile could not look at Twilio (or consent): in doubt again, or `failed` once
/// `GIVE_UP_HOURS` have passed, so that a reconcile that keeps failing still ends.
pub fn in_doubt_or_give_up(policy: &SendPolicy, item: &LogItem, reason: String, now: i64, unit: f64) -> Outcome {
    let latest = LogItem { last_error: Some(reason.clone()), ..item.clone() };
    given_up(policy, &latest, now).unwrap_or_else(|| in_doubt_again(policy, item, reason, now, unit))
}

/// Whether an outcome write refused with `old` shows our own write already applied (the SDK
/// retried a write whose first try had applied): the same outcome, the lease released, in
/// the same second.
pub fn shows_own_outcome(old: &LogItem, outcome: &Outcome, now: i64) -> bool {
    let released_now = old.lease_owner.is_none() && old.updated_at == Some(now);
    match outcome {
        Outcome::Accepted { sid, .. } => old.twilio_sid.as_deref() == Some(sid.as_str()) && released_now,
        _ => old.status == Some(outcome.status()) && released_now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::twilio::TwilioMessage;

    const NOW: i64 = 1_800_000_000;

    fn policy() -> SendPolicy {
        SendPolicy::default()
    }

    fn claimed(attempts: u32) -> LogItem {
        LogItem { attempts, max_attempts: Some(3), created_at: Some(NOW - 60), ..LogItem::default() }
    }

    fn error(http_status: u16, code: Option<u32>) -> CreateAnswer {
        CreateAnswer::Error { http_status, code, message: format!("{code:?}: oops"), retry_after: None }
    }

    #[test]
    fn every_class_of_answer_has_its_outcome_and_effects() {
        let p = policy();
        let accepted = CreateAnswer::Accepted(TwilioMessage {
            sid: "SM1".into(),
            status: "queued".into(),
            to: None,
            from: None,
            messaging_service_sid: None,
            body: None,
            direction: None,
            date_created: None,
            error_code: None,
        });
        let d = decide_answer(&p, &claimed(1), accepted, NOW, 0.0);
        assert_eq!(d.outcome, Outcome::Accepted { sid: "SM1".into(), twilio_status: "queued".into() });
        assert_eq!(d.outcome.status(), Status::Sent);

        let d = decide_answer(&p, &claimed(1), error(429, Some(20429)), NOW, 0.0);
        assert!(
            matches!(d.outcome, Outcome::Retrying { give_back: GiveBack::Answered, next_attempt_at, .. } if next_attempt_at == NOW + 1)
        );
        assert_eq!(d.effects, AnswerEffects { pause_ms: Some(1000), ..AnswerEffects::default() });

        let d = decide_answer(&p, &claimed(1), error(401, Some(20003)), NOW, 0.0);
        assert!(matches!(d.outcome, Outcome::Retrying { give_back: GiveBack::Answered, .. }));
        assert!(d.effects.account_error && d.effects.pause_ms.is_none());

        let d = decide_answer(&p, &claimed(1), error(503, None), NOW, 0.0);
        assert!(matches!(d.outcome, Outcome::Retrying { give_back: GiveBack::No, next_attempt_at, retry_due_at, .. }
                if next_attempt_at == NOW + 15 && retry_due_at == NOW + 15 + 120));

        let d = decide_answer(&p, &claimed(3), error(503, None), NOW, 0.0);
        assert_eq!(d.outcome.status(), Status::Failed, "the last attempt's transient failure is final");

        let d = decide_answer(&p, &claimed(3), error(500, None), NOW, 0.0);
        assert_eq!(
            d.outcome,
            Outcome::InDoubt { last_error: "None: oops".into(), next_attempt_at: NOW + 30, retry_due_at: NOW + 150 }
        );

        let d = decide_answer(&p, &claimed(1), error(400, Some(codes::UNSUBSCRIBED)), NOW, 0.0);
        assert_eq!(d.outcome.status(), Status::Failed);
        assert_eq!(d.code, Some(21610));
        assert!(d.effects.opt_out);
    }

    #[test]
    fn transport_errors_say_whether_the_request_may_have_left() {
        let p = policy();
        let opened = CreateAnswer::Transport { connection_opened: true, detail: "timeout".into() };
        let d = decide_answer(&p, &claimed(1), opened, NOW, 0.0);
        assert_eq!(d.outcome.last_error(), Some("timeout (in doubt)"));
        assert_eq!(d.outcome.status(), Status::InDoubt);
        let refused = CreateAnswer::Transport { connection_opened: false, detail: "refused".into() };
        let d = decide_answer(&p, &claimed(1), refused, NOW, 0.0);
        assert_eq!(d.outcome.last_error(), Some("connection failed: refused"));
        assert_eq!(d.outcome.status(), Status::Retrying);
    }

    #[test]
    fn giving_up_counts_from_created_at() {
        let p = policy();
        let item = LogItem { last_error: Some("http 503".into()), ..claimed(1) };
        assert_eq!(given_up(&p, &item, NOW), None);
        let old = LogItem { created_at: Some(NOW - 24 * 3600), ..item };
        assert_eq!(
            given_up(&p, &old, NOW),
            Some(Outcome::Final {
                status: Status::Failed,
                last_error: "gave up after 24 h: http 503".into(),
                last_error_code: None
            })
        );
        let outcome = in_doubt_or_give_up(&p, &old, "reconcile failed: down".into(), NOW, 0.0);
        assert_eq!(outcome.last_error(), Some("gave up after 24 h: reconcile failed: down"));
        let young = claimed(2);
        let outcome = in_doubt_or_give_up(&p, &young, "reconcile failed: down".into(), NOW, 1.0);
        assert_eq!(outcome.next_attempt_at(), Some(NOW + 60), "backoff by the attempts made");
    }

    #[test]
    fn an_own_outcome_is_recognised_after_a_retried_write() {
        let outcome = Outcome::Accepted { sid: "SM1".into(), twilio_status: "queued".into() };
        let ours = LogItem { twilio_sid: Some("SM1".into()), updated_at: Some(NOW), ..LogItem::default() };
        assert!(shows_own_outcome(&ours, &outcome, NOW));
        let leased = LogItem { lease_owner: Some("other".into()), ..ours.clone() };
        assert!(!shows_own_outcome(&leased, &outcome, NOW));
        let other_sid = LogItem { twilio_sid: Some("SM2".into()), ..ours };
        assert!(!shows_own_outcome(&other_sid, &outcome, NOW));
        let failed = Outcome::Final { status: Status::Failed, last_error: "x".into(), last_error_code: None };
        let old = LogItem { status: Some(Status::Failed), updated_at: Some(NOW), ..LogItem::default() };
        assert!(shows_own_outcome(&old, &failed, NOW));
        assert!(!shows_own_outcome(&old, &failed, NOW + 1));
    }

    #[test]
    fn early_finals_replace_only_an_item_waiting_for_its_next_take() {
        for status in Status::ALL {
            let waiting = matches!(status, Status::Retrying | Status::Scheduled);
            assert!(!EarlyFinal::Rejected.may_replace(status));
            for kind in [EarlyFinal::Skipped, EarlyFinal::Expired, EarlyFinal::Cancelled] {
                assert_eq!(kind.may_replace(status), waiting, "{kind:?} over {status}");
            }
        }
    }

    #[test]
    fn giving_up_counts_from_the_release_of_a_hold() {
        let p = policy();
        let held = LogItem { created_at: Some(NOW - 30 * 3600), released_at: Some(NOW - 3600), ..claimed(1) };
        assert_eq!(given_up(&p, &held, NOW), None, "held 29 h, released 1 h ago");
        assert!(given_up(&p, &held, NOW + 23 * 3600).is_some());
    }
}

//! The reconcile (DESIGN.md, step 3b): which message at Twilio, if any, is the one an
//! attempt in doubt created, and what to do when none is.

use std::ops::RangeInclusive;

use super::item::LogItem;
use super::message::{Content, MessageId};
use super::outcome::{given_up, EarlyFinal, Outcome};
use super::policy::SendPolicy;
use super::status::Status;
use super::twilio::{Sender, TwilioMessage};

/// Candidates created this long before the attempt started or after its lease ended are
/// accepted too (clocks differ between Twilio and us).
pub const SLACK_SECONDS: i64 = 60;

/// The creation times a candidate may have: `[attempt_started_at − 60 s, attempt_started_at +
/// LEASE_SECONDS + 60 s]`.
pub fn window(attempt_started_at: i64, lease_seconds: i64) -> RangeInclusive<i64> {
    (attempt_started_at - SLACK_SECONDS)..=(attempt_started_at + lease_seconds + SLACK_SECONDS)
}

/// What the reconcile concluded from Twilio's list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// No candidate: Twilio never created this attempt's message.
    Nothing,
    /// One candidate, or the oldest of `candidates` (more than one: logged as ambiguous).
    Message { message: Box<TwilioMessage>, candidates: usize },
}

/// The messages of `listed` that can be this attempt's: outbound, from our sender, created
/// within `window`, with the same text for a `body` message.
pub fn candidates(
    listed: Vec<TwilioMessage>,
    sender: &Sender,
    window: &RangeInclusive<i64>,
    content: &Content,
) -> Vec<TwilioMessage> {
    listed
        .into_iter()
        .filter(|m| m.is_outbound() && m.is_from(sender))
        .filter(|m| m.created_at().is_some_and(|at| window.contains(&at)))
        .filter(|m| match content {
            Content::Body(body) => m.body.as_deref() == Some(body.as_str()),
            Content::Template(_) => true,
        })
        .collect()
}

/// Of the candidates, those whose SID no other item of the phone holds (`held`:
/// `(message_id, twilio_sid)` pairs, through `by-recipient`); several: the oldest.
pub fn pick(mut candidates: Vec<TwilioMessage>, own_id: &MessageId, held: &[(String, String)]) -> Found {
    candidates.retain(|m| !held.iter().any(|(id, sid)| sid == &m.sid && id != own_id.as_str()));
    candidates.sort_by_key(TwilioMessage::created_at);
    let count = candidates.len();
    match candidates.into_iter().next() {
        Some(message) => Found::Message { message: Box::new(message), candidates: count },
        None => Found::Nothing,
    }
}

/// What follows a reconcile that found nothing at Twilio.
#[derive(Debug, Clone, PartialEq)]
pub enum NotFound {
    /// Record this final outcome: consent or expiry now refuse, `GIVE_UP_HOURS` passed, or
    /// no attempt is left.
    Record(Outcome),
    /// Count a new attempt and create.
    NewAttempt,
}

/// After a reconcile found nothing: `refusal` is what expiry and consent say now.
pub fn after_not_found(
    policy: &SendPolicy,
    item: &LogItem,
    refusal: Option<(EarlyFinal, String)>,
    now: i64,
) -> NotFound {
    if let Some((kind, reason)) = refusal {
        return NotFound::Record(Outcome::Final { status: kind.status(), last_error: reason, last_error_code: None });
    }
    if let Some(outcome) = given_up(policy, item, now) {
        return NotFound::Record(outcome);
    }
    if item.attempts >= item.max_attempts_or(policy.max_attempts) {
        return NotFound::Record(Outcome::Final {
            status: Status::Failed,
            last_error: "in doubt and not found at Twilio".into(),
            last_error_code: None,
        });
    }
    NotFound::NewAttempt
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::message::Template;

    const STARTED: i64 = 1_800_000_000;
    const FROM: &str = "whatsapp:+14155238886";

    fn at(t: i64) -> String {
        chrono::DateTime::from_timestamp(t, 0).unwrap().to_rfc2822()
    }

    fn listed(sid: &str, created: i64, body: &str) -> TwilioMessage {
        TwilioMessage {
            sid: sid.into(),
            status: "sent".into(),
            to: Some("whatsapp:+33612345678".into()),
            from: Some(FROM.into()),
            messaging_service_sid: None,
            body: Some(body.into()),
            direction: Some("outbound-api".into()),
            date_created: Some(at(created)),
            error_code: None,
        }
    }

    fn id(raw: &str) -> MessageId {
        MessageId::parse(raw).unwrap()
    }

    #[test]
    fn the_window_adds_the_slack_around_the_lease() {
        assert_eq!(window(STARTED, 120), (STARTED - 60)..=(STARTED + 180));
    }

    #[test]
    fn candidates_are_filtered_then_the_oldest_taken() {
        let sender = Sender::From(FROM.into());
        let w = window(STARTED, 120);
        let body = Content::Body("hello".into());
        let inbound = TwilioMessage { direction: Some("inbound".into()), ..listed("SMin", STARTED, "hello") };
        let other_sender = TwilioMessage { from: Some("whatsapp:+1999".into()), ..listed("SMfrom", STARTED, "hello") };
        let cases = vec![
            (vec![], Found::Nothing),
            (vec![inbound, other_sender], Found::Nothing),
            (vec![listed("SMearly", STARTED - 61, "hello"), listed("SMlate", STARTED + 181, "hello")], Found::Nothing),
            (vec![listed("SMtext", STARTED, "other text")], Found::Nothing),
            (vec![listed("SMheld", STARTED, "hello")], Found::Nothing),
            (
                vec![listed("SM2", STARTED + 10, "hello"), listed("SM1", STARTED, "hello")],
                Found::Message { message: Box::new(listed("SM1", STARTED, "hello")), candidates: 2 },
            ),
            (
                vec![listed("SMown", STARTED + 1, "hello")],
                Found::Message { message: Box::new(listed("SMown", STARTED + 1, "hello")), candidates: 1 },
            ),
        ];
        let held = vec![("other-id".to_owned(), "SMheld".to_owned()), ("m1".to_owned(), "SMown".to_owned())];
        for (messages, expected) in cases {
            let found = pick(candidates(messages.clone(), &sender, &w, &body), &id("m1"), &held);
            assert_eq!(found, expected, "{messages:?}");
        }
        // A template message matches whatever its text; a Messaging Service matches by its SID.
        let template = Content::Template(Template { content_sid: "HX".into(), variables: Default::default() });
        let service = Sender::MessagingService("MG1".into());
        let via_service = TwilioMessage { messaging_service_sid: Some("MG1".into()), ..listed("SMt", STARTED, "x") };
        let found = pick(candidates(vec![via_service], &service, &w, &template), &id("m1"), &[]);
        assert!(matches!(found, Found::Message { .. }));
    }

    #[test]
    fn what_follows_a_reconcile_that_found_nothing() {
        let policy = SendPolicy::default();
        let item = LogItem { attempts: 1, max_attempts: Some(3), created_at: Some(STARTED), ..LogItem::default() };
        assert_eq!(after_not_found(&policy, &item, None, STARTED + 60), NotFound::NewAttempt);
        let refused = Some((EarlyFinal::Skipped, "opted out".to_owned()));
        assert_eq!(
            after_not_found(&policy, &item, refused, STARTED + 60),
            NotFound::Record(Outcome::Final {
                status: Status::Skipped,
                last_error: "opted out".into(),
                last_error_code: None
            })
        );
        let spent = LogItem { attempts: 3, ..item.clone() };
        assert!(matches!(
            after_not_found(&policy, &spent, None, STARTED + 60),
            NotFound::Record(Outcome::Final { ref last_error, .. }) if last_error == "in doubt and not found at Twilio"
        ));
        assert!(matches!(
            after_not_found(&policy, &item, None, STARTED + 24 * 3600),
            NotFound::Record(Outcome::Final { ref last_error, .. }) if last_error.starts_with("gave up after 24 h")
        ));
    }
}

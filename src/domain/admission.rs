//! Whether a valid message may go at all (DESIGN.md, step 2): expiry, then consent. Each
//! refusal is a final status with its reason.

use super::consent::{refusal, ConsentPolicy, CurrentConsent};
use super::message::QueueMessage;
use super::outcome::EarlyFinal;

/// A refusal: the final status and its reason (`last_error`).
pub type Refusal = (EarlyFinal, String);

/// `expired` when `not_after` has passed.
pub fn expiry_refusal(message: &QueueMessage, now: i64) -> Option<Refusal> {
    message
        .not_after
        .is_some_and(|not_after| not_after <= now)
        .then(|| (EarlyFinal::Expired, "not_after passed before it could be sent".to_owned()))
}

/// `skipped` when consent is missing (under `require-optin`) or the parent opted out.
pub fn consent_refusal(policy: ConsentPolicy, consent: Option<CurrentConsent>) -> Option<Refusal> {
    refusal(policy, consent).map(|reason| (EarlyFinal::Skipped, reason.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::consent::{ConsentSource, ConsentState};

    fn message(not_after: Option<i64>) -> QueueMessage {
        let mut message = QueueMessage::parse(r#"{"v":1,"message_id":"m","to":"+33612345678","body":"x"}"#).unwrap();
        message.not_after = not_after;
        message
    }

    #[test]
    fn expiry_is_checked_at_the_second() {
        assert_eq!(expiry_refusal(&message(None), 100), None);
        assert_eq!(expiry_refusal(&message(Some(101)), 100), None);
        assert_eq!(expiry_refusal(&message(Some(100)), 100).map(|r| r.0), Some(EarlyFinal::Expired));
    }

    #[test]
    fn consent_refusals_are_skips_with_their_reason() {
        let out = Some(CurrentConsent { state: ConsentState::OptedOut, source: Some(ConsentSource::WhatsappReply) });
        assert_eq!(consent_refusal(ConsentPolicy::HonourOptout, out), Some((EarlyFinal::Skipped, "opted out".into())));
        assert_eq!(
            consent_refusal(ConsentPolicy::RequireOptin, None),
            Some((EarlyFinal::Skipped, "no consent on record".into()))
        );
        assert_eq!(consent_refusal(ConsentPolicy::HonourOptout, None), None);
    }
}

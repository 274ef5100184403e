//! Why a family was not reached, as one of a few reasons a secretary can act on, from what
//! MessageLog recorded (status, Twilio's code, the error text) and the phone's consent record.
//! The words for each reason, in each language, are in [`super::words`].

/// The statuses whose message will not reach the family (and so go on the paper list).
/// In-flight and `scheduled` messages are still on their way; `cancelled` and `dry_run` ones
/// were never meant to go (the status table explains them).
pub const UNREACHED_STATUSES: [&str; 5] = ["failed", "undelivered", "rejected", "skipped", "expired"];

pub fn is_unreached(status: &str) -> bool {
    UNREACHED_STATUSES.contains(&status)
}

/// Why a message did not reach the family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// Skipped: no consent on record (the school sends only to parents who agreed).
    NoConsent,
    /// Skipped: the school's file (or an operator) recorded that they declined.
    DeclinedInSchoolFile,
    /// They replied STOP, or Twilio reports them unsubscribed (21610).
    AskedToStop,
    /// Skipped: opted out, by a way the report cannot tell.
    OptedOut,
    /// Skipped: their data was erased at their request.
    Erased,
    /// Skipped then, but they agreed since.
    AgreedSince,
    /// 21211, or a queue message refused for its `to`.
    InvalidNumber,
    /// 21614, 30006: a landline or not a mobile.
    NotMobile,
    /// 63003: the number has no WhatsApp.
    NotOnWhatsApp,
    /// 63032, 30004: the parent blocked the school's number.
    Blocked,
    /// 63016: outside the 24-hour window, a template is needed.
    WindowClosed,
    /// 63049, 63018: WhatsApp held it back (marketing or per-user limits).
    HeldByWhatsApp,
    /// 63024, 63015: WhatsApp refused the recipient.
    RecipientRefused,
    /// 30003, 30005, 30008: the phone could not be reached.
    Unreachable,
    /// 30007: filtered on the way.
    Filtered,
    /// 20003, 63007, 21408, 63051, HTTP 401: the school's Twilio account could not send.
    AccountProblem,
    /// The message itself was refused (its content, its template, a field of the queue
    /// message other than the number).
    InvalidMessage,
    /// Failed without a code: Twilio unavailable over every attempt, gave up, in doubt and
    /// not found.
    ServiceTrouble,
    /// `expired`: its deadline passed before it could go.
    Expired,
    /// `undelivered` with a code this page does not know.
    NotDelivered,
    /// `failed` with a code this page does not know.
    Other,
}

/// The phone's consent record as read now (Consent's `state` and `source`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsentNow {
    pub state: Option<String>,
    pub source: Option<String>,
}

/// The reason for an item in one of [`UNREACHED_STATUSES`].
pub fn classify(status: &str, code: Option<u32>, last_error: Option<&str>, consent: Option<&ConsentNow>) -> Reason {
    match status {
        "skipped" => skipped(last_error, consent),
        "rejected" if last_error.is_some_and(|e| e.starts_with("to:") || e.starts_with("to ")) => Reason::InvalidNumber,
        "rejected" => Reason::InvalidMessage,
        "expired" => Reason::Expired,
        _ => match code {
            Some(code) => {
                by_code(code).unwrap_or(if status == "undelivered" { Reason::NotDelivered } else { Reason::Other })
            }
            None if status == "undelivered" => Reason::NotDelivered,
            None if last_error.is_some_and(|e| e.starts_with("http 401")) => Reason::AccountProblem,
            None => Reason::ServiceTrouble,
        },
    }
}

fn by_code(code: u32) -> Option<Reason> {
    Some(match code {
        21211 => Reason::InvalidNumber,
        21614 | 30006 => Reason::NotMobile,
        63003 => Reason::NotOnWhatsApp,
        21610 => Reason::AskedToStop,
        63032 | 30004 => Reason::Blocked,
        63016 => Reason::WindowClosed,
        63049 | 63018 => Reason::HeldByWhatsApp,
        63024 | 63015 => Reason::RecipientRefused,
        30003 | 30005 | 30008 => Reason::Unreachable,
        30007 => Reason::Filtered,
        20003 | 63007 | 21408 | 63051 => Reason::AccountProblem,
        21617 | 21656 | 63013 | 63021 | 63030 | 63031 => Reason::InvalidMessage,
        20429 | 21611 | 20503 | 30500 => Reason::ServiceTrouble,
        _ => return None,
    })
}

/// A skipped message: the consent record read now says why better than the item's
/// `last_error` (`opted out` / `no consent on record`), unless it changed since.
fn skipped(last_error: Option<&str>, consent: Option<&ConsentNow>) -> Reason {
    let state = consent.and_then(|c| c.state.as_deref());
    let source = consent.and_then(|c| c.source.as_deref());
    match (state, source) {
        (Some("opted_in"), _) => Reason::AgreedSince,
        (Some("opted_out"), Some("whatsapp-reply" | "twilio-21610")) => Reason::AskedToStop,
        (Some("opted_out"), Some("erasure")) => Reason::Erased,
        (Some("opted_out"), Some("csv-import" | "cli")) => Reason::DeclinedInSchoolFile,
        (Some("opted_out"), _) => Reason::OptedOut,
        _ if last_error == Some("opted out") => Reason::OptedOut,
        _ => Reason::NoConsent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn consent(state: &str, source: &str) -> ConsentNow {
        ConsentNow { state: Some(state.into()), source: Some(source.into()) }
    }

    #[test]
    fn twilio_codes_become_reasons() {
        let failed = |code| classify("failed", Some(code), Some("x"), None);
        assert_eq!(failed(63003), Reason::NotOnWhatsApp);
        assert_eq!(failed(21211), Reason::InvalidNumber);
        assert_eq!(failed(21610), Reason::AskedToStop);
        assert_eq!(failed(63007), Reason::AccountProblem);
        assert_eq!(failed(99999), Reason::Other);
        assert_eq!(classify("undelivered", Some(63016), None, None), Reason::WindowClosed);
        assert_eq!(classify("undelivered", Some(63024), None, None), Reason::RecipientRefused);
        assert_eq!(classify("undelivered", Some(12345), None, None), Reason::NotDelivered);
        assert_eq!(classify("undelivered", None, None, None), Reason::NotDelivered);
    }

    #[test]
    fn failures_without_a_code_are_the_service_or_the_account() {
        assert_eq!(classify("failed", None, Some("gave up after 24 h: http 503"), None), Reason::ServiceTrouble);
        assert_eq!(classify("failed", None, Some("in doubt and not found at Twilio"), None), Reason::ServiceTrouble);
        assert_eq!(classify("failed", None, Some("http 401"), None), Reason::AccountProblem);
    }

    #[test]
    fn rejected_for_the_number_or_for_the_rest() {
        assert_eq!(classify("rejected", None, Some("to: not a valid E.164 number"), None), Reason::InvalidNumber);
        assert_eq!(classify("rejected", None, Some("body: empty"), None), Reason::InvalidMessage);
        assert_eq!(classify("rejected", None, None, None), Reason::InvalidMessage);
        assert_eq!(classify("expired", None, Some("not_after passed"), None), Reason::Expired);
    }

    #[test]
    fn skipped_says_who_decided_from_the_consent_record() {
        let skipped = |error, c: Option<ConsentNow>| classify("skipped", None, Some(error), c.as_ref());
        assert_eq!(skipped("opted out", Some(consent("opted_out", "whatsapp-reply"))), Reason::AskedToStop);
        assert_eq!(skipped("opted out", Some(consent("opted_out", "twilio-21610"))), Reason::AskedToStop);
        assert_eq!(skipped("opted out", Some(consent("opted_out", "csv-import"))), Reason::DeclinedInSchoolFile);
        assert_eq!(skipped("opted out", Some(consent("opted_out", "erasure"))), Reason::Erased);
        assert_eq!(skipped("opted out", Some(consent("opted_out", "something-new"))), Reason::OptedOut);
        assert_eq!(skipped("opted out", None), Reason::OptedOut);
        assert_eq!(skipped("no consent on record", None), Reason::NoConsent);
        assert_eq!(skipped("no consent on record", Some(consent("opted_in", "cli"))), Reason::AgreedSince);
    }

    #[test]
    fn only_final_statuses_that_did_not_arrive_are_unreached() {
        for status in ["failed", "undelivered", "rejected", "skipped", "expired"] {
            assert!(is_unreached(status), "{status}");
        }
        for status in
            ["sent", "delivered", "read", "sending", "retrying", "in_doubt", "scheduled", "cancelled", "dry_run"]
        {
            assert!(!is_unreached(status), "{status}");
        }
    }
}

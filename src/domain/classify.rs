//! Twilio's answer to a create, classified by one table in one place.
//!
//! Codes come from Twilio's error dictionary. The class decides everything that follows: the
//! status recorded, whether the attempt counts, whether the batch stops creating.

/// What a create's answer means for the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Never processed (too many concurrent requests, the sender's queue full): retry, and the
    /// attempt is given back.
    Throttled,
    /// The account cannot send (credentials, sender): retry, attempt given back, the batch
    /// stops creating.
    AccountLevel,
    /// Not sent, safe to retry.
    Transient,
    /// The request may have reached Twilio: reconcile before any new create.
    InDoubt,
    /// Will never succeed: `failed`.
    Permanent,
}

/// Codes that a create can answer with, and the class of each. Codes not listed fall back to
/// the HTTP status.
const CODE_CLASSES: &[(u32, ErrorClass)] = &[
    (20429, ErrorClass::Throttled),    // too many concurrent requests
    (21611, ErrorClass::Throttled),    // the sender's queue is full
    (20003, ErrorClass::AccountLevel), // authentication
    (63007, ErrorClass::AccountLevel), // no such WhatsApp sender on the account
    (20503, ErrorClass::Transient),    // service unavailable
    (30500, ErrorClass::InDoubt),      // internal error
    (21211, ErrorClass::Permanent),    // invalid To
    (21408, ErrorClass::Permanent),    // region not enabled
    (21610, ErrorClass::Permanent),    // the recipient unsubscribed
    (21614, ErrorClass::Permanent),    // not a mobile number
    (21617, ErrorClass::Permanent),    // body too long
    (21656, ErrorClass::Permanent),    // invalid ContentVariables
    (63003, ErrorClass::Permanent),    // channel could not find the To address
    (63013, ErrorClass::Permanent),    // policy violation
    (63015, ErrorClass::Permanent),    // sandbox: the recipient has not joined
    (63016, ErrorClass::Permanent),    // outside the 24-hour window, use a template
    (63018, ErrorClass::Permanent),    // rate limit of the channel exceeded for the user
    (63021, ErrorClass::Permanent),    // invalid content
    (63024, ErrorClass::Permanent),    // invalid message recipient
    (63030, ErrorClass::Permanent),    // unsupported parameter
    (63031, ErrorClass::Permanent),    // same sender and recipient
    (63032, ErrorClass::Permanent),    // user's ecosystem restrictions
    (63049, ErrorClass::Permanent),    // marketing message not delivered (Meta's choice)
    (63051, ErrorClass::Permanent),    // business account locked
    (30003, ErrorClass::Permanent),    // unreachable handset
    (30004, ErrorClass::Permanent),    // message blocked
    (30005, ErrorClass::Permanent),    // unknown destination
    (30006, ErrorClass::Permanent),    // landline or unreachable carrier
    (30007, ErrorClass::Permanent),    // filtered
    (30008, ErrorClass::Permanent),    // unknown error
];

/// Classifies an error answer (any HTTP status but a 2xx carrying a Message).
pub fn classify_error(http_status: u16, code: Option<u32>) -> ErrorClass {
    // A server error other than 503 may come after the message was created, whatever code it
    // carries: only a reconcile can say, so no code makes it safe to create again.
    if (500..=599).contains(&http_status) && http_status != 503 {
        return ErrorClass::InDoubt;
    }
    if let Some(class) = code.and_then(|code| CODE_CLASSES.iter().find(|(c, _)| *c == code).map(|(_, class)| *class)) {
        return class;
    }
    match http_status {
        429 => ErrorClass::Throttled,
        401 => ErrorClass::AccountLevel,
        503 => ErrorClass::Transient,
        // 408: the server gave up waiting; 3xx: we do not follow redirects on a create.
        408 | 300..=399 | 500..=599 => ErrorClass::InDoubt,
        400..=499 => ErrorClass::Permanent,
        // A 2xx whose body is not a Message, or anything unheard of: it may have been created.
        _ => ErrorClass::InDoubt,
    }
}

/// A transport failure: before the connection was open nothing was sent (transient); after,
/// the request may have reached Twilio (in doubt).
pub fn classify_transport(connection_opened: bool) -> ErrorClass {
    if connection_opened {
        ErrorClass::InDoubt
    } else {
        ErrorClass::Transient
    }
}

#[cfg(test)]
mod tests {
    use super::ErrorClass::*;
    use super::*;

    #[test]
    fn the_table_classifies_every_listed_answer() {
        let cases: &[(u16, Option<u32>, ErrorClass)] = &[
            (429, Some(20429), Throttled),
            (429, None, Throttled),
            (400, Some(21611), Throttled),
            (401, Some(20003), AccountLevel),
            (401, None, AccountLevel),
            (400, Some(63007), AccountLevel),
            (503, Some(20503), Transient),
            (503, None, Transient),
            (500, None, InDoubt),
            (500, Some(30500), InDoubt),
            (500, Some(20503), InDoubt),
            (502, Some(20429), InDoubt),
            (502, None, InDoubt),
            (504, None, InDoubt),
            (408, None, InDoubt),
            (302, None, InDoubt),
            (201, None, InDoubt),
            (400, Some(21211), Permanent),
            (400, Some(21408), Permanent),
            (400, Some(21610), Permanent),
            (400, Some(21614), Permanent),
            (400, Some(63016), Permanent),
            (400, Some(63018), Permanent),
            (400, Some(63024), Permanent),
            (400, Some(63032), Permanent),
            (400, Some(63049), Permanent),
            (400, Some(63051), Permanent),
            (400, Some(63003), Permanent),
            (400, Some(30003), Permanent),
            (400, Some(30008), Permanent),
            (404, Some(20404), Permanent),
            (400, None, Permanent),
        ];
        for &(http, code, expected) in cases {
            assert_eq!(classify_error(http, code), expected, "http {http} code {code:?}");
        }
    }

    #[test]
    fn transport_errors_depend_on_whether_the_request_may_have_left() {
        assert_eq!(classify_transport(false), Transient);
        assert_eq!(classify_transport(true), InDoubt);
    }
}

//! WhatsApp's 24-hour window (DESIGN.md, "Conversations"): a business may send free text only
//! within 24 hours of the parent's last message; outside it, only an approved template. The
//! window is read from the Consent item's `last_inbound_at`.

use super::item::ContentKind;
use super::message::{Content, QueueMessage};

/// How long the window stays open after the parent's last message.
pub const WINDOW_SECONDS: i64 = 86_400;

/// Whether the parent's window is open at `now`, with `margin` seconds kept short of its end
/// (`WINDOW_MARGIN_SECONDS`): a message created just before the end may reach WhatsApp after.
pub fn is_open(last_inbound_at: Option<i64>, now: i64, margin: i64) -> bool {
    last_inbound_at.is_some_and(|last| last + WINDOW_SECONDS - margin > now)
}

/// What to send: a `body` message with a `fallback_template` goes as its body while the window
/// is open, else as its template; any other message goes as it is (a body outside the window
/// is still sent: Twilio decides, and a 63016 says so).
pub fn content_to_send(message: &QueueMessage, window_open: bool) -> (Content, ContentKind) {
    match (&message.content, &message.fallback_template) {
        (Content::Body(_), Some(fallback)) if !window_open => {
            (Content::Template(fallback.clone()), ContentKind::Template)
        }
        (Content::Body(_), _) => (message.content.clone(), ContentKind::Body),
        (Content::Template(_), _) => (message.content.clone(), ContentKind::Template),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    #[test]
    fn the_window_closes_a_margin_before_24_hours() {
        assert!(!is_open(None, NOW, 300));
        assert!(is_open(Some(NOW - 3600), NOW, 300));
        assert!(is_open(Some(NOW - WINDOW_SECONDS + 301), NOW, 300));
        assert!(!is_open(Some(NOW - WINDOW_SECONDS + 300), NOW, 300));
        assert!(!is_open(Some(NOW - 25 * 3600), NOW, 300));
    }

    #[test]
    fn a_fallback_template_is_sent_only_outside_the_window() {
        let with_fallback = QueueMessage::parse(
            r#"{"v":1,"message_id":"m","to":"+33612345678","body":"Bonjour",
                "fallback_template":{"content_sid":"HX0123456789abcdef0123456789abcdef"}}"#,
        )
        .unwrap();
        let (content, kind) = content_to_send(&with_fallback, true);
        assert_eq!((content, kind), (Content::Body("Bonjour".into()), ContentKind::Body));
        let (content, kind) = content_to_send(&with_fallback, false);
        assert!(matches!(content, Content::Template(ref t) if t.content_sid.starts_with("HX0123")));
        assert_eq!(kind, ContentKind::Template);
        let body_only =
            QueueMessage::parse(r#"{"v":1,"message_id":"m","to":"+33612345678","body":"Bonjour"}"#).unwrap();
        assert_eq!(content_to_send(&body_only, false).1, ContentKind::Body, "Twilio decides: 63016");
    }
}

//! Test fixtures: a staff report with every section filled, as it will be once the Campaigns
//! and Inbox tables exist, so that the renderer's every branch is checked today.

use std::collections::BTreeMap;

use super::model::{
    AckCount, CampaignFacts, Cancellation, ErrorText, Funnel, HistoryEntry, LanguageCount, Phone, RecordedFacts, Reply,
    StaffReport, UnreachedFamily,
};
use super::reasons::Reason;

/// 2026-12-03T07:05:00Z: 08:05 in Paris.
pub const T0: i64 = 1_796_281_500;

/// A campaign of 20 messages with every section filled, text that needs escaping included.
pub fn full_report() -> StaffReport {
    let family = |id: &str, phone: Option<&str>, status: &str, reason, code, error: Option<&str>| UnreachedFamily {
        message_id: format!("trip:{id}"),
        recipient_id: Some(id.into()),
        phone: phone.map(Phone::new),
        status: status.into(),
        reason,
        code,
        error: error.map(ErrorText::new),
    };
    StaffReport {
        campaign: "trip-2026".into(),
        generated_at: T0 + 7_200,
        facts: Some(CampaignFacts {
            description: Some("Sortie au musée <jeudi> & \"pique-nique\"".into()),
            created_at: Some(T0),
            created_by: Some("secretariat@school".into()),
            enqueued: Some(20),
            cancelled: Some(Cancellation {
                at: Some(T0 + 3_600),
                by: Some("head@school".into()),
                reason: Some("storm warning".into()),
            }),
        }),
        recorded: RecordedFacts {
            items: 19,
            first_at: Some(T0 + 5),
            last_at: Some(T0 + 5_400),
            requested_by: vec!["secretariat@school".into()],
        },
        history: vec![
            HistoryEntry {
                action: "created".into(),
                at: Some(T0),
                by: Some("secretariat@school".into()),
                detail: None,
            },
            HistoryEntry {
                action: "cancelled".into(),
                at: Some(T0 + 3_600),
                by: Some("head@school".into()),
                detail: Some("storm warning".into()),
            },
            HistoryEntry {
                action: "requeued".into(),
                at: Some(T0 + 4_000),
                by: None,
                detail: Some("2 messages".into()),
            },
            HistoryEntry { action: "archived".into(), at: None, by: None, detail: None },
        ],
        funnel: Funnel { enqueued: Some(20), recorded: 19, sent: 12, delivered: 10, read: 6, acknowledged: Some(5) },
        by_status: BTreeMap::from([
            ("read".into(), 6),
            ("delivered".into(), 4),
            ("sent".into(), 1),
            ("undelivered".into(), 1),
            ("in_doubt".into(), 1),
            ("scheduled".into(), 1),
            ("failed".into(), 2),
            ("skipped".into(), 1),
            ("cancelled".into(), 1),
            ("rejected".into(), 1),
            ("archived".into(), 0),
        ]),
        unreached: vec![
            family(
                "p03",
                Some("+33612345603"),
                "failed",
                Reason::NotOnWhatsApp,
                Some(63003),
                Some("63003: Channel could not find To address"),
            ),
            family("p07", Some("+33612345607"), "skipped", Reason::AskedToStop, None, Some("opted out")),
            family(
                "p08",
                Some("+33612345608"),
                "failed",
                Reason::InvalidNumber,
                Some(21211),
                Some("21211: The 'To' number +33612345608 is not valid"),
            ),
            family(
                "p11",
                Some("+33612345611"),
                "undelivered",
                Reason::WindowClosed,
                Some(63016),
                Some("63016: outside the 24-hour window: send a template"),
            ),
            family("p12", None, "rejected", Reason::InvalidNumber, None, Some("to: not a valid E.164 number")),
        ],
        acks: vec![AckCount { answer: "yes".into(), count: 4 }, AckCount { answer: "no".into(), count: 1 }],
        replies: vec![
            Reply {
                received_at: T0 + 600,
                recipient_id: Some("p01".into()),
                phone: Some(Phone::new("+33612345601")),
                profile_name: Some("Jean".into()),
                body: Some("Léo a un rendez-vous <b>médical</b> jeudi, il viendra à 10h.".into()),
                button_text: None,
                media_count: 0,
            },
            Reply {
                received_at: T0 + 900,
                recipient_id: Some("p02".into()),
                phone: Some(Phone::new("+33612345602")),
                profile_name: None,
                body: None,
                button_text: Some("Oui, il viendra".into()),
                media_count: 2,
            },
        ],
        by_language: vec![
            LanguageCount { lang: "fr".into(), count: 15 },
            LanguageCount { lang: "ar".into(), count: 4 },
            LanguageCount { lang: "xx".into(), count: 1 },
        ],
    }
}

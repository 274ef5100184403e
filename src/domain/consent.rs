//! Consent: states, the parents' keywords, which change may undo which, and the record a
//! change writes (its history trimmed), all decided without I/O: the Consent store's adapter
//! only makes the conditional write.

use serde::{Deserialize, Serialize};

/// Who may receive messages (`CONSENT_POLICY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentPolicy {
    /// Send only to a phone whose consent is `opted_in` (the old service's `whatsapp_optin`).
    RequireOptin,
    /// Send unless the phone is `opted_out`.
    HonourOptout,
}

impl ConsentPolicy {
    /// `require-optin` or `honour-optout`, as the variable spells it.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "require-optin" => Some(ConsentPolicy::RequireOptin),
            "honour-optout" => Some(ConsentPolicy::HonourOptout),
            _ => None,
        }
    }
}

/// The most changes a Consent item's `history` keeps.
pub const HISTORY_LIMIT: usize = 20;

/// A Consent item (DESIGN.md, "Consent"). An item written only to keep `last_inbound_at`
/// (the parent wrote, no consent was ever recorded) has no `state`, which reads as missing
/// consent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentItem {
    pub phone: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
    #[serde(default)]
    pub history: Vec<ConsentHistoryEntry>,
    /// The parent's last inbound message (Unix seconds): their 24-hour window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_inbound_at: Option<i64>,
}

/// One change in a Consent item's `history`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentHistoryEntry {
    pub state: String,
    pub updated_at: i64,
    pub source: String,
    pub evidence: String,
}

impl ConsentItem {
    /// The state and source as the send path needs them (`None`: no usable state).
    pub fn current(&self) -> Option<CurrentConsent> {
        Some(CurrentConsent {
            state: ConsentState::parse(self.state.as_deref()?)?,
            source: self.source.as_deref().and_then(ConsentSource::parse),
        })
    }
}

/// The record `change` writes over `existing` (a read of the phone's item), or `None` when
/// the precedence rules refuse it or it repeats a change already in the history. The history
/// gains the change and keeps the last [`HISTORY_LIMIT`].
pub fn plan_change(
    phone: &str,
    existing: Option<&ConsentItem>,
    change: ConsentChange,
    evidence: &str,
    now: i64,
) -> Option<ConsentItem> {
    if !may_apply(existing.and_then(ConsentItem::current), change) {
        return None;
    }
    let recorded = existing.iter().flat_map(|item| item.history.iter().map(|entry| entry.evidence.as_str()));
    if repeats_history(change, evidence, recorded) {
        return None;
    }
    let mut history = existing.map(|item| item.history.clone()).unwrap_or_default();
    history.push(ConsentHistoryEntry {
        state: change.state.as_str().into(),
        updated_at: now,
        source: change.source.as_str().into(),
        evidence: evidence.into(),
    });
    let overflow = history.len().saturating_sub(HISTORY_LIMIT);
    history.drain(..overflow);
    Some(ConsentItem {
        phone: phone.into(),
        state: Some(change.state.as_str().into()),
        updated_at: Some(now),
        source: Some(change.source.as_str().into()),
        evidence: Some(evidence.into()),
        history,
        last_inbound_at: existing.and_then(|item| item.last_inbound_at),
    })
}

/// A phone's consent `state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentState {
    OptedIn,
    OptedOut,
}

impl ConsentState {
    pub fn as_str(self) -> &'static str {
        match self {
            ConsentState::OptedIn => "opted_in",
            ConsentState::OptedOut => "opted_out",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "opted_in" => Some(ConsentState::OptedIn),
            "opted_out" => Some(ConsentState::OptedOut),
            _ => None,
        }
    }
}

/// Where a consent change came from (`source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentSource {
    CsvImport,
    Cli,
    WhatsappReply,
    Twilio21610,
    Erasure,
}

impl ConsentSource {
    pub fn as_str(self) -> &'static str {
        match self {
            ConsentSource::CsvImport => "csv-import",
            ConsentSource::Cli => "cli",
            ConsentSource::WhatsappReply => "whatsapp-reply",
            ConsentSource::Twilio21610 => "twilio-21610",
            ConsentSource::Erasure => "erasure",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::CsvImport, Self::Cli, Self::WhatsappReply, Self::Twilio21610, Self::Erasure]
            .into_iter()
            .find(|s| s.as_str() == raw)
    }

    /// An opt-out the parent made themselves.
    pub fn is_from_parent(self) -> bool {
        matches!(self, ConsentSource::WhatsappReply | ConsentSource::Twilio21610)
    }
}

/// The current consent of a phone, as the send path needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CurrentConsent {
    pub state: ConsentState,
    pub source: Option<ConsentSource>,
}

/// Why a message may not be sent, or `None` when it may.
pub fn refusal(policy: ConsentPolicy, consent: Option<CurrentConsent>) -> Option<&'static str> {
    match (policy, consent.map(|c| c.state)) {
        (_, Some(ConsentState::OptedOut)) => Some("opted out"),
        (ConsentPolicy::RequireOptin, None) => Some("no consent on record"),
        _ => None,
    }
}

/// A requested change, with who asks for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsentChange {
    pub state: ConsentState,
    pub source: ConsentSource,
    /// For `cli`: whether the operator gave evidence (required to undo a parent's opt-out).
    pub has_evidence: bool,
}

/// Whether `change` may replace `current`. A parent's own opt-out is undone only by the
/// parent's opt-in keyword, or by the CLI with evidence; a CSV import never undoes it. An
/// erasure is lifted only by the CLI's opt-in with evidence (see [`lifts_erasure`]).
pub fn may_apply(current: Option<CurrentConsent>, change: ConsentChange) -> bool {
    let Some(current) = current else { return true };
    if current.source == Some(ConsentSource::Erasure) {
        return lifts_erasure(change);
    }
    let parent_opted_out =
        current.state == ConsentState::OptedOut && current.source.is_some_and(ConsentSource::is_from_parent);
    if !parent_opted_out || change.state == ConsentState::OptedOut {
        return true;
    }
    match change.source {
        ConsentSource::WhatsappReply => true,
        ConsentSource::Cli => change.has_evidence,
        _ => false,
    }
}

/// Whether `change` may replace an erasure's bare suppression record (DESIGN.md, "Erasure").
/// Only `missive consent set --optin --evidence` may: the operator has proof of the parent's
/// new consent. An opt-out from any source is refused too, though it asks what the record
/// already says: written, it would replace the erasure with a record that a parent's START
/// (after a STOP) or a CSV import (after `consent set --optout`) could then undo.
pub fn lifts_erasure(change: ConsentChange) -> bool {
    change.state == ConsentState::OptedIn && change.source == ConsentSource::Cli && change.has_evidence
}

/// Whether `change` repeats a change the history already holds, and so must not be recorded
/// again. A `twilio-21610` opt-out's evidence names the one Twilio message whose answer or
/// report carried the code (the callback's `MessageSid`, or `create of <message_id>`): when a
/// history entry already names it, this is a replayed or late report of an opt-out recorded
/// before, and writing it again would undo whatever the parent chose since (a START). A
/// first report whose consent write failed is not in the history, so Twilio's retry of it
/// still records it. Other sources' evidence is no such key (an operator's text, a file line,
/// an inbound message that may lack its `MessageSid`): they are never refused as repeats.
pub fn repeats_history<'a>(
    change: ConsentChange,
    evidence: &str,
    mut recorded_evidence: impl Iterator<Item = &'a str>,
) -> bool {
    change.source == ConsentSource::Twilio21610 && recorded_evidence.any(|recorded| recorded == evidence)
}

/// What an inbound message asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keyword {
    OptOut,
    OptIn,
    Help,
}

const OPT_OUT: &[&str] =
    &["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "ARRET", "ARRÊT", "DESINSCRIRE", "DÉSINSCRIRE"];
const OPT_IN: &[&str] = &["START", "UNSTOP", "OUI", "YES"];

/// Matches the whole body, any case, ignoring surrounding spaces and punctuation.
pub fn keyword(body: &str) -> Option<Keyword> {
    let word = body
        .trim_matches(|c: char| c.is_whitespace() || c.is_ascii_punctuation() || "¡¿«»…".contains(c))
        .to_uppercase();
    if OPT_OUT.contains(&word.as_str()) {
        Some(Keyword::OptOut)
    } else if OPT_IN.contains(&word.as_str()) {
        Some(Keyword::OptIn)
    } else if word == "HELP" || word == "AIDE" {
        Some(Keyword::Help)
    } else {
        None
    }
}

/// Twilio's Advanced Opt-Out `OptOutType` parameter.
pub fn opt_out_type(raw: &str) -> Option<Keyword> {
    match raw.to_ascii_uppercase().as_str() {
        "STOP" => Some(Keyword::OptOut),
        "START" => Some(Keyword::OptIn),
        "HELP" => Some(Keyword::Help),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_match_the_whole_body_in_any_case() {
        for body in ["STOP", "stop", "StOp", "  arrêt. ", "ARRET!", "Désinscrire", "unsubscribe", "quit"] {
            assert_eq!(keyword(body), Some(Keyword::OptOut), "{body:?}");
        }
        for body in ["START", "oui", "Yes!", " unstop "] {
            assert_eq!(keyword(body), Some(Keyword::OptIn), "{body:?}");
        }
        for body in ["please stop", "stopp", "", "merci", "no"] {
            assert_eq!(keyword(body), None, "{body:?}");
        }
        assert_eq!(keyword("help?"), Some(Keyword::Help));
    }

    #[test]
    fn consent_policy_decides_who_is_messaged() {
        let opted = |state| Some(CurrentConsent { state, source: Some(ConsentSource::Cli) });
        assert_eq!(refusal(ConsentPolicy::RequireOptin, None), Some("no consent on record"));
        assert_eq!(refusal(ConsentPolicy::HonourOptout, None), None);
        assert_eq!(refusal(ConsentPolicy::RequireOptin, opted(ConsentState::OptedIn)), None);
        assert_eq!(refusal(ConsentPolicy::HonourOptout, opted(ConsentState::OptedOut)), Some("opted out"));
    }

    #[test]
    fn a_parents_opt_out_is_undone_only_by_the_parent_or_with_evidence() {
        let parent_out =
            Some(CurrentConsent { state: ConsentState::OptedOut, source: Some(ConsentSource::WhatsappReply) });
        let change = |source, has_evidence| ConsentChange { state: ConsentState::OptedIn, source, has_evidence };
        assert!(!may_apply(parent_out, change(ConsentSource::CsvImport, true)));
        assert!(!may_apply(parent_out, change(ConsentSource::Cli, false)));
        assert!(may_apply(parent_out, change(ConsentSource::Cli, true)));
        assert!(may_apply(parent_out, change(ConsentSource::WhatsappReply, false)));
        let school_out = Some(CurrentConsent { state: ConsentState::OptedOut, source: Some(ConsentSource::CsvImport) });
        assert!(may_apply(school_out, change(ConsentSource::CsvImport, false)));
        assert!(may_apply(None, change(ConsentSource::CsvImport, false)));
    }

    #[test]
    fn an_erasure_is_lifted_only_by_the_cli_with_evidence() {
        let erased = Some(CurrentConsent { state: ConsentState::OptedOut, source: Some(ConsentSource::Erasure) });
        let all = [
            ConsentSource::CsvImport,
            ConsentSource::Cli,
            ConsentSource::WhatsappReply,
            ConsentSource::Twilio21610,
            ConsentSource::Erasure,
        ];
        for source in all {
            for has_evidence in [false, true] {
                let out = ConsentChange { state: ConsentState::OptedOut, source, has_evidence };
                assert!(!may_apply(erased, out), "an opt-out leaves the erasure as it is: {out:?}");
                let back_in = ConsentChange { state: ConsentState::OptedIn, source, has_evidence };
                let lifted = source == ConsentSource::Cli && has_evidence;
                assert_eq!(may_apply(erased, back_in), lifted, "{back_in:?}");
            }
        }
    }

    #[test]
    fn a_change_appends_to_the_history_and_keeps_the_last_twenty() {
        let change = |state, source| ConsentChange { state, source, has_evidence: true };
        let first =
            plan_change("+33612345678", None, change(ConsentState::OptedIn, ConsentSource::CsvImport), "f.csv:2", 10)
                .expect("no item: any change applies");
        assert_eq!((first.state.as_deref(), first.updated_at, first.history.len()), (Some("opted_in"), Some(10), 1));
        assert_eq!(first.source.as_deref(), Some("csv-import"));
        let mut item = first;
        for t in 0..30 {
            let state = if t % 2 == 0 { ConsentState::OptedOut } else { ConsentState::OptedIn };
            item =
                plan_change("+33612345678", Some(&item), change(state, ConsentSource::Cli), &format!("e{t}"), 100 + t)
                    .expect("the CLI with evidence may change it");
        }
        assert_eq!(item.history.len(), HISTORY_LIMIT);
        assert_eq!(item.history.last().map(|e| e.evidence.as_str()), Some("e29"));
        assert_eq!(item.history.first().map(|e| e.evidence.as_str()), Some("e10"));
        // The window is the parent's, not a consent change: a change keeps it.
        let wrote = ConsentItem { last_inbound_at: Some(99), ..item.clone() };
        let after =
            plan_change("+33612345678", Some(&wrote), change(ConsentState::OptedIn, ConsentSource::Cli), "e", 300)
                .unwrap();
        assert_eq!(after.last_inbound_at, Some(99));
        let bare = ConsentItem { state: None, updated_at: None, source: None, evidence: None, ..wrote };
        assert_eq!(bare.current(), None, "no state reads as no consent");
        // Refused by the precedence rules: a CSV import never undoes a parent's STOP.
        let stopped = plan_change(
            "+33612345678",
            Some(&item),
            change(ConsentState::OptedOut, ConsentSource::WhatsappReply),
            "SMstop",
            200,
        )
        .unwrap();
        assert_eq!(
            plan_change(
                "+33612345678",
                Some(&stopped),
                change(ConsentState::OptedIn, ConsentSource::CsvImport),
                "f.csv:3",
                201
            ),
            None
        );
        // A replayed 21610 whose evidence the history holds is refused.
        let opted_out =
            plan_change("+33612345678", None, change(ConsentState::OptedOut, ConsentSource::Twilio21610), "SM21610", 5)
                .unwrap();
        assert_eq!(
            plan_change(
                "+33612345678",
                Some(&opted_out),
                change(ConsentState::OptedOut, ConsentSource::Twilio21610),
                "SM21610",
                6
            ),
            None
        );
    }

    #[test]
    fn a_21610_already_in_the_history_is_a_repeat() {
        let change = |source| ConsentChange { state: ConsentState::OptedOut, source, has_evidence: true };
        let history = ["SMstop", "SM21610"];
        assert!(repeats_history(change(ConsentSource::Twilio21610), "SM21610", history.into_iter()));
        assert!(!repeats_history(change(ConsentSource::Twilio21610), "SMother", history.into_iter()));
        assert!(!repeats_history(change(ConsentSource::Twilio21610), "SM21610", std::iter::empty()));
        // An inbound STOP, a file line or an operator's text may come again: never a repeat.
        for source in [ConsentSource::WhatsappReply, ConsentSource::CsvImport, ConsentSource::Cli] {
            assert!(!repeats_history(change(source), "SMstop", history.into_iter()), "{source:?}");
        }
    }
}

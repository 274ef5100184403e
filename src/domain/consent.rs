//! Consent: states, the parents' keywords, and which change may undo which.

use crate::config::ConsentPolicy;

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
/// parent's opt-in keyword, or by the CLI with evidence; a CSV import never undoes it.
pub fn may_apply(current: Option<CurrentConsent>, change: ConsentChange) -> bool {
    let Some(current) = current else { return true };
    let parent_opted_out = current.state == ConsentState::OptedOut
        && current.source.is_some_and(|source| source.is_from_parent() || source == ConsentSource::Erasure);
    if !parent_opted_out || change.state == ConsentState::OptedOut {
        return true;
    }
    match change.source {
        ConsentSource::WhatsappReply => current.source != Some(ConsentSource::Erasure),
        ConsentSource::Cli => change.has_evidence,
        _ => false,
    }
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
}

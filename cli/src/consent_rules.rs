//! Writing consent from the operator's side: a CSV row never undoes a parent's own opt-out
//! (DESIGN.md, "Consent"), and a row that says what the record already says writes nothing.

use missive::adapters::dynamo::DynamoConsent;
use missive::domain::consent::ConsentItem;
use missive::domain::consent::{ConsentChange, ConsentSource, ConsentState};
use missive::domain::phone::PhoneNumber;
use missive::ports::{ConsentStore, StoreError};
use serde::Serialize;

/// What became of one requested change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    /// The change was recorded.
    Applied,
    /// The record already had this state: nothing written.
    Unchanged,
    /// The precedence rules refused it (a parent's own opt-out, an erasure): the record as it is.
    LeftAlone(Current),
}

/// A record as shown in reports of rows left alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Current {
    /// `None`: an item that only keeps the parent's window (no consent recorded).
    pub state: Option<String>,
    pub source: Option<String>,
    pub evidence: Option<String>,
    pub updated_at: Option<i64>,
}

impl From<&ConsentItem> for Current {
    fn from(item: &ConsentItem) -> Self {
        Current {
            state: item.state.clone(),
            source: item.source.clone(),
            evidence: item.evidence.clone(),
            updated_at: item.updated_at,
        }
    }
}

/// Records an imported state (source `csv-import`), unless the record already says so or the
/// rules keep the current one.
pub async fn import(
    store: &DynamoConsent,
    phone: &PhoneNumber,
    state: ConsentState,
    evidence: &str,
    now: i64,
) -> Result<Written, StoreError> {
    let existing = store.item(phone).await?;
    if existing.as_ref().is_some_and(|item| item.state.as_deref() == Some(state.as_str())) {
        return Ok(Written::Unchanged);
    }
    let change = ConsentChange { state, source: ConsentSource::CsvImport, has_evidence: true };
    if store.change(phone, change, evidence, now).await? {
        return Ok(Written::Applied);
    }
    // Refused: show the record that refused it (read again: it may have changed meanwhile).
    let current = store.item(phone).await?.or(existing);
    Ok(Written::LeftAlone(current.as_ref().map(Current::from).unwrap_or(Current {
        state: None,
        source: None,
        evidence: None,
        updated_at: None,
    })))
}

/// Why a record refuses an import, for people.
pub fn why_left_alone(current: &Current) -> String {
    let source = current.source.as_deref().unwrap_or("unknown source");
    match ConsentSource::parse(source) {
        Some(ConsentSource::Erasure) => "the phone was erased (missive forget): it stays suppressed".into(),
        Some(s) if s.is_from_parent() => format!(
            "the parent opted out themselves ({source}{}); only the parent, or `missive consent set --optin --evidence`, can undo it",
            current.evidence.as_deref().map(|e| format!(", {e}")).unwrap_or_default()
        ),
        _ => format!("the record ({}, {source}) takes precedence", current.state.as_deref().unwrap_or("no state")),
    }
}

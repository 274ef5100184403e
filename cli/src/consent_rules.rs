//! Writing consent from the operator's side: a CSV row never undoes a parent's own opt-out
//! (DESIGN.md, "Consent"), and a row that says what the record already says writes nothing.
//! `bulk` and `consent import` record their files' rows through [`record_rows`], on the
//! Consent port (DynamoDB in the commands, memory in the tests below).

use futures::StreamExt;
use indicatif::ProgressBar;
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
    store: &dyn ConsentStore,
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

/// What one row of an operator's file states about one phone's consent.
#[derive(Debug, Clone, Copy)]
pub struct Stated<'a> {
    /// The row's line in its file.
    pub line: u64,
    pub phone: &'a PhoneNumber,
    pub state: ConsentState,
    /// What proves it (`parents.csv:12`, or the file's own `evidence` column).
    pub evidence: &'a str,
}

/// A row of an operator's file that states a phone's consent.
pub trait ConsentRow: Sync {
    fn stated(&self) -> Stated<'_>;
}

/// A row that states only consent: a `consent import` file's row.
#[derive(Debug, Clone)]
pub struct ConsentLine {
    pub line: u64,
    pub phone: PhoneNumber,
    pub state: ConsentState,
    pub evidence: String,
}

impl ConsentRow for ConsentLine {
    fn stated(&self) -> Stated<'_> {
        Stated { line: self.line, phone: &self.phone, state: self.state, evidence: &self.evidence }
    }
}

/// What became of a file's rows; each list in the order of the rows given.
#[derive(Debug)]
pub struct Recorded<'r, R> {
    pub applied: usize,
    pub unchanged: usize,
    /// Rows the rules refused, with the record that refused them.
    pub left_alone: Vec<(&'r R, Current)>,
    /// Rows whose read or write failed.
    pub failed: Vec<(&'r R, StoreError)>,
}

impl<R: ConsentRow> Recorded<'_, R> {
    /// One `line N: error` per failed row, for an error message.
    pub fn failure_lines(&self) -> Vec<String> {
        self.failed.iter().map(|(row, err)| format!("line {}: {err}", row.stated().line)).collect()
    }
}

/// Records each row's state (source `csv-import`, see [`import`]), `concurrency` rows at
/// once, ticking `progress` after each.
pub async fn record_rows<'r, R: ConsentRow>(
    store: &dyn ConsentStore,
    rows: &[&'r R],
    concurrency: usize,
    progress: &ProgressBar,
    now: i64,
) -> Recorded<'r, R> {
    let mut results: Vec<(usize, &'r R, Result<Written, StoreError>)> =
        futures::stream::iter(rows.iter().copied().enumerate())
            .map(|(index, row)| async move {
                let Stated { phone, state, evidence, .. } = row.stated();
                let result = import(store, phone, state, evidence, now).await;
                progress.inc(1);
                (index, row, result)
            })
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
    results.sort_by_key(|(index, _, _)| *index);
    let mut recorded = Recorded { applied: 0, unchanged: 0, left_alone: Vec::new(), failed: Vec::new() };
    for (_, row, result) in results {
        match result {
            Ok(Written::Applied) => recorded.applied += 1,
            Ok(Written::Unchanged) => recorded.unchanged += 1,
            Ok(Written::LeftAlone(current)) => recorded.left_alone.push((row, current)),
            Err(err) => recorded.failed.push((row, err)),
        }
    }
    recorded
}

#[cfg(test)]
mod tests {
    use missive::adapters::memory::MemoryConsent;

    use super::*;

    fn phone(n: u32) -> PhoneNumber {
        PhoneNumber::parse(&format!("+336123456{n:02}")).unwrap()
    }

    fn line(line: u64, n: u32, state: ConsentState) -> ConsentLine {
        ConsentLine { line, phone: phone(n), state, evidence: format!("parents.csv:{line}") }
    }

    fn record(n: u32, state: ConsentState, source: ConsentSource, evidence: &str) -> ConsentItem {
        ConsentItem {
            phone: phone(n).as_str().into(),
            state: Some(state.as_str().into()),
            updated_at: Some(1_000),
            source: Some(source.as_str().into()),
            evidence: Some(evidence.into()),
            history: Vec::new(),
            last_inbound_at: None,
        }
    }

    #[tokio::test]
    async fn each_row_is_applied_unchanged_left_alone_or_failed_in_the_rows_order() {
        let store = MemoryConsent::new();
        store.insert(record(2, ConsentState::OptedIn, ConsentSource::CsvImport, "old.csv:2"));
        store.insert(record(3, ConsentState::OptedOut, ConsentSource::WhatsappReply, "SM3"));
        store.insert(record(5, ConsentState::OptedOut, ConsentSource::Erasure, "erasure"));
        store.insert(record(6, ConsentState::OptedOut, ConsentSource::CsvImport, "old.csv:6"));
        store.faults.fail("item", Some(phone(4).as_str()));
        let rows = [
            line(2, 1, ConsentState::OptedIn),
            line(3, 2, ConsentState::OptedIn),
            line(4, 3, ConsentState::OptedIn),
            line(5, 4, ConsentState::OptedOut),
            line(6, 5, ConsentState::OptedIn),
            line(7, 6, ConsentState::OptedIn),
        ];
        let refs: Vec<&ConsentLine> = rows.iter().collect();
        let recorded = record_rows(&store, &refs, 3, &ProgressBar::hidden(), 2_000).await;

        assert_eq!((recorded.applied, recorded.unchanged), (2, 1), "lines 2 and 7 applied, line 3 unchanged");
        let left: Vec<(u64, Option<&str>)> =
            recorded.left_alone.iter().map(|(row, current)| (row.line, current.source.as_deref())).collect();
        assert_eq!(left, [(4, Some("whatsapp-reply")), (6, Some("erasure"))]);
        assert!(why_left_alone(&recorded.left_alone[0].1)
            .starts_with("the parent opted out themselves (whatsapp-reply, SM3)"));
        assert_eq!(recorded.failure_lines(), ["line 5: item: injected fault"]);

        let new = store.item(&phone(1)).await.unwrap().unwrap();
        assert_eq!(
            (new.state.as_deref().unwrap_or_default(), new.source.as_deref(), new.evidence.as_deref()),
            ("opted_in", Some("csv-import"), Some("parents.csv:2"))
        );
        let parent = store.item(&phone(3)).await.unwrap().unwrap();
        assert_eq!(
            (parent.state.as_deref().unwrap_or_default(), parent.source.as_deref()),
            ("opted_out", Some("whatsapp-reply"))
        );
        let school = store.item(&phone(6)).await.unwrap().unwrap();
        assert_eq!(
            (school.state.as_deref().unwrap_or_default(), school.history.len()),
            ("opted_in", 1),
            "a school-side record is updated"
        );
    }
}

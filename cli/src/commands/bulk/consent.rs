//! Recording a bulk file's consent (DESIGN.md, "Consent"): once per phone, the first line that
//! names it being the evidence, for every valid row, whether or not its message went out
//! before (the file states it). A parent's own opt-out is left alone and reported.

use std::collections::HashSet;

use indicatif::ProgressBar;
use missive::ports::ConsentStore;
use serde::Serialize;

use super::plan::Planned;
use crate::consent_column::as_column_value;
use crate::consent_rules::{self, Current};
use crate::error::{CliError, CliResult};

/// A row whose consent was left as it is.
#[derive(Debug, Serialize)]
pub struct LeftAlone {
    pub line: u64,
    pub parent_id: String,
    pub phone: String,
    pub whatsapp_optin: bool,
    pub current: Current,
    pub reason: String,
}

/// What the file's consent did to the Consent table.
#[derive(Debug)]
pub struct FileConsent {
    pub recorded: usize,
    pub unchanged: usize,
    pub left_alone: Vec<LeftAlone>,
}

/// The rows that state each phone's consent: the first row naming it.
pub fn first_row_per_phone(planned: &[Planned]) -> Vec<&Planned> {
    let mut seen = HashSet::new();
    planned.iter().filter(|row| seen.insert(&row.phone)).collect()
}

/// Records the consent of `planned`'s phones; an error (nothing to enqueue then) when any
/// write failed.
pub async fn record(
    store: &dyn ConsentStore,
    planned: &[Planned],
    concurrency: usize,
    progress: &ProgressBar,
    now: i64,
) -> CliResult<FileConsent> {
    let firsts = first_row_per_phone(planned);
    let recorded = consent_rules::record_rows(store, &firsts, concurrency, progress, now).await;
    if !recorded.failed.is_empty() {
        return Err(CliError::Runtime(format!(
            "consent could not be recorded, so nothing was enqueued (running the same file again is safe):\n  {}",
            recorded.failure_lines().join("\n  ")
        )));
    }
    let left_alone = recorded
        .left_alone
        .into_iter()
        .map(|(row, current)| LeftAlone {
            line: row.line,
            parent_id: row.parent_id.clone(),
            phone: row.phone.masked(),
            whatsapp_optin: as_column_value(row.consent),
            reason: consent_rules::why_left_alone(&current),
            current,
        })
        .collect();
    Ok(FileConsent { recorded: recorded.applied, unchanged: recorded.unchanged, left_alone })
}

#[cfg(test)]
mod tests {
    use missive::adapters::memory::MemoryConsent;
    use missive::domain::phone::PhoneNumber;

    use super::super::plan::planned_rows as planned;
    use super::*;

    #[tokio::test]
    async fn a_phone_named_twice_is_recorded_once_with_its_first_line() {
        let rows = planned("parent_id,phone,whatsapp_optin\nmother,+33612345601,true\nfather,+33612345601,true\n");
        let store = MemoryConsent::new();
        let consent = record(&store, &rows, 4, &ProgressBar::hidden(), 1_000).await.unwrap();
        assert_eq!((consent.recorded, consent.unchanged, consent.left_alone.len()), (1, 0, 0));
        let item = store.item(&PhoneNumber::parse("+33612345601").unwrap()).await.unwrap().unwrap();
        assert_eq!((item.evidence.as_deref(), item.history.len()), (Some("parents.csv:2"), 1));
    }

    #[tokio::test]
    async fn a_failed_write_is_an_error_naming_the_line() {
        let rows = planned("parent_id,phone,whatsapp_optin\np1,+33612345601,true\np2,+33612345602,false\n");
        let store = MemoryConsent::new();
        store.faults.fail("replace", Some("+33612345602"));
        let err = record(&store, &rows, 4, &ProgressBar::hidden(), 1_000).await.unwrap_err();
        assert_eq!(err.exit_code(), 1);
        assert!(err.to_string().ends_with("\n  line 3: replace: injected fault"), "{err}");
    }
}

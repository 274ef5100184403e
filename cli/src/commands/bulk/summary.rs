//! What a bulk run prints once it has recorded and enqueued: counts for people (and what to
//! run next), or one JSON object with `--json`.

use serde_json::json;

use super::consent::FileConsent;
use super::enqueue::Enqueued;
use crate::context::Context;
use crate::output::{note, print_json};
use crate::sheet::{lines_with_errors, RowError, Sheet};

/// Everything a run did.
pub struct Summary<'a> {
    pub campaign: &'a str,
    pub sheet: &'a Sheet,
    /// The rows skipped as invalid (`--skip-invalid`).
    pub invalid: &'a [RowError],
    /// Valid rows not enqueued because MessageLog holds their message from an earlier run.
    pub already_recorded: usize,
    pub enqueued: &'a Enqueued,
    pub consent: &'a FileConsent,
}

pub fn print(ctx: &Context, summary: &Summary<'_>) {
    let Summary { campaign, sheet, invalid, already_recorded, enqueued, consent } = summary;
    let (rows, invalid_lines) = (sheet.row_count(), lines_with_errors(invalid));
    if ctx.json() {
        print_json(&json!({
            "file": sheet.name,
            "campaign": campaign,
            "rows": rows,
            "invalid_rows": invalid_lines,
            "errors": invalid,
            "already_recorded": already_recorded,
            "enqueued": enqueued.count,
            "not_enqueued_lines": enqueued.failed_lines,
            "consent": {"recorded": consent.recorded, "unchanged": consent.unchanged, "left_alone": consent.left_alone},
        }));
        return;
    }
    println!(
        "{}: {rows} row(s), {invalid_lines} invalid{}, {already_recorded} already recorded, {} enqueued for campaign {campaign}",
        sheet.name,
        if invalid_lines > 0 { " (skipped)" } else { "" },
        enqueued.count,
    );
    if *already_recorded > 0 {
        println!(
            "already recorded: {already_recorded} message(s) that MessageLog holds from an earlier run were not enqueued again"
        );
    }
    println!(
        "consent: {} recorded, {} unchanged, {} left alone",
        consent.recorded,
        consent.unchanged,
        consent.left_alone.len()
    );
    for row in &consent.left_alone {
        println!(
            "  line {} ({}, {}): whatsapp_optin={} not applied: {}",
            row.line, row.parent_id, row.phone, row.whatsapp_optin, row.reason
        );
    }
    if enqueued.count > 0 {
        note(&format!("follow it with: missive report --campaign {campaign} --watch"));
    } else if *already_recorded > 0 && enqueued.failed_lines.is_empty() {
        note(&format!("nothing new to send; see: missive report --campaign {campaign}"));
    }
}

//! `missive bulk --dry-run`: what a run would enqueue and record, written nowhere (no AWS
//! call at all, so it works without credentials or an emulator).

use serde_json::json;

use super::plan::Planned;
use crate::compose::ContentExt;
use crate::consent_column::as_column_value;
use crate::context::Context;
use crate::output::print_json;
use crate::sheet::{lines_with_errors, RowError, Sheet};

/// Prints the plan: every message with its consent, or, with `--json`, one object.
pub fn print(ctx: &Context, campaign: &str, sheet: &Sheet, planned: &[Planned], invalid: &[RowError]) {
    let (rows, invalid_lines) = (sheet.row_count(), lines_with_errors(invalid));
    if ctx.json() {
        let messages: Vec<_> = planned
            .iter()
            .map(|row| {
                json!({
                    "line": row.line,
                    "message_id": row.message_id,
                    "to": row.phone.masked(),
                    "whatsapp_optin": as_column_value(row.consent),
                    "consent": row.consent.as_str(),
                    "content": row.content.summary(),
                })
            })
            .collect();
        print_json(&json!({
            "dry_run": true, "file": sheet.name, "campaign": campaign, "rows": rows,
            "invalid_rows": invalid_lines, "errors": invalid, "would_enqueue": planned.len(), "messages": messages,
        }));
        return;
    }
    println!(
        "dry run: {}: {rows} row(s), {invalid_lines} invalid; would enqueue {} message(s) for campaign {campaign}:",
        sheet.name,
        planned.len(),
    );
    for row in planned {
        println!(
            "  line {:<4} {:<40} {:<14} consent {:<9} {}",
            row.line,
            row.message_id,
            row.phone.masked(),
            row.consent.as_str(),
            row.content.summary()
        );
    }
    println!("nothing was written (consent is recorded unless the parent's own opt-out says otherwise)");
    println!("not checked: which of these MessageLog already holds (a real run does not enqueue those again)");
}

//! What `bulk` and `consent import` do with a file's invalid rows: refuse the whole file
//! (every problem printed, nothing written, exit 4), or, with `--skip-invalid`, list them as
//! skipped and go on with the valid rows.

use serde_json::Value;

use crate::context::Context;
use crate::error::{CliError, CliResult};
use crate::output::print_json;
use crate::sheet::{lines_with_errors, RowError, Sheet};

/// How a command words a refusal.
pub struct Refusal<'a> {
    /// What the command would have done: `recorded or enqueued`.
    pub nothing_was: &'a str,
    /// What `--skip-invalid` does: `send the valid rows`.
    pub skip_invalid_would: &'a str,
}

/// Refuses the file when it has invalid rows and `skip_invalid` is not set (printing every
/// problem, or `json()` with `--json`); else lists the invalid rows, if any, as skipped.
pub fn refuse_or_skip(
    ctx: &Context,
    sheet: &Sheet,
    errors: &[RowError],
    skip_invalid: bool,
    refusal: Refusal<'_>,
    json: impl FnOnce() -> Value,
) -> CliResult<()> {
    if !errors.is_empty() && !skip_invalid {
        if ctx.json() {
            print_json(&json());
        } else {
            for error in errors {
                eprintln!("{}: {error}", sheet.name);
            }
        }
        return Err(CliError::InvalidRows(format!(
            "{}: {} invalid row(s) of {}; nothing was {} (fix them, or pass --skip-invalid to {})",
            sheet.name,
            lines_with_errors(errors),
            sheet.row_count(),
            refusal.nothing_was,
            refusal.skip_invalid_would
        )));
    }
    if !ctx.json() {
        for error in errors {
            eprintln!("{}: skipped: {error}", sheet.name);
        }
    }
    Ok(())
}

//! Reading the operator's CSV files (bulk campaigns, consent imports): a header row, then
//! one row per line; every problem is kept with its line number and field, so that a whole
//! file is checked before anything is written.

use std::fmt;
use std::path::Path;

use serde::Serialize;

use crate::error::{CliError, CliResult};

/// A problem in a file: its line (1 is the header), the field (column) and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowError {
    pub line: u64,
    pub field: String,
    pub reason: String,
}

impl RowError {
    pub fn new(line: u64, field: &str, reason: impl Into<String>) -> Self {
        RowError { line, field: field.to_owned(), reason: reason.into() }
    }
}

/// How many lines have at least one problem (a line can have several).
pub fn lines_with_errors(errors: &[RowError]) -> usize {
    errors.iter().map(|e| e.line).collect::<std::collections::BTreeSet<_>>().len()
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}: {}", self.line, self.field, self.reason)
    }
}

/// One data row.
#[derive(Debug, Clone)]
pub struct Row {
    pub line: u64,
    fields: Vec<String>,
}

impl Row {
    /// The trimmed value of column `index` (empty when missing).
    pub fn get(&self, index: usize) -> &str {
        self.fields.get(index).map(String::as_str).unwrap_or("")
    }
}

/// A CSV file read whole.
#[derive(Debug)]
pub struct Sheet {
    /// The file name without its directories: the `evidence` of consent rows (`parents.csv:12`).
    pub name: String,
    pub headers: Vec<String>,
    pub rows: Vec<Row>,
    /// Rows that could not be read at all (a wrong number of fields, bad UTF-8).
    pub errors: Vec<RowError>,
}

impl Sheet {
    pub fn open(path: &Path) -> CliResult<Sheet> {
        let text = std::fs::read(path).map_err(|e| CliError::Usage(format!("{}: {e}", path.display())))?;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "-".into());
        Self::parse(&name, &text)
    }

    pub fn parse(name: &str, bytes: &[u8]) -> CliResult<Sheet> {
        // Flexible, and the field count checked here: csv's own error for a short row gives
        // the position where the reader stood (before any blank line), not the row's line.
        let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).flexible(true).from_reader(bytes);
        let headers: Vec<String> = reader
            .headers()
            .map_err(|e| CliError::InvalidRows(format!("{name}: line 1: cannot read the header row: {e}")))?
            .iter()
            .map(|h| h.trim_start_matches('\u{feff}').to_ascii_lowercase())
            .collect();
        if headers.iter().all(String::is_empty) {
            return Err(CliError::InvalidRows(format!("{name}: the file is empty (a header row is required)")));
        }
        let mut rows = Vec::new();
        let mut errors = Vec::new();
        for record in reader.records() {
            match record {
                Ok(record) => {
                    let line = record.position().map_or(0, |p| line_of(bytes, p));
                    if record.len() != headers.len() {
                        let reason = format!("{} fields where the header has {}", record.len(), headers.len());
                        errors.push(RowError::new(line, "row", reason));
                        continue;
                    }
                    rows.push(Row { line, fields: record.iter().map(str::to_owned).collect() });
                }
                Err(err) => {
                    let line = err.position().map_or(0, |p| line_of(bytes, p));
                    let reason = match err.kind() {
                        csv::ErrorKind::Utf8 { .. } => "not valid UTF-8".to_owned(),
                        _ => err.to_string(),
                    };
                    errors.push(RowError::new(line, "row", reason));
                }
            }
        }
        Ok(Sheet { name: name.to_owned(), headers, rows, errors })
    }

    /// The data rows of the file, read or not (the header not counted).
    pub fn row_count(&self) -> usize {
        self.rows.len() + self.errors.len()
    }

    /// The index of a column, by its (case-insensitive) name.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.headers.iter().position(|h| h.eq_ignore_ascii_case(name))
    }

    /// The index of a required column, or an error naming it.
    pub fn require(&self, name: &str) -> CliResult<usize> {
        self.column(name).ok_or_else(|| {
            CliError::InvalidRows(format!(
                "{}: line 1: the column {name:?} is missing (columns: {})",
                self.name,
                self.headers.join(",")
            ))
        })
    }
}

/// The line a record starts on. csv's own `line()` is where the reader stood, before any
/// blank lines it then skipped; count the newlines up to the record's first byte instead.
fn line_of(bytes: &[u8], position: &csv::Position) -> u64 {
    let mut start = (position.byte() as usize).min(bytes.len());
    while start < bytes.len() && matches!(bytes[start], b'\n' | b'\r') {
        start += 1;
    }
    1 + bytes[..start].iter().filter(|b| **b == b'\n').count() as u64
}

/// `true`/`false` as operators write it (`yes`/`no`, `1`/`0`, `oui`/`non`), any case.
pub fn parse_bool(raw: &str) -> Option<bool> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "y" | "1" | "oui" => Some(true),
        "false" | "no" | "n" | "0" | "non" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_keep_their_line_numbers_and_bad_rows_are_listed() {
        let sheet =
            Sheet::parse("p.csv", b"Parent_ID, phone ,whatsapp_optin\np1,+33612345678,true\n\np2,x\np3,y,false\n")
                .unwrap();
        assert_eq!(sheet.headers, ["parent_id", "phone", "whatsapp_optin"]);
        assert_eq!(sheet.rows.iter().map(|r| r.line).collect::<Vec<_>>(), [2, 5]);
        assert_eq!(sheet.rows[0].get(sheet.column("phone").unwrap()), "+33612345678");
        assert_eq!(sheet.errors.len(), 1);
        assert_eq!(sheet.errors[0].line, 4);
        assert_eq!(sheet.errors[0].to_string(), "line 4: row: 2 fields where the header has 3");
        assert!(sheet.require("evidence").is_err());
        assert_eq!(sheet.row_count(), 3);
    }

    #[test]
    fn a_line_with_two_problems_is_one_invalid_row() {
        let errors =
            [RowError::new(3, "phone", "required"), RowError::new(3, "optin", "x"), RowError::new(5, "row", "y")];
        assert_eq!(lines_with_errors(&errors), 2);
    }

    #[test]
    fn booleans_as_operators_write_them() {
        for (raw, expected) in [("TRUE", Some(true)), ("no", Some(false)), ("1", Some(true)), ("maybe", None)] {
            assert_eq!(parse_bool(raw), expected, "{raw}");
        }
    }
}

//! The column of an operator's CSV file that states a parent's consent, read one way for
//! every file: one lookup of the column, one parser of its value, one error wording.
//!
//! Why the column has two names: both are fixed by DESIGN.md, for two kinds of file.
//! `missive bulk` reads the school's parent list, whose `whatsapp_optin` column is the one the
//! old service checked before sending, so a school's existing export is sent as it is. `missive
//! consent import` reads a file made only to state consent (`phone`, `optin`, `evidence`),
//! where `optin` says it all. The names stay where DESIGN.md puts them (renaming either would
//! break the files schools already have); what they hold is read and recorded alike.

use missive::domain::consent::ConsentState;

use crate::error::CliResult;
use crate::sheet::{parse_bool, Row, RowError, Sheet};

/// The consent column of one file, found by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsentColumn {
    name: &'static str,
    index: usize,
}

impl ConsentColumn {
    /// The column of `missive bulk`'s parent list.
    pub const BULK: &'static str = "whatsapp_optin";
    /// The column of `missive consent import`'s consent file.
    pub const IMPORT: &'static str = "optin";

    /// `whatsapp_optin` in a bulk file, or an error naming the missing column.
    pub fn of_bulk_file(sheet: &Sheet) -> CliResult<Self> {
        Self::find(sheet, Self::BULK)
    }

    /// `optin` in a consent import file, or an error naming the missing column.
    pub fn of_import_file(sheet: &Sheet) -> CliResult<Self> {
        Self::find(sheet, Self::IMPORT)
    }

    fn find(sheet: &Sheet, name: &'static str) -> CliResult<Self> {
        Ok(ConsentColumn { name, index: sheet.require(name)? })
    }

    /// The column's name, as the file and the error messages spell it.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The state the row gives its phone: `true` (`yes`, `1`, `oui`) is opted in, `false`
    /// (`no`, `0`, `non`) opted out; anything else is an error naming the column.
    pub fn read(&self, row: &Row) -> Result<ConsentState, RowError> {
        let raw = row.get(self.index);
        match parse_bool(raw) {
            Some(true) => Ok(ConsentState::OptedIn),
            Some(false) => Ok(ConsentState::OptedOut),
            None => Err(RowError::new(row.line, self.name, format!("expected true or false, got {raw:?}"))),
        }
    }
}

/// The column's value as a file would write it back (`true` for opted in), for reports that
/// echo what a row said.
pub fn as_column_value(state: ConsentState) -> bool {
    state == ConsentState::OptedIn
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_files_are_read_by_the_same_rules_and_wording() {
        let bulk =
            Sheet::parse("parents.csv", b"parent_id,phone,whatsapp_optin\np1,+33612345678,Oui\np2,x,maybe\n").unwrap();
        let import = Sheet::parse("consent.csv", b"phone,optin\n+33612345678,0\n+33612345679,maybe\n").unwrap();
        let (bulk_column, import_column) =
            (ConsentColumn::of_bulk_file(&bulk).unwrap(), ConsentColumn::of_import_file(&import).unwrap());
        assert_eq!(bulk_column.read(&bulk.rows[0]), Ok(ConsentState::OptedIn));
        assert_eq!(import_column.read(&import.rows[0]), Ok(ConsentState::OptedOut));
        assert_eq!(
            bulk_column.read(&bulk.rows[1]).unwrap_err().to_string(),
            "line 3: whatsapp_optin: expected true or false, got \"maybe\""
        );
        assert_eq!(
            import_column.read(&import.rows[1]).unwrap_err().to_string(),
            "line 3: optin: expected true or false, got \"maybe\""
        );
    }

    #[test]
    fn each_file_needs_its_own_name() {
        let import = Sheet::parse("consent.csv", b"phone,optin\n+33612345678,true\n").unwrap();
        let err = ConsentColumn::of_bulk_file(&import).unwrap_err();
        assert!(err.to_string().contains("the column \"whatsapp_optin\" is missing"), "{err}");
        assert_eq!(err.exit_code(), 4);
    }
}

//! The "paper list": the families not reached, as CSV, for the secretary who calls them. One
//! row per family, in the page's language (headers too), phones masked unless shown. It
//! starts with a UTF-8 byte-order mark so that a spreadsheet opened by a double click reads
//! the accents right; the csv crate quotes what needs quoting.

use super::model::StaffReport;
use super::render::technical_detail;
use super::words::{reason_words, status_words, Lang};
use missive::domain::phone::mask_phone;

const BOM: &str = "\u{feff}";

/// The CSV text of the families not reached.
pub fn paper_list(report: &StaffReport, lang: Lang, show_phones: bool) -> Result<String, csv::Error> {
    let w = lang.words();
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record([
        w.col_family,
        w.col_phone,
        w.col_status,
        w.col_why,
        w.col_todo,
        w.col_detail,
        w.col_message,
    ])?;
    for family in &report.unreached {
        let words = reason_words(lang, family.reason);
        let phone = match family.phone.as_deref() {
            Some(phone) if show_phones => phone.to_owned(),
            Some(phone) => mask_phone(phone),
            None => w.phone_unknown.to_owned(),
        };
        let status = status_words(lang, &family.status).map_or(family.status.as_str(), |s| s.label);
        writer.write_record([
            family.recipient_id.as_deref().unwrap_or(w.family_unknown),
            &phone,
            status,
            words.why,
            words.what_to_do,
            &technical_detail(family, show_phones),
            &family.message_id,
        ])?;
    }
    let bytes = writer.into_inner().map_err(|e| e.into_error())?;
    Ok(format!("{BOM}{}", String::from_utf8_lossy(&bytes)))
}

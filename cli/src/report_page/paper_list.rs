//! The "paper list": the families not reached, as CSV, for the secretary who calls them. One
//! row per family, in the page's language (headers too), phones masked unless shown. It
//! starts with a UTF-8 byte-order mark so that a spreadsheet opened by a double click reads
//! the accents right; the csv crate quotes what needs quoting.

use super::model::StaffReport;
use super::render::{phone_text, technical_detail};
use super::words::{reason_words, status_words, Lang};

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
        let phone = phone_text(family.phone.as_ref(), show_phones, w);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report_page::fixtures::full_report;

    fn rows(text: &str) -> Vec<Vec<String>> {
        let text = text.strip_prefix(BOM).expect("the list starts with a byte-order mark");
        csv::Reader::from_reader(text.as_bytes())
            .records()
            .map(|r| r.expect("valid CSV").iter().map(str::to_owned).collect())
            .collect()
    }

    #[test]
    fn one_row_per_family_not_reached_in_the_page_language() {
        let report = full_report();
        let text = paper_list(&report, Lang::Fr, false).unwrap();
        assert!(
            text.starts_with("\u{feff}Famille,Téléphone,État,Pourquoi,Que faire,Détail technique,Message\n"),
            "{text}"
        );
        let rows = rows(&text);
        assert_eq!(rows.len(), report.unreached.len());
        assert_eq!(
            rows[0],
            [
                "p03",
                "+33*******03",
                "Échec",
                "Ce numéro n'utilise pas WhatsApp.",
                "Appelez-les ou envoyez un SMS ; vérifiez le numéro avec eux.",
                "failed · 63003 · Channel could not find To address",
                "trip:p03",
            ]
        );
        assert_eq!(rows[4][1], "aucun numéro valide");
        assert!(!text.contains("+3361234560"), "phones masked, in the detail too: {text}");

        let english = paper_list(&report, Lang::En, true).unwrap();
        assert!(english.starts_with("\u{feff}Family,Phone,Status,Why,What to do,Technical detail,Message\n"));
        let rows = self::rows(&english);
        assert_eq!((rows[1][1].as_str(), rows[1][2].as_str()), ("+33612345607", "Not sent: no consent"));
        assert!(rows[2][5].contains("+33612345608"), "whole in the detail with --show-phones");
    }

    #[test]
    fn no_family_not_reached_is_a_header_alone() {
        let report = StaffReport::default();
        let text = paper_list(&report, Lang::En, false).unwrap();
        assert_eq!(rows(&text).len(), 0);
        assert_eq!(text.lines().count(), 1);
    }
}

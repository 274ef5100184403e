//! Reading and checking the rows of a bulk file: the plan. Every row is checked before
//! anything is written, and every problem is kept with its line and column, so that the
//! operator fixes the whole file at once. A valid row becomes a [`Planned`] message, built
//! and checked by `send`'s own parser.

use std::collections::{BTreeMap, HashMap};

use missive::domain::consent::ConsentState;
use missive::domain::message::{Content, Label, Template};
use missive::domain::phone::PhoneNumber;

use super::languages::Languages;
use crate::compose::{ContentExt, Draft, MessageOptions};
use crate::consent_column::{as_column_value, ConsentColumn};
use crate::consent_rules::{ConsentRow, Stated};
use crate::error::CliResult;
use crate::phone_input::parse_phone;
use crate::sheet::{Row, RowError, Sheet};

/// A valid row, ready to enqueue.
#[derive(Debug, Clone)]
pub struct Planned {
    pub line: u64,
    pub parent_id: String,
    pub phone: PhoneNumber,
    /// What the file's `whatsapp_optin` says.
    pub consent: ConsentState,
    /// The consent's evidence: the file and the line (`parents.csv:12`).
    pub evidence: String,
    pub message_id: String,
    /// The queue message, as `send` will read it.
    pub body: String,
    pub content: Content,
    /// The row's `lang` when no template was given for it (it got the default language's).
    pub fallback_lang: Option<String>,
}

impl ConsentRow for Planned {
    fn stated(&self) -> Stated<'_> {
        Stated { line: self.line, phone: &self.phone, state: self.consent, evidence: &self.evidence }
    }
}

/// A column whose values are a template variable.
struct VariableColumn {
    index: usize,
    column: String,
    /// The variable's name in the template (`1`).
    name: String,
}

/// The columns a bulk file is read through.
struct Columns {
    parent_id: usize,
    phone: usize,
    consent: ConsentColumn,
    variables: Vec<VariableColumn>,
    /// The optional `lang` column.
    lang: Option<usize>,
}

impl Columns {
    /// The required columns, or an error naming the first missing one. Variables, for a
    /// template: `--var-column COLUMN=N`, and the columns named by a number.
    fn find(sheet: &Sheet, content: &Content, var_columns: &[(String, String)]) -> CliResult<Columns> {
        let parent_id = sheet.require("parent_id")?;
        let phone = sheet.require("phone")?;
        let consent = ConsentColumn::of_bulk_file(sheet)?;
        let mut variables: Vec<VariableColumn> = Vec::new();
        if !content.is_body() {
            for (column, name) in var_columns {
                let index = sheet.require(column)?;
                variables.push(VariableColumn { index, column: column.clone(), name: name.clone() });
            }
            for (index, header) in sheet.headers.iter().enumerate() {
                if header.parse::<u32>().is_ok() && !variables.iter().any(|v| v.index == index) {
                    variables.push(VariableColumn { index, column: header.clone(), name: header.clone() });
                }
            }
        }
        let lang = sheet.headers.iter().position(|header| header == "lang");
        Ok(Columns { parent_id, phone, consent, variables, lang })
    }

    /// The row's template variables; an empty cell is a problem naming its column.
    fn variables(&self, row: &Row, problems: &mut Vec<RowError>) -> BTreeMap<String, String> {
        let mut values = BTreeMap::new();
        for VariableColumn { index, column, name } in &self.variables {
            match row.get(*index) {
                "" => problems.push(RowError::new(row.line, column, format!("empty (template variable {name})"))),
                value => {
                    values.insert(name.clone(), value.to_owned());
                }
            }
        }
        values
    }
}

/// What the rows planned so far hold, for the checks across rows.
#[derive(Default)]
struct Seen {
    /// parent_id → its line: one message per parent.
    parents: HashMap<String, u64>,
    /// phone → the first line naming it and its consent: a file must not contradict itself.
    phones: HashMap<PhoneNumber, (u64, ConsentState)>,
}

/// Checks every row; returns the valid ones and every problem, by line.
pub fn plan(
    sheet: &Sheet,
    campaign: &str,
    content: &Content,
    var_columns: &[(String, String)],
    options: &MessageOptions,
    languages: Option<&Languages>,
    region: &str,
) -> CliResult<(Vec<Planned>, Vec<RowError>)> {
    let columns = Columns::find(sheet, content, var_columns)?;
    let mut errors = sheet.errors.clone();
    let mut planned = Vec::new();
    let mut seen = Seen::default();
    for row in &sheet.rows {
        let line = row.line;
        let mut problems = Vec::new();
        let parent_id = row.get(columns.parent_id).to_owned();
        if let Err(reason) = check_parent_id(&parent_id, &seen) {
            problems.push(RowError::new(line, "parent_id", reason));
        }
        let phone = match row.get(columns.phone) {
            "" => Err("required".to_owned()),
            raw => parse_phone(raw, region),
        };
        let phone = phone.map_err(|reason| problems.push(RowError::new(line, "phone", reason))).ok();
        let consent = columns.consent.read(row).map_err(|error| problems.push(error)).ok();
        if let (Some(phone), Some(consent)) = (&phone, consent) {
            if let Some(&(first, other)) = seen.phones.get(phone) {
                if other != consent {
                    let (said, other) = (as_column_value(consent), as_column_value(other));
                    let reason = format!("{said}, but line {first} says {other} for the same phone");
                    problems.push(RowError::new(line, columns.consent.name(), reason));
                }
            }
        }
        let values = columns.variables(row, &mut problems);
        let (Some(phone), Some(consent), true) = (phone, consent, problems.is_empty()) else {
            errors.extend(problems);
            continue;
        };
        let (content, fallback_lang) = in_language(content, languages, columns.lang.map(|i| row.get(i)));
        let content = content.with_variables(&values);
        // The row's variables go into the fallback template too.
        let fallback = options.fallback.as_ref().map(|f| Content::Template(f.clone()).with_variables(&values));
        let row_options = MessageOptions {
            fallback: match fallback {
                Some(Content::Template(template)) => Some(template),
                _ => None,
            },
            ..options.clone()
        };
        let options = &row_options;
        let message_id = format!("{campaign}:{parent_id}");
        let draft = Draft {
            message_id: &message_id,
            to: &phone,
            content: &content,
            campaign: Some(campaign),
            recipient_id: Some(&parent_id),
            options,
        };
        match draft.build() {
            Ok((body, _)) => {
                seen.parents.insert(parent_id.clone(), line);
                seen.phones.entry(phone.clone()).or_insert((line, consent));
                let evidence = format!("{}:{line}", sheet.name);
                planned.push(Planned {
                    line,
                    parent_id,
                    phone,
                    consent,
                    evidence,
                    message_id,
                    body,
                    content,
                    fallback_lang,
                });
            }
            Err(reason) => errors.push(RowError::new(line, "message", reason)),
        }
    }
    errors.sort_by_key(|e| e.line);
    Ok((planned, errors))
}

/// The row's content in its language (a template list only), and its `lang` when that
/// language has no template of its own.
fn in_language(content: &Content, languages: Option<&Languages>, lang: Option<&str>) -> (Content, Option<String>) {
    match (content, languages) {
        (Content::Template(template), Some(languages)) => {
            let lang = lang.unwrap_or("");
            let (sid, fell_back) = languages.pick(lang);
            let content = Content::Template(Template { content_sid: sid.to_owned(), ..template.clone() });
            (content, fell_back.then(|| lang.trim().to_owned()))
        }
        _ => (content.clone(), None),
    }
}

/// A parent id is required, a label (it becomes half of the `message_id`), and once a file.
fn check_parent_id(parent_id: &str, seen: &Seen) -> Result<(), String> {
    if parent_id.is_empty() {
        return Err("required".into());
    }
    Label::parse(parent_id, 63)?;
    match seen.parents.get(parent_id) {
        Some(first) => Err(format!("{parent_id:?} is already on line {first} (one message per parent)")),
        None => Ok(()),
    }
}

/// A template campaign `trip`'s plan of a valid file, for the tests of the later steps.
#[cfg(test)]
pub fn planned_rows(csv: &str) -> Vec<Planned> {
    let sheet = Sheet::parse("parents.csv", csv.as_bytes()).expect("a readable file");
    let (planned, errors) =
        plan(&sheet, "trip", &tests::template(), &[], &MessageOptions::default(), None, "FR").expect("the columns");
    assert!(errors.is_empty(), "{errors:?}");
    planned
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn template() -> Content {
        Content::Template(Template {
            content_sid: "HX0123456789abcdef0123456789abcdef".into(),
            variables: BTreeMap::new(),
        })
    }

    #[test]
    fn every_bad_row_is_reported_with_its_line_and_field() {
        let csv = "parent_id,phone,whatsapp_optin,first_name\n\
                   p01,+33612345601,true,Jean\n\
                   p02,07 12 34 56 78,true,Marie\n\
                   p03,06 12 34 56 03,maybe,Luc\n\
                   p01,+33612345604,false,Zoé\n\
                   p 5,+33612345605,true,\n\
                   p06,+33612345601,false,Ana\n\
                   p07,0612345607,yes,Léa\n";
        let sheet = Sheet::parse("parents.csv", csv.as_bytes()).unwrap();
        let vars = [("first_name".to_owned(), "1".to_owned())];
        let (planned, errors) =
            plan(&sheet, "trip", &template(), &vars, &MessageOptions::default(), None, "FR").unwrap();
        let found: Vec<(u64, &str)> = errors.iter().map(|e| (e.line, e.field.as_str())).collect();
        assert_eq!(
            found,
            [
                (3, "phone"),
                (4, "whatsapp_optin"),
                (5, "parent_id"),
                (6, "parent_id"),
                (6, "first_name"),
                (7, "whatsapp_optin"),
            ]
        );
        assert_eq!(planned.iter().map(|p| p.line).collect::<Vec<_>>(), [2, 8]);
        assert_eq!(planned[1].message_id, "trip:p07");
        assert_eq!(planned[1].phone.as_str(), "+33612345607");
        let body: serde_json::Value = serde_json::from_str(&planned[0].body).unwrap();
        assert_eq!(body["template"]["variables"]["1"], "Jean");
        assert_eq!(body["recipient_id"], "p01");
    }

    #[test]
    fn a_missing_column_is_an_error_naming_it() {
        let sheet = Sheet::parse("p.csv", b"parent_id,phone\np1,+33612345678\n").unwrap();
        let err = plan(&sheet, "c", &template(), &[], &MessageOptions::default(), None, "FR").unwrap_err();
        assert_eq!(err.exit_code(), 4);
        assert!(err.to_string().contains("\"whatsapp_optin\" is missing"), "{err}");
    }

    #[test]
    fn a_planned_row_carries_its_consent_and_evidence() {
        let sheet =
            Sheet::parse("parents.csv", b"parent_id,phone,whatsapp_optin\np1,+33612345601,non\np2,0612345602,1\n")
                .unwrap();
        let (planned, errors) = plan(&sheet, "c", &template(), &[], &MessageOptions::default(), None, "FR").unwrap();
        assert!(errors.is_empty(), "{errors:?}");
        let consent: Vec<(ConsentState, &str)> = planned.iter().map(|p| (p.consent, p.evidence.as_str())).collect();
        assert_eq!(consent, [(ConsentState::OptedOut, "parents.csv:2"), (ConsentState::OptedIn, "parents.csv:3")]);
    }

    #[test]
    fn each_row_gets_its_languages_template_or_the_default_one() {
        let (fr, en) = ("HX0123456789abcdef0123456789abcdef", "HXfedcba9876543210fedcba9876543210");
        let languages = Languages::parse(&format!("fr={fr},en={en}"), "fr").unwrap().unwrap();
        let csv = "parent_id,phone,whatsapp_optin,lang\n\
                   p1,+33612345601,true,en\n\
                   p2,+33612345602,true,\n\
                   p3,+33612345603,true,ar\n";
        let sheet = Sheet::parse("parents.csv", csv.as_bytes()).unwrap();
        let (planned, errors) =
            plan(&sheet, "c", &template(), &[], &MessageOptions::default(), Some(&languages), "FR").unwrap();
        assert!(errors.is_empty(), "{errors:?}");
        let sids: Vec<String> = planned
            .iter()
            .map(|p| serde_json::from_str::<serde_json::Value>(&p.body).unwrap()["template"]["content_sid"].to_string())
            .collect();
        assert_eq!(sids, [format!("{en:?}"), format!("{fr:?}"), format!("{fr:?}")]);
        let fallbacks: Vec<Option<&str>> = planned.iter().map(|p| p.fallback_lang.as_deref()).collect();
        assert_eq!(fallbacks, [None, None, Some("ar")]);
    }
}

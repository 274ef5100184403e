//! `missive bulk --template fr=HX…,en=HX…`: one template per language, each row's picked by
//! the CSV's optional `lang` column (DESIGN.md, "Operator's view"). A row whose language has
//! no template gets the default language's (`SCHOOL_LANG`, default `fr`) and is listed, so
//! that the operator sees who reads the message in another language.

use std::collections::BTreeMap;

use crate::error::{CliError, CliResult};

/// The templates by language, and the default language (which always has one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Languages {
    pub default: String,
    sids: BTreeMap<String, String>,
}

impl Languages {
    /// `None` for a plain `--template HX…`; an error naming `--template` (or `SCHOOL_LANG`)
    /// for a malformed list or a list without the default language.
    pub fn parse(raw: &str, default: &str) -> CliResult<Option<Languages>> {
        if !raw.contains('=') {
            return Ok(None);
        }
        let default = default.trim().to_lowercase();
        let mut sids = BTreeMap::new();
        for pair in raw.split(',') {
            let Some((lang, sid)) = pair.split_once('=') else {
                return Err(usage(format!("expected LANG=HX…, got {pair:?}")));
            };
            let (lang, sid) = (lang.trim().to_lowercase(), sid.trim());
            if lang.is_empty() || !lang.chars().all(|c| c.is_ascii_alphabetic() || c == '-') {
                return Err(usage(format!("{lang:?} is not a language code (fr, en, ar…)")));
            }
            if !is_content_sid(sid) {
                return Err(usage(format!("{lang}: expected HX followed by 32 hex digits")));
            }
            if sids.insert(lang.clone(), sid.to_owned()).is_some() {
                return Err(usage(format!("{lang} is given twice")));
            }
        }
        if !sids.contains_key(&default) {
            return Err(usage(format!("no template for the default language {default} (SCHOOL_LANG)")));
        }
        Ok(Some(Languages { default, sids }))
    }

    /// The default language's template.
    pub fn default_sid(&self) -> &str {
        &self.sids[&self.default]
    }

    /// The template for a row's `lang` cell (empty: the default language), and whether the
    /// row fell back to the default language's template.
    pub fn pick(&self, lang: &str) -> (&str, bool) {
        let lang = lang.trim().to_lowercase();
        if lang.is_empty() {
            return (self.default_sid(), false);
        }
        match self.sids.get(&lang) {
            Some(sid) => (sid, false),
            None => (self.default_sid(), true),
        }
    }
}

fn usage(reason: String) -> CliError {
    CliError::Usage(format!("--template: {reason}"))
}

fn is_content_sid(sid: &str) -> bool {
    sid.len() == 34 && sid.starts_with("HX") && sid[2..].chars().all(|c| c.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FR: &str = "HX0123456789abcdef0123456789abcdef";
    const EN: &str = "HXfedcba9876543210fedcba9876543210";

    #[test]
    fn a_plain_template_is_not_a_language_list() {
        assert_eq!(Languages::parse(FR, "fr").unwrap(), None);
    }

    #[test]
    fn each_language_gets_its_template_and_an_unknown_one_falls_back() {
        let languages = Languages::parse(&format!("fr={FR}, EN={EN}"), "fr").unwrap().unwrap();
        assert_eq!(languages.pick("en"), (EN, false));
        assert_eq!(languages.pick(" Fr "), (FR, false));
        assert_eq!(languages.pick(""), (FR, false));
        assert_eq!(languages.pick("ar"), (FR, true));
    }

    #[test]
    fn bad_lists_are_errors_naming_the_flag() {
        for (raw, expected) in [
            (format!("en={EN}"), "no template for the default language fr (SCHOOL_LANG)"),
            (format!("fr={FR},en=HX12"), "en: expected HX"),
            (format!("fr={FR},fr={FR}"), "fr is given twice"),
            (format!("fr={FR},{EN}"), "expected LANG=HX…"),
            (format!("f r={FR}"), "is not a language code"),
        ] {
            let err = Languages::parse(&raw, "fr").unwrap_err().to_string();
            assert!(err.contains("--template: ") && err.contains(expected), "{raw}: {err}");
        }
    }
}

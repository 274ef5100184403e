//! Building version-1 queue messages, checked by the very parser `send` uses
//! ([`QueueMessage::parse`]): the CLI never enqueues what `send` would reject.

use std::collections::BTreeMap;

use clap::Args;
use missive::domain::message::{Content, Label, QueueMessage, Template};
use missive::domain::phone::PhoneNumber;
use missive::domain::schedule::{local_time, MAX_SCHEDULE_SECONDS};
use serde_json::{json, Map, Value};

use crate::error::{CliError, CliResult};
use crate::output::warn;

/// `--body` or `--template` with its `--var`s.
#[derive(Debug, Clone, Args)]
#[group(id = "content", required = true, multiple = true)]
#[command(group(clap::ArgGroup::new("templates").args(["template", "fallback_template"]).multiple(true)))]
pub struct ContentArgs {
    /// Free text (reaches only parents who wrote within the last 24 hours).
    #[arg(long, conflicts_with = "template", value_name = "TEXT")]
    pub body: Option<String>,
    /// An approved WhatsApp template's Content SID (`HX` + 32 hex digits); `bulk` also takes
    /// one per language, `fr=HX…,en=HX…`, picked by the file's `lang` column.
    #[arg(long, value_name = "HX…")]
    pub template: Option<String>,
    /// With --body: the approved template sent instead when the parent's 24-hour window is
    /// closed (`HX` + 32 hex digits; its variables are the --var's).
    #[arg(long, value_name = "HX…")]
    pub fallback_template: Option<String>,
    /// A variable of --template or --fallback-template, `NAME=VALUE` (`--var 1=Jean`); repeatable.
    #[arg(long = "var", value_name = "NAME=VALUE", requires = "templates", value_parser = parse_pair)]
    pub vars: Vec<(String, String)>,
}

/// The optional fields of a message, shared by `send` and `bulk`.
#[derive(Debug, Clone, Default, Args)]
pub struct MessageOptions {
    /// One media URL (https://), sent with the message.
    #[arg(long, value_name = "URL")]
    pub media_url: Option<String>,
    /// RFC 3339 time after which the message is not sent any more (`expired`).
    #[arg(long, value_name = "TIME")]
    pub not_after: Option<String>,
    /// Attempts before giving up (1–10; default: the send function's MAX_ATTEMPTS).
    #[arg(long, value_name = "N")]
    pub max_attempts: Option<u32>,
    /// A body's `fallback_template` ([`ContentArgs::fallback`]), with the row's variables.
    #[arg(skip)]
    pub fallback: Option<Template>,
    /// Send at this time, not before: `2026-12-04 08:00` in SCHOOL_TIMEZONE (default
    /// Europe/Paris), or RFC 3339; at most 35 days ahead. The message waits as `scheduled`.
    #[arg(long, value_name = "WHEN")]
    pub at: Option<String>,
    /// Urgent: goes through quiet hours and may use the daily budget's reserve.
    #[arg(long)]
    pub urgent: bool,
    /// Who asks (recorded on every message and on the campaign); default: your AWS identity
    /// on AWS, your user name locally.
    #[arg(long = "as", value_name = "NAME")]
    pub requested_by: Option<String>,
    /// The campaign's description, in your words (recorded when the campaign is created).
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,
    /// `--at` as Unix seconds, once [`MessageOptions::resolve`] has checked it.
    #[arg(skip)]
    pub not_before: Option<i64>,
}

impl MessageOptions {
    /// Checks `--at` against `SCHOOL_TIMEZONE` and `now` (not in the past, at most 35 days
    /// ahead) and fills who asks; an error names the flag or the variable, and comes before
    /// anything is written.
    pub fn resolve(&mut self, now: i64, caller: impl FnOnce() -> String) -> CliResult<()> {
        if let Some(raw) = self.at.as_deref() {
            let at = match chrono::DateTime::parse_from_rfc3339(raw.trim()) {
                Ok(at) => at.timestamp(),
                Err(_) => {
                    let env = missive::config::Env::from_fn(|name| std::env::var(name).ok());
                    let zone = env.school_timezone().map_err(|e| CliError::Usage(e.to_string()))?;
                    local_time(zone, raw).map_err(|e| CliError::Usage(format!("--at: {e}")))?
                }
            };
            if at <= now {
                return Err(CliError::Usage(format!("--at: {raw} is in the past")));
            }
            if at > now + MAX_SCHEDULE_SECONDS {
                return Err(CliError::Usage(format!(
                    "--at: {raw} is more than {} days ahead",
                    MAX_SCHEDULE_SECONDS / 86_400
                )));
            }
            self.not_before = Some(at);
        }
        if self.requested_by.as_deref().is_none_or(|name| name.trim().is_empty()) {
            self.requested_by = Some(caller());
        }
        Ok(())
    }
}

/// `NAME=VALUE`, for clap.
pub fn parse_pair(raw: &str) -> Result<(String, String), String> {
    match raw.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => Ok((name.trim().to_owned(), value.to_owned())),
        _ => Err(format!("expected NAME=VALUE, got {raw:?}")),
    }
}

impl ContentArgs {
    /// The content the flags give, the domain's [`Content`]. `--body` is warned about on
    /// stderr: free text reaches only parents who wrote within the last 24 hours
    /// (DESIGN.md, "Operator's view").
    pub fn content(&self) -> CliResult<Content> {
        let content = match (&self.body, &self.template) {
            (Some(body), None) => Content::Body(body.clone()),
            (None, Some(sid)) => {
                Content::Template(Template { content_sid: sid.clone(), variables: self.vars.iter().cloned().collect() })
            }
            _ => return Err(CliError::Usage("exactly one of --body and --template is required".into())),
        };
        if self.fallback_template.is_some() && self.body.is_none() {
            return Err(CliError::Usage("--fallback-template goes with --body (a template needs no fallback)".into()));
        }
        if !self.vars.is_empty() && self.template.is_none() && self.fallback_template.is_none() {
            return Err(CliError::Usage("--var goes with --template or --fallback-template".into()));
        }
        if content.is_body() && self.fallback_template.is_none() {
            warn(BODY_WARNING);
        }
        Ok(content)
    }

    /// `--fallback-template` with the `--var`s: what a body becomes outside the window.
    pub fn fallback(&self) -> Option<Template> {
        let sid = self.fallback_template.as_ref()?;
        Some(Template { content_sid: sid.clone(), variables: self.vars.iter().cloned().collect() })
    }

    /// `options` with this fallback template (DESIGN.md, "Conversations").
    pub fn with_fallback(&self, options: &MessageOptions) -> MessageOptions {
        MessageOptions { fallback: self.fallback(), ..options.clone() }
    }
}

/// A template as a queue message's `template` / `fallback_template` object.
fn template_value(template: &Template) -> Value {
    let mut object = Map::new();
    object.insert("content_sid".into(), json!(template.content_sid));
    if !template.variables.is_empty() {
        object.insert("variables".into(), json!(template.variables));
    }
    Value::Object(object)
}

/// The 24-hour window warning of `--body`.
const BODY_WARNING: &str = "--body sends free text, which WhatsApp delivers only to parents who wrote to the \
school within the last 24 hours; a message the school starts must be an approved template (--template HX…)";

/// What the CLI needs of the domain's [`Content`] beyond what `send` needs.
pub trait ContentExt {
    fn is_body(&self) -> bool;
    /// The same content with more template variables (no effect on a body).
    fn with_variables(&self, extra: &BTreeMap<String, String>) -> Content;
    /// One line for people: the text, or the template and its variables.
    fn summary(&self) -> String;
}

impl ContentExt for Content {
    fn is_body(&self) -> bool {
        matches!(self, Content::Body(_))
    }

    fn with_variables(&self, extra: &BTreeMap<String, String>) -> Content {
        match self {
            Content::Body(_) => self.clone(),
            Content::Template(Template { content_sid, variables }) => {
                let mut variables = variables.clone();
                variables.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
                Content::Template(Template { content_sid: content_sid.clone(), variables })
            }
        }
    }

    fn summary(&self) -> String {
        match self {
            Content::Body(body) => format!("body {:?}", crate::output::shorten(body, 60)),
            Content::Template(Template { content_sid, variables }) => {
                let vars: Vec<String> = variables.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!("template {content_sid} {}", vars.join(" "))
            }
        }
    }
}

/// Everything a queue message carries.
#[derive(Debug, Clone)]
pub struct Draft<'a> {
    pub message_id: &'a str,
    pub to: &'a PhoneNumber,
    pub content: &'a Content,
    pub campaign: Option<&'a str>,
    pub recipient_id: Option<&'a str>,
    pub options: &'a MessageOptions,
}

impl Draft<'_> {
    /// The queue body, validated by `send`'s own parser; the error names the field.
    pub fn build(&self) -> Result<(String, QueueMessage), String> {
        let mut fields = Map::new();
        fields.insert("v".into(), json!(1));
        fields.insert("message_id".into(), json!(self.message_id));
        fields.insert("to".into(), json!(self.to.as_str()));
        match self.content {
            Content::Body(body) => {
                fields.insert("body".into(), json!(body));
                if let Some(fallback) = &self.options.fallback {
                    fields.insert("fallback_template".into(), template_value(fallback));
                }
            }
            Content::Template(template) => {
                fields.insert("template".into(), template_value(template));
            }
        }
        if let Some(url) = &self.options.media_url {
            fields.insert("media_urls".into(), json!([url]));
        }
        if let Some(campaign) = self.campaign {
            fields.insert("campaign".into(), json!(campaign));
        }
        if let Some(recipient_id) = self.recipient_id {
            fields.insert("recipient_id".into(), json!(recipient_id));
        }
        if let Some(not_after) = &self.options.not_after {
            fields.insert("not_after".into(), json!(not_after));
        }
        if let Some(max_attempts) = self.options.max_attempts {
            fields.insert("max_attempts".into(), json!(max_attempts));
        }
        if let Some(not_before) = self.options.not_before {
            let at = chrono::DateTime::from_timestamp(not_before, 0).map(|t| t.to_rfc3339());
            fields.insert("not_before".into(), json!(at));
        }
        if self.options.urgent {
            fields.insert("priority".into(), json!("urgent"));
        }
        if let Some(requested_by) = &self.options.requested_by {
            fields.insert("requested_by".into(), json!(requested_by));
        }
        let body = Value::Object(fields).to_string();
        QueueMessage::parse(&body).map(|message| (body, message)).map_err(|rejection| rejection.reason)
    }
}

/// A campaign name as the queue message requires it (1–64 of `A–Z a–z 0–9 . _ -`).
pub fn check_campaign(campaign: &str) -> CliResult<()> {
    Label::parse(campaign, 64).map(|_| ()).map_err(|e| CliError::Usage(format!("--campaign: {e}")))
}

/// A fresh message id for `missive send` without `--id`: `cli-<unix ms>-<random>`.
pub fn fresh_message_id() -> String {
    format!("cli-{}-{:08x}", chrono::Utc::now().timestamp_millis(), rand::random::<u32>())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phone() -> PhoneNumber {
        PhoneNumber::parse("+33612345678").unwrap()
    }

    #[test]
    fn a_template_draft_builds_a_valid_message() {
        let content = Content::Template(Template {
            content_sid: "HX0123456789abcdef0123456789abcdef".into(),
            variables: BTreeMap::from([("1".into(), "Jean".into())]),
        });
        let options = MessageOptions::default();
        let to = phone();
        let draft = Draft {
            message_id: "trip:p-1",
            to: &to,
            content: &content,
            campaign: Some("trip"),
            recipient_id: Some("p-1"),
            options: &options,
        };
        let (body, message) = draft.build().unwrap();
        assert_eq!(message.message_id.as_str(), "trip:p-1");
        let value: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(value["template"]["variables"]["1"], "Jean");
        assert_eq!(value["v"], 1);
    }

    #[test]
    fn a_bad_draft_names_the_field() {
        let content = Content::Template(Template { content_sid: "HX12".into(), variables: BTreeMap::new() });
        let options = MessageOptions::default();
        let to = phone();
        let draft = Draft {
            message_id: "m",
            to: &to,
            content: &content,
            campaign: None,
            recipient_id: None,
            options: &options,
        };
        assert_eq!(draft.build().unwrap_err(), "template.content_sid: expected HX followed by 32 hex digits");
    }

    #[test]
    fn pairs() {
        assert_eq!(parse_pair("1=Jean=Paul").unwrap(), ("1".into(), "Jean=Paul".into()));
        assert!(parse_pair("=x").is_err());
        assert!(parse_pair("x").is_err());
    }

    #[test]
    fn extra_variables_join_a_template_and_leave_a_body_alone() {
        let template = Content::Template(Template {
            content_sid: "HX0123456789abcdef0123456789abcdef".into(),
            variables: BTreeMap::from([("1".into(), "Jean".into())]),
        });
        let extra = BTreeMap::from([("2".into(), "lundi".into())]);
        assert_eq!(
            template.with_variables(&extra).summary(),
            "template HX0123456789abcdef0123456789abcdef 1=Jean 2=lundi"
        );
        let body = Content::Body("Pas de cantine".into());
        assert_eq!(body.with_variables(&extra), body);
        assert!(body.is_body() && !template.is_body());
    }
}

//! The version-1 queue message, parsed into validated types.
//!
//! The SQS body is one JSON object; unknown fields are refused, so a typo never passes
//! silently. A refusal names the field (`to: not a valid E.164 number`). Parsing walks the
//! JSON object by hand rather than through `serde` derive so that every error names its field
//! and the `message_id` survives an error elsewhere in the body (a rejected message with a
//! usable id is recorded; one without cannot be).

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value};

use super::phone::PhoneNumber;

/// A queue body larger than this is refused (far above any valid message).
pub const MAX_BODY_BYTES: usize = 64 * 1024;
const MAX_TEXT_CHARS: usize = 1600;
const MAX_TEMPLATE_VARIABLES: usize = 50;
const MAX_TEMPLATE_VALUE_CHARS: usize = 1024;
const MAX_MEDIA_URL_CHARS: usize = 2048;
const KNOWN_FIELDS: &[&str] = &[
    "v",
    "message_id",
    "to",
    "body",
    "template",
    "media_urls",
    "campaign",
    "recipient_id",
    "not_after",
    "max_attempts",
    "not_before",
    "priority",
    "requested_by",
    "fallback_template",
];
const MAX_REQUESTED_BY_CHARS: usize = 128;

/// The idempotency key: 1–128 characters of `A–Z a–z 0–9 . _ : -`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct MessageId(String);

impl MessageId {
    pub fn parse(raw: &str) -> Result<Self, String> {
        check_token(raw, 128, true).map(|()| MessageId(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A campaign name or a recipient id: `A–Z a–z 0–9 . _ -`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Label(String);

impl Label {
    pub fn parse(raw: &str, max_chars: usize) -> Result<Self, String> {
        check_token(raw, max_chars, false).map(|()| Label(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn check_token(raw: &str, max_chars: usize, allow_colon: bool) -> Result<(), String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') || (allow_colon && c == ':');
    if raw.is_empty() || raw.chars().count() > max_chars {
        return Err(format!("expected 1–{max_chars} characters"));
    }
    if let Some(bad) = raw.chars().find(|c| !allowed(*c)) {
        let set = if allow_colon { "A–Z a–z 0–9 . _ : -" } else { "A–Z a–z 0–9 . _ -" };
        return Err(format!("character {bad:?} not allowed (only {set})"));
    }
    Ok(())
}

/// A WhatsApp template: a Content SID and its variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// `HX` followed by 32 hex digits.
    pub content_sid: String,
    /// Variable name → value (`{"1": "Jean"}`).
    pub variables: BTreeMap<String, String>,
}

/// What the message says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// Free text (reaches only parents who wrote within WhatsApp's 24-hour window).
    Body(String),
    /// An approved template.
    Template(Template),
}

/// How a message weighs against quiet hours and the daily budget's reserve.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Priority {
    /// Waits for the end of quiet hours; held when only the budget's reserve is left.
    #[default]
    Normal,
    /// Goes in quiet hours, and may use the budget's reserve (an emergency).
    Urgent,
}

impl Priority {
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Normal => "normal",
            Priority::Urgent => "urgent",
        }
    }
}

/// A valid version-1 queue message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueMessage {
    pub message_id: MessageId,
    pub to: PhoneNumber,
    pub content: Content,
    pub media_url: Option<String>,
    pub campaign: Option<Label>,
    pub recipient_id: Option<Label>,
    /// Unix seconds after which the message is `expired`.
    pub not_after: Option<i64>,
    pub max_attempts: Option<u32>,
    /// Unix seconds before which the message is `scheduled`, not sent.
    pub not_before: Option<i64>,
    pub priority: Priority,
    /// Who asked for it (the CLI writes the operator's identity).
    pub requested_by: Option<String>,
    /// For a `body` message: the template sent instead when the parent's 24-hour window is
    /// closed.
    pub fallback_template: Option<Template>,
}

/// A queue body that cannot be sent, with what could still be read from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Present when the body carried a usable `message_id`: the rejection can be recorded.
    pub message_id: Option<MessageId>,
    /// Fields that were valid, recorded on the `rejected` item so that it stays reachable.
    pub phone: Option<PhoneNumber>,
    pub campaign: Option<Label>,
    pub recipient_id: Option<Label>,
    /// Whether the body is small enough to be stored as `request`.
    pub storable: bool,
    /// The reason, naming the field: `to: not a valid E.164 number`.
    pub reason: String,
}

impl QueueMessage {
    /// Parses and validates one SQS body. (The rejection is boxed: it is as common a result
    /// as a message, and large.)
    pub fn parse(body: &str) -> Result<QueueMessage, Box<Rejection>> {
        let storable = body.len() <= MAX_BODY_BYTES;
        let value: Value = match serde_json::from_str(body) {
            Ok(value) => value,
            Err(e) => {
                return Err(Box::new(Rejection::bare(storable, format!("message: not valid JSON ({e})"))));
            }
        };
        let Value::Object(fields) = value else {
            return Err(Box::new(Rejection::bare(storable, "message: expected a JSON object".into())));
        };
        let mut rejection = Rejection::bare(storable, String::new());
        // Read what identifies the item first, so that any later refusal can be recorded.
        let message_id = match fields.get("message_id") {
            Some(Value::String(raw)) => MessageId::parse(raw).map_err(|e| format!("message_id: {e}")),
            Some(_) => Err("message_id: expected a string".to_owned()),
            None => Err("message_id: required".to_owned()),
        };
        rejection.message_id = message_id.as_ref().ok().cloned();
        rejection.campaign = optional_label(&fields, "campaign", 64).ok().flatten();
        rejection.recipient_id = optional_label(&fields, "recipient_id", 63).ok().flatten();
        rejection.phone = match fields.get("to") {
            Some(Value::String(raw)) => PhoneNumber::parse(raw).ok(),
            _ => None,
        };
        match parse_fields(&fields, message_id, storable) {
            Ok(message) => Ok(message),
            Err(reason) => {
                rejection.reason = reason;
                Err(Box::new(rejection))
            }
        }
    }

    /// The message's text, for a `body` message.
    pub fn body(&self) -> Option<&str> {
        match &self.content {
            Content::Body(body) => Some(body),
            Content::Template(_) => None,
        }
    }
}

impl Rejection {
    fn bare(storable: bool, reason: String) -> Self {
        Rejection { message_id: None, phone: None, campaign: None, recipient_id: None, storable, reason }
    }
}

fn parse_fields(
    fields: &Map<String, Value>,
    message_id: Result<MessageId, String>,
    storable: bool,
) -> Result<QueueMessage, String> {
    if !storable {
        return Err("message: larger than 64 KiB".into());
    }
    // The version first: a newer producer's message carries fields this version does not
    // know, and the reason must say "upgrade the consumer", not name one of those fields.
    match fields.get("v") {
        None => return Err("v: required".into()),
        Some(Value::Number(n)) if n.as_u64() == Some(1) => {}
        Some(Value::Number(n)) => return Err(format!("v: unsupported version {n}")),
        Some(_) => return Err("v: expected the number 1".into()),
    }
    if let Some(unknown) = fields.keys().find(|k| !KNOWN_FIELDS.contains(&k.as_str())) {
        return Err(format!("{unknown}: unknown field"));
    }
    let message_id = message_id?;
    let to = match fields.get("to") {
        None => return Err("to: required".into()),
        Some(Value::String(raw)) => PhoneNumber::parse(raw).map_err(|e| format!("to: {e}"))?,
        Some(_) => return Err("to: expected a string".into()),
    };
    let content = match (fields.get("body"), fields.get("template")) {
        (Some(_), Some(_)) => return Err("body: exactly one of body and template, not both".into()),
        (None, None) => return Err("body: one of body and template is required".into()),
        (Some(body), None) => Content::Body(parse_text(body)?),
        (None, Some(template)) => Content::Template(parse_template(template, "template")?),
    };
    let media_url = parse_media_urls(fields.get("media_urls"))?;
    let campaign = optional_label(fields, "campaign", 64)?;
    let recipient_id = optional_label(fields, "recipient_id", 63)?;
    let not_after = optional_time(fields, "not_after")?;
    let max_attempts = match fields.get("max_attempts") {
        None => None,
        Some(Value::Number(n)) => match n.as_u64() {
            Some(m @ 1..=10) => Some(m as u32),
            _ => return Err(format!("max_attempts: expected a whole number from 1 to 10, got {n}")),
        },
        Some(_) => return Err("max_attempts: expected a number".into()),
    };
    let not_before = optional_time(fields, "not_before")?;
    let priority = match fields.get("priority") {
        None => Priority::Normal,
        Some(Value::String(raw)) if raw == "normal" => Priority::Normal,
        Some(Value::String(raw)) if raw == "urgent" => Priority::Urgent,
        Some(_) => return Err("priority: expected \"normal\" or \"urgent\"".into()),
    };
    let requested_by = match fields.get("requested_by") {
        None => None,
        Some(Value::String(raw)) => {
            let chars = raw.chars().count();
            if chars == 0 || chars > MAX_REQUESTED_BY_CHARS {
                return Err(format!("requested_by: expected 1–{MAX_REQUESTED_BY_CHARS} characters, got {chars}"));
            }
            if let Some(c) = raw.chars().find(|c| c.is_control()) {
                return Err(format!("requested_by: control character U+{:04X} not allowed", c as u32));
            }
            Some(raw.clone())
        }
        Some(_) => return Err("requested_by: expected a string".into()),
    };
    let fallback_template = match (fields.get("fallback_template"), &content) {
        (None, _) => None,
        (Some(_), Content::Template(_)) => {
            return Err("fallback_template: only with body (a template message needs no fallback)".into())
        }
        (Some(value), Content::Body(_)) => Some(parse_template(value, "fallback_template")?),
    };
    Ok(QueueMessage {
        message_id,
        to,
        content,
        media_url,
        campaign,
        recipient_id,
        not_after,
        max_attempts,
        not_before,
        priority,
        requested_by,
        fallback_template,
    })
}

/// An optional RFC 3339 time, as Unix seconds.
fn optional_time(fields: &Map<String, Value>, name: &str) -> Result<Option<i64>, String> {
    match fields.get(name) {
        None => Ok(None),
        Some(Value::String(raw)) => chrono::DateTime::parse_from_rfc3339(raw)
            .map(|t| Some(t.timestamp()))
            .map_err(|e| format!("{name}: not an RFC 3339 time ({e})")),
        Some(_) => Err(format!("{name}: expected an RFC 3339 string")),
    }
}

fn parse_text(value: &Value) -> Result<String, String> {
    let Value::String(text) = value else { return Err("body: expected a string".into()) };
    let chars = text.chars().count();
    if chars == 0 || chars > MAX_TEXT_CHARS {
        return Err(format!("body: expected 1–{MAX_TEXT_CHARS} characters, got {chars}"));
    }
    if let Some(c) = text.chars().find(|c| (c.is_ascii_control()) && !matches!(c, '\t' | '\n' | '\r')) {
        return Err(format!("body: control character U+{:04X} not allowed", c as u32));
    }
    Ok(text.clone())
}

fn parse_template(value: &Value, field: &str) -> Result<Template, String> {
    let Value::Object(fields) = value else { return Err(format!("{field}: expected an object")) };
    if let Some(unknown) = fields.keys().find(|k| !matches!(k.as_str(), "content_sid" | "variables")) {
        return Err(format!("{field}.{unknown}: unknown field"));
    }
    let content_sid = match fields.get("content_sid") {
        Some(Value::String(sid))
            if sid.len() == 34 && sid.starts_with("HX") && sid[2..].bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            sid.clone()
        }
        Some(_) => return Err(format!("{field}.content_sid: expected HX followed by 32 hex digits")),
        None => return Err(format!("{field}.content_sid: required")),
    };
    let mut variables = BTreeMap::new();
    match fields.get("variables") {
        None => {}
        Some(Value::Object(vars)) => {
            if vars.len() > MAX_TEMPLATE_VARIABLES {
                return Err(format!(
                    "{field}.variables: at most {MAX_TEMPLATE_VARIABLES} variables, got {}",
                    vars.len()
                ));
            }
            let mut total = 0;
            for (name, value) in vars {
                let name_chars = name.chars().count();
                if name_chars == 0 || name_chars > 32 {
                    return Err(format!("{field}.variables: names must have 1–32 characters"));
                }
                let Value::String(value) = value else {
                    return Err(format!("{field}.variables.{name}: expected a string"));
                };
                total += value.chars().count();
                variables.insert(name.clone(), value.clone());
            }
            if total > MAX_TEMPLATE_VALUE_CHARS {
                return Err(format!(
                    "{field}.variables: values have {total} characters in all, at most {MAX_TEMPLATE_VALUE_CHARS}"
                ));
            }
        }
        Some(_) => return Err(format!("{field}.variables: expected an object of strings")),
    }
    Ok(Template { content_sid, variables })
}

fn parse_media_urls(value: Option<&Value>) -> Result<Option<String>, String> {
    let urls = match value {
        None => return Ok(None),
        Some(Value::Array(urls)) => urls,
        Some(_) => return Err("media_urls: expected an array".into()),
    };
    match urls.as_slice() {
        [] => Ok(None),
        [Value::String(raw)] => {
            if raw.chars().count() > MAX_MEDIA_URL_CHARS {
                return Err(format!("media_urls: a URL has at most {MAX_MEDIA_URL_CHARS} characters"));
            }
            match url::Url::parse(raw) {
                Ok(url) if url.scheme() == "https" && url.host().is_some() => Ok(Some(raw.clone())),
                _ => Err("media_urls: expected an https:// URL".into()),
            }
        }
        [_] => Err("media_urls: expected strings".into()),
        _ => Err(format!("media_urls: at most 1 URL (WhatsApp carries one media item), got {}", urls.len())),
    }
}

fn optional_label(fields: &Map<String, Value>, name: &str, max_chars: usize) -> Result<Option<Label>, String> {
    match fields.get(name) {
        None => Ok(None),
        Some(Value::String(raw)) => Label::parse(raw, max_chars).map(Some).map_err(|e| format!("{name}: {e}")),
        Some(_) => Err(format!("{name}: expected a string")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: Value) -> Result<QueueMessage, Box<Rejection>> {
        QueueMessage::parse(&value.to_string())
    }

    fn reason(value: Value) -> String {
        parse(value).unwrap_err().reason
    }

    #[test]
    fn a_body_message_parses_into_typed_fields() {
        let message = parse(json!({
            "v": 1, "message_id": "trip:p-1", "to": "whatsapp:+33612345678", "body": "Bonjour\nà demain",
            "campaign": "trip", "recipient_id": "p-1", "not_after": "2026-11-25T08:00:00Z", "max_attempts": 5,
            "media_urls": ["https://example.org/a.pdf"]
        }))
        .unwrap();
        assert_eq!(message.message_id.as_str(), "trip:p-1");
        assert_eq!(message.to.as_str(), "+33612345678");
        assert_eq!(message.body(), Some("Bonjour\nà demain"));
        assert_eq!(message.campaign.unwrap().as_str(), "trip");
        assert_eq!(message.not_after, Some(1_795_593_600));
        assert_eq!(message.max_attempts, Some(5));
        assert_eq!(message.media_url.as_deref(), Some("https://example.org/a.pdf"));
    }

    #[test]
    fn a_template_message_parses() {
        let message = parse(json!({
            "v": 1, "message_id": "m1", "to": "+33612345678",
            "template": {"content_sid": "HX0123456789abcdef0123456789abcdef", "variables": {"1": "Jean"}}
        }))
        .unwrap();
        let Content::Template(template) = message.content else { panic!("expected a template") };
        assert_eq!(template.variables.get("1").map(String::as_str), Some("Jean"));
    }

    #[test]
    fn every_refusal_names_its_field() {
        let base = || json!({"v": 1, "message_id": "m1", "to": "+33612345678", "body": "hi"});
        let with = |key: &str, value: Value| {
            let mut v = base();
            v[key] = value;
            v
        };
        let cases = [
            (with("v", json!(2)), "v: unsupported version 2"),
            (with("to", json!("+33 6 12 34 56 78")), "to: not a valid E.164 number"),
            (with("to", json!("+33712345678")), "to: not a valid E.164 number"),
            (with("to", json!(33612345678u64)), "to: expected a string"),
            (with("body", json!("")), "body: expected 1–1600 characters, got 0"),
            (with("body", json!("a".repeat(1601))), "body: expected 1–1600 characters, got 1601"),
            (with("body", json!("bell\u{7}")), "body: control character U+0007 not allowed"),
            (with("colour", json!("red")), "colour: unknown field"),
            (with("template", json!({"content_sid": "HX1"})), "body: exactly one of body and template, not both"),
            (with("max_attempts", json!(11)), "max_attempts: expected a whole number from 1 to 10, got 11"),
            (with("campaign", json!("a b")), "campaign: character ' ' not allowed (only A–Z a–z 0–9 . _ -)"),
            (with("media_urls", json!(["http://x.org/a"])), "media_urls: expected an https:// URL"),
            (
                with("media_urls", json!(["https://a.org/1", "https://a.org/2"])),
                "media_urls: at most 1 URL (WhatsApp carries one media item), got 2",
            ),
            (with("not_after", json!("tomorrow")), "not_after: not an RFC 3339 time (premature end of input)"),
        ];
        for (input, expected) in cases {
            assert_eq!(reason(input.clone()), expected, "{input}");
        }
        // A newer producer's message says which version it is, not which field is new.
        let mut v2 = with("v", json!(2));
        v2["priority"] = json!("high");
        assert_eq!(reason(v2), "v: unsupported version 2");
        let template = |t: Value| json!({"v": 1, "message_id": "m1", "to": "+33612345678", "template": t});
        assert_eq!(
            reason(template(json!({"content_sid": "HX123"}))),
            "template.content_sid: expected HX followed by 32 hex digits"
        );
        assert_eq!(
            reason(template(json!({"content_sid": "HX0123456789abcdef0123456789abcdef", "variables": {"1": 5}}))),
            "template.variables.1: expected a string"
        );
        let long = "x".repeat(600);
        assert!(reason(template(
            json!({"content_sid": "HX0123456789abcdef0123456789abcdef", "variables": {"1": long, "2": long}})
        ))
        .starts_with("template.variables: values have 1200 characters"));
    }

    #[test]
    fn the_campaign_fields_parse_and_are_checked() {
        let message = parse(json!({
            "v": 1, "message_id": "m1", "to": "+33612345678", "body": "hi",
            "not_before": "2026-12-04T08:00:00+01:00", "priority": "urgent", "requested_by": "arn:aws:iam::1:user/secretary",
            "fallback_template": {"content_sid": "HX0123456789abcdef0123456789abcdef", "variables": {"1": "Jean"}}
        }))
        .unwrap();
        assert_eq!(message.not_before, Some(1_796_367_600));
        assert_eq!(message.priority, Priority::Urgent);
        assert_eq!(message.requested_by.as_deref(), Some("arn:aws:iam::1:user/secretary"));
        assert_eq!(message.fallback_template.unwrap().variables.get("1").map(String::as_str), Some("Jean"));
        assert_eq!(
            parse(json!({"v": 1, "message_id": "m1", "to": "+33612345678", "body": "hi"})).unwrap().priority,
            Priority::Normal
        );

        let base = || json!({"v": 1, "message_id": "m1", "to": "+33612345678", "body": "hi"});
        let with = |key: &str, value: Value| {
            let mut v = base();
            v[key] = value;
            v
        };
        let cases = [
            (with("not_before", json!("8:00")), "not_before: not an RFC 3339 time (premature end of input)"),
            (with("priority", json!("high")), "priority: expected \"normal\" or \"urgent\""),
            (with("requested_by", json!("")), "requested_by: expected 1–128 characters, got 0"),
            (with("requested_by", json!("a\u{1b}[31m")), "requested_by: control character U+001B not allowed"),
            (
                with("fallback_template", json!({"content_sid": "HX1"})),
                "fallback_template.content_sid: expected HX followed by 32 hex digits",
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(reason(input.clone()), expected, "{input}");
        }
        let template_with_fallback = json!({
            "v": 1, "message_id": "m1", "to": "+33612345678",
            "template": {"content_sid": "HX0123456789abcdef0123456789abcdef"},
            "fallback_template": {"content_sid": "HX0123456789abcdef0123456789abcdef"}
        });
        assert_eq!(
            reason(template_with_fallback),
            "fallback_template: only with body (a template message needs no fallback)"
        );
    }

    #[test]
    fn a_refusal_keeps_the_usable_identity() {
        let rejection =
            parse(json!({"v": 1, "message_id": "m1", "to": "+1", "body": "x", "campaign": "c"})).unwrap_err();
        assert_eq!(rejection.message_id.unwrap().as_str(), "m1");
        assert_eq!(rejection.campaign.unwrap().as_str(), "c");
        assert!(rejection.phone.is_none());

        let no_id = parse(json!({"v": 1, "message_id": "bad#id", "to": "+33612345678", "body": "x"})).unwrap_err();
        assert!(no_id.message_id.is_none());
        assert!(no_id.reason.starts_with("message_id: character '#' not allowed"), "{}", no_id.reason);
        assert_eq!(
            QueueMessage::parse("{not json").unwrap_err().reason.split(" (").next(),
            Some("message: not valid JSON")
        );
        assert_eq!(QueueMessage::parse("[1]").unwrap_err().reason, "message: expected a JSON object");
    }

    #[test]
    fn an_oversized_body_is_rejected_and_not_stored() {
        let body = json!({"v": 1, "message_id": "big", "to": "+33612345678", "body": "x".repeat(70_000)}).to_string();
        let rejection = QueueMessage::parse(&body).unwrap_err();
        assert_eq!(rejection.reason, "message: larger than 64 KiB");
        assert!(!rejection.storable);
        assert_eq!(rejection.message_id.unwrap().as_str(), "big");
    }
}

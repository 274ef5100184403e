//! Property-based fuzzing (proptest, on the stable compiler) of the parsers that read what
//! the outside world sends: the queue message, Twilio's error answers, phone numbers, the
//! webhook signature. Every test name starts with `fuzz_`: `make fuzz` runs them with
//! `PROPTEST_CASES` (20,000 by default) instead of proptest's 256. A failing input is shrunk
//! and printed; inputs that once failed are kept below as plain regression tests.

use missive::adapters::twilio::TwilioError;
use missive::domain::classify::{classify_error, ErrorClass};
use missive::domain::message::{Content, QueueMessage};
use missive::domain::phone::PhoneNumber;
use missive::domain::signature;
use proptest::prelude::*;
use serde_json::{json, Map, Value};

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
];

/// proptest's defaults (`PROPTEST_CASES` is read from the environment), without the
/// failure-persistence files: inputs that failed become the regression tests at the end.
fn config() -> ProptestConfig {
    ProptestConfig { failure_persistence: None, ..ProptestConfig::default() }
}

// ---- strategies -------------------------------------------------------------------------

/// Text with what breaks parsers: controls, quotes, backslashes, non-ASCII, surrogate-range
/// neighbours, `#`, `:`.
fn nasty_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,40}",
        "\\PC{0,40}",
        "[\\x00-\\x1f\\x7f\"\\\\#:+é€😀\u{feff}\u{2028}]{0,20}",
        Just(String::new()),
        "[A-Za-z0-9._:-]{1,140}",
        "\\+[0-9]{0,18}",
        "whatsapp:\\+[0-9]{6,16}",
    ]
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        nasty_text().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(nasty_text(), inner, 0..8).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn valid_phone() -> impl Strategy<Value = String> {
    // French mobiles of an allocated range (+33 61…; +33 639… and +33 7 12… are not valid
    // per phonenumber's metadata) and a US number.
    prop_oneof![(0u32..10_000_000).prop_map(|n| format!("+3361{n:07}")), Just("+14155238886".to_owned()),]
}

/// A valid version-1 message, as a JSON object.
fn valid_message() -> impl Strategy<Value = Map<String, Value>> {
    let content = prop_oneof![
        "[^\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f]{1,200}".prop_map(|body| ("body", json!(body))),
        ("[0-9a-f]{32}", prop::collection::btree_map("[a-z0-9]{1,32}", "[^\\x00-\\x1f]{0,20}", 0..10))
            .prop_map(|(hex, vars)| ("template", json!({"content_sid": format!("HX{hex}"), "variables": vars}))),
    ];
    (
        "[A-Za-z0-9._:-]{1,128}",
        valid_phone(),
        content,
        prop::option::of("[A-Za-z0-9._-]{1,64}"),
        prop::option::of("[A-Za-z0-9._-]{1,63}"),
        prop::option::of(1u64..=10),
        prop::option::of("https://example\\.org/[a-z0-9/]{0,40}"),
        prop::option::of(0i64..4_000_000_000),
        any::<bool>(),
    )
        .prop_map(|(id, to, (key, content), campaign, recipient, max_attempts, media, not_after, prefix)| {
            let mut m = Map::new();
            m.insert("v".into(), json!(1));
            m.insert("message_id".into(), json!(id));
            m.insert("to".into(), json!(if prefix { format!("whatsapp:{to}") } else { to }));
            m.insert(key.into(), content);
            if let Some(c) = campaign {
                m.insert("campaign".into(), json!(c));
            }
            if let Some(r) = recipient {
                m.insert("recipient_id".into(), json!(r));
            }
            if let Some(n) = max_attempts {
                m.insert("max_attempts".into(), json!(n));
            }
            if let Some(url) = media {
                m.insert("media_urls".into(), json!([url]));
            }
            if let Some(at) = not_after {
                let at = chrono::DateTime::from_timestamp(at, 0).unwrap().to_rfc3339();
                m.insert("not_after".into(), json!(at));
            }
            m
        })
}

/// A valid message with some fields replaced by arbitrary JSON, some removed, perhaps an
/// unknown one added: the neighbourhood of valid input, where parsers break.
fn mutated_message() -> impl Strategy<Value = Map<String, Value>> {
    (
        valid_message(),
        prop::collection::vec((prop::sample::select(KNOWN_FIELDS), any_json()), 0..4),
        prop::collection::vec(prop::sample::select(KNOWN_FIELDS), 0..3),
        prop::option::of((nasty_text(), any_json())),
    )
        .prop_map(|(mut m, replaced, removed, extra)| {
            for (key, value) in replaced {
                m.insert(key.to_owned(), value);
            }
            for key in removed {
                m.remove(key);
            }
            if let Some((key, value)) = extra {
                m.insert(key, value);
            }
            m
        })
}

// ---- the queue message parser -------------------------------------------------------------

/// The invariants of any parse, whatever the input.
fn check_parse(body: &str) -> Result<(), TestCaseError> {
    let parsed = QueueMessage::parse(body);
    let object = serde_json::from_str::<Value>(body).ok().and_then(|v| v.as_object().cloned());
    match parsed {
        Ok(message) => {
            let object = object.expect("only a JSON object parses");
            prop_assert!(body.len() <= 64 * 1024);
            let id = message.message_id.as_str();
            prop_assert_eq!(object.get("message_id").and_then(Value::as_str), Some(id));
            prop_assert!((1..=128).contains(&id.chars().count()));
            prop_assert!(id.chars().all(|c| c.is_ascii_alphanumeric() || ".:_-".contains(c)));
            let to = message.to.as_str();
            prop_assert!(to.starts_with('+') && (9..=16).contains(&to.len()), "{}", to);
            match &message.content {
                Content::Body(text) => {
                    prop_assert!((1..=1600).contains(&text.chars().count()));
                    prop_assert!(!text.chars().any(|c| c.is_ascii_control() && !"\t\n\r".contains(c)));
                }
                Content::Template(t) => {
                    prop_assert!(t.content_sid.len() == 34 && t.content_sid.starts_with("HX"));
                    prop_assert!(t.variables.len() <= 50);
                    prop_assert!(t.variables.values().map(|v| v.chars().count()).sum::<usize>() <= 1024);
                }
            }
            prop_assert!(message.max_attempts.is_none_or(|m| (1..=10).contains(&m)));
            prop_assert!(object.keys().all(|k| KNOWN_FIELDS.contains(&k.as_str())));
        }
        Err(rejection) => {
            let reason = &rejection.reason;
            let field = reason.split(':').next().unwrap_or_default();
            let field_root = field.split('.').next().unwrap_or_default();
            let named = field == "message"
                || KNOWN_FIELDS.contains(&field_root)
                || object
                    .as_ref()
                    .is_some_and(|o| o.contains_key(field.trim_end()) || reason.contains(": unknown field"));
            prop_assert!(named, "a reason names its field: {:?}", reason);
            if let Some(id) = &rejection.message_id {
                // A usable id is the body's own, verbatim.
                let raw = object.as_ref().and_then(|o| o.get("message_id")).and_then(Value::as_str);
                prop_assert_eq!(raw, Some(id.as_str()));
            }
            prop_assert_eq!(rejection.storable, body.len() <= 64 * 1024);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]
    #[test]
    fn fuzz_queue_message_any_text(body in "\\PC{0,300}|[{}\\[\\]\":,0-9a-z\\\\ ]{0,200}") {
        check_parse(&body)?;
    }

    #[test]
    fn fuzz_queue_message_any_json(value in any_json()) {
        check_parse(&value.to_string())?;
    }

    #[test]
    fn fuzz_queue_message_mutated(message in mutated_message()) {
        check_parse(&Value::Object(message).to_string())?;
    }

    #[test]
    fn fuzz_queue_message_valid_round_trip(message in valid_message()) {
        let body = Value::Object(message.clone()).to_string();
        let parsed = QueueMessage::parse(&body);
        prop_assert!(parsed.is_ok(), "{:?} for {}", parsed.err().map(|r| r.reason), body);
        let parsed = parsed.unwrap();
        prop_assert_eq!(Some(parsed.message_id.as_str()), message["message_id"].as_str());
        let to = message["to"].as_str().unwrap();
        prop_assert_eq!(parsed.to.as_str(), to.trim_start_matches("whatsapp:"));
        match (&parsed.content, message.get("body")) {
            (Content::Body(text), Some(body)) => prop_assert_eq!(Some(text.as_str()), body.as_str()),
            (Content::Template(t), None) => prop_assert_eq!(Some(t.content_sid.as_str()), message["template"]["content_sid"].as_str()),
            other => prop_assert!(false, "content mismatch: {:?}", other),
        }
        check_parse(&body)?;
    }

    /// An unknown field is refused by name, and the rejection keeps the id.
    #[test]
    fn fuzz_queue_message_unknown_field_keeps_the_id(message in valid_message(), key in "[a-z_]{1,20}") {
        prop_assume!(!KNOWN_FIELDS.contains(&key.as_str()));
        let mut message = message;
        message.insert(key.clone(), json!(1));
        let rejection = QueueMessage::parse(&Value::Object(message.clone()).to_string()).unwrap_err();
        prop_assert_eq!(rejection.reason, format!("{key}: unknown field"));
        prop_assert_eq!(rejection.message_id.map(|id| id.as_str().to_owned()), message["message_id"].as_str().map(str::to_owned));
    }

    #[test]
    fn fuzz_phone_numbers(raw in nasty_text()) {
        if let Ok(phone) = PhoneNumber::parse(&raw) {
            let digits = phone.as_str().strip_prefix('+').expect("E.164 starts with +");
            prop_assert!((8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()));
            prop_assert_eq!(PhoneNumber::parse(&phone.whatsapp()).ok(), Some(phone.clone()));
            prop_assert!(!phone.masked().contains(&digits[2..digits.len() - 2]));
        }
    }
}

// ---- Twilio's error answers --------------------------------------------------------------

proptest! {
    #![proptest_config(config())]
    #[test]
    fn fuzz_twilio_error_any_bytes(body in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = TwilioError::parse(&body);
    }

    #[test]
    fn fuzz_twilio_error_any_json(value in any_json()) {
        let _ = TwilioError::parse(value.to_string().as_bytes());
    }

    /// Twilio's error JSON: the code, message and status are read whatever else the object
    /// holds, and a field of the wrong type hides no other field.
    #[test]
    fn fuzz_twilio_error_fields_are_read_one_by_one(
        code in any::<u32>(),
        message in prop::option::of(nasty_text()),
        status in 100u16..600,
        more_info in any_json(),
        junk_status in any::<bool>(),
        junk_message in any::<bool>(),
    ) {
        let mut object = json!({"code": code, "more_info": more_info});
        object["status"] = if junk_status { json!(status.to_string()) } else { json!(status) };
        object["message"] = match (&message, junk_message) {
            (_, true) => json!({"text": "an object"}),
            (Some(text), false) => json!(text),
            (None, false) => Value::Null,
        };
        let error = TwilioError::parse(object.to_string().as_bytes());
        prop_assert!(error.is_some(), "{}", object);
        let error = error.unwrap();
        prop_assert_eq!(error.code, Some(code));
        prop_assert_eq!(error.status, (!junk_status).then_some(status));
        prop_assert_eq!(error.message, if junk_message { None } else { message });
    }

    /// Every answer has a class; a known code decides over the HTTP status.
    #[test]
    fn fuzz_classify_is_total(http in any::<u16>(), code in prop::option::of(any::<u32>())) {
        let class = classify_error(http, code);
        if code.is_none() && (500..=599).contains(&http) && http != 503 {
            prop_assert_eq!(class, ErrorClass::InDoubt);
        }
        if code == Some(20429) {
            prop_assert_eq!(class, ErrorClass::Throttled);
        }
    }
}

// ---- the webhook signature ---------------------------------------------------------------

fn form_params() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec(("[A-Za-z]{1,12}|\\PC{0,8}", nasty_text()), 0..12)
}

fn url() -> impl Strategy<Value = String> {
    prop_oneof![
        (
            "(https|http|HTTPS)",
            "[a-z0-9.-]{1,20}|\\[::1\\]",
            prop::option::of(prop_oneof![Just(443u16), Just(80), any::<u16>()]),
            "(/[a-z0-9?=&%.-]{0,20}){0,3}"
        )
            .prop_map(|(scheme, host, port, path)| match port {
                Some(port) => format!("{scheme}://{host}:{port}{path}"),
                None => format!("{scheme}://{host}{path}"),
            }),
        nasty_text(),
    ]
}

proptest! {
    #![proptest_config(config())]
    /// What Twilio signs verifies, whatever the parameters' order, with the URL as built or
    /// with its default port toggled; a changed value or another token does not.
    #[test]
    fn fuzz_signature_round_trip(token in "[ -~]{1,40}", url in url(), params in form_params(), shuffle in any::<u64>()) {
        let urls = std::slice::from_ref(&url);
        let signature = signature::compute(&token, &url, &params);
        prop_assert!(signature::verify(&[token.as_str()], urls, &params, &signature));
        let mut shuffled = params.clone();
        let len = shuffled.len().max(1);
        shuffled.rotate_left((shuffle as usize) % len);
        prop_assert!(signature::verify(&[token.as_str()], urls, &shuffled, &signature));
        for variant in signature::url_variants(&url) {
            let signed_for_variant = signature::compute(&token, &variant, &params);
            prop_assert!(signature::verify(&[token.as_str()], urls, &params, &signed_for_variant), "{}", variant);
        }
        let other_token = format!("{token}x");
        prop_assert!(!signature::verify(&[other_token.as_str()], urls, &params, &signature));
        let mut tampered = params.clone();
        tampered.push(("Extra".into(), "1".into()));
        prop_assert!(!signature::verify(&[token.as_str()], urls, &tampered, &signature));
    }

    /// The URL variants: the URL itself first; each variant's variants lead back to it.
    #[test]
    fn fuzz_signature_url_variants(url in url()) {
        let variants = signature::url_variants(&url);
        prop_assert_eq!(&variants[0], &url);
        prop_assert!(variants.len() <= 2);
        for variant in &variants[1..] {
            prop_assert!(signature::url_variants(variant).contains(&url), "{} ↔ {}", url, variant);
        }
    }

    /// Any header value, any form: verification answers, never panics.
    #[test]
    fn fuzz_signature_verify_any_input(header in "\\PC{0,40}", form in "\\PC{0,200}", url in url()) {
        let params: Vec<(String, String)> = url::form_urlencoded::parse(form.as_bytes()).into_owned().collect();
        let _ = signature::verify(&["token", "secondary"], &[url], &params, &header);
    }
}

// ---- regressions: inputs fuzzing once found --------------------------------------------

/// `{"code": 0, "message": {"text": "an object"}, …}`: a `message` that is not a string made
/// the whole error unreadable, and with it the code that classifies the answer.
#[test]
fn fuzz_regression_twilio_error_with_an_object_message_keeps_its_code() {
    let error = TwilioError::parse(br#"{"code":21610,"message":{"text":"an object"},"more_info":null,"status":"400"}"#)
        .unwrap();
    assert_eq!((error.code, error.message, error.status), (Some(21610), None, None));
    assert_eq!(TwilioError::parse(b"[1]"), None);
    assert_eq!(TwilioError::parse(br#"{"code": 4294967296}"#).unwrap().code, None);
}

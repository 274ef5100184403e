//! Fault campaign: malformed queue bodies.
//!
//! Each body goes through the real path — a moto queue with its dead-letter queue
//! (`maxReceiveCount` 5, visibility 1 s), the event source mapping, the `send` handler —
//! and must end one of two ways, never in a panic: `rejected` in MessageLog with a reason
//! that names the field (when its `message_id` is usable), or returned to the queue as a
//! batch item failure until SQS moves it to the DLQ (when it is not). Bodies larger than
//! SQS carries (256 KiB) cannot arrive from a queue; they are given to the handler directly.

mod common;
mod faults_support;

use std::time::{Duration, Instant};

use common::*;
use faults_support::*;
use lambda_harness::SqsEventSource;
use missive::adapters::provision::create_queues;
use missive::domain::status::Status;
use serde_json::{json, Value};

/// What must become of a body.
#[derive(Debug, Clone)]
enum Expect {
    /// A `rejected` item under this id, `last_error` starting with this text.
    Rejected(String, &'static str),
    /// No usable id: back to SQS until the DLQ takes it.
    DeadLetter,
}

const SID: &str = "HX0123456789abcdef0123456789abcdef";

fn valid(id: &str) -> Value {
    json!({"v": 1, "message_id": id, "to": PHONE, "body": "Bonjour"})
}

fn with(id: &str, key: &str, value: Value) -> String {
    let mut message = valid(id);
    message[key] = value;
    message.to_string()
}

fn without(id: &str, key: &str) -> String {
    let mut message = valid(id);
    message.as_object_mut().unwrap().remove(key);
    message.to_string()
}

fn template(id: &str, template: Value) -> String {
    let mut message = valid(id);
    let object = message.as_object_mut().unwrap();
    object.remove("body");
    object.insert("template".into(), template);
    message.to_string()
}

fn rejected(id: &str, reason: &'static str) -> Expect {
    Expect::Rejected(id.to_owned(), reason)
}

/// The campaign's bodies, each with its expected end.
fn cases() -> Vec<(String, Expect)> {
    let many_variables: serde_json::Map<String, Value> = (0..51).map(|i| (i.to_string(), json!("x"))).collect();
    let media: Vec<String> = (0..2000).map(|i| format!("https://example.org/{i}.jpg")).collect();
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    vec![
        // Not a message at all: nothing to record it under.
        ("{not json".to_owned(), Expect::DeadLetter),
        (String::new(), Expect::DeadLetter),
        ("null".to_owned(), Expect::DeadLetter),
        ("[1, 2, 3]".to_owned(), Expect::DeadLetter),
        ("\"a string\"".to_owned(), Expect::DeadLetter),
        ("42".to_owned(), Expect::DeadLetter),
        ("{}".to_owned(), Expect::DeadLetter),
        (deep, Expect::DeadLetter),
        (r#"{"v": 1, "message_id": "x", "to": "\ud800"}"#.to_owned(), Expect::DeadLetter),
        (format!("\u{feff}{}", valid("bom-1")), Expect::DeadLetter),
        // Unusable message_id.
        (without("gone", "message_id"), Expect::DeadLetter),
        (with("x", "message_id", json!(123)), Expect::DeadLetter),
        (with("x", "message_id", json!(null)), Expect::DeadLetter),
        (with("x", "message_id", json!("")), Expect::DeadLetter),
        (with("x", "message_id", json!("camp#42")), Expect::DeadLetter),
        (with("x", "message_id", json!("a".repeat(500))), Expect::DeadLetter),
        (with("x", "message_id", json!("élève-1")), Expect::DeadLetter),
        (with("x", "message_id", json!("line\nbreak")), Expect::DeadLetter),
        // A usable id, something else wrong: recorded as rejected, with the field named.
        (without("bad-v-missing", "v"), rejected("bad-v-missing", "v: required")),
        (with("bad-v-2", "v", json!(2)), rejected("bad-v-2", "v: unsupported version 2")),
        (with("bad-v-string", "v", json!("1")), rejected("bad-v-string", "v: expected the number 1")),
        (with("bad-v-float", "v", json!(1.5)), rejected("bad-v-float", "v: unsupported version 1.5")),
        (without("bad-to-missing", "to"), rejected("bad-to-missing", "to: required")),
        (with("bad-to-number", "to", json!(33612345678u64)), rejected("bad-to-number", "to: expected a string")),
        (with("bad-to-invalid", "to", json!("+33712345678")), rejected("bad-to-invalid", "to: not a valid E.164")),
        (with("bad-to-spaces", "to", json!("+33 6 12 34 56 78")), rejected("bad-to-spaces", "to: not a valid E.164")),
        (with("bad-to-huge", "to", json!("+".repeat(30_000))), rejected("bad-to-huge", "to: not a valid E.164")),
        (without("bad-no-content", "body"), rejected("bad-no-content", "body: one of body and template")),
        (
            with("bad-both", "template", json!({"content_sid": SID})),
            rejected("bad-both", "body: exactly one of body and template"),
        ),
        (with("bad-body-empty", "body", json!("")), rejected("bad-body-empty", "body: expected 1–1600 characters")),
        (with("bad-body-long", "body", json!("é".repeat(1601))), rejected("bad-body-long", "body: expected 1–1600")),
        (
            with("bad-body-bell", "body", json!("bell\u{7}")),
            rejected("bad-body-bell", "body: control character U+0007"),
        ),
        (with("bad-body-nul", "body", json!("nul\u{0}")), rejected("bad-body-nul", "body: control character U+0000")),
        (with("bad-body-del", "body", json!("del\u{7f}")), rejected("bad-body-del", "body: control character U+007F")),
        (with("bad-body-array", "body", json!(["a"])), rejected("bad-body-array", "body: expected a string")),
        (
            template("bad-tpl-sid", json!({"content_sid": "HXnothex"})),
            rejected("bad-tpl-sid", "template.content_sid: expected HX followed by 32 hex digits"),
        ),
        (
            template("bad-tpl-number", json!({"content_sid": SID, "variables": {"1": 5}})),
            rejected("bad-tpl-number", "template.variables.1: expected a string"),
        ),
        (
            template("bad-tpl-null", json!({"content_sid": SID, "variables": {"1": null}})),
            rejected("bad-tpl-null", "template.variables.1: expected a string"),
        ),
        (
            template("bad-tpl-object", json!({"content_sid": SID, "variables": {"1": {"first": "Jean"}}})),
            rejected("bad-tpl-object", "template.variables.1: expected a string"),
        ),
        (
            template("bad-tpl-array", json!({"content_sid": SID, "variables": ["Jean"]})),
            rejected("bad-tpl-array", "template.variables: expected an object of strings"),
        ),
        (
            template("bad-tpl-many", json!({"content_sid": SID, "variables": many_variables})),
            rejected("bad-tpl-many", "template.variables: at most 50 variables"),
        ),
        (
            template("bad-tpl-long", json!({"content_sid": SID, "variables": {"1": "x".repeat(1025)}})),
            rejected("bad-tpl-long", "template.variables: values have 1025 characters"),
        ),
        (
            template("bad-tpl-extra", json!({"content_sid": SID, "language": "fr"})),
            rejected("bad-tpl-extra", "template.language: unknown field"),
        ),
        (with("bad-media-2000", "media_urls", json!(media)), rejected("bad-media-2000", "media_urls: at most 1 URL")),
        (
            with("bad-media-http", "media_urls", json!(["http://x.org/a"])),
            rejected("bad-media-http", "media_urls: expected an https://"),
        ),
        (
            with("bad-media-string", "media_urls", json!("https://x.org/a")),
            rejected("bad-media-string", "media_urls: expected an array"),
        ),
        (
            with("bad-media-number", "media_urls", json!([7])),
            rejected("bad-media-number", "media_urls: expected strings"),
        ),
        (
            with("bad-media-long", "media_urls", json!([format!("https://x.org/{}", "a".repeat(2100))])),
            rejected("bad-media-long", "media_urls: a URL has at most 2048 characters"),
        ),
        (with("bad-unknown", "colour", json!("red")), rejected("bad-unknown", "colour: unknown field")),
        (with("bad-unknown-huge", &"k".repeat(20_000), json!(1)), rejected("bad-unknown-huge", "kkkkkkkkkk")),
        (with("bad-campaign", "campaign", json!("rentrée 2026")), rejected("bad-campaign", "campaign: character")),
        (
            with("bad-recipient", "recipient_id", json!("r".repeat(64))),
            rejected("bad-recipient", "recipient_id: expected 1–63"),
        ),
        (
            with("bad-not-after", "not_after", json!("tomorrow")),
            rejected("bad-not-after", "not_after: not an RFC 3339"),
        ),
        (
            with("bad-not-after-num", "not_after", json!(1_800_000_000)),
            rejected("bad-not-after-num", "not_after: expected an RFC 3339"),
        ),
        (with("bad-max-0", "max_attempts", json!(0)), rejected("bad-max-0", "max_attempts: expected a whole number")),
        (
            with("bad-max-11", "max_attempts", json!(11)),
            rejected("bad-max-11", "max_attempts: expected a whole number"),
        ),
        (
            with("bad-max-float", "max_attempts", json!(2.5)),
            rejected("bad-max-float", "max_attempts: expected a whole number"),
        ),
        (
            with("bad-max-string", "max_attempts", json!("3")),
            rejected("bad-max-string", "max_attempts: expected a number"),
        ),
        (with("bad-big", "body", json!("x".repeat(70 * 1024))), rejected("bad-big", "message: larger than 64 KiB")),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_input_every_malformed_body_is_rejected_with_a_reason_or_dead_lettered() {
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut env = TestEnv::start().await;
    let queues = create_queues(&env.sqs, &unique("bad-input"), 1).await.expect("queues");
    env.set("SEND_QUEUE_URL", Some(&queues.queue_url));
    env.set("CONSENT_POLICY", Some("honour-optout"));
    let handler = env.send_handler().await;
    let cases = cases();
    assert!(cases.len() >= 30, "{} cases", cases.len());

    let bodies: Vec<String> = cases.iter().map(|(body, _)| body.clone()).collect();
    enqueue(&env.sqs, &queues.queue_url, &bodies).await;
    let source = SqsEventSource::new(env.sqs.clone(), &queues.queue_url, 10).await.expect("event source");
    let dead_letters: Vec<&String> =
        cases.iter().filter(|(_, e)| matches!(e, Expect::DeadLetter)).map(|(body, _)| body).collect();

    // Run until the queue is empty: the rejected ones are deleted at once, the others after
    // five receives go to the DLQ.
    let mut returned = 0;
    loop {
        assert!(Instant::now() < deadline, "the queue did not empty");
        match source.run_once(Duration::from_millis(500), |event| invoke_in_process(&handler, event)).await {
            Ok(Some(round)) => {
                assert!(!round.invocation_failed, "an invocation failed: {round:?}");
                returned += round.returned;
            }
            Ok(None) => {
                if source.depth().await.expect("depth") == (0, 0, 0) {
                    break;
                }
            }
            Err(err) => panic!("{err}"),
        }
    }
    let dlq = env.drain_queue(&queues.dlq_url, Duration::from_secs(2)).await;

    let items = all_items(&env).await;
    let mut problems = Vec::new();
    for (body, expect) in &cases {
        let shown: String = body.chars().take(80).collect();
        match expect {
            Expect::DeadLetter => {
                if !dlq.contains(body) {
                    problems.push(format!("not in the DLQ: {shown:?}"));
                }
            }
            Expect::Rejected(id, reason) => match items.get(id) {
                Some(item) if item.status == Some(Status::Rejected) => {
                    let error = item.last_error.as_deref().unwrap_or_default();
                    if !error.starts_with(reason) {
                        problems.push(format!(
                            "{id}: reason {:?}, expected {reason:?}",
                            error.chars().take(120).collect::<String>()
                        ));
                    }
                    let stored = item.request.as_deref() == Some(body.as_str());
                    if stored != (body.len() <= 64 * 1024) {
                        problems.push(format!("{id}: request stored {stored}, body {} bytes", body.len()));
                    }
                    if item.expires_at.is_none() || item.created_at.is_none() {
                        problems.push(format!("{id}: an item without created_at / expires_at"));
                    }
                }
                other => problems.push(format!("{id}: expected rejected, got {:?}", other.map(|i| i.status))),
            },
        }
    }
    let unexpected_items: Vec<&String> =
        items.keys().filter(|id| !cases.iter().any(|(_, e)| matches!(e, Expect::Rejected(i, _) if i == *id))).collect();
    if !unexpected_items.is_empty() {
        problems.push(format!("items nobody expected: {unexpected_items:?}"));
    }
    if dlq.len() != dead_letters.len() {
        problems.push(format!("{} bodies in the DLQ, {} expected", dlq.len(), dead_letters.len()));
    }
    assert!(env.twilio.creates().is_empty(), "nothing malformed reaches Twilio");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    eprintln!(
        "faults_input: {} bodies: {} rejected, {} dead-lettered after {returned} returns",
        cases.len(),
        cases.len() - dead_letters.len(),
        dead_letters.len()
    );
}

/// Bodies no queue can carry (over 256 KiB, raw control characters) given to the handler
/// directly: refused the same way, nothing stored beyond 64 KiB, no panic.
#[tokio::test]
async fn faults_input_bodies_beyond_what_sqs_carries_are_refused_without_panic() {
    let env = TestEnv::start().await;
    let handler = env.send_handler().await;
    let huge_body = with("huge-1", "body", json!("x".repeat(300 * 1024)));
    let huge_garbage = "{".repeat(400 * 1024);
    // A raw control character makes the body invalid JSON (escaped, it is a `body` error).
    let raw_nul = with("raw-nul", "body", json!("a")).replace("\"a\"", "\"a\u{0}\"");
    let bodies = vec![huge_body, huge_garbage, raw_nul];
    let response = env.run_send(&handler, &bodies).await;
    assert_eq!(failures(&response), vec!["sqs-1".to_owned(), "sqs-2".to_owned()], "no usable id: back to SQS");
    let huge = env.item("huge-1").await;
    assert_eq!(
        (huge.status, huge.last_error.as_deref()),
        (Some(Status::Rejected), Some("message: larger than 64 KiB"))
    );
    assert!(huge.request.is_none(), "a body over 64 KiB is not stored");
    assert!(env.maybe_item("raw-nul").await.is_none());
}

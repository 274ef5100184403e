//! The `send` function's real stdout, run as Lambda runs it: a pipe (not a terminal), under a
//! loopback Runtime API (`lambda_harness`), one message sent through moto and the fake Twilio.
//!
//! - `AWS_LAMBDA_LOG_FORMAT` unset (Lambda's Text format): no ANSI escape anywhere, and the
//!   outcome line reads `message_id=… ` as plain `key=value` text that a log filter matches.
//! - `AWS_LAMBDA_LOG_FORMAT=JSON`: every line is a JSON object, the outcome line among them
//!   with its fields.
//!
//! `retry-sweep` the same way, on its scheduled event (its "sweep finished" report line).
//!
//! The binary: `target/<profile>/send` next to this test's executable (see
//! `lambda_harness::workspace_bin`). Built by `cargo nextest run --workspace`, its
//! `tracing-subscriber` has the `ansi` feature (the CLI's defaults are unified in), which is
//! how the escapes reached the lines before `missive::telemetry`.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::*;
use lambda_harness::{FunctionSpec, Instance};
use serde_json::Value;

/// Runs `send` once on a one-message event with `format` (`None`: variable unset) and
/// returns what it wrote to stdout and stderr.
async fn send_output(format: Option<&str>, tag: &str) -> (String, String) {
    let env = TestEnv::start().await;
    let to = phone(4200);
    env.opt_in(&[to.as_str()]).await;
    let message_id = unique(tag);
    let event = test_support::sqs_event_json(&[body_message(&message_id, &to, "Bonjour")]);
    let (response, output) = run_once(&env, "send", &event, format, &message_id).await;
    assert_eq!(response["batchItemFailures"], serde_json::json!([]), "{response}");
    assert_eq!(env.item(&message_id).await.status.map(|s| s.as_str()), Some("sent"));
    (output, message_id)
}

/// Starts function `bin` with the test environment's configuration, invokes it once with
/// `event`, stops it; its answer and everything it wrote to stdout and stderr.
async fn run_once(env: &TestEnv, bin: &str, event: &Value, format: Option<&str>, tag: &str) -> (Value, String) {
    let program = lambda_harness::workspace_bin(env!("CARGO_MANIFEST_DIR"), bin, bin, "missive").expect("the binary");
    let log: PathBuf = std::env::temp_dir().join(format!("{tag}.log"));
    let mut spec = FunctionSpec::new(program, bin).inherit_aws().log_to(&log);
    for (name, value) in &env.vars {
        spec = spec.env(name, value.clone());
    }
    spec = spec.env("RUST_LOG", "info");
    if let Some(format) = format {
        spec = spec.env("AWS_LAMBDA_LOG_FORMAT", format);
    }
    let mut instance = Instance::start(&spec).await.expect("start the function");
    let invocation = instance.invoke(event, Duration::from_secs(30)).await.expect("the invocation is answered");
    instance.kill().await;
    let output = std::fs::read_to_string(&log).expect("the function's output");
    let _ = std::fs::remove_file(&log);
    (invocation.response, output)
}

/// Every non-empty line as a JSON object.
fn json_lines(output: &str) -> Vec<Value> {
    let lines: Vec<Value> = output
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str::<Value>(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}")))
        .collect();
    assert!(lines.iter().all(Value::is_object), "a line is not a JSON object:\n{output}");
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_text_format_has_plain_key_value_pairs_and_no_ansi_escape() {
    let (output, message_id) = send_output(None, "logs-text").await;
    assert!(!output.contains('\x1b'), "an ANSI escape in the Text log:\n{output}");
    let outcome = output
        .lines()
        .find(|line| line.contains("outcome recorded"))
        .unwrap_or_else(|| panic!("no outcome line in:\n{output}"));
    assert!(outcome.contains(&format!("message_id={message_id}")), "no plain message_id=… in {outcome:?}");
    assert!(outcome.contains("outcome=\"sent\""), "no plain outcome=\"sent\" in {outcome:?}");
    assert!(outcome.starts_with(" INFO") || outcome.starts_with("INFO"), "the level first: {outcome:?}");
    assert!(
        !output.lines().any(|line| line.trim_start().starts_with("{\"level\"")),
        "a JSON log line in Text:\n{output}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_json_format_is_one_json_object_per_line_with_the_fields() {
    let (output, message_id) = send_output(Some("JSON"), "logs-json").await;
    assert!(!output.contains('\x1b'), "an ANSI escape in the JSON log:\n{output}");
    let lines = json_lines(&output);
    let outcome = lines
        .iter()
        .find(|line| line["fields"]["message"] == "outcome recorded")
        .unwrap_or_else(|| panic!("no outcome line in:\n{output}"));
    assert_eq!(outcome["level"], "INFO");
    assert_eq!(outcome["fields"]["message_id"], message_id.as_str());
    assert_eq!(outcome["fields"]["outcome"], "sent");
    // The recipient is masked in the JSON form too.
    let phone = outcome["fields"]["phone"].as_str().expect("a phone field");
    assert!(phone.contains('*'), "unmasked phone {phone:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_of_retry_sweep_in_both_formats() {
    let env = TestEnv::start().await;
    let event = serde_json::json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}});

    let (_, text) = run_once(&env, "retry-sweep", &event, None, &unique("logs-sweep-text")).await;
    assert!(!text.contains('\x1b'), "an ANSI escape in the Text log:\n{text}");
    let report = text
        .lines()
        .find(|line| line.contains("sweep finished"))
        .unwrap_or_else(|| panic!("no report line in:\n{text}"));
    assert!(report.contains("due=0") && report.contains("enqueued=0"), "no plain due=0 enqueued=0 in {report:?}");

    let (_, json) = run_once(&env, "retry-sweep", &event, Some("JSON"), &unique("logs-sweep-json")).await;
    assert!(!json.contains('\x1b'), "an ANSI escape in the JSON log:\n{json}");
    let lines = json_lines(&json);
    let report = lines
        .iter()
        .find(|line| line["fields"]["message"] == "sweep finished")
        .unwrap_or_else(|| panic!("no report line in:\n{json}"));
    assert_eq!(report["level"], "INFO");
    assert_eq!(report["fields"]["due"], 0);
    assert_eq!(report["fields"]["enqueued"], 0);
}

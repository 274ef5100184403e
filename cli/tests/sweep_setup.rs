//! `missive sweep` (the sweep's handler, in process) and `missive setup`.

mod common;

use std::time::{Duration, SystemTime};

use common::*;
use fake_twilio::Fault;
use missive::domain::consent::{ConsentSource, ConsentState};

#[tokio::test]
async fn sweep_re_enqueues_what_is_due_and_prints_its_report() {
    let env = TestEnv::start().await;
    let twilio = fake_twilio().await;
    let p = phone(90);
    env.set_consent(&p, ConsentState::OptedIn, ConsentSource::Cli, "test").await;
    twilio.push_fault(Some(&p), Fault::service_unavailable());
    let handler = env.send_handler(&twilio, &[("SWEEP_GRACE_SECONDS", "0")]).await;
    let body = serde_json::json!({"v": 1, "message_id": "s:1", "to": p, "body": "x"}).to_string();
    handler.handle(sqs_event(std::slice::from_ref(&body)), SystemTime::now() + Duration::from_secs(60)).await;
    // SQS lost the retry's copy: only the sweep can bring the message back.
    assert_eq!(env.drain(&env.queue_url, Duration::from_secs(1)).await, std::slice::from_ref(&body));
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let run = env.missive(&["sweep", "--json"]).await;
    run.ok();
    let out = run.json();
    // The handler's report (its fields may grow); the one-line check below keeps stdout clean.
    for field in ["due", "enqueued", "skipped", "enqueue_failed", "left_for_next_run", "duration_ms"] {
        assert!(out.get(field).is_some(), "{field} in the report: {}", run.stdout);
    }
    assert_eq!((out["due"].as_u64(), out["enqueued"].as_u64(), out["skipped"].as_u64()), (Some(1), Some(1), Some(0)));
    assert_eq!(out["left_for_next_run"], false);
    assert_eq!(run.stdout.lines().count(), 1, "the EMF metrics line went to stderr: {}", run.stdout);
    assert_eq!(env.drain(&env.queue_url, Duration::from_secs(1)).await, [body]);

    let run = env.missive(&["sweep"]).await;
    run.ok();
    assert!(run.stdout.starts_with("sweep: 0 due, 0 enqueued"), "{}", run.stdout);
}

#[tokio::test]
async fn setup_creates_the_tables_and_queues_once_and_prints_the_exports() {
    let env = TestEnv::start().await;
    let (log, consent, queue) = (unique("setup-log"), unique("setup-consent"), unique("setup-q"));
    let (campaigns, inbox) = (unique("setup-campaigns"), unique("setup-inbox"));
    let args = [
        "setup",
        "--message-log-table",
        &log,
        "--consent-table",
        &consent,
        "--campaign-table",
        &campaigns,
        "--inbox-table",
        &inbox,
        "--queue-name",
        &queue,
    ];
    let run = env.missive(&args).await;
    run.ok();
    let exports: std::collections::HashMap<String, String> = run
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("export ")?.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect();
    assert_eq!(exports["MESSAGE_LOG_TABLE"], log);
    assert_eq!(exports["CONSENT_TABLE"], consent);
    assert_eq!(exports["CAMPAIGN_TABLE"], campaigns);
    assert_eq!(exports["INBOX_TABLE"], inbox);
    assert!(exports["SEND_QUEUE_URL"].ends_with(&queue));
    assert!(exports["DLQ_URL"].ends_with(&format!("{queue}-dlq")));
    assert!(run.stderr.contains("created"), "{}", run.stderr);

    let described = env.dynamo.describe_table().table_name(&log).send().await.unwrap().table.unwrap();
    let mut indexes: Vec<String> =
        described.global_secondary_indexes().iter().filter_map(|i| i.index_name().map(str::to_owned)).collect();
    indexes.sort();
    assert_eq!(indexes, ["by-campaign", "by-recipient", "retry-due"]);
    let described = env.dynamo.describe_table().table_name(&inbox).send().await.unwrap().table.unwrap();
    let keys: Vec<&str> = described.key_schema().iter().map(|k| k.attribute_name()).collect();
    assert_eq!(keys, ["phone", "received_at_sid"], "the Inbox table's keys");
    let described = env.dynamo.describe_table().table_name(&campaigns).send().await.unwrap().table.unwrap();
    let keys: Vec<&str> = described.key_schema().iter().map(|k| k.attribute_name()).collect();
    assert_eq!(keys, ["campaign"], "the Campaigns table's key");

    let out = env.missive(&[&args[..], &["--json"]].concat()).await.ok().json();
    assert_eq!(out["queues"], "exists");
    assert_eq!(out["tables"][&log], "exists");
    assert_eq!(out["tables"][&campaigns], "exists");
    assert_eq!(out["tables"][&inbox], "exists");
    assert_eq!(out["env"]["SEND_QUEUE_URL"], exports["SEND_QUEUE_URL"].as_str());
    assert_eq!(out["env"]["DLQ_URL"], exports["DLQ_URL"].as_str(), "found again through the RedrivePolicy");
}

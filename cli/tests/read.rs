//! `missive status`, `report` and `failures` over items written by the real `send` handler.

mod common;

use std::time::{Duration, SystemTime};

use common::*;
use fake_twilio::Fault;
use missive::domain::consent::{ConsentSource, ConsentState};
use serde_json::json;

/// A campaign with one item in each interesting state; returns the env, the Twilio and the handler.
async fn campaign() -> (TestEnv, fake_twilio::FakeTwilio, missive::handlers::send::SendHandler) {
    let env = TestEnv::start().await;
    let twilio = fake_twilio().await;
    for n in [1, 3, 4, 6] {
        env.set_consent(&phone(n), ConsentState::OptedIn, ConsentSource::Cli, "test").await;
    }
    twilio.push_fault(Some(&phone(3)), Fault::error(400, 63003, "Channel could not find To address"));
    twilio.push_fault(Some(&phone(4)), Fault::service_unavailable());
    let handler = env.send_handler(&twilio, &[]).await;
    let message = |id: &str, to: &str, extra: serde_json::Value| {
        let mut body =
            json!({"v": 1, "message_id": id, "to": to, "template": {"content_sid": TEMPLATE}, "campaign": "term"});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        body.to_string()
    };
    let bodies = vec![
        message("term:r1", &phone(1), json!({})),
        message("term:r2", &phone(2), json!({})),
        message("term:r3", &phone(3), json!({})),
        message("term:r4", &phone(4), json!({})),
        message("term:r5", "+33712345678", json!({})),
        message("term:r6", &phone(6), json!({"not_after": "2020-01-01T00:00:00Z"})),
        message("other:r7", &phone(1), json!({"campaign": "other"})),
    ];
    let response = handler.handle(sqs_event(&bodies), SystemTime::now() + Duration::from_secs(60)).await;
    assert!(response.batch_item_failures.is_empty());
    (env, twilio, handler)
}

#[tokio::test]
async fn report_counts_by_status_and_shows_the_queues() {
    let (env, _twilio, handler) = campaign().await;
    let run = env.missive(&["report", "--campaign", "term", "--json"]).await;
    run.ok();
    let out = run.json();
    assert_eq!(out["campaign"], "term");
    assert_eq!(out["items"], 6, "other campaigns are not counted: {out}");
    let by_status = &out["by_status"];
    for (status, count) in [
        ("sent", 1),
        ("skipped", 1),
        ("failed", 1),
        ("retrying", 1),
        ("rejected", 1),
        ("expired", 1),
        ("delivered", 0),
        ("scheduled", 0),
        ("cancelled", 0),
    ] {
        assert_eq!(by_status[status], count, "{status}: {out}");
    }
    assert_eq!(
        by_status.as_object().unwrap().len(),
        missive::domain::status::Status::ALL.len(),
        "every status is listed"
    );
    assert_eq!((out["in_flight"].as_u64(), out["final"].as_u64()), (Some(1), Some(5)));
    assert_eq!(out["send_queue"], json!({"waiting": 1, "in_flight": 0, "delayed": 0}), "the retry's copy: {out}");
    assert_eq!(
        out["dlq"],
        json!({"waiting": 0, "in_flight": 0, "delayed": 0}),
        "the DLQ found through the RedrivePolicy"
    );
    assert_eq!(out["settled"], false);

    let run = env.missive(&["report", "--campaign", "term"]).await;
    run.ok();
    for text in
        ["campaign term: 6 message(s) recorded, 1 in flight, 5 final", "retrying", "1 waiting", "not settled yet"]
    {
        assert!(run.stdout.contains(text), "{text:?} in {}", run.stdout);
    }

    // --watch gives up after --timeout with exit 5 while the retry waits in the queue…
    let run = env.missive(&["report", "--campaign", "term", "--watch", "--interval", "0.2", "--timeout", "0.5"]).await;
    run.code(5);
    assert!(run.stderr.contains("did not settle within 0.5 s"), "{}", run.stderr);

    // … and ends at once, exit 0, when the queue is empty and nothing is in flight.
    assert_eq!(env.process_queue(&handler).await, 1);
    let run = env.missive(&["report", "--campaign", "term", "--watch", "--interval", "0.2", "--json"]).await;
    run.ok();
    let out = run.json();
    assert_eq!((out["settled"].as_bool(), out["by_status"]["sent"].as_u64()), (Some(true), Some(2)), "{out}");
    assert_eq!(out["by_status"]["retrying"], 0);

    let run = env.missive(&["report", "--campaign", "term", "--watch", "--interval", "0.2"]).await;
    run.ok();
    assert!(run.stdout.contains("settled: the send queue is empty"), "{}", run.stdout);
}

#[tokio::test]
async fn watch_on_a_campaign_with_no_item_warns_once_and_times_out() {
    // An empty queue and nothing in flight, but nothing recorded either: a misspelt name (or
    // SQS counts that lag behind a bulk) must not pass for a settled campaign.
    let env = TestEnv::start().await;
    let run = env
        .missive(&["report", "--campaign", "no-such-trip", "--watch", "--interval", "0.2", "--timeout", "1", "--json"])
        .await;
    run.code(5);
    let warning = "no item of campaign no-such-trip recorded yet";
    assert_eq!(run.stderr.matches(warning).count(), 1, "warned once: {}", run.stderr);
    assert!(run.stderr.contains("did not settle within 1 s: no item of it was recorded"), "{}", run.stderr);
    let refreshes: Vec<&str> = run.stdout.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(refreshes.len() >= 2, "it kept watching: {}", run.stdout);
    assert_eq!((run.json()["items"].as_u64(), run.json()["settled"].as_bool()), (Some(0), Some(false)));

    let run = env.missive(&["report", "--campaign", "no-such-trip"]).await;
    run.ok();
    assert!(run.stdout.contains("not settled: no item of campaign no-such-trip recorded yet"), "{}", run.stdout);
}

#[tokio::test]
async fn failures_lists_failed_undelivered_rejected_and_expired_with_reasons() {
    let (env, _twilio, _handler) = campaign().await;
    let run = env.missive(&["failures", "--campaign", "term", "--json"]).await;
    run.ok();
    let out = run.json();
    assert_eq!(out["count"], 3);
    let failures = out["failures"].as_array().unwrap();
    let found: Vec<(&str, &str)> =
        failures.iter().map(|f| (f["message_id"].as_str().unwrap(), f["status"].as_str().unwrap())).collect();
    assert_eq!(found, [("term:r3", "failed"), ("term:r5", "rejected"), ("term:r6", "expired")]);
    assert_eq!(failures[0]["last_error_code"], 63003);
    assert_eq!(failures[0]["explanation"], "the number is not on WhatsApp");
    assert_eq!(failures[1]["last_error"], "to: not a valid E.164 number");
    assert!(failures.iter().all(|f| f.get("phone").is_none()), "no phone in failures");

    let run = env.missive(&["failures", "--campaign", "term"]).await;
    run.ok();
    assert!(run.stdout.contains("3 message(s) failed, undelivered, rejected or expired"), "{}", run.stdout);
    assert!(run.stdout.contains("63003"), "{}", run.stdout);
    let run = env.missive(&["failures", "--campaign", "nothing-here"]).await;
    run.ok();
    assert!(run.stdout.contains("no failed"), "{}", run.stdout);
}

#[tokio::test]
async fn status_shows_one_item_with_the_phone_masked() {
    let (env, _twilio, _handler) = campaign().await;
    let run = env.missive(&["status", "term:r3"]).await;
    run.ok();
    for text in ["status          failed", "+33*******03", "63003", "attempts        1 of 3", "campaign        term"] {
        assert!(run.stdout.contains(text), "{text:?} in {}", run.stdout);
    }
    assert!(!run.stdout.contains(&phone(3)), "masked by default");

    let out = env.missive(&["status", "term:r1", "--json"]).await.ok().json();
    assert_eq!(out["status"], "sent");
    assert_eq!(out["phone"], "+33*******01");
    assert_eq!(out["in_flight"], false);
    assert!(out["twilio_sid"].as_str().unwrap().starts_with("SM"));
    assert!(out.get("request").is_none(), "the request holds the number: shown only with --show-phone");

    let out = env.missive(&["status", "term:r1", "--json", "--show-phone"]).await.ok().json();
    assert_eq!(out["phone"], phone(1));
    assert!(out["request"].as_str().unwrap().contains(&phone(1)));

    let out = env.missive(&["status", "term:r4", "--json"]).await.ok().json();
    assert_eq!((out["status"].as_str(), out["in_flight"].as_bool()), (Some("retrying"), Some(true)));
    assert_eq!(out["last_error"], "20503: Service Unavailable");

    let run = env.missive(&["status", "term:nope"]).await;
    run.code(3);
    assert!(run.stderr.contains("no message \"term:nope\""), "{}", run.stderr);
}

#[tokio::test]
async fn report_and_failures_read_every_page() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let env = TestEnv::start().await;
    let now = chrono::Utc::now().timestamp();
    for i in 0..25 {
        let status = if i % 5 == 0 { "failed" } else { "delivered" };
        env.dynamo
            .put_item()
            .table_name(&env.log_table)
            .item("message_id", AttributeValue::S(format!("big:p{i:02}")))
            .item("campaign", AttributeValue::S("big".into()))
            .item("status", AttributeValue::S(status.into()))
            .item("attempts", AttributeValue::N("1".into()))
            .item("last_error", AttributeValue::S("63003: not on WhatsApp".into()))
            .item("created_at", AttributeValue::N(now.to_string()))
            .send()
            .await
            .expect("PutItem");
    }
    let out = env.missive(&["report", "--campaign", "big", "--page-size", "4", "--json"]).await.ok().json();
    assert_eq!((out["items"].as_u64(), out["by_status"]["delivered"].as_u64()), (Some(25), Some(20)), "{out}");
    let out = env.missive(&["failures", "--campaign", "big", "--page-size", "3", "--json"]).await.ok().json();
    assert_eq!(out["count"], 5, "{out}");
}

//! `missive forget`: erasure leaves nothing of the phone in either table but the suppression
//! record.

mod common;

use std::time::{Duration, SystemTime};

use common::*;
use fake_twilio::Fault;
use missive::domain::consent::{ConsentSource, ConsentState};

async fn send_all(handler: &missive::handlers::send::SendHandler, bodies: &[String]) {
    let response = handler.handle(sqs_event(bodies), SystemTime::now() + Duration::from_secs(60)).await;
    assert!(response.batch_item_failures.is_empty());
}

fn message(id: &str, to: &str) -> String {
    serde_json::json!({"v": 1, "message_id": id, "to": to, "template": {"content_sid": TEMPLATE}, "campaign": "c"})
        .to_string()
}

/// Everything either table holds that mentions `phone` anywhere.
async fn traces_of(env: &TestEnv, phone: &str) -> Vec<String> {
    let mut found = Vec::new();
    for item in env.all_items().await {
        if format!("{item:?}").contains(phone) {
            found.push(format!("MessageLog {:?}", text(&item, "message_id")));
        }
    }
    for item in env.all_consent().await {
        if format!("{item:?}").contains(phone) {
            found.push(format!("Consent {:?} {:?}", text(&item, "source"), item.contains_key("history")));
        }
    }
    found
}

#[tokio::test]
async fn forget_erases_the_phones_items_and_leaves_a_bare_suppression_record() {
    let env = TestEnv::start().await;
    let twilio = fake_twilio().await;
    let (p, other) = (phone(50), phone(51));
    env.set_consent(&p, ConsentState::OptedIn, ConsentSource::CsvImport, "parents.csv:3").await;
    env.set_consent(&other, ConsentState::OptedIn, ConsentSource::CsvImport, "parents.csv:4").await;
    twilio.push_fault(Some(&p), Fault::error(400, 63003, "Channel could not find To address"));
    let handler = env.send_handler(&twilio, &[]).await;
    // c:1 first, alone, so that it is the create that meets the scripted fault.
    send_all(&handler, &[message("c:1", &p)]).await;
    send_all(&handler, &[message("c:2", &p), message("c:3", &other)]).await;
    let sid = env.item("c:2").await.unwrap().twilio_sid.expect("sent");

    let run = env.missive(&["forget", "--phone", &human_phone(50), "--json"]).await;
    run.ok();
    let out = run.json();
    let erased: Vec<&str> =
        out["erased"].as_array().unwrap().iter().map(|e| e["message_id"].as_str().unwrap()).collect();
    assert_eq!(erased.len(), 2);
    assert!(erased.contains(&"c:1") && erased.contains(&"c:2"), "{out}");
    assert_eq!(out["consent"]["previous_state"], "opted_in");
    let notes = out["cannot_reach"].as_array().unwrap();
    assert!(notes.iter().any(|n| n.as_str().unwrap().contains(&sid)), "the Twilio SIDs to delete there: {out}");
    assert!(notes.iter().any(|n| n.as_str().unwrap().contains("rejected")));

    let traces = traces_of(&env, &p).await;
    assert_eq!(traces, ["Consent Some(\"erasure\") false"], "only the suppression record is left");
    let suppression = env.consent_item(&p).await.unwrap();
    assert_eq!((suppression.state.as_deref().unwrap_or_default(), suppression.history.len()), ("opted_out", 0));
    assert!(env.item("c:3").await.is_some(), "another phone's item stays");
    assert_eq!(env.consent_item(&other).await.unwrap().state.as_deref(), Some("opted_in"));

    // The parent is never messaged again, and a CSV cannot undo it.
    send_all(&handler, &[message("c:4", &p)]).await;
    assert_eq!(env.item("c:4").await.unwrap().status.map(|s| s.as_str()), Some("skipped"));

    // Forgetting again (once the queue is empty) erases what came after.
    let run = env.missive(&["forget", "--phone", &p]).await;
    run.ok();
    assert!(run.stdout.contains("erased 1 MessageLog item(s)"), "{}", run.stdout);
    assert!(run.stdout.contains("not reachable from here"));
    assert_eq!(traces_of(&env, &p).await.len(), 1);
}

#[tokio::test]
async fn forget_refuses_while_a_message_is_in_flight_unless_forced() {
    let env = TestEnv::start().await;
    let twilio = fake_twilio().await;
    let p = phone(60);
    env.set_consent(&p, ConsentState::OptedIn, ConsentSource::Cli, "test").await;
    twilio.push_fault(Some(&p), Fault::service_unavailable());
    let handler = env.send_handler(&twilio, &[]).await;
    send_all(&handler, &[message("f:1", &p)]).await;
    assert_eq!(env.item("f:1").await.unwrap().status.map(|s| s.as_str()), Some("retrying"));

    let run = env.missive(&["forget", "--phone", &p]).await;
    run.code(6);
    assert!(run.stderr.contains("f:1 (retrying)") && run.stderr.contains("--force"), "{}", run.stderr);
    assert!(env.item("f:1").await.is_some(), "nothing erased");
    assert_eq!(env.consent_item(&p).await.unwrap().source.as_deref(), Some("cli"), "consent untouched");

    env.missive(&["forget", "--phone", &p, "--force"]).await.ok();
    assert!(env.item("f:1").await.is_none());
    assert_eq!(traces_of(&env, &p).await.len(), 1);
}

//! `missive replies`, `report`'s answers and `forget` of the replies (DESIGN.md,
//! "Conversations"), run as the real binary against moto; the replies and answers are written
//! by the library's own adapters, as the webhook writes them.

mod common;

use common::*;
use missive::adapters::dynamo::DynamoInbox;
use missive::domain::inbox::{sort_key, InboxItem};
use missive::domain::status::Status;
use missive::ports::{Inbox, LogItem, StatusCallbackLog};

const T: i64 = 1_800_000_000;

async fn seed_sent(env: &TestEnv, id: &str, phone: &str, created_at: i64) {
    let item = LogItem {
        message_id: id.into(),
        status: Some(Status::Delivered),
        phone: Some(phone.into()),
        campaign: Some("trip".into()),
        recipient_id: id.strip_prefix("trip:").map(str::to_owned),
        twilio_sid: Some(format!("SM{id}")),
        attempts: 1,
        created_at: Some(created_at),
        updated_at: Some(created_at),
        expires_at: Some(created_at + 86_400),
        ..LogItem::default()
    };
    let mut attributes: std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> =
        serde_dynamo::aws_sdk_dynamodb_1::to_item(&item).unwrap();
    attributes.retain(|_, v| !matches!(v, aws_sdk_dynamodb::types::AttributeValue::Null(_)));
    env.dynamo.put_item().table_name(&env.log_table).set_item(Some(attributes)).send().await.unwrap();
}

fn reply(phone: &str, at: i64, sid: &str, answers: &str, body: &str, ack: Option<&str>) -> InboxItem {
    InboxItem {
        phone: phone.into(),
        received_at_sid: sort_key(at, sid),
        received_at: at,
        body: Some(body.into()),
        profile_name: Some("Parent".into()),
        num_media: 0,
        media_urls: vec![],
        button_payload: ack.map(|a| format!("ack:{a}")),
        button_text: None,
        replied_to_sid: None,
        message_id: Some(answers.into()),
        campaign: Some("trip".into()),
        ack: ack.map(str::to_owned),
        expires_at: at + 86_400,
    }
}

/// Three parents: the first answers yes, then no; the second asks a question; the third says nothing.
async fn seed(env: &TestEnv) -> (String, String, String) {
    let (p1, p2, p3) = (phone(301), phone(302), phone(303));
    for (id, p) in [("trip:1", &p1), ("trip:2", &p2), ("trip:3", &p3)] {
        seed_sent(env, id, p, T).await;
    }
    let inbox = DynamoInbox::new(env.dynamo.clone(), &env.inbox_table);
    let log = env.log();
    for item in [
        reply(&p1, T + 60, "SMa", "trip:1", "Oui", Some("yes")),
        reply(&p1, T + 120, "SMb", "trip:1", "Non finalement", Some("no")),
        reply(&p2, T + 90, "SMc", "trip:2", "À quelle heure ?", None),
    ] {
        assert!(inbox.put_once(&item).await.unwrap());
        if let Some(ack) = &item.ack {
            assert!(log.record_ack(item.message_id.as_deref().unwrap(), ack, item.received_at).await.unwrap());
        }
    }
    (p1, p2, p3)
}

#[tokio::test]
async fn replies_list_a_campaigns_replies_answers_and_who_has_not_answered() {
    let env = TestEnv::start().await;
    let (p1, p2, p3) = seed(&env).await;
    let run = env.missive(&["replies", "--campaign", "trip", "--json"]).await;
    let out = run.ok().json();
    assert_eq!(out["replies"].as_array().unwrap().len(), 3, "{out}");
    assert_eq!(out["acks"], serde_json::json!({"no": 1}), "the last answer wins");
    let waiting: Vec<&str> =
        out["unacknowledged"].as_array().unwrap().iter().map(|a| a["message_id"].as_str().unwrap()).collect();
    assert_eq!(waiting, ["trip:2", "trip:3"]);

    let run = env.missive(&["replies", "--campaign", "trip", "--unacknowledged"]).await;
    let text = &run.ok().stdout;
    assert!(text.contains("2 parent(s) have not answered"), "{text}");
    assert!(text.contains(&p2) && text.contains(&p3) && !text.contains(&p1), "{text}");

    let run = env.missive(&["replies", "--campaign", "trip"]).await;
    let text = &run.ok().stdout;
    assert!(text.contains("À quelle heure ?") && text.contains("no: 1"), "{text}");

    let report = env.missive(&["report", "--campaign", "trip", "--json"]).await;
    let out = report.ok().json();
    assert_eq!((out["replies"].as_u64(), out["acks"].clone()), (Some(3), serde_json::json!({"no": 1})), "{out}");
    let report = env.missive(&["report", "--campaign", "trip"]).await;
    assert!(report.ok().stdout.contains("replies: 3 (answers: no 1"), "{}", report.stdout);
}

#[tokio::test]
async fn a_parents_conversation_is_in_time_order_and_forget_erases_the_replies() {
    let env = TestEnv::start().await;
    let (p1, p2, _) = seed(&env).await;
    let run = env.missive(&["replies", "--phone", &p1, "--json"]).await;
    let out = run.ok().json();
    let lines: Vec<(String, String)> = out["conversation"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["direction"].as_str().unwrap().to_owned(), l["text"].as_str().unwrap_or("").to_owned()))
        .collect();
    let expected = [("out", ""), ("in", "Oui"), ("in", "Non finalement")];
    assert_eq!(lines, expected.map(|(d, t)| (d.to_owned(), t.to_owned())), "{out}");
    let run = env.missive(&["replies", "--phone", "nonsense"]).await;
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("--phone"), "{}", run.stderr);

    env.missive(&["forget", "--phone", &p1]).await.ok();
    let inbox = DynamoInbox::new(env.dynamo.clone(), &env.inbox_table);
    assert!(inbox.for_phone(&p1).await.unwrap().is_empty(), "the replies are erased");
    assert_eq!(inbox.for_phone(&p2).await.unwrap().len(), 1, "another parent's stay");
}

#[tokio::test]
async fn replies_needs_a_campaign_or_a_phone() {
    let env = TestEnv::start().await;
    let run = env.missive(&["replies"]).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    let run = env.missive(&["replies", "--phone", &phone(1), "--unacknowledged"]).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
}

#[tokio::test]
async fn a_body_with_a_fallback_template_carries_it_with_its_variables() {
    let env = TestEnv::start().await;
    let run = env
        .missive(&[
            "send",
            "--to",
            &phone(310),
            "--body",
            "Réunion",
            "--fallback-template",
            TEMPLATE,
            "--var",
            "1=Jean",
            "--dry-run",
            "--json",
        ])
        .await;
    let out = run.ok().json();
    assert_eq!(out["message"]["body"], "Réunion", "{out}");
    assert_eq!(out["message"]["fallback_template"]["content_sid"], TEMPLATE);
    assert_eq!(out["message"]["fallback_template"]["variables"]["1"], "Jean");
    assert!(!run.stderr.contains("24 hours"), "no window warning with a fallback: {}", run.stderr);
    let run = env.missive(&["send", "--to", &phone(310), "--body", "x", "--var", "1=Jean", "--dry-run"]).await;
    assert_eq!(run.code, 2, "--var without a template: {}", run.stderr);
    let run =
        env.missive(&["send", "--to", &phone(310), "--template", TEMPLATE, "--fallback-template", TEMPLATE]).await;
    assert_eq!(run.code, 2, "--fallback-template needs --body: {}", run.stderr);
}

#[tokio::test]
async fn a_body_only_campaign_says_how_many_windows_are_closed() {
    use missive::domain::phone::PhoneNumber;
    use missive::ports::ConsentStore as _;

    let env = TestEnv::start().await;
    let (open, closed) = (phone(320), phone(321));
    let now = chrono::Utc::now().timestamp();
    env.consent().record_inbound(&PhoneNumber::parse(&open).unwrap(), now - 3600).await.unwrap();
    env.consent().record_inbound(&PhoneNumber::parse(&closed).unwrap(), now - 25 * 3600).await.unwrap();
    let csv = format!("parent_id,phone,whatsapp_optin\np1,{open},true\np2,{closed},true\np3,{},true\n", phone(322));
    let file = write_file("window.csv", &csv);
    let run = env.missive(&["bulk", file.to_str().unwrap(), "--campaign", "note", "--body", "Pas de cantine"]).await;
    assert!(run.ok().stderr.contains("2 of 3 parent(s) have not written"), "{}", run.stderr);
    let run = env
        .missive(&[
            "bulk",
            file.to_str().unwrap(),
            "--campaign",
            "note2",
            "--body",
            "Pas de cantine",
            "--fallback-template",
            TEMPLATE,
        ])
        .await;
    assert!(!run.ok().stderr.contains("have not written"), "{}", run.stderr);
    let bodies = env.enqueued().await;
    let with_fallback = bodies.iter().filter(|b| b["fallback_template"]["content_sid"] == TEMPLATE).count();
    assert_eq!(with_fallback, 3, "{bodies:?}");
}

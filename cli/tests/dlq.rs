//! `missive dlq list | redrive`: moto does not implement StartMessageMoveTask, so redrive
//! falls back to receive → send → delete.

mod common;

use common::*;

async fn put(env: &TestEnv, url: &str, body: &str) {
    env.sqs.send_message().queue_url(url).message_body(body).send().await.expect("SendMessage");
}

#[tokio::test]
async fn list_shows_the_dead_letters_and_why_send_refuses_them() {
    let env = TestEnv::start().await;
    let valid =
        serde_json::json!({"v": 1, "message_id": "d:1", "to": phone(70), "body": "x", "campaign": "d"}).to_string();
    put(&env, &env.dlq_url, &valid).await;
    put(&env, &env.dlq_url, "{not json").await;
    put(&env, &env.dlq_url, r#"{"v": 1, "message_id": "bad#id", "to": "+33613000071", "body": "x"}"#).await;

    let out = env.missive(&["dlq", "list", "--json"]).await.ok().json();
    assert_eq!(out["dlq"], env.dlq_url.as_str(), "found through the send queue's RedrivePolicy");
    assert_eq!(out["approximate_count"], 3);
    let messages = out["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 3);
    let valid_one = messages.iter().find(|m| m["message_id"] == "d:1").expect("the valid message");
    assert_eq!(valid_one["to"], "+33*******70");
    assert_eq!(valid_one["problem"], serde_json::Value::Null);
    assert_eq!(valid_one["campaign"], "d");
    let problems: Vec<&str> = messages.iter().filter_map(|m| m["problem"].as_str()).collect();
    assert!(problems.iter().any(|p| p.starts_with("message: not valid JSON")), "{problems:?}");
    assert!(problems.iter().any(|p| p.starts_with("message_id: character '#'")), "{problems:?}");

    // Listing released them: they are all still there, visible.
    let out = env.missive(&["dlq", "list", "--json"]).await.ok().json();
    assert_eq!(out["messages"].as_array().unwrap().len(), 3);

    let run = env.missive(&["dlq", "list"]).await;
    run.ok();
    assert!(run.stdout.contains("send refuses it: message: not valid JSON"), "{}", run.stdout);
    assert!(run.stdout.contains("missive dlq redrive"));
}

#[tokio::test]
async fn redrive_moves_the_messages_back_to_the_send_queue() {
    let env = TestEnv::start().await;
    let bodies: Vec<String> = (0..13)
        .map(|i| {
            serde_json::json!({"v": 1, "message_id": format!("r:{i}"), "to": phone(80 + i), "body": "x"}).to_string()
        })
        .collect();
    for body in &bodies {
        put(&env, &env.dlq_url, body).await;
    }
    let run = env.missive(&["dlq", "redrive", "--json"]).await;
    run.ok();
    assert!(run.stderr.contains("StartMessageMoveTask is not implemented"), "{}", run.stderr);
    let out = run.json();
    assert_eq!(out["method"], "receive-send-delete");
    assert_eq!((out["moved"].as_u64(), out["failed"].as_u64(), out["left"].as_u64()), (Some(13), Some(0), Some(0)));

    let mut moved = env.drain(&env.queue_url, std::time::Duration::from_secs(1)).await;
    moved.sort();
    let mut expected = bodies.clone();
    expected.sort();
    assert_eq!(moved, expected, "every body back on the send queue, unchanged");
    assert!(env.drain(&env.dlq_url, std::time::Duration::from_secs(1)).await.is_empty());
}

#[tokio::test]
async fn redrive_is_bounded_and_dlq_url_overrides_the_redrive_policy() {
    let env = TestEnv::start().await;
    for i in 0..5 {
        put(&env, &env.dlq_url, &format!("body {i}")).await;
    }
    let out = env.missive(&["dlq", "redrive", "--manual", "--max", "2", "--json"]).await.ok().json();
    assert_eq!((out["moved"].as_u64(), out["left"].as_u64()), (Some(2), Some(3)));

    // A queue without a RedrivePolicy and no DLQ_URL: not found.
    let lone = env.sqs.create_queue().queue_name(unique("lone")).send().await.unwrap().queue_url.unwrap();
    let run = env.missive(&["dlq", "list", "--queue-url", &lone]).await;
    run.code(3);
    assert!(run.stderr.contains("no dead-letter queue"), "{}", run.stderr);
    let out =
        env.missive(&["dlq", "list", "--queue-url", &lone, "--dlq-url", &env.dlq_url, "--json"]).await.ok().json();
    assert_eq!(out["messages"].as_array().unwrap().len(), 3);
}

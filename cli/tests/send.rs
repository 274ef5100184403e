//! `missive send` against moto: what reaches the queue, and what never does.

mod common;

use common::*;

#[tokio::test]
async fn a_template_message_is_normalised_checked_and_enqueued() {
    let env = TestEnv::start().await;
    let run = env
        .missive(&[
            "send",
            "--to",
            "06 13 00 00 01",
            "--template",
            TEMPLATE,
            "--var",
            "1=Jean",
            "--var",
            "2=lundi 8 h",
            "--id",
            "trip:p-1",
            "--campaign",
            "trip",
            "--recipient-id",
            "p-1",
            "--as",
            "secretary",
        ])
        .await;
    run.ok();
    assert_eq!(run.stdout.trim(), "trip:p-1");
    assert!(!run.stderr.contains("24 hours"), "no free-text warning for a template: {}", run.stderr);
    let bodies = env.enqueued().await;
    assert_eq!(bodies.len(), 1);
    assert_eq!(
        bodies[0],
        serde_json::json!({
            "v": 1, "message_id": "trip:p-1", "to": "+33613000001", "campaign": "trip", "recipient_id": "p-1",
            "template": {"content_sid": TEMPLATE, "variables": {"1": "Jean", "2": "lundi 8 h"}},
            "requested_by": "secretary",
        })
    );
}

#[tokio::test]
async fn a_body_message_warns_about_the_24_hour_window_and_gets_a_fresh_id() {
    let env = TestEnv::start().await;
    let run = env.missive(&["send", "--to", "+33613000002", "--body", "Sortie demain", "--json"]).await;
    run.ok();
    assert!(run.stderr.contains("24 hours"), "{}", run.stderr);
    let out = run.json();
    let id = out["message_id"].as_str().unwrap();
    assert!(id.starts_with("cli-"), "{out}");
    assert_eq!(out["enqueued"], true);
    assert_eq!(out["to"], "+33*******02", "the phone is masked in the output");
    let bodies = env.enqueued().await;
    assert_eq!(bodies[0]["message_id"], id);
    assert_eq!(bodies[0]["body"], "Sortie demain");
}

#[tokio::test]
async fn what_send_would_reject_is_never_enqueued() {
    let env = TestEnv::start().await;
    let long = "x".repeat(1601);
    let cases: &[(&[&str], &str)] = &[
        (&["--to", "07 12 34 56 78", "--body", "x"], "--to: not a valid phone number"),
        (
            &["--to", "+33613000003", "--template", "HX12"],
            "template.content_sid: expected HX followed by 32 hex digits",
        ),
        (&["--to", "+33613000003", "--body", &long], "body: expected 1–1600 characters, got 1601"),
        (&["--to", "+33613000003", "--body", "x", "--id", "bad id"], "message_id: character ' ' not allowed"),
        (&["--to", "+33613000003", "--body", "x", "--campaign", "a/b"], "campaign: character '/' not allowed"),
        (
            &["--to", "+33613000003", "--body", "x", "--media-url", "http://x.org/a.pdf"],
            "media_urls: expected an https:// URL",
        ),
        (
            &["--to", "+33613000003", "--body", "x", "--max-attempts", "11"],
            "max_attempts: expected a whole number from 1 to 10",
        ),
        (&["--to", "+33613000003", "--body", "x", "--not-after", "tomorrow"], "not_after: not an RFC 3339 time"),
    ];
    for (args, reason) in cases {
        let run = env.missive(&[&["send"], *args].concat()).await;
        run.code(2);
        assert!(run.stderr.contains(reason), "{args:?}: expected {reason:?} in {}", run.stderr);
    }
    assert!(env.enqueued().await.is_empty(), "nothing reached the queue");
}

#[tokio::test]
async fn dry_run_prints_the_message_and_enqueues_nothing() {
    let env = TestEnv::start().await;
    let run = env.missive(&["send", "--to", "+33613000004", "--template", TEMPLATE, "--id", "m-1", "--dry-run"]).await;
    run.ok();
    let body: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(body["message_id"], "m-1");
    assert!(env.enqueued().await.is_empty());
}

//! `missive bulk` against moto: whole-file validation, consent recording and its rules,
//! enqueuing, and idempotency through the real `send` handler.

mod common;

use common::*;
use missive::domain::consent::{ConsentSource, ConsentState};

/// parent_id, phone, whatsapp_optin, first_name; `bad` adds three invalid rows (lines 4, 6, 7).
fn parents(bad: bool) -> String {
    let mut rows = vec![
        "parent_id,phone,whatsapp_optin,first_name".to_owned(),
        format!("a1,{},true,Jean", human_phone(101)),
        format!("a2,{},false,Marie", phone(102)),
    ];
    if bad {
        rows.push("a3,07 12 34 56 78,true,Paul".into());
    }
    rows.push(format!("a4,{},yes,Léa", phone(104)));
    if bad {
        rows.push(format!("a5,{},perhaps,Luc", phone(105)));
        rows.push(format!("a6,{},true,", phone(106)));
    }
    rows.push(format!("a7,{},true,Zoé", phone(107)));
    rows.join("\n") + "\n"
}

fn bulk_args<'a>(file: &'a str, campaign: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["bulk", file, "--campaign", campaign, "--template", TEMPLATE, "--var-column", "first_name=1"];
    args.extend_from_slice(extra);
    args
}

#[tokio::test]
async fn a_file_with_bad_rows_exits_4_names_every_line_and_writes_nothing() {
    let env = TestEnv::start().await;
    let file = write_file("parents.csv", &parents(true));
    let run = env.missive(&bulk_args(file.to_str().unwrap(), "trip", &[])).await;
    run.code(4);
    for expected in [
        "parents.csv: line 4: phone: not a valid phone number",
        "parents.csv: line 6: whatsapp_optin: expected true or false, got \"perhaps\"",
        "parents.csv: line 7: first_name: empty (template variable 1)",
        "3 invalid row(s) of 7; nothing was recorded or enqueued",
    ] {
        assert!(run.stderr.contains(expected), "{expected:?} in {}", run.stderr);
    }
    assert!(env.enqueued().await.is_empty(), "nothing enqueued");
    assert!(env.all_consent().await.is_empty(), "no consent recorded");

    let run = env.missive(&[bulk_args(file.to_str().unwrap(), "trip", &[]), vec!["--json"]].concat()).await;
    run.code(4);
    let out = run.json();
    assert_eq!(out["invalid_rows"], 3);
    assert_eq!(out["enqueued"], 0);
    let lines: Vec<u64> = out["errors"].as_array().unwrap().iter().map(|e| e["line"].as_u64().unwrap()).collect();
    assert_eq!(lines, [4, 6, 7]);
}

#[tokio::test]
async fn skip_invalid_sends_the_valid_rows_and_records_consent_with_evidence() {
    let env = TestEnv::start().await;
    let file = write_file("parents.csv", &parents(true));
    let run = env.missive(&bulk_args(file.to_str().unwrap(), "trip", &["--skip-invalid", "--json"])).await;
    run.ok();
    let out = run.json();
    assert_eq!(
        (out["rows"].as_u64(), out["invalid_rows"].as_u64(), out["enqueued"].as_u64()),
        (Some(7), Some(3), Some(4))
    );
    assert_eq!(out["consent"]["recorded"], 4);

    let mut bodies = env.enqueued().await;
    bodies.sort_by_key(|b| b["message_id"].as_str().unwrap().to_owned());
    let ids: Vec<&str> = bodies.iter().map(|b| b["message_id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["trip:a1", "trip:a2", "trip:a4", "trip:a7"], "every valid row, opted in or not");
    assert_eq!(bodies[0]["to"], phone(101), "human input normalised to E.164");
    assert_eq!(bodies[0]["template"]["variables"]["1"], "Jean");
    assert_eq!(bodies[0]["recipient_id"], "a1");
    assert_eq!(bodies[0]["campaign"], "trip");

    let a1 = env.consent_item(&phone(101)).await.expect("consent of a1");
    assert_eq!((a1.state.as_deref().unwrap_or_default(), a1.source.as_deref()), ("opted_in", Some("csv-import")));
    assert_eq!(a1.evidence.as_deref(), Some("parents.csv:2"));
    let a2 = env.consent_item(&phone(102)).await.expect("consent of a2");
    assert_eq!((a2.state.as_deref().unwrap_or_default(), a2.evidence.as_deref()), ("opted_out", Some("parents.csv:3")));
}

#[tokio::test]
async fn a_parents_own_opt_out_is_left_alone_and_reported() {
    let env = TestEnv::start().await;
    env.set_consent(&phone(107), ConsentState::OptedOut, ConsentSource::WhatsappReply, "SM0001").await;
    env.set_consent(&phone(104), ConsentState::OptedOut, ConsentSource::CsvImport, "old.csv:9").await;
    let file = write_file("parents.csv", &parents(false));
    let run = env.missive(&bulk_args(file.to_str().unwrap(), "trip", &[])).await;
    run.ok();
    assert!(run.stdout.contains("consent: 3 recorded, 0 unchanged, 1 left alone"), "{}", run.stdout);
    assert!(run.stdout.contains("line 5 (a7, +33*******07): whatsapp_optin=true not applied: the parent opted out themselves (whatsapp-reply, SM0001)"), "{}", run.stdout);
    let a7 = env.consent_item(&phone(107)).await.unwrap();
    assert_eq!((a7.state.as_deref().unwrap_or_default(), a7.source.as_deref()), ("opted_out", Some("whatsapp-reply")));
    let a4 = env.consent_item(&phone(104)).await.unwrap();
    assert_eq!(
        (a4.state.as_deref().unwrap_or_default(), a4.source.as_deref()),
        ("opted_in", Some("csv-import")),
        "a school-side opt-out is updated"
    );
    assert_eq!(env.enqueued().await.len(), 4, "a7 is still enqueued: consent decides at send time");

    // The same file again: nothing to record.
    let run = env.missive(&bulk_args(file.to_str().unwrap(), "trip", &["--json"])).await;
    run.ok();
    let out = run.json();
    assert_eq!(out["consent"]["recorded"], 0);
    assert_eq!(out["consent"]["unchanged"], 3);
    assert_eq!(out["consent"]["left_alone"][0]["line"], 5);
    assert_eq!(out["consent"]["left_alone"][0]["current"]["source"], "whatsapp-reply");
    assert_eq!(env.consent_item(&phone(101)).await.unwrap().history.len(), 1, "no new history entry");
}

#[tokio::test]
async fn dry_run_writes_nothing() {
    let env = TestEnv::start().await;
    let file = write_file("parents.csv", &parents(false));
    let run = env.missive(&bulk_args(file.to_str().unwrap(), "trip", &["--dry-run"])).await;
    run.ok();
    assert!(run.stdout.contains("would enqueue 4 message(s) for campaign trip"), "{}", run.stdout);
    assert!(run.stdout.contains("trip:a1"));
    assert!(env.enqueued().await.is_empty());
    assert!(env.all_consent().await.is_empty());

    // No AWS call at all: it works with the endpoint pointing at nothing.
    let mut offline = env.command(&bulk_args(file.to_str().unwrap(), "trip", &["--dry-run", "--json"]));
    offline.env("AWS_ENDPOINT_URL", "http://127.0.0.1:9").env("AWS_MAX_ATTEMPTS", "1");
    let out = common::run(offline).await.ok().json();
    assert_eq!(out["would_enqueue"], 4, "{out}");
}

#[tokio::test]
async fn a_body_campaign_warns_about_the_24_hour_window() {
    let env = TestEnv::start().await;
    let file = write_file("parents.csv", &parents(false));
    let run =
        env.missive(&["bulk", file.to_str().unwrap(), "--campaign", "note", "--body", "Pas de cantine lundi"]).await;
    run.ok();
    assert!(run.stderr.contains("24 hours"), "{}", run.stderr);
    let bodies = env.enqueued().await;
    assert_eq!(bodies.len(), 4);
    assert!(bodies.iter().all(|b| b["body"] == "Pas de cantine lundi"));
}

#[tokio::test]
async fn the_same_file_twice_enqueues_once_what_send_recorded() {
    let env = TestEnv::start().await;
    let twilio = fake_twilio().await;
    let handler = env.send_handler(&twilio, &[]).await;
    let file = write_file("parents.csv", &parents(false));
    let args = bulk_args(file.to_str().unwrap(), "twice", &["--json"]);

    let first = env.missive(&args).await.ok().json();
    assert_eq!((first["enqueued"].as_u64(), first["already_recorded"].as_u64()), (Some(4), Some(0)), "{first}");
    // The honest limit: before `send` took them, the messages have no item, so a second run
    // enqueues them again (and `send` acknowledges those copies as duplicates).
    let early = env.missive(&args).await.ok().json();
    assert_eq!((early["enqueued"].as_u64(), early["already_recorded"].as_u64()), (Some(4), Some(0)), "{early}");
    assert_eq!(env.process_queue(&handler).await, 8);

    // Once `send` recorded them, the same file enqueues nothing.
    let again = env.missive(&args).await.ok().json();
    assert_eq!((again["enqueued"].as_u64(), again["already_recorded"].as_u64()), (Some(0), Some(4)), "{again}");
    assert_eq!(again["consent"]["unchanged"], 4, "consent is still read from the file: {again}");
    assert_eq!(env.process_queue(&handler).await, 0, "nothing enqueued");

    let run = env.missive(&bulk_args(file.to_str().unwrap(), "twice", &[])).await;
    run.ok();
    assert!(
        run.stdout.contains("4 row(s), 0 invalid, 4 already recorded, 0 enqueued for campaign twice"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("not enqueued again"), "{}", run.stdout);

    // a1, a4, a7 are opted in (a2 opted out): one create each, whatever was enqueued.
    assert_eq!(twilio.creates().len(), 3, "{:?}", twilio.creates());
    for n in [101, 104, 107] {
        assert_eq!(twilio.created_count_for(&phone(n)), 1, "one create for {}", phone(n));
    }
    for id in ["twice:a1", "twice:a4", "twice:a7"] {
        let item = env.item(id).await.expect("item");
        assert_eq!((item.status.map(|s| s.as_str()), item.attempts), (Some("sent"), 1), "{id}");
    }
    assert_eq!(env.item("twice:a2").await.unwrap().status.map(|s| s.as_str()), Some("skipped"));
}

#[tokio::test]
async fn only_the_rows_not_recorded_are_enqueued_across_lookup_calls() {
    // 230 rows: three BatchGetItem calls of at most 100 keys.
    let env = TestEnv::start().await;
    let mut csv = String::from("parent_id,phone,whatsapp_optin\n");
    for n in 0..230 {
        csv.push_str(&format!("p{n:03},{},true\n", phone(300 + n)));
    }
    let file = write_file("big.csv", &csv);
    // Items for every row but the multiples of 10, as `send` would have left them.
    for n in (0..230).filter(|n| n % 10 != 0) {
        env.dynamo
            .put_item()
            .table_name(&env.log_table)
            .item("message_id", aws_sdk_dynamodb::types::AttributeValue::S(format!("big:p{n:03}")))
            .item("status", aws_sdk_dynamodb::types::AttributeValue::S("sent".into()))
            .send()
            .await
            .expect("PutItem");
    }
    let out = env
        .missive(&["bulk", file.to_str().unwrap(), "--campaign", "big", "--template", TEMPLATE, "--json"])
        .await
        .ok()
        .json();
    assert_eq!((out["enqueued"].as_u64(), out["already_recorded"].as_u64()), (Some(23), Some(207)), "{out}");
    let mut ids: Vec<String> =
        env.enqueued().await.iter().map(|b| b["message_id"].as_str().unwrap().to_owned()).collect();
    ids.sort();
    let expected: Vec<String> = (0..230).step_by(10).map(|n| format!("big:p{n:03}")).collect();
    assert_eq!(ids, expected);
}

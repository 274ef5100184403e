//! Campaign control against moto, through the real `missive` binary and the real `send`
//! handler: cancel (before and during a campaign, undo), requeue of what Twilio never
//! accepted, scheduled sends (`--at`) and their checks, who asked, and a parent's history.

mod common;

use aws_sdk_dynamodb::types::AttributeValue;
use common::*;
use fake_twilio::Fault;
use missive::domain::status::Status;

/// parent_id, phone, whatsapp_optin for parents `from..to` (phones `phone(n)`).
fn parents(range: std::ops::Range<u32>) -> String {
    let mut rows = vec!["parent_id,phone,whatsapp_optin".to_owned()];
    rows.extend(range.map(|n| format!("p{n},{},true", phone(n))));
    rows.join("\n") + "\n"
}

async fn bulk(env: &TestEnv, campaign: &str, range: std::ops::Range<u32>, extra: &[&str]) -> Run {
    let file = write_file(&format!("{campaign}-{}.csv", range.start), &parents(range));
    let mut args = vec!["bulk", file.to_str().unwrap(), "--campaign", campaign, "--template", TEMPLATE];
    args.extend_from_slice(extra);
    env.missive(&args).await
}

async fn status_of(env: &TestEnv, id: &str) -> Option<Status> {
    env.item(id).await.and_then(|item| item.status)
}

#[tokio::test]
async fn a_campaign_cancelled_before_any_send_sends_nothing_and_undo_is_recorded() {
    let env = TestEnv::start().await;
    let twilio = fake_twilio().await;
    bulk(&env, "trip", 0..3, &["--as", "secretary", "--description", "Museum trip"]).await.ok();

    let run = env.missive(&["cancel", "--campaign", "trip", "--reason", "wrong date", "--as", "head"]).await;
    run.ok();
    assert!(run.stdout.contains("campaign trip cancelled by head: wrong date"), "{}", run.stdout);
    assert!(run.stdout.contains("stopped by the cancel:       3"), "{}", run.stdout);
    assert!(run.stdout.contains("already sent (not recalled): 0"), "{}", run.stdout);

    let handler = env.send_handler(&twilio, &[]).await;
    assert_eq!(env.process_queue(&handler).await, 3);
    for n in 0..3 {
        let item = env.item(&format!("trip:p{n}")).await.expect("an item");
        assert_eq!(item.status, Some(Status::Cancelled));
        assert_eq!(item.requested_by.as_deref(), Some("secretary"));
        assert!(item.last_error.as_deref().is_some_and(|e| e.contains("wrong date")), "{item:?}");
    }
    assert!(twilio.creates().is_empty(), "no Twilio call for a cancelled campaign");

    let shown = env.missive(&["campaign", "show", "trip", "--json"]).await.ok().json();
    assert_eq!(shown["state"], "cancelled");
    assert_eq!((shown["created_by"].as_str(), shown["enqueued"].as_u64()), (Some("secretary"), Some(3)));
    assert_eq!(shown["description"], "Museum trip");

    env.missive(&["cancel", "--campaign", "trip", "--undo", "--as", "head"]).await.ok();
    let shown = env.missive(&["campaign", "show", "trip"]).await.ok().stdout.clone();
    assert!(shown.starts_with("campaign trip: active"), "{shown}");
    for action in ["created", "cancelled", "resumed"] {
        assert!(shown.contains(action), "{action} in the history: {shown}");
    }
    assert_eq!(status_of(&env, "trip:p0").await, Some(Status::Cancelled), "already cancelled stays so");
    let listed = env.missive(&["campaign", "list", "--json"]).await.ok().json();
    assert_eq!(listed["campaigns"].as_array().map(Vec::len), Some(1), "{listed}");

    let unknown = env.missive(&["cancel", "--campaign", "nope", "--reason", "x"]).await;
    unknown.code(3);
    assert!(unknown.stderr.contains("campaign nope"), "{}", unknown.stderr);
    let no_reason = env.missive(&["cancel", "--campaign", "trip"]).await;
    no_reason.code(2);
    assert!(no_reason.stderr.contains("--reason"), "{}", no_reason.stderr);
}

#[tokio::test]
async fn a_cancel_mid_campaign_counts_what_was_sent_and_stops_the_rest() {
    let env = TestEnv::start().await;
    let twilio = fake_twilio().await;
    let handler = env.send_handler(&twilio, &[]).await;
    bulk(&env, "closure", 0..2, &["--as", "secretary"]).await.ok();
    assert_eq!(env.process_queue(&handler).await, 2);
    bulk(&env, "closure", 2..5, &["--as", "secretary"]).await.ok();

    let out = env.missive(&["cancel", "--campaign", "closure", "--reason", "sent twice", "--json"]).await.ok().json();
    assert_eq!(out["counts"]["already_sent"], 2, "{out}");
    assert_eq!(out["counts"]["stopped"], 3, "{out}");
    assert_eq!(out["counts"]["in_flight"], 0, "{out}");

    assert_eq!(env.process_queue(&handler).await, 3);
    assert_eq!(twilio.creates().len(), 2, "only what went before the cancel");
    for n in 2..5 {
        assert_eq!(status_of(&env, &format!("closure:p{n}")).await, Some(Status::Cancelled));
    }
    // A redelivered copy of a cancelled message stays cancelled.
    let item = env.item("closure:p2").await.unwrap();
    env.sqs.send_message().queue_url(&env.queue_url).message_body(item.request.unwrap()).send().await.unwrap();
    assert_eq!(env.process_queue(&handler).await, 1);
    assert_eq!(status_of(&env, "closure:p2").await, Some(Status::Cancelled));
    assert_eq!(twilio.creates().len(), 2);
}

#[tokio::test]
async fn requeue_sends_again_once_only_what_twilio_never_accepted() {
    let env = TestEnv::start().await;
    let twilio = fake_twilio().await;
    let handler = env.send_handler(&twilio, &[]).await;
    // p0 and p1 fail for good (Twilio refused them: no SID), p2 goes.
    for n in [0, 1] {
        twilio.push_fault(Some(&phone(n)), Fault::error(400, 21211, "The 'To' number is not a valid phone number"));
    }
    bulk(&env, "term", 0..3, &[]).await.ok();
    env.process_queue(&handler).await;
    assert_eq!(status_of(&env, "term:p0").await, Some(Status::Failed));
    assert_eq!(status_of(&env, "term:p1").await, Some(Status::Failed));
    assert_eq!(status_of(&env, "term:p2").await, Some(Status::Sent));
    // p1 as if Twilio had accepted it after all (a SID on a failed item): never requeued.
    env.dynamo
        .update_item()
        .table_name(&env.log_table)
        .key("message_id", AttributeValue::S("term:p1".into()))
        .update_expression("SET twilio_sid = :sid")
        .expression_attribute_values(":sid", AttributeValue::S("SM00000000000000000000000000000001".into()))
        .send()
        .await
        .unwrap();

    let dry = env.missive(&["requeue", "--campaign", "term", "--dry-run", "--json"]).await.ok().json();
    assert_eq!(dry["requeued"].as_array().unwrap().len(), 1, "{dry}");
    assert_eq!(dry["requeued"][0]["message_id"], "term:p0");
    assert_eq!(dry["left"][0]["message_id"], "term:p1");
    assert!(dry["left"][0]["left_because"].as_str().unwrap().contains("Twilio accepted it"), "{dry}");
    assert!(env.enqueued().await.is_empty(), "a dry run enqueues nothing");
    assert_eq!(status_of(&env, "term:p0").await, Some(Status::Failed), "nor changes anything");

    let other_code = env.missive(&["requeue", "--campaign", "term", "--code", "20003", "--json"]).await.ok().json();
    assert_eq!(other_code["requeued"].as_array().unwrap().len(), 0, "{other_code}");

    let run = env.missive(&["requeue", "--campaign", "term", "--code", "21211", "--as", "it"]).await;
    run.ok();
    assert!(run.stdout.contains("requeued 1 failed message(s), left 1"), "{}", run.stdout);
    let item = env.item("term:p0").await.unwrap();
    assert_eq!((item.status, item.attempts, item.round), (Some(Status::Retrying), 0, Some(2)));
    assert_eq!(env.process_queue(&handler).await, 1);
    assert_eq!(status_of(&env, "term:p0").await, Some(Status::Sent));
    assert_eq!(twilio.created_count_for(&phone(0)), 1, "sent once");
    assert_eq!(twilio.created_count_for(&phone(1)), 0);

    let again = env.missive(&["requeue", "--campaign", "term", "--json"]).await.ok().json();
    assert_eq!(again["requeued"].as_array().unwrap().len(), 0, "nothing failed is left: {again}");
    assert!(env.enqueued().await.is_empty());
    let shown = env.missive(&["campaign", "show", "term"]).await.ok().stdout.clone();
    assert!(shown.contains("requeued") && shown.contains("by it"), "{shown}");
}

#[tokio::test]
async fn a_message_at_a_later_time_is_scheduled_and_bad_times_enqueue_nothing() {
    let env = TestEnv::start().await;
    let send = |extra: &[&str]| {
        let mut args = vec!["send", "--to", "+33613000001", "--template", TEMPLATE, "--campaign", "later"];
        args.extend_from_slice(extra);
        args.iter().map(|s| s.to_string()).collect::<Vec<String>>()
    };
    let run_with = |args: Vec<String>| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let command = env.command(&args);
        run(command)
    };
    let past = run_with(send(&["--at", "2020-01-01 08:00"])).await;
    past.code(2);
    assert!(past.stderr.contains("--at: 2020-01-01 08:00 is in the past"), "{}", past.stderr);
    let far = (chrono::Utc::now() + chrono::Duration::days(40)).to_rfc3339();
    let too_far = run_with(send(&["--at", &far])).await;
    too_far.code(2);
    assert!(too_far.stderr.contains("more than 35 days ahead"), "{}", too_far.stderr);
    let garbled = run_with(send(&["--at", "tomorrow morning"])).await;
    garbled.code(2);
    assert!(garbled.stderr.contains("--at: expected YYYY-MM-DD HH:MM"), "{}", garbled.stderr);
    let mut unknown_zone =
        env.command(&["send", "--to", "+33613000001", "--template", TEMPLATE, "--at", "2030-01-01 08:00"]);
    unknown_zone.env("SCHOOL_TIMEZONE", "Europe/Atlantis");
    let unknown_zone = run(unknown_zone).await;
    unknown_zone.code(2);
    assert!(unknown_zone.stderr.contains("SCHOOL_TIMEZONE"), "{}", unknown_zone.stderr);
    assert!(env.enqueued().await.is_empty(), "nothing enqueued by a refused --at");

    // Two hours ahead, in the school's local time: scheduled, not sent (consent is checked
    // first, so the parent has opted in).
    env.set_consent(
        "+33613000001",
        missive::domain::consent::ConsentState::OptedIn,
        missive::domain::consent::ConsentSource::CsvImport,
        "form.csv",
    )
    .await;
    let local = (chrono::Utc::now() + chrono::Duration::hours(2))
        .with_timezone(&chrono_tz::Europe::Paris)
        .format("%Y-%m-%d %H:%M")
        .to_string();
    let id = run_with(send(&["--at", &local, "--as", "secretary", "--urgent"])).await;
    id.ok();
    let id = id.stdout.trim().to_owned();
    let twilio = fake_twilio().await;
    let handler = env.send_handler(&twilio, &[]).await;
    assert_eq!(env.process_queue(&handler).await, 1);
    let item = env.item(&id).await.expect("an item");
    assert_eq!(item.status, Some(Status::Scheduled));
    assert_eq!(item.requested_by.as_deref(), Some("secretary"));
    let request: serde_json::Value = serde_json::from_str(item.request.as_deref().unwrap()).unwrap();
    assert_eq!(request["priority"], "urgent");
    let due = item.next_attempt_at.expect("when it may go");
    let expected = chrono::Utc::now().timestamp() + 7_200;
    assert!((expected - 120..=expected).contains(&due), "due {due}, expected about {expected}");
    assert!(twilio.creates().is_empty(), "not sent before its time");
    let report = env.missive(&["report", "--campaign", "later", "--json"]).await.ok().json();
    assert_eq!(
        (report["scheduled"].as_u64(), report["in_flight"].as_u64(), report["final"].as_u64()),
        (Some(1), Some(0), Some(0))
    );
    assert_eq!(report["settled"], true, "a scheduled message does not keep --watch waiting: {report}");
}

#[tokio::test]
async fn history_lists_a_parents_messages_across_campaigns_and_consent_changes() {
    let env = TestEnv::start().await;
    let twilio = fake_twilio().await;
    let handler = env.send_handler(&twilio, &[]).await;
    let to = phone(7);
    env.set_consent(
        &to,
        missive::domain::consent::ConsentState::OptedIn,
        missive::domain::consent::ConsentSource::CsvImport,
        "form.csv",
    )
    .await;
    for (campaign, by) in [("autumn", "secretary"), ("winter", "head"), ("spring", "secretary")] {
        env.missive(&["send", "--to", &to, "--template", TEMPLATE, "--campaign", campaign, "--as", by]).await.ok();
        env.process_queue(&handler).await;
    }
    let out = env.missive(&["history", "--phone", &to, "--json"]).await.ok().json();
    let messages = out["messages"].as_array().unwrap();
    let campaigns: Vec<&str> = messages.iter().map(|m| m["campaign"].as_str().unwrap()).collect();
    assert_eq!(campaigns.len(), 3, "{out}");
    for campaign in ["autumn", "winter", "spring"] {
        assert!(campaigns.contains(&campaign), "{campaign} in {campaigns:?}");
    }
    let winter = messages.iter().find(|m| m["campaign"] == "winter").unwrap();
    assert_eq!((winter["status"].as_str(), winter["requested_by"].as_str()), (Some("sent"), Some("head")));
    assert_eq!(out["consent"]["state"], "opted_in");
    assert_eq!(out["consent"]["changes"].as_array().map(Vec::len), Some(1), "{out}");
    assert!(!out.to_string().contains(&to), "the phone is masked in the output");
    let text = env.missive(&["history", "--phone", &to]).await.ok().stdout.clone();
    assert!(text.contains("3 message(s), newest first") && text.contains("winter"), "{text}");
}

#[tokio::test]
async fn each_parent_gets_the_template_of_their_language_or_the_default_one() {
    let env = TestEnv::start().await;
    const EN: &str = "HXfedcba9876543210fedcba9876543210";
    let csv = format!(
        "parent_id,phone,whatsapp_optin,lang\np0,{},true,en\np1,{},true,\np2,{},true,ar\n",
        phone(0),
        phone(1),
        phone(2)
    );
    let file = write_file("langs.csv", &csv);
    let templates = format!("fr={TEMPLATE},en={EN}");
    // The default language is stated: the test must not depend on the caller's SCHOOL_LANG.
    let bulk = |campaign: &str, templates: &str| {
        let mut command =
            env.command(&["bulk", file.to_str().unwrap(), "--campaign", campaign, "--template", templates]);
        command.env("SCHOOL_LANG", "fr");
        run(command)
    };
    let run = bulk("langs", &templates).await;
    run.ok();
    assert!(run.stderr.contains("line 4 (ar)"), "the row without its language's template is listed: {}", run.stderr);
    let mut sids: Vec<(String, String)> = env
        .enqueued()
        .await
        .iter()
        .map(|m| {
            (m["message_id"].as_str().unwrap().to_owned(), m["template"]["content_sid"].as_str().unwrap().to_owned())
        })
        .collect();
    sids.sort();
    let expected = [("langs:p0", EN), ("langs:p1", TEMPLATE), ("langs:p2", TEMPLATE)];
    assert_eq!(sids, expected.map(|(id, sid)| (id.to_owned(), sid.to_owned())));

    // A list without the default language's template is refused before anything is enqueued.
    let refused = bulk("langs2", &format!("en={EN}")).await;
    refused.code(2);
    assert!(refused.stderr.contains("--template") && refused.stderr.contains("SCHOOL_LANG"), "{}", refused.stderr);
    assert!(env.enqueued().await.is_empty(), "nothing enqueued");
}

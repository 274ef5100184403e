//! The send handler's decisions, end to end through the real handler, on the in-memory
//! adapters (no moto, no HTTP): every path of DESIGN.md's send path that a decision table
//! chooses, with a clock the test moves.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use missive::adapters::memory::{MemoryWorld, Scripted};
use missive::config::{Env, SendConfig};
use missive::domain::consent::ConsentState;
use missive::domain::phone::PhoneNumber;
use missive::domain::status::Status;
use missive::handlers::send::SendHandler;
use missive::ports::{Clock, ConsentStore, CreateAnswer, LogItem};

const T0: i64 = 1_800_000_000;
const PHONE: &str = "+33612345678";

fn config(extra: &[(&str, &str)]) -> SendConfig {
    let mut vars: HashMap<String, String> = [("SEND_QUEUE_URL", "memory"), ("BACKOFF_BASE_SECONDS", "30")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let env = Env::from_fn(|name| vars.get(name).cloned());
    SendConfig::from_env(&env).expect("a valid configuration")
}

fn body(id: &str) -> String {
    common::body_message(id, PHONE, "Sortie au musée demain")
}

async fn run(world: &MemoryWorld, handler: &SendHandler, bodies: &[String]) -> Vec<String> {
    let response = handler.handle(common::sqs_event(bodies), world.clock.deadline_in(Duration::from_secs(900))).await;
    common::failures(&response)
}

async fn item(world: &MemoryWorld, id: &str) -> LogItem {
    world.log.items().into_iter().find(|item| item.message_id == id).unwrap_or_else(|| panic!("no item {id}"))
}

fn error(http_status: u16, code: Option<u32>) -> Scripted {
    Scripted::Answer(Box::new(CreateAnswer::Error {
        http_status,
        code,
        message: format!("{}: Twilio says no", code.unwrap_or_default()),
        retry_after: None,
    }))
}

#[tokio::test]
async fn a_message_is_sent_once_and_a_redelivery_is_a_duplicate() {
    let world = MemoryWorld::at(T0);
    world.opt_in(&[PHONE]).await;
    let handler = world.sender(config(&[]));
    let reads_before = world.consent.faults.count("item");
    assert!(run(&world, &handler, &[body("m1")]).await.is_empty());
    let sent = item(&world, "m1").await;
    assert_eq!((sent.status, sent.attempts), (Some(Status::Sent), 1));
    assert!(sent.twilio_sid.is_some() && sent.lease_owner.is_none() && sent.retry_shard.is_none());
    assert!(run(&world, &handler, &[body("m1"), body("m1")]).await.is_empty());
    assert_eq!(world.twilio.created_ids(), ["m1"], "one create, whatever SQS delivers again");
    assert_eq!(world.log.faults.count("claim"), 3);
    assert_eq!(world.consent.faults.count("item") - reads_before, 3, "one consent read per record");
}

#[tokio::test]
async fn refusals_are_recorded_with_their_reason_and_nothing_is_sent() {
    let world = MemoryWorld::at(T0);
    world.opt_in(&["+33612345679"]).await;
    let opted_out = PhoneNumber::parse("+33612345679").unwrap();
    world.consent.change(&opted_out, stop(), "SMstop", T0).await.unwrap();
    let handler = world.sender(config(&[]));
    let expired = serde_json::json!({"v": 1, "message_id": "late", "to": PHONE, "body": "x", "not_after": "2020-01-01T00:00:00Z"});
    let bodies = [
        body("no-consent"),
        common::body_message("stopped", "+33612345679", "x"),
        expired.to_string(),
        r#"{"v": 1, "message_id": "bad", "to": "+33712345678", "body": "x"}"#.to_owned(),
        r#"{"v": 1, "message_id": "no#id"}"#.to_owned(),
    ];
    let failures = run(&world, &handler, &bodies).await;
    assert_eq!(failures, ["sqs-4"], "only the message without a usable id goes back to SQS");
    let cases = [
        ("no-consent", Status::Skipped, "no consent on record"),
        ("stopped", Status::Skipped, "opted out"),
        ("late", Status::Expired, "not_after passed before it could be sent"),
        ("bad", Status::Rejected, "to: not a valid E.164 number"),
    ];
    for (id, status, reason) in cases {
        let item = item(&world, id).await;
        assert_eq!((item.status, item.last_error.as_deref()), (Some(status), Some(reason)), "{id}");
        assert!(item.created_at.is_some() && item.expires_at.is_some(), "{id}: reachable and expiring");
    }
    assert!(world.twilio.created_ids().is_empty());
}

fn stop() -> missive::domain::consent::ConsentChange {
    missive::domain::consent::ConsentChange {
        state: ConsentState::OptedOut,
        source: missive::domain::consent::ConsentSource::WhatsappReply,
        has_evidence: true,
    }
}

#[tokio::test]
async fn a_transient_failure_is_retried_after_its_backoff_then_sent() {
    let world = MemoryWorld::at(T0);
    world.opt_in(&[PHONE]).await;
    world.twilio.script([error(503, Some(20503))]);
    let handler = world.sender(config(&[]));
    run(&world, &handler, &[body("m1")]).await;
    let retrying = item(&world, "m1").await;
    assert_eq!((retrying.status, retrying.attempts), (Some(Status::Retrying), 1));
    let next = retrying.next_attempt_at.expect("next_attempt_at");
    assert!((T0 + 15..=T0 + 30).contains(&next), "backoff in [b/2, b] of 30 s: {next}");
    assert_eq!(retrying.retry_due_at, Some(next + 120));
    let queued = world.queue.messages();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].delay_seconds as i64, next - T0, "re-enqueued with the backoff as its delay");

    // A copy comes early (SQS delivered it again): re-enqueued with a delay, not sent.
    assert!(world.queue.receive(10).is_empty(), "the delayed copy is not visible yet");
    run(&world, &handler, &[body("m1")]).await;
    assert!(world.twilio.created_ids().is_empty());
    let queued = world.queue.messages();
    assert_eq!(queued.len(), 2, "the early copy went back");
    assert!(queued.iter().all(|q| q.visible_at_ms == next * 1000), "both due at next_attempt_at: {queued:?}");

    world.clock.set(next);
    let copies = world.queue.receive(10);
    assert_eq!(copies.len(), 2, "visible once their delay has passed");
    run(&world, &handler, &copies).await;
    let sent = item(&world, "m1").await;
    assert_eq!((sent.status, sent.attempts), (Some(Status::Sent), 2));
    assert_eq!(world.twilio.created_ids(), ["m1"]);
}

#[tokio::test]
async fn throttled_and_account_level_answers_give_the_attempt_back() {
    let world = MemoryWorld::at(T0);
    world.opt_in(&[PHONE]).await;
    world.twilio.script([error(429, Some(20429))]);
    let handler = world.sender(config(&[("SEND_CONCURRENCY", "1")]));
    run(&world, &handler, &[body("throttled")]).await;
    let throttled = item(&world, "throttled").await;
    assert_eq!((throttled.status, throttled.attempts, throttled.throttled), (Some(Status::Retrying), 0, 1));

    // An account-level error stops the batch: the records not yet started go back to SQS.
    world.twilio.script([error(401, Some(20003))]);
    let failures = run(&world, &handler, &[body("a1"), body("a2"), body("a3")]).await;
    let a1 = item(&world, "a1").await;
    assert_eq!((a1.status, a1.attempts, a1.throttled), (Some(Status::Retrying), 0, 1));
    assert_eq!(failures, ["sqs-1", "sqs-2"], "nothing durable records the others");
    assert!(world.twilio.created_ids().is_empty());
}

#[tokio::test]
async fn a_lost_answer_is_reconciled_and_never_created_twice() {
    let world = MemoryWorld::at(T0);
    world.opt_in(&[PHONE]).await;
    world.twilio.script([Scripted::CreatedThenLost]);
    let handler = world.sender(config(&[]));
    run(&world, &handler, &[body("m1")]).await;
    let doubt = item(&world, "m1").await;
    assert_eq!(doubt.status, Some(Status::InDoubt));
    assert_eq!(doubt.last_error.as_deref(), Some("connection reset (in doubt)"));
    assert_eq!(doubt.next_attempt_at, Some(T0 + 30), "RECONCILE_DELAY_SECONDS");

    world.clock.set(T0 + 30);
    let copies = world.queue.receive(10);
    run(&world, &handler, &copies).await;
    let reconciled = item(&world, "m1").await;
    assert_eq!(reconciled.status, Some(Status::Sent));
    assert_eq!(reconciled.twilio_sid.as_deref(), world.twilio.created().first().map(|m| m.sid.as_str()));
    assert_eq!(world.twilio.created_ids(), ["m1"], "found at Twilio: no second create");
    assert_eq!(reconciled.attempts, 1);
}

#[tokio::test]
async fn a_doubt_not_found_at_twilio_is_attempted_again_then_fails_when_spent() {
    let world = MemoryWorld::at(T0);
    world.opt_in(&[PHONE]).await;
    let in_doubt = error(504, None);
    world.twilio.script([in_doubt.clone(), in_doubt.clone(), in_doubt]);
    let handler = world.sender(config(&[]));
    run(&world, &handler, &[body("m1")]).await;
    for attempt in 2..=3 {
        world.clock.advance(Duration::from_secs(30));
        let copies = world.queue.receive(10);
        assert_eq!(copies.len(), 1, "attempt {attempt}");
        run(&world, &handler, &copies).await;
        let item = item(&world, "m1").await;
        assert_eq!((item.status, item.attempts), (Some(Status::InDoubt), attempt), "a new attempt after nothing found");
    }
    world.clock.advance(Duration::from_secs(30));
    let copies = world.queue.receive(10);
    run(&world, &handler, &copies).await;
    let failed = item(&world, "m1").await;
    assert_eq!(failed.status, Some(Status::Failed));
    assert_eq!(failed.last_error.as_deref(), Some("in doubt and not found at Twilio"));
    assert!(world.twilio.created_ids().is_empty());
}

#[tokio::test]
async fn a_reconcile_that_cannot_look_gives_up_after_give_up_hours() {
    let world = MemoryWorld::at(T0);
    world.opt_in(&[PHONE]).await;
    world.twilio.script([error(502, None)]);
    world.twilio.fail_lists(true);
    let handler = world.sender(config(&[]));
    run(&world, &handler, &[body("m1")]).await;
    world.clock.advance(Duration::from_secs(30));
    run(&world, &handler, &world.queue.receive(10)).await;
    let doubt = item(&world, "m1").await;
    assert_eq!(doubt.status, Some(Status::InDoubt));
    assert!(doubt.last_error.as_deref().is_some_and(|e| e.starts_with("reconcile failed")), "{doubt:?}");

    world.clock.set(T0 + 24 * 3600);
    run(&world, &handler, &[body("m1")]).await;
    let failed = item(&world, "m1").await;
    assert_eq!(failed.status, Some(Status::Failed));
    assert!(failed.last_error.as_deref().is_some_and(|e| e.starts_with("gave up after 24 h: reconcile failed")));
}

#[tokio::test]
async fn an_unsubscribed_recipient_fails_and_is_opted_out() {
    let world = MemoryWorld::at(T0);
    world.opt_in(&[PHONE]).await;
    world.twilio.script([error(400, Some(21610))]);
    let handler = world.sender(config(&[]));
    run(&world, &handler, &[body("m1")]).await;
    let failed = item(&world, "m1").await;
    assert_eq!((failed.status, failed.last_error_code), (Some(Status::Failed), Some(21610)));
    let consent = world.consent.current(&PhoneNumber::parse(PHONE).unwrap()).await.unwrap().unwrap();
    assert_eq!(consent.state, ConsentState::OptedOut);
}

#[tokio::test]
async fn without_twilio_every_message_is_a_dry_run() {
    let world = MemoryWorld::at(T0);
    world.opt_in(&[PHONE]).await;
    let handler = world.send_handler(config(&[]), None);
    run(&world, &handler, &[body("m1")]).await;
    let item = item(&world, "m1").await;
    assert_eq!((item.status, item.attempts), (Some(Status::DryRun), 1));
}

#[tokio::test]
async fn a_dead_takers_lease_is_reconciled_once_it_expires() {
    let world = MemoryWorld::at(T0);
    world.opt_in(&[PHONE]).await;
    let handler = world.sender(config(&[]));
    // A taker died after its create reached Twilio: its item is `sending` with a lease.
    world.twilio.script([Scripted::CreatedThenLost]);
    world.log.faults.fail("record_outcome", Some("m1"));
    run(&world, &handler, &[body("m1")]).await;
    world.log.faults.clear();
    assert_eq!(item(&world, "m1").await.status, Some(Status::Sending));
    run(&world, &handler, &[body("m1")]).await;
    assert_eq!(item(&world, "m1").await.status, Some(Status::Sending), "a live lease: acknowledged, untouched");
    world.clock.advance(Duration::from_secs(121));
    run(&world, &handler, &[body("m1")]).await;
    assert_eq!(item(&world, "m1").await.status, Some(Status::Sent), "reconciled after the lease");
    assert_eq!(world.twilio.created_ids(), ["m1"]);
    assert_eq!(world.clock.now(), T0 + 121);
}

// ---- campaigns, schedule, quiet hours, the daily budget, the 24-hour window ----------------

/// 2026-12-03 23:00 in Paris.
const PARIS_23H: i64 = 1_796_335_200;

fn sweep_config() -> missive::config::SweepConfig {
    missive::config::SweepConfig {
        message_log_table: "memory".into(),
        send_queue_url: "memory".into(),
        reschedule_seconds: 300,
        margin: Duration::from_secs(5),
    }
}

fn with(id: &str, phone: &str, extra: serde_json::Value) -> String {
    let mut body = serde_json::json!({"v": 1, "message_id": id, "to": phone, "body": "Sortie au musée demain"});
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    body.to_string()
}

#[tokio::test]
async fn a_cancelled_campaign_stops_its_messages_and_a_redelivery_stays_cancelled() {
    let world = MemoryWorld::at(T0);
    world.opt_in(&[PHONE]).await;
    use missive::ports::CampaignStore;
    world.campaigns.record_enqueued("trip", "secretary", None, 2, T0).await.unwrap();
    world.campaigns.set_cancelled("trip", true, "head", "wrong date", T0).await.unwrap();
    let handler = world.sender(config(&[]));
    let messages = [with("trip:p1", PHONE, serde_json::json!({"campaign": "trip"})), body("other")];
    assert!(run(&world, &handler, &messages).await.is_empty());
    let cancelled = item(&world, "trip:p1").await;
    assert_eq!(cancelled.status, Some(Status::Cancelled));
    assert_eq!(cancelled.last_error.as_deref(), Some("campaign trip cancelled by head: wrong date"));
    assert_eq!(world.twilio.created_ids(), ["other"], "a message outside the campaign is not affected");
    assert_eq!(world.campaigns.faults.count("get_many"), 1, "one read of the batch's campaigns");
    // Un-cancelled: the items already cancelled stay so.
    world.campaigns.set_cancelled("trip", false, "head", "date fixed", T0).await.unwrap();
    run(&world, &handler, &[with("trip:p1", PHONE, serde_json::json!({"campaign": "trip"}))]).await;
    assert_eq!(item(&world, "trip:p1").await.status, Some(Status::Cancelled));
    assert_eq!(world.twilio.created_ids(), ["other"]);
}

#[tokio::test]
async fn a_campaign_that_cannot_be_read_sends_nothing_of_it() {
    let world = MemoryWorld::at(T0);
    world.opt_in(&[PHONE]).await;
    world.campaigns.faults.fail("get_many", None);
    let handler = world.sender(config(&[]));
    let failures =
        run(&world, &handler, &[with("trip:p1", PHONE, serde_json::json!({"campaign": "trip"})), body("m")]).await;
    assert_eq!(failures, ["sqs-0"], "back to the queue, not sent blind");
    assert_eq!(world.twilio.created_ids(), ["m"]);
}

#[tokio::test]
async fn not_before_holds_a_message_the_sweep_brings_back_and_it_is_sent_once() {
    let world = MemoryWorld::at(T0);
    world.opt_in(&[PHONE]).await;
    let handler = world.sender(config(&[]));
    let at = chrono::DateTime::from_timestamp(T0 + 7200, 0).unwrap().to_rfc3339();
    run(&world, &handler, &[with("later", PHONE, serde_json::json!({"not_before": at}))]).await;
    let held = item(&world, "later").await;
    assert_eq!(
        (held.status, held.next_attempt_at, held.retry_due_at),
        (Some(Status::Scheduled), Some(T0 + 7200), Some(T0 + 7200))
    );
    assert!(world.queue.messages().is_empty(), "two hours is beyond a delay: the sweep brings it back");
    assert!(world.twilio.created_ids().is_empty());

    let sweep = world.sweep_handler(sweep_config());
    world.clock.set(T0 + 3600);
    assert_eq!(sweep.run(world.clock.deadline_in(Duration::from_secs(60))).await.enqueued, 0, "not due yet");
    world.clock.set(T0 + 7200);
    assert_eq!(sweep.run(world.clock.deadline_in(Duration::from_secs(60))).await.enqueued, 1);
    let copies = world.queue.receive(10);
    run(&world, &handler, &copies).await;
    run(&world, &handler, &copies).await;
    let sent = item(&world, "later").await;
    assert_eq!((sent.status, sent.released_at, sent.attempts), (Some(Status::Sent), Some(T0 + 7200), 1));
    assert_eq!(world.twilio.created_ids(), ["later"], "sent once");
}

#[tokio::test]
async fn a_hold_within_fifteen_minutes_is_a_delayed_copy() {
    let world = MemoryWorld::at(T0);
    world.opt_in(&[PHONE]).await;
    let handler = world.sender(config(&[]));
    let at = chrono::DateTime::from_timestamp(T0 + 600, 0).unwrap().to_rfc3339();
    run(&world, &handler, &[with("soon", PHONE, serde_json::json!({"not_before": at}))]).await;
    assert_eq!(world.queue.messages().iter().map(|q| q.delay_seconds).collect::<Vec<_>>(), [600]);
    world.clock.set(T0 + 600);
    run(&world, &handler, &world.queue.receive(10)).await;
    assert_eq!(item(&world, "soon").await.status, Some(Status::Sent));
}

#[tokio::test]
async fn not_before_beyond_thirty_five_days_is_rejected_naming_the_field() {
    let world = MemoryWorld::at(T0);
    world.opt_in(&[PHONE]).await;
    let handler = world.sender(config(&[]));
    let at = chrono::DateTime::from_timestamp(T0 + 40 * 86_400, 0).unwrap().to_rfc3339();
    run(&world, &handler, &[with("far", PHONE, serde_json::json!({"not_before": at}))]).await;
    let rejected = item(&world, "far").await;
    assert_eq!(rejected.status, Some(Status::Rejected));
    assert_eq!(rejected.last_error.as_deref(), Some("not_before: more than 35 days ahead"));
}

#[tokio::test]
async fn quiet_hours_hold_a_normal_message_until_the_morning_and_let_an_urgent_one_go() {
    let world = MemoryWorld::at(PARIS_23H);
    world.opt_in(&[PHONE]).await;
    let handler = world.sender(config(&[("QUIET_HOURS", "20:00-07:30"), ("SCHOOL_TIMEZONE", "Europe/Paris")]));
    let urgent = with("urgent", PHONE, serde_json::json!({"priority": "urgent"}));
    run(&world, &handler, &[body("normal"), urgent]).await;
    assert_eq!(world.twilio.created_ids(), ["urgent"]);
    let held = item(&world, "normal").await;
    let morning = PARIS_23H + 8 * 3600 + 1800; // 07:30
    let until = held.next_attempt_at.expect("held until");
    assert_eq!(held.status, Some(Status::Scheduled));
    assert!((morning..morning + 600).contains(&until), "07:30 plus a spread of up to 600 s: {until}");
    // The same message held again (a redelivery in the night) gets the same time.
    run(&world, &handler, &[body("normal")]).await;
    assert_eq!(item(&world, "normal").await.next_attempt_at, Some(until));
    world.clock.set(until);
    world.sweep_handler(sweep_config()).run(world.clock.deadline_in(Duration::from_secs(60))).await;
    run(&world, &handler, &world.queue.receive(10)).await;
    assert_eq!(item(&world, "normal").await.status, Some(Status::Sent));
    assert_eq!(world.twilio.created_ids(), ["urgent", "normal"]);
}

#[tokio::test]
async fn the_night_the_clocks_go_back_the_morning_is_still_seven_thirty() {
    // 2026-10-24 23:00 in Paris (CEST); the clocks go back at 03:00, to 02:00 (CET).
    let evening = 1_792_875_600;
    let world = MemoryWorld::at(evening);
    world.opt_in(&[PHONE]).await;
    let handler = world.sender(config(&[("QUIET_HOURS", "20:00-07:30"), ("QUIET_SPREAD_SECONDS", "0")]));
    run(&world, &handler, &[body("m")]).await;
    let held = item(&world, "m").await;
    assert_eq!(held.next_attempt_at, Some(evening + 9 * 3600 + 1800), "9 h 30 of real time to 07:30 CET");
}

#[tokio::test]
async fn the_daily_budget_holds_the_fifth_normal_parent_and_lets_an_urgent_one_use_the_reserve() {
    let world = MemoryWorld::at(T0);
    let phones: Vec<String> = (0..6).map(|i| format!("+3361234560{i}")).collect();
    let refs: Vec<&str> = phones.iter().map(String::as_str).collect();
    world.opt_in(&refs).await;
    let handler =
        world.sender(config(&[("DAILY_RECIPIENT_LIMIT", "5"), ("URGENT_RESERVE", "1"), ("SEND_CONCURRENCY", "1")]));
    let normals: Vec<String> =
        phones[..5].iter().enumerate().map(|(i, p)| with(&format!("n{i}"), p, serde_json::json!({}))).collect();
    run(&world, &handler, &normals).await;
    assert_eq!(world.twilio.created_ids(), ["n0", "n1", "n2", "n3"], "limit 5 less the reserve 1");
    let held = item(&world, "n4").await;
    assert_eq!(held.status, Some(Status::Scheduled));
    assert!(held.next_attempt_at.is_some_and(|at| at > T0 + 3600), "until enough of the window rolls off");
    let urgent = with("u5", &phones[5], serde_json::json!({"priority": "urgent"}));
    run(&world, &handler, &[urgent]).await;
    assert_eq!(world.twilio.created_ids().last().map(String::as_str), Some("u5"), "the reserve is the urgent one's");
    // What was counted is in the hour's item, read by the next batch.
    let key = missive::domain::budget::item_key(
        missive::domain::budget::hour_of(T0),
        &phones[0],
        &missive::domain::budget::DailyBudget::new(5, Some(1)).unwrap(),
    );
    assert_eq!(world.campaigns.budget_item(&key).map(|(p, _)| p.len()), Some(5));
    // A parent already counted today costs nothing more.
    run(&world, &handler, &[with("again", &phones[0], serde_json::json!({}))]).await;
    assert_eq!(world.twilio.created_ids().last().map(String::as_str), Some("again"));
}

#[tokio::test]
async fn a_parent_whose_window_is_open_is_never_held_by_the_budget_and_gets_the_body() {
    let world = MemoryWorld::at(T0);
    let (a, b) = ("+33612345601", "+33612345602");
    world.opt_in(&[a, b]).await;
    let pa = PhoneNumber::parse(a).unwrap();
    world.consent.record_inbound(&pa, T0 - 3600).await.unwrap();
    let handler = world.sender(config(&[("DAILY_RECIPIENT_LIMIT", "1"), ("URGENT_RESERVE", "0")]));
    let fallback = serde_json::json!({"fallback_template": {"content_sid": "HX0123456789abcdef0123456789abcdef", "variables": {"1": "Jean"}}});
    run(&world, &handler, &[with("other", b, fallback.clone())]).await;
    run(&world, &handler, &[with("open", a, fallback.clone())]).await;
    assert_eq!(world.twilio.created_ids(), ["other", "open"], "the budget is spent, but a's window is open");
    let created = world.twilio.created();
    assert_eq!(created[0].body, None, "outside the window: the template");
    assert_eq!(created[1].body.as_deref(), Some("Sortie au musée demain"), "inside: the body");
    use missive::domain::item::ContentKind;
    assert_eq!(item(&world, "other").await.content_kind, Some(ContentKind::Template));
    assert_eq!(item(&world, "open").await.content_kind, Some(ContentKind::Body));
    // 25 hours later a's window is closed: a template, and the budget counts it.
    world.clock.set(T0 + 24 * 3600);
    run(&world, &handler, &[with("closed", a, fallback)]).await;
    assert_eq!(item(&world, "closed").await.content_kind, Some(ContentKind::Template));
}

#[tokio::test]
async fn giving_up_counts_from_the_end_of_a_hold() {
    let world = MemoryWorld::at(T0);
    world.opt_in(&[PHONE]).await;
    let handler = world.sender(config(&[("GIVE_UP_HOURS", "24")]));
    let at = chrono::DateTime::from_timestamp(T0 + 30 * 3600, 0).unwrap().to_rfc3339();
    run(&world, &handler, &[with("held", PHONE, serde_json::json!({"not_before": at}))]).await;
    world.twilio.script([error(503, None)]);
    world.clock.set(T0 + 30 * 3600);
    run(&world, &handler, &[with("held", PHONE, serde_json::json!({"not_before": at}))]).await;
    let retrying = item(&world, "held").await;
    assert_eq!(retrying.status, Some(Status::Retrying), "created 30 h ago, but released just now: not given up");
}

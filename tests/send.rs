//! The send function against moto and the fake Twilio, through the real handler.

mod common;

use std::time::Duration;

use common::*;
use fake_twilio::Fault;
use missive::config::ConfigError;
use missive::domain::consent::ConsentState;
use missive::domain::item::ContentKind;
use missive::domain::message::MessageId;
use missive::domain::phone::PhoneNumber;
use missive::domain::status::Status;
use missive::ports::{ConsentStore as _, ItemIdentity, MessageLog, Take};
use missive::wiring::StartupError;
use serde_json::json;

fn sent_status(item: &missive::ports::LogItem) -> Status {
    item.status.expect("status set")
}

#[tokio::test]
async fn a_body_message_is_sent_once_and_recorded() {
    let env = TestEnv::start().await;
    env.opt_in(&[PHONE]).await;
    let handler = env.send_handler().await;
    let response = env.run_send(&handler, &[body_message("happy-1", PHONE, "Sortie demain à 8h")]).await;
    assert!(failures(&response).is_empty());

    let item = env.item("happy-1").await;
    assert_eq!(sent_status(&item), Status::Sent);
    assert_eq!(item.attempts, 1);
    assert_eq!(item.phone.as_deref(), Some(PHONE));
    assert!(item.twilio_sid.as_deref().is_some_and(|sid| sid.starts_with("SM")));
    assert_eq!(item.twilio_status.as_deref(), Some("queued"));
    assert!(
        item.lease_owner.is_none() && item.retry_shard.is_none() && item.retry_due_at.is_none(),
        "in-flight attributes removed: {item:?}"
    );
    assert_eq!(item.expires_at, item.created_at.map(|at| at + 365 * 86_400));
    assert_eq!(item.request.as_deref(), Some(body_message("happy-1", PHONE, "Sortie demain à 8h").as_str()));

    let creates = env.twilio.creates();
    assert_eq!(creates.len(), 1);
    let create = &creates[0];
    assert_eq!(create.param("To"), Some("whatsapp:+33612345678"));
    assert_eq!(create.param("From"), Some(FROM));
    assert_eq!(create.param("Body"), Some("Sortie demain à 8h"));
    assert_eq!(create.param("StatusCallback"), Some("https://hooks.example.org/twilio/status?message_id=happy-1"));
    assert_eq!(create.sid, item.twilio_sid);
    assert!(env.requeued().await.is_empty(), "nothing re-enqueued after a success");
}

#[tokio::test]
async fn a_template_message_sends_content_sid_and_variables() {
    let env = TestEnv::start().await;
    env.opt_in(&[PHONE]).await;
    let handler = env.send_handler().await;
    let body = json!({
        "v": 1, "message_id": "tpl-1", "to": PHONE, "media_urls": ["https://example.org/menu.pdf"],
        "template": {"content_sid": "HX0123456789abcdef0123456789abcdef", "variables": {"1": "Jean", "2": "lundi"}}
    })
    .to_string();
    assert!(failures(&env.run_send(&handler, &[body]).await).is_empty());
    assert_eq!(sent_status(&env.item("tpl-1").await), Status::Sent);
    let create = &env.twilio.creates()[0];
    assert_eq!(create.param("ContentSid"), Some("HX0123456789abcdef0123456789abcdef"));
    assert_eq!(create.param("ContentVariables"), Some(r#"{"1":"Jean","2":"lundi"}"#));
    assert_eq!(create.params_named("MediaUrl"), vec!["https://example.org/menu.pdf"]);
    assert_eq!(create.param("Body"), None);
}

#[tokio::test]
async fn a_messaging_service_replaces_from() {
    let mut env = TestEnv::start().await;
    env.set("TWILIO_MESSAGING_SERVICE_SID", Some("MG0123456789abcdef0123456789abcdef"));
    env.opt_in(&[PHONE]).await;
    let handler = env.send_handler().await;
    env.run_send(&handler, &[body_message("mg-1", PHONE, "Bonjour")]).await;
    let item = env.item("mg-1").await;
    assert_eq!(sent_status(&item), Status::Sent);
    assert_eq!(item.twilio_status.as_deref(), Some("accepted"));
    let create = &env.twilio.creates()[0];
    assert_eq!(create.param("MessagingServiceSid"), Some("MG0123456789abcdef0123456789abcdef"));
    assert_eq!(create.param("From"), None);
}

#[tokio::test]
async fn the_same_message_id_is_sent_once_across_and_within_batches() {
    let env = TestEnv::start().await;
    env.opt_in(&[PHONE]).await;
    let handler = env.send_handler().await;
    let body = body_message("dup-1", PHONE, "Une seule fois");
    let response = env.run_send(&handler, &[body.clone(), body.clone(), body.clone()]).await;
    assert!(failures(&response).is_empty(), "duplicates are acknowledged, not returned");
    let response = env.run_send(&handler, std::slice::from_ref(&body)).await;
    assert!(failures(&response).is_empty());
    assert_eq!(env.twilio.created_count_for(PHONE), 1);
    assert_eq!(env.twilio.creates().len(), 1, "a single create request reached Twilio");
    let item = env.item("dup-1").await;
    assert_eq!((sent_status(&item), item.attempts), (Status::Sent, 1));
}

#[tokio::test]
async fn a_503_is_retried_and_then_sent_with_two_attempts() {
    let env = TestEnv::start().await;
    env.opt_in(&[PHONE]).await;
    env.twilio.push_fault(Some(PHONE), Fault::service_unavailable());
    let handler = env.send_handler().await;
    let body = body_message("retry-1", PHONE, "Réunion");
    assert!(failures(&env.run_send(&handler, std::slice::from_ref(&body)).await).is_empty());
    let item = env.item("retry-1").await;
    assert_eq!(sent_status(&item), Status::Retrying);
    assert_eq!(item.attempts, 1);
    assert_eq!(item.last_error.as_deref(), Some("20503: Service Unavailable"));
    assert_eq!(item.last_error_code, Some(20503));
    assert!(item.next_attempt_at.is_some() && item.retry_due_at.is_some() && item.retry_shard.is_some());

    let requeued = env.requeued().await;
    assert_eq!(requeued, vec![body.clone()], "the original request is re-enqueued");
    env.run_send(&handler, &requeued).await;
    let item = env.item("retry-1").await;
    assert_eq!((sent_status(&item), item.attempts), (Status::Sent, 2));
    assert!(item.next_attempt_at.is_none() && item.retry_due_at.is_none());
    assert_eq!(env.twilio.creates().len(), 2);
    assert_eq!(env.twilio.created_count_for(PHONE), 1);
}

#[tokio::test]
async fn a_429_gives_the_attempt_back_and_honours_retry_after() {
    let env = TestEnv::start().await;
    env.opt_in(&[PHONE]).await;
    env.twilio.push_fault(Some(PHONE), Fault::too_many_requests(Some(3)));
    let handler = env.send_handler().await;
    let before = chrono::Utc::now().timestamp();
    env.run_send(&handler, &[body_message("throttle-1", PHONE, "Cantine")]).await;
    let item = env.item("throttle-1").await;
    assert_eq!(sent_status(&item), Status::Retrying);
    assert_eq!((item.attempts, item.throttled), (0, 1), "a throttled answer does not count as an attempt");
    assert_eq!(item.last_error_code, Some(20429));
    assert!(item.next_attempt_at.unwrap() >= before + 3, "Retry-After is a floor: {item:?}");

    // The delayed copy arrives after Retry-After; taken then, it is sent.
    let requeued = env.drain_queue(&env.queue_url, Duration::from_secs(6)).await;
    assert_eq!(requeued.len(), 1);
    env.run_send(&handler, &requeued).await;
    let item = env.item("throttle-1").await;
    assert_eq!((sent_status(&item), item.attempts, item.throttled), (Status::Sent, 1, 1));
}

#[tokio::test]
async fn permanent_errors_fail_without_retry() {
    let env = TestEnv::start().await;
    let (a, b) = (phone(1), phone(2));
    env.opt_in(&[&a, &b]).await;
    env.twilio.push_fault(Some(&a), Fault::error(400, 21211, "Invalid 'To' Phone Number"));
    env.twilio.push_fault(
        Some(&b),
        Fault::error(400, 63016, "Failed to send freeform message because you are outside the allowed window"),
    );
    let handler = env.send_handler().await;
    env.run_send(&handler, &[body_message("perm-a", &a, "x"), body_message("perm-b", &b, "y")]).await;
    let item = env.item("perm-a").await;
    assert_eq!((sent_status(&item), item.last_error_code), (Status::Failed, Some(21211)));
    assert_eq!(item.last_error.as_deref(), Some("21211: Invalid 'To' Phone Number"));
    let item = env.item("perm-b").await;
    assert_eq!((sent_status(&item), item.last_error_code), (Status::Failed, Some(63016)));
    assert!(item.retry_due_at.is_none());
    assert!(env.requeued().await.is_empty(), "no retry of a permanent error");
    assert_eq!(env.twilio.creates().len(), 2);
}

#[tokio::test]
async fn spent_attempts_end_failed() {
    let env = TestEnv::start().await;
    env.opt_in(&[PHONE]).await;
    for _ in 0..3 {
        env.twilio.push_fault(Some(PHONE), Fault::service_unavailable());
    }
    let handler = env.send_handler().await;
    let body = json!({"v": 1, "message_id": "spent-1", "to": PHONE, "body": "x", "max_attempts": 2}).to_string();
    env.run_send(&handler, &[body]).await;
    let requeued = env.requeued().await;
    assert_eq!(requeued.len(), 1);
    env.run_send(&handler, &requeued).await;
    let item = env.item("spent-1").await;
    assert_eq!((sent_status(&item), item.attempts, item.max_attempts), (Status::Failed, 2, Some(2)));
    assert_eq!(item.last_error.as_deref(), Some("20503: Service Unavailable"));
    assert!(env.requeued().await.is_empty());
    assert_eq!(env.twilio.creates().len(), 2, "never more creates than max_attempts");
}

#[tokio::test]
async fn only_a_body_without_usable_id_is_a_batch_item_failure() {
    let env = TestEnv::start().await;
    env.opt_in(&[PHONE]).await;
    let handler = env.send_handler().await;
    let bodies = vec![
        body_message("ok-1", PHONE, "Bonjour"),
        "{not json".to_owned(),
        json!({"v": 1, "message_id": "bad-phone", "to": "+33 6 12", "body": "x", "campaign": "c1"}).to_string(),
        body_message("ok-2", PHONE, "Bonsoir"),
    ];
    let response = env.run_send(&handler, &bodies).await;
    assert_eq!(failures(&response), vec!["sqs-1".to_owned()], "only the body without message_id goes back");
    assert_eq!(sent_status(&env.item("ok-1").await), Status::Sent);
    assert_eq!(sent_status(&env.item("ok-2").await), Status::Sent);
    let rejected = env.item("bad-phone").await;
    assert_eq!(sent_status(&rejected), Status::Rejected);
    assert_eq!(rejected.last_error.as_deref(), Some("to: not a valid E.164 number"));
    assert_eq!(rejected.campaign.as_deref(), Some("c1"));
    assert!(rejected.phone.is_none() && rejected.expires_at.is_some());
    assert_eq!(env.twilio.creates().len(), 2);

    // A bad redelivery never overwrites a good message.
    let bad_copy = json!({"v": 1, "message_id": "ok-1", "to": "nope", "body": "x"}).to_string();
    assert!(failures(&env.run_send(&handler, &[bad_copy]).await).is_empty());
    assert_eq!(sent_status(&env.item("ok-1").await), Status::Sent);
}

#[tokio::test]
async fn no_consent_or_opted_out_is_skipped_without_a_call() {
    let mut env = TestEnv::start().await;
    let (unknown, out) = (phone(10), phone(11));
    env.set_consent(&out, ConsentState::OptedOut).await;
    let handler = env.send_handler().await;
    env.run_send(&handler, &[body_message("c-unknown", &unknown, "x"), body_message("c-out", &out, "x")]).await;
    let item = env.item("c-unknown").await;
    assert_eq!((sent_status(&item), item.last_error.as_deref()), (Status::Skipped, Some("no consent on record")));
    let item = env.item("c-out").await;
    assert_eq!((sent_status(&item), item.last_error.as_deref()), (Status::Skipped, Some("opted out")));

    env.set("CONSENT_POLICY", Some("honour-optout"));
    let handler = env.send_handler().await;
    env.run_send(&handler, &[body_message("c-unknown-2", &unknown, "x"), body_message("c-out-2", &out, "x")]).await;
    assert_eq!(sent_status(&env.item("c-unknown-2").await), Status::Sent);
    assert_eq!(sent_status(&env.item("c-out-2").await), Status::Skipped);
    assert_eq!(env.twilio.creates().len(), 1, "only the message allowed by consent reached Twilio");
}

#[tokio::test]
async fn a_message_past_not_after_expires_unsent() {
    let env = TestEnv::start().await;
    env.opt_in(&[PHONE]).await;
    let handler = env.send_handler().await;
    let body = json!({"v": 1, "message_id": "late-1", "to": PHONE, "body": "x", "not_after": "2020-01-01T00:00:00Z"})
        .to_string();
    env.run_send(&handler, &[body]).await;
    assert_eq!(sent_status(&env.item("late-1").await), Status::Expired);
    let future = (chrono::Utc::now() + chrono::Duration::seconds(600)).to_rfc3339();
    let body = json!({"v": 1, "message_id": "soon-1", "to": PHONE, "body": "x", "not_after": future}).to_string();
    env.run_send(&handler, &[body]).await;
    assert_eq!(sent_status(&env.item("soon-1").await), Status::Sent);
    let creates = env.twilio.creates();
    assert_eq!(creates.len(), 1);
    let validity: i64 = creates[0].param("ValidityPeriod").unwrap().parse().unwrap();
    assert!((590..=600).contains(&validity), "ValidityPeriod is the time left: {validity}");
}

#[tokio::test]
async fn a_timeout_after_twilio_accepted_is_reconciled_without_a_second_create() {
    let mut env = TestEnv::start().await;
    env.set("TWILIO_TIMEOUT_MS", Some("300"));
    env.opt_in(&[PHONE]).await;
    env.twilio.push_fault(Some(PHONE), Fault::AcceptThenStall(Duration::from_secs(2)));
    let handler = env.send_handler().await;
    let body = body_message("doubt-1", PHONE, "Photo de classe");
    env.run_send(&handler, std::slice::from_ref(&body)).await;
    let item = env.item("doubt-1").await;
    assert_eq!(sent_status(&item), Status::InDoubt);
    assert_eq!(item.last_error.as_deref(), Some("timeout (in doubt)"));
    assert!(item.twilio_sid.is_none());

    let requeued = env.requeued().await;
    assert_eq!(requeued, vec![body]);
    env.run_send(&handler, &requeued).await;
    let item = env.item("doubt-1").await;
    assert_eq!(sent_status(&item), Status::Sent);
    assert_eq!(item.attempts, 1, "the reconcile does not count an attempt");
    let messages = env.twilio.messages();
    assert_eq!(messages.len(), 1, "no second create");
    assert_eq!(item.twilio_sid.as_deref(), Some(messages[0].sid.as_str()));
    assert_eq!(env.twilio.creates().len(), 1);
    assert!(env.twilio.list_calls() >= 1);
}

#[tokio::test]
async fn an_in_doubt_message_not_found_at_twilio_is_created_again() {
    let mut env = TestEnv::start().await;
    env.set("TWILIO_TIMEOUT_MS", Some("300"));
    env.opt_in(&[PHONE]).await;
    env.twilio.push_fault(Some(PHONE), Fault::StallThenReject(Duration::from_secs(1)));
    let handler = env.send_handler().await;
    env.run_send(&handler, &[body_message("doubt-2", PHONE, "x")]).await;
    assert_eq!(sent_status(&env.item("doubt-2").await), Status::InDoubt);
    let requeued = env.requeued().await;
    env.run_send(&handler, &requeued).await;
    let item = env.item("doubt-2").await;
    assert_eq!((sent_status(&item), item.attempts), (Status::Sent, 2));
    assert_eq!(env.twilio.messages().len(), 1);
}

/// Writes the claim a crashed `send` would have left: `sending`, its lease already expired.
async fn crashed_claim(env: &TestEnv, id: &str, body: &str) {
    crashed_claim_started(env, id, body, 100).await;
}

/// The same, for a claim taken `started_ago` seconds ago (its item created then).
async fn crashed_claim_started(env: &TestEnv, id: &str, body: &str, started_ago: i64) {
    let now = chrono::Utc::now().timestamp();
    let identity = ItemIdentity {
        message_id: MessageId::parse(id).unwrap(),
        phone: Some(PhoneNumber::parse(PHONE).unwrap()),
        campaign: None,
        recipient_id: None,
        request: Some(body.to_owned()),
        max_attempts: 3,
        requested_by: None,
    };
    let take = Take { owner: "crashed".into(), now: now - started_ago, lease_until: now - 1, due: now };
    let claimed = env.log().claim(&identity, &take, ContentKind::Body, 365).await.unwrap();
    assert!(matches!(claimed, missive::ports::Conditional::Applied(_)));
}

#[tokio::test]
async fn a_crash_after_the_create_is_reconciled_on_redelivery() {
    let env = TestEnv::start().await;
    env.opt_in(&[PHONE]).await;
    let body = body_message("crash-1", PHONE, "Kermesse samedi");
    crashed_claim(&env, "crash-1", &body).await;
    // What the crashed process did before dying: the create went through.
    env.create_at_twilio(PHONE, "Kermesse samedi").await;
    // The crashed attempt started 100 s ago; the fake created the message now, inside the
    // reconcile window [started − 60 s, started + LEASE_SECONDS + 60 s].
    let handler = env.send_handler().await;
    assert!(failures(&env.run_send(&handler, &[body]).await).is_empty());
    let item = env.item("crash-1").await;
    assert_eq!((sent_status(&item), item.attempts), (Status::Sent, 1));
    assert_eq!(env.twilio.messages().len(), 1, "the redelivery made no second create");
    assert_eq!(item.twilio_sid.as_deref(), Some(env.twilio.messages()[0].sid.as_str()));
}

#[tokio::test]
async fn a_crash_before_the_create_is_created_on_redelivery() {
    let env = TestEnv::start().await;
    env.opt_in(&[PHONE]).await;
    let body = body_message("crash-2", PHONE, "x");
    crashed_claim(&env, "crash-2", &body).await;
    let handler = env.send_handler().await;
    env.run_send(&handler, &[body]).await;
    let item = env.item("crash-2").await;
    assert_eq!((sent_status(&item), item.attempts), (Status::Sent, 2));
    assert_eq!(env.twilio.messages().len(), 1);
}

#[tokio::test]
async fn a_live_lease_held_elsewhere_is_left_alone() {
    let env = TestEnv::start().await;
    env.opt_in(&[PHONE]).await;
    let body = body_message("held-1", PHONE, "x");
    let now = chrono::Utc::now().timestamp();
    let identity = ItemIdentity {
        message_id: MessageId::parse("held-1").unwrap(),
        phone: Some(PhoneNumber::parse(PHONE).unwrap()),
        campaign: None,
        recipient_id: None,
        request: Some(body.clone()),
        max_attempts: 3,
        requested_by: None,
    };
    let take = Take { owner: "other".into(), now, lease_until: now + 120, due: now };
    env.log().claim(&identity, &take, ContentKind::Body, 365).await.unwrap();
    let handler = env.send_handler().await;
    assert!(failures(&env.run_send(&handler, &[body]).await).is_empty());
    let item = env.item("held-1").await;
    assert_eq!((sent_status(&item), item.lease_owner.as_deref()), (Status::Sending, Some("other")));
    assert!(env.twilio.creates().is_empty());
}

#[tokio::test]
async fn an_account_level_error_stops_the_batch() {
    let mut env = TestEnv::start().await;
    env.set("SEND_CONCURRENCY", Some("1"));
    let phones: Vec<String> = (20..24).map(phone).collect();
    env.opt_in(&phones.iter().map(String::as_str).collect::<Vec<_>>()).await;
    env.twilio.push_fault(None, Fault::error(401, 20003, "Authenticate"));
    let handler = env.send_handler().await;
    let bodies: Vec<String> =
        phones.iter().enumerate().map(|(i, p)| body_message(&format!("acct-{i}"), p, "x")).collect();
    let response = env.run_send(&handler, &bodies).await;
    assert_eq!(failures(&response), vec!["sqs-1", "sqs-2", "sqs-3"], "records not yet started go back");
    let item = env.item("acct-0").await;
    assert_eq!((sent_status(&item), item.attempts, item.throttled), (Status::Retrying, 0, 1));
    assert_eq!(item.last_error_code, Some(20003));
    assert!(env.maybe_item("acct-1").await.is_none());
    assert_eq!(env.twilio.creates().len(), 1);
}

#[tokio::test]
async fn a_21610_fails_and_records_the_opt_out() {
    let env = TestEnv::start().await;
    env.opt_in(&[PHONE]).await;
    env.twilio.push_fault(Some(PHONE), Fault::error(400, 21610, "Attempt to send to unsubscribed recipient"));
    let handler = env.send_handler().await;
    env.run_send(&handler, &[body_message("unsub-1", PHONE, "x")]).await;
    assert_eq!(sent_status(&env.item("unsub-1").await), Status::Failed);
    let consent = env.consent().item(&PhoneNumber::parse(PHONE).unwrap()).await.unwrap().unwrap();
    assert_eq!(
        (consent.state.as_deref().unwrap_or_default(), consent.source.as_deref()),
        ("opted_out", Some("twilio-21610"))
    );
    assert_eq!(consent.history.len(), 2);
    env.run_send(&handler, &[body_message("unsub-2", PHONE, "x")]).await;
    assert_eq!(sent_status(&env.item("unsub-2").await), Status::Skipped);
}

#[tokio::test]
async fn without_twilio_configuration_messages_are_dry_run() {
    let mut env = TestEnv::start().await;
    env.set("TWILIO_ACCOUNT_SID", None);
    env.set("TWILIO_AUTH_TOKEN", None);
    env.opt_in(&[PHONE]).await;
    let handler = env.send_handler().await;
    env.run_send(&handler, &[body_message("dry-1", PHONE, "x")]).await;
    let item = env.item("dry-1").await;
    assert_eq!((sent_status(&item), item.attempts), (Status::DryRun, 1));
    assert!(item.retry_due_at.is_none());
    assert!(env.twilio.creates().is_empty());

    env.set("TWILIO_ENABLED", Some("true"));
    let err = missive::wiring::send_handler(env.send_config(), &env.aws).await.err().expect("refused");
    assert!(matches!(err, StartupError::Config(ConfigError::TwilioRequired { .. })));
    assert_eq!(
        err.to_string(),
        "TWILIO_ENABLED is true but Twilio is not configured: TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN (or TWILIO_SECRET_ARN, or TWILIO_API_KEY_SID and TWILIO_API_KEY_SECRET)"
    );
}

/// A port on loopback where nothing listens: every call to it is refused.
fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

#[tokio::test]
async fn a_reconcile_that_cannot_reach_twilio_stays_in_doubt_then_gives_up() {
    let mut env = TestEnv::start().await;
    env.opt_in(&[PHONE]).await;
    env.set("TWILIO_API_BASE_URL", Some(&closed_port_url()));
    let handler = env.send_handler().await;

    // Within GIVE_UP_HOURS: in doubt again, the list call's failure as the reason.
    let recent = body_message("unreachable-recent", PHONE, "x");
    crashed_claim_started(&env, "unreachable-recent", &recent, 100).await;
    env.run_send(&handler, &[recent]).await;
    let item = env.item("unreachable-recent").await;
    assert_eq!(sent_status(&item), Status::InDoubt);
    let reason = item.last_error.as_deref().unwrap_or_default();
    assert!(reason.starts_with("reconcile failed"), "{reason}");
    assert!(!reason.contains("33612345678"), "the list URL (and its phone) stays out of the reason: {reason}");
    assert!(item.retry_due_at.is_some());

    // Created more than GIVE_UP_HOURS (24) ago: the reconcile that keeps failing ends.
    let old = body_message("unreachable-old", PHONE, "x");
    crashed_claim_started(&env, "unreachable-old", &old, 25 * 3600).await;
    env.run_send(&handler, &[old]).await;
    let item = env.item("unreachable-old").await;
    assert_eq!(sent_status(&item), Status::Failed);
    let reason = item.last_error.as_deref().unwrap_or_default();
    assert!(reason.starts_with("gave up after 24 h: reconcile failed"), "{reason}");
    assert_eq!((item.retry_shard, item.retry_due_at, item.lease_owner.as_deref()), (None, None, None));
    assert!(env.twilio.creates().is_empty());
}

#[tokio::test]
async fn with_too_little_time_left_records_go_back_unclaimed() {
    let env = TestEnv::start().await;
    env.opt_in(&[PHONE]).await;
    let handler = env.send_handler().await;
    let bodies = [body_message("late-1", PHONE, "a"), body_message("late-2", PHONE, "b")];
    // TWILIO_TIMEOUT_MS is 2 s in the tests: 2 s + 5 s must remain to claim.
    let response = handler.handle(sqs_event(&bodies), std::time::SystemTime::now() + Duration::from_secs(4)).await;
    assert_eq!(failures(&response).len(), 2, "both records go back to SQS");
    assert!(env.maybe_item("late-1").await.is_none() && env.maybe_item("late-2").await.is_none());
    assert!(env.twilio.creates().is_empty());
    // With the time there, the same records are sent.
    let response = env.run_send(&handler, &bodies).await;
    assert!(failures(&response).is_empty());
    assert_eq!(env.twilio.creates().len(), 2);
}

#[tokio::test]
async fn a_reconcile_never_adopts_a_sid_that_another_message_holds() {
    let env = TestEnv::start().await;
    env.opt_in(&[PHONE]).await;
    let handler = env.send_handler().await;
    env.run_send(&handler, &[body_message("twin-a", PHONE, "Réunion jeudi")]).await;
    let a = env.item("twin-a").await;
    assert_eq!(sent_status(&a), Status::Sent);
    // B has the same text and phone; it crashed before its create, within A's window.
    let b_body = body_message("twin-b", PHONE, "Réunion jeudi");
    crashed_claim(&env, "twin-b", &b_body).await;
    env.run_send(&handler, &[b_body]).await;
    let b = env.item("twin-b").await;
    assert_eq!(sent_status(&b), Status::Sent);
    assert!(b.twilio_sid.is_some() && b.twilio_sid != a.twilio_sid, "B got its own message: {:?}", b.twilio_sid);
    assert_eq!(env.twilio.creates().len(), 2);
    assert_eq!(b.attempts, 2, "the crashed take counted one, the new create another");
}

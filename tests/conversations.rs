//! Conversations (DESIGN.md "Conversations", issue 13) on moto, through the real webhook and
//! send handlers as the functions build them, with requests signed as Twilio's helper
//! libraries sign them: the 24-hour window, the Inbox (kept once, attributed), the
//! acknowledgements, the staff's SNS notice, and bad input.

mod common;

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use common::{body_message, form_body, phone, signed_post, TestEnv, PHONE};
use missive::adapters::dynamo::DynamoInbox;
use missive::adapters::memory::ManualClock;
use missive::domain::inbox::InboxItem;
use missive::domain::item::ContentKind;
use missive::domain::phone::PhoneNumber;
use missive::domain::status::Status;
use missive::handlers::webhook::{WebhookHandler, WebhookResponse, MAX_BODY_CHARS};
use missive::ports::{Clock, ConsentStore, Inbox, LogItem};

const INBOUND: &str = "/twilio/inbound";
const STATUS: &str = "/twilio/status";
const FALLBACK: &str = "HX0123456789abcdef0123456789abcdef";

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A parent's message as Twilio posts it, with `extra` parameters.
fn reply_params(from: &str, sid: &str, body: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut params: Vec<(String, String)> = vec![
        ("AccountSid".into(), "AC00000000000000000000000000000000".into()),
        ("Body".into(), body.into()),
        ("From".into(), format!("whatsapp:{from}")),
        ("MessageSid".into(), sid.into()),
        ("NumMedia".into(), "0".into()),
        ("ProfileName".into(), "Parent d'élève".into()),
        ("To".into(), common::FROM.into()),
    ];
    for (key, value) in extra {
        params.retain(|(k, _)| k != key);
        params.push(((*key).into(), (*value).into()));
    }
    params
}

async fn post(env: &TestEnv, handler: &WebhookHandler, params: &[(String, String)]) -> WebhookResponse {
    let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    handler.handle(&signed_post(&env.auth_token(), INBOUND, "", &pairs)).await
}

async fn reply(env: &TestEnv, handler: &WebhookHandler, from: &str, sid: &str, body: &str, extra: &[(&str, &str)]) {
    let response = post(env, handler, &reply_params(from, sid, body, extra)).await;
    assert_eq!(response.status, 200, "{sid}: {}", response.body);
    assert!(response.body.ends_with("<Response/>"), "no AUTO_REPLY_TEXT: an empty TwiML, got {}", response.body);
}

fn inbox(env: &TestEnv) -> DynamoInbox {
    DynamoInbox::new(env.dynamo.clone(), &env.inbox_table)
}

async fn replies_of(env: &TestEnv, phone: &str) -> Vec<InboxItem> {
    inbox(env).for_phone(phone).await.expect("Query Inbox")
}

/// A sent MessageLog item of `phone`, as `send` leaves it.
async fn seed_sent(env: &TestEnv, id: &str, phone: &str, campaign: &str, created_at: i64, sid: &str) {
    let item = LogItem {
        message_id: id.into(),
        status: Some(Status::Sent),
        phone: Some(phone.into()),
        campaign: Some(campaign.into()),
        twilio_sid: Some(sid.into()),
        twilio_status: Some("sent".into()),
        twilio_rank: Some(3),
        attempts: 1,
        created_at: Some(created_at),
        updated_at: Some(created_at),
        expires_at: Some(created_at + 365 * 86_400),
        ..LogItem::default()
    };
    let mut attributes: std::collections::HashMap<String, AttributeValue> =
        serde_dynamo::aws_sdk_dynamodb_1::to_item(&item).expect("encode item");
    attributes.retain(|_, value| !matches!(value, AttributeValue::Null(_)));
    env.dynamo.put_item().table_name(&env.log_table).set_item(Some(attributes)).send().await.expect("PutItem");
}

fn with_fallback(id: &str, to: &str) -> String {
    let mut body: serde_json::Value = serde_json::from_str(&body_message(id, to, "Réunion demain 18h")).unwrap();
    body["fallback_template"] = serde_json::json!({"content_sid": FALLBACK, "variables": {"1": "Jean"}});
    body.to_string()
}

#[tokio::test]
async fn a_reply_opens_the_window_the_fallback_goes_as_body_then_as_template_25_hours_later() {
    let env = TestEnv::start().await;
    env.opt_in(&[PHONE]).await;
    let webhook = env.webhook_handler().await;
    reply(&env, &webhook, PHONE, "SMq1", "Bonjour, à quelle heure ?", &[]).await;
    let consent = env.consent().item(&PhoneNumber::parse(PHONE).unwrap()).await.unwrap().unwrap();
    assert!(consent.last_inbound_at.is_some_and(|at| (at - now()).abs() < 60), "{consent:?}");
    assert_eq!(consent.state.as_deref(), Some("opted_in"), "the window is not a consent change");

    let send = env.send_handler().await;
    env.run_send(&send, &[with_fallback("inside", PHONE)]).await;
    let inside = env.item("inside").await;
    assert_eq!((inside.status, inside.content_kind), (Some(Status::Sent), Some(ContentKind::Body)));
    let created = env.twilio.message(inside.twilio_sid.as_deref().unwrap()).unwrap();
    assert_eq!(created.body.as_deref(), Some("Réunion demain 18h"));

    // 25 hours after the parent's message.
    env.dynamo
        .update_item()
        .table_name(&env.consent_table)
        .key("phone", AttributeValue::S(PHONE.into()))
        .update_expression("SET last_inbound_at = :t")
        .expression_attribute_values(":t", AttributeValue::N((now() - 25 * 3600).to_string()))
        .send()
        .await
        .expect("UpdateItem");
    env.run_send(&send, &[with_fallback("outside", PHONE), body_message("body-only", PHONE, "Texte libre")]).await;
    let outside = env.item("outside").await;
    assert_eq!((outside.status, outside.content_kind), (Some(Status::Sent), Some(ContentKind::Template)));
    assert_eq!(env.twilio.message(outside.twilio_sid.as_deref().unwrap()).unwrap().body, None, "a template");

    // A body-only message outside the window still goes; Twilio answers 63016 in a callback.
    let body_only = env.item("body-only").await;
    assert_eq!(body_only.content_kind, Some(ContentKind::Body));
    let sid = body_only.twilio_sid.clone().unwrap();
    let recipient = format!("whatsapp:{PHONE}");
    let params = [
        ("ErrorCode", "63016"),
        ("MessageSid", sid.as_str()),
        ("MessageStatus", "undelivered"),
        ("To", recipient.as_str()),
    ];
    let query = form_body(&[("message_id", "body-only")]);
    let answer = webhook.handle(&signed_post(&env.auth_token(), STATUS, &query, &params)).await;
    assert_eq!(answer.status, 200);
    let undelivered = env.item("body-only").await;
    assert_eq!((undelivered.status, undelivered.last_error_code), (Some(Status::Undelivered), Some(63016)));
    let words = undelivered.last_error.unwrap_or_default();
    assert!(words.contains("outside the 24-hour window"), "{words}");
}

#[tokio::test]
async fn a_replayed_reply_is_kept_once_and_attributed_by_the_sid_it_names_else_by_recency() {
    let env = TestEnv::start().await;
    let webhook = env.webhook_handler().await;
    let t = now();
    seed_sent(&env, "trip:1", PHONE, "trip", t - 2 * 86_400, "SMtrip").await;
    seed_sent(&env, "menu:1", PHONE, "menu", t - 3600, "SMmenu").await;

    let named = reply_params(PHONE, "SMr1", "Oui pour la sortie", &[("OriginalRepliedMessageSid", "SMtrip")]);
    for _ in 0..3 {
        assert_eq!(post(&env, &webhook, &named).await.status, 200);
    }
    reply(&env, &webhook, PHONE, "SMr2", "Et la cantine ?", &[]).await;
    let kept = replies_of(&env, PHONE).await;
    assert_eq!(kept.len(), 2, "a replayed webhook writes once: {kept:?}");
    let by_sid = kept.iter().find(|r| r.received_at_sid.ends_with("#SMr1")).unwrap();
    assert_eq!((by_sid.message_id.as_deref(), by_sid.campaign.as_deref()), (Some("trip:1"), Some("trip")));
    assert_eq!(by_sid.replied_to_sid.as_deref(), Some("SMtrip"));
    assert_eq!(by_sid.body.as_deref(), Some("Oui pour la sortie"));
    assert_eq!(by_sid.profile_name.as_deref(), Some("Parent d'élève"));
    assert!((by_sid.expires_at - by_sid.received_at - 365 * 86_400).abs() == 0, "RETENTION_DAYS' TTL");
    let by_recency = kept.iter().find(|r| r.received_at_sid.ends_with("#SMr2")).unwrap();
    assert_eq!((by_recency.message_id.as_deref(), by_recency.campaign.as_deref()), (Some("menu:1"), Some("menu")));
    let trip = inbox(&env).for_campaign("trip").await.unwrap();
    assert_eq!(trip.len(), 1, "by-campaign");
}

#[tokio::test]
async fn a_reply_to_nothing_sent_within_7_days_has_no_campaign_and_an_unknown_sid_falls_back_to_recency() {
    let env = TestEnv::start().await;
    let webhook = env.webhook_handler().await;
    let (old, recent) = (phone(701), phone(702));
    seed_sent(&env, "old:1", &old, "old", now() - 8 * 86_400, "SMold").await;
    seed_sent(&env, "recent:1", &recent, "recent", now() - 60, "SMrecent").await;
    reply(&env, &webhook, &old, "SMa", "Bonjour", &[]).await;
    reply(&env, &webhook, &recent, "SMb", "Bonjour", &[("OriginalRepliedMessageSid", "SMnot-ours")]).await;
    let unattributed = &replies_of(&env, &old).await[0];
    assert_eq!((unattributed.message_id.as_deref(), unattributed.campaign.as_deref()), (None, None));
    let fallback = &replies_of(&env, &recent).await[0];
    assert_eq!(fallback.campaign.as_deref(), Some("recent"));
    assert_eq!(fallback.replied_to_sid.as_deref(), Some("SMnot-ours"), "kept as Twilio sent it");
}

#[tokio::test]
async fn the_last_acknowledgement_wins_and_an_empty_ack_is_only_a_reply() {
    let env = TestEnv::start().await;
    let mut webhook = env.webhook_handler().await;
    let clock = ManualClock::at(now());
    webhook.clock = Arc::new(clock.clone());
    seed_sent(&env, "trip:p", PHONE, "trip", now() - 600, "SMtp").await;
    let button = |word: &'static str| [("ButtonPayload", word), ("ButtonText", "Oui, il viendra")];
    reply(&env, &webhook, PHONE, "SMyes", "Oui, il viendra", &button("ack:yes")).await;
    assert_eq!(env.item("trip:p").await.ack.as_deref(), Some("yes"));
    clock.advance(Duration::from_secs(30));
    reply(&env, &webhook, PHONE, "SMno", "Non", &button("ack:no")).await;
    clock.advance(Duration::from_secs(30));
    reply(&env, &webhook, PHONE, "SMempty", "?", &button("ack:")).await;
    let item = env.item("trip:p").await;
    assert_eq!(item.ack.as_deref(), Some("no"), "the last answer wins; `ack:` with no word changes nothing");
    assert_eq!(item.ack_at, Some(clock.now() - 30));
    let kept = replies_of(&env, PHONE).await;
    assert_eq!(kept.len(), 3);
    let acks: Vec<Option<&str>> = kept.iter().map(|r| r.ack.as_deref()).collect();
    assert_eq!(acks, [Some("yes"), Some("no"), None]);
    assert_eq!(kept[2].button_payload.as_deref(), Some("ack:"), "kept as sent");
    assert_eq!(kept[0].button_text.as_deref(), Some("Oui, il viendra"));
}

#[tokio::test]
async fn a_media_reply_is_kept_with_its_urls() {
    let env = TestEnv::start().await;
    let webhook = env.webhook_handler().await;
    let urls = [
        "https://api.twilio.com/2010-04-01/Accounts/AC0/Messages/MM1/Media/ME1",
        "https://api.twilio.com/2010-04-01/Accounts/AC0/Messages/MM1/Media/ME2",
    ];
    let extra =
        [("NumMedia", "2"), ("MediaUrl0", urls[0]), ("MediaContentType0", "image/jpeg"), ("MediaUrl1", urls[1])];
    reply(&env, &webhook, PHONE, "MM1", "", &extra).await;
    let kept = &replies_of(&env, PHONE).await[0];
    assert_eq!((kept.num_media, kept.media_urls.clone()), (2, urls.map(str::to_owned).to_vec()));
    assert_eq!(kept.body, None, "an empty body is no body");
}

#[tokio::test]
async fn staff_get_an_sns_notice_with_the_phone_masked() {
    let mut env = TestEnv::start().await;
    let sns = aws_sdk_sns::Client::new(&env.aws);
    let topic = sns.create_topic().name(common::unique("replies")).send().await.unwrap().topic_arn.unwrap();
    let queue_url = env.sqs.create_queue().queue_name(common::unique("staff")).send().await.unwrap().queue_url.unwrap();
    let queue_arn = env
        .sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
        .clone();
    sns.subscribe().topic_arn(&topic).protocol("sqs").endpoint(&queue_arn).send().await.unwrap();
    env.set("REPLIES_TOPIC_ARN", Some(&topic));
    let webhook = env.webhook_handler().await;
    seed_sent(&env, "trip:n", PHONE, "trip", now() - 600, "SMn").await;
    let long = format!("Bonjour,\nmon fils sera absent. {}", "x".repeat(400));
    reply(&env, &webhook, PHONE, "SMnotice", &long, &[]).await;
    let bodies = env.drain_queue(&queue_url, Duration::from_secs(2)).await;
    assert_eq!(bodies.len(), 1, "one notice: {bodies:?}");
    let envelope: serde_json::Value = serde_json::from_str(&bodies[0]).unwrap();
    let message = envelope["Message"].as_str().unwrap();
    let subject = envelope["Subject"].as_str().unwrap_or_default();
    assert!(!message.contains("612345678") && !subject.contains("612345678"), "masked: {subject} {message}");
    assert!(subject.contains("trip") && message.contains("missive replies --campaign trip"), "{message}");
    assert!(message.contains("Bonjour, mon fils sera absent."), "{message}");
    assert!(!message.contains(&"x".repeat(200)), "the first 200 characters only");
    // A replay is not notified again.
    reply(&env, &webhook, PHONE, "SMnotice", &long, &[]).await;
    assert!(env.drain_queue(&queue_url, Duration::from_secs(1)).await.is_empty());
}

#[tokio::test]
async fn bad_input_is_kept_sensibly_never_a_5xx() {
    let mut env = TestEnv::start().await;
    env.set("AUTO_REPLY_TEXT", Some("Merci, l'école vous répond bientôt."));
    let webhook = env.webhook_handler().await;
    let big = "é".repeat(2_600); // 5 KB
    let control = "a\u{0}b\u{7}c\r\n\u{1b}[31m";
    let cases: Vec<Vec<(String, String)>> = vec![
        reply_params(PHONE, "SMbig", &big, &[]),
        reply_params(PHONE, "SMctl", control, &[("ProfileName", "\u{0}")]),
        reply_params(PHONE, "SMack", "x", &[("ButtonPayload", "ack:")]),
        reply_params(PHONE, "SMsid", "x", &[("OriginalRepliedMessageSid", "SMunknown")]),
        reply_params(PHONE, "SMmedia", "x", &[("NumMedia", "many"), ("MediaUrl0", "https://x")]),
        reply_params(PHONE, "", "no sid", &[]),
        reply_params("not-a-number", "SMfrom", "x", &[]),
        reply_params(&"9".repeat(5000), "SMlong", "x", &[]),
    ];
    for params in &cases {
        let response = post(&env, &webhook, params).await;
        assert_eq!(response.status, 200, "{params:?}");
        assert!(response.body.contains("Merci, l&apos;école"), "AUTO_REPLY_TEXT: {}", response.body);
    }
    let replayed = post(&env, &webhook, &cases[5]).await;
    assert_eq!(replayed.status, 200);
    let kept = replies_of(&env, PHONE).await;
    assert_eq!(kept.len(), 6, "every reply of a usable number, once: {kept:?}");
    let body = |sid: &str| kept.iter().find(|r| r.received_at_sid.ends_with(sid)).and_then(|r| r.body.clone());
    assert_eq!(body("#SMbig").map(|b| b.chars().count()), Some(2_600), "under {MAX_BODY_CHARS}: whole");
    assert_eq!(body("#SMctl").as_deref(), Some(control), "kept verbatim");
    assert!(kept.iter().all(|r| r.ack.is_none() && r.campaign.is_none()));
    assert!(kept.iter().any(|r| r.received_at_sid.contains("#nosid-")), "a stand-in for a missing sid");
    assert_eq!(kept.iter().find(|r| r.received_at_sid.ends_with("#SMmedia")).unwrap().num_media, 0);
}

#[tokio::test]
async fn nothing_is_read_or_written_before_the_signature_holds() {
    let env = TestEnv::start().await;
    let webhook = env.webhook_handler().await;
    let params = reply_params(PHONE, "SMforged", "Bonjour", &[("ButtonPayload", "ack:yes")]);
    let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let forged = signed_post("not-the-token", INBOUND, "", &pairs);
    assert_eq!(webhook.handle(&forged).await.status, 403);
    assert!(replies_of(&env, PHONE).await.is_empty());
    assert!(env.consent().item(&PhoneNumber::parse(PHONE).unwrap()).await.unwrap().is_none(), "no window opened");
}

/// The same handler over the in-memory adapters: a failed notice does not make Twilio post
/// the reply again; an Inbox outage does (500), and the retry keeps it once.
#[tokio::test]
async fn a_failed_notice_still_answers_200_and_an_inbox_outage_is_retried_into_one_reply() {
    use missive::adapters::memory::{MemoryConsent, MemoryInbox, MemoryMessageLog, MemoryNotifier};
    use missive::handlers::webhook::Conversations;
    use missive::secret::Secret;

    let token = "memory-token";
    let (inbox, notifier) = (MemoryInbox::new(), MemoryNotifier::new());
    let handler = WebhookHandler::new(
        Arc::new(MemoryMessageLog::new()),
        Arc::new(MemoryConsent::new()),
        Arc::new(ManualClock::at(1_800_000_000)),
        vec![Secret::new(token)],
        None,
    )
    .with_conversations(Conversations {
        inbox: Arc::new(inbox.clone()),
        notifier: Some(Arc::new(notifier.clone())),
        auto_reply_text: None,
        retention_days: 30,
    });
    let params = reply_params(PHONE, "SMmem", "Bonjour", &[]);
    let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let request = signed_post(token, INBOUND, "", &pairs);

    inbox.faults.fail("put_once", None);
    assert_eq!(handler.handle(&request).await.status, 500, "not kept: Twilio must post it again");
    inbox.faults.clear();
    notifier.faults.fail("notify", None);
    assert_eq!(handler.handle(&request).await.status, 200, "kept; the notice is logged as failed");
    assert_eq!(handler.handle(&request).await.status, 200);
    let kept = inbox.all();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(kept[0].expires_at, 1_800_000_000 + 30 * 86_400);
    assert!(notifier.notices().is_empty());
}

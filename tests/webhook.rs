//! The twilio-webhook function against moto, through the real handler (built as the function
//! builds it), with requests signed by the fake Twilio's independent implementation.

mod common;

use base64::Engine as _;
use common::*;
use missive::config::ConfigError;
use missive::domain::item::ContentKind;
use missive::domain::message::MessageId;
use missive::domain::phone::PhoneNumber;
use missive::domain::signature;
use missive::domain::status::Status;
use missive::handlers::webhook::{WebhookHandler, WebhookRequest, WebhookResponse, OPT_IN_REPLY, OPT_OUT_REPLY};
use missive::metrics::Metrics;
use missive::ports::{Conditional, ConsentStore as _, ItemIdentity, LogItem, MessageLog, Outcome, Take};
use missive::wiring::StartupError;

const STATUS: &str = "/twilio/status";
const INBOUND: &str = "/twilio/inbound";

fn query_for(id: &str) -> String {
    form_body(&[("message_id", id)])
}

/// A message sent through the real send handler and the fake Twilio: `sent`, with a SID.
async fn sent_message(env: &TestEnv, id: &str, phone: &str) -> LogItem {
    env.opt_in(&[phone]).await;
    let handler = env.send_handler().await;
    assert!(failures(&env.run_send(&handler, &[body_message(id, phone, "Sortie demain")]).await).is_empty());
    let item = env.item(id).await;
    assert_eq!(item.status, Some(Status::Sent));
    assert!(item.twilio_sid.is_some());
    item
}

fn callback_params<'a>(sid: &'a str, status: &'a str, phone: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("AccountSid", "AC00000000000000000000000000000000"),
        ("ApiVersion", "2010-04-01"),
        ("ChannelToAddress", phone),
        ("From", FROM),
        ("MessageSid", sid),
        ("MessageStatus", status),
        ("SmsSid", sid),
        ("SmsStatus", status),
        ("To", "whatsapp:recipient"),
    ]
}

/// A signed status callback for `id`, answered by `handler`; returns the answer and the
/// metrics it counted.
async fn post_callback(
    env: &TestEnv,
    handler: &WebhookHandler,
    id: &str,
    params: &[(&str, &str)],
) -> (WebhookResponse, Metrics) {
    let request = signed_post(&env.auth_token(), STATUS, &query_for(id), params);
    let metrics = Metrics::new("twilio-webhook");
    let response = handler.handle_counted(&request, &metrics).await;
    (response, metrics)
}

async fn post_status(env: &TestEnv, handler: &WebhookHandler, id: &str, sid: &str, status: &str) -> Metrics {
    let (response, metrics) = post_callback(env, handler, id, &callback_params(sid, status, PHONE)).await;
    assert_eq!((response.status, response.body.as_str()), (200, ""), "{status}");
    metrics
}

fn ok_empty(response: &WebhookResponse) -> bool {
    response.status == 200 && response.body.is_empty()
}

async fn inbound(env: &TestEnv, handler: &WebhookHandler, from: &str, body: &str, sid: &str) -> WebhookResponse {
    let from = format!("whatsapp:{from}");
    let wa_id = from.trim_start_matches("whatsapp:+").to_owned();
    let params = [
        ("AccountSid", "AC00000000000000000000000000000000"),
        ("Body", body),
        ("From", from.as_str()),
        ("MessageSid", sid),
        ("NumMedia", "0"),
        ("ProfileName", "Parent d'élève"),
        ("To", FROM),
        ("WaId", wa_id.as_str()),
    ];
    handler.handle(&signed_post(&env.auth_token(), INBOUND, "", &params)).await
}

async fn consent_of(env: &TestEnv, phone: &str) -> Option<missive::domain::consent::ConsentItem> {
    env.consent().item(&PhoneNumber::parse(phone).unwrap()).await.unwrap()
}

// ---------------------------------------------------------------------------------------
// Signature

const VECTOR_URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";
const VECTOR_PARAMS: [(&str, &str); 5] = [
    ("CallSid", "CA1234567890ABCDE"),
    ("Caller", "+14158675309"),
    ("Digits", "1234"),
    ("From", "+14158675309"),
    ("To", "+18005551212"),
];

fn owned(params: &[(&str, &str)]) -> Vec<(String, String)> {
    params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn twilios_published_vector_and_its_port_variants() {
    let params = owned(&VECTOR_PARAMS);
    assert_eq!(signature::compute("12345", VECTOR_URL, &params), "RSOYDt4T1cUTdK1PDd93/VVr8B8=");
    let with_port = "https://mycompany.com:443/myapp.php?foo=1&bar=2";
    assert_eq!(signature::compute("12345", with_port, &params), "kvajT1Ptam85bY51eRf/AJRuM3w=");
    // The fake Twilio's independent implementation agrees.
    assert_eq!(fake_twilio::sign("12345", VECTOR_URL, &VECTOR_PARAMS), "RSOYDt4T1cUTdK1PDd93/VVr8B8=");
    // Either signature is accepted for either form of the URL.
    for url in [VECTOR_URL, with_port] {
        for sig in ["RSOYDt4T1cUTdK1PDd93/VVr8B8=", "kvajT1Ptam85bY51eRf/AJRuM3w="] {
            assert!(signature::verify(&["12345"], &[url.to_owned()], &params, sig), "{url} {sig}");
        }
    }
    assert!(!signature::verify(
        &["12345"],
        &["https://mycompany.com:8443/myapp.php?foo=1&bar=2".to_owned()],
        &params,
        "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    ));
}

#[tokio::test]
async fn a_signature_over_the_url_with_the_default_port_is_accepted() {
    let env = TestEnv::start().await;
    let item = sent_message(&env, "port-1", PHONE).await;
    let sid = item.twilio_sid.clone().unwrap();
    let handler = env.webhook_handler().await;
    let query = query_for("port-1");
    let url = format!("https://{WEBHOOK_DOMAIN}:443{STATUS}?{query}");
    let request =
        signed_post_for_url(&env.auth_token(), &url, STATUS, &query, &callback_params(&sid, "delivered", PHONE));
    assert!(ok_empty(&handler.handle(&request).await));
    assert_eq!(env.item("port-1").await.status, Some(Status::Delivered));
}

#[tokio::test]
async fn bad_missing_or_other_url_signatures_are_refused_and_write_nothing() {
    let env = TestEnv::start().await;
    let item = sent_message(&env, "sig-1", PHONE).await;
    let sid = item.twilio_sid.clone().unwrap();
    let handler = env.webhook_handler().await;
    let query = query_for("sig-1");
    let params = callback_params(&sid, "delivered", PHONE);
    let good = signed_post(&env.auth_token(), STATUS, &query, &params);

    let wrong_token = signed_post("not-the-token", STATUS, &query, &params);
    let missing = WebhookRequest {
        headers: vec![("content-type".into(), "application/x-www-form-urlencoded".into())],
        ..good.clone()
    };
    let other_url = signed_post_for_url(
        &env.auth_token(),
        &format!("https://evil.example{STATUS}?{query}"),
        STATUS,
        &query,
        &params,
    );
    let other_query_url = format!("https://{WEBHOOK_DOMAIN}{STATUS}?{}", query_for("sig-2"));
    let other_query = signed_post_for_url(&env.auth_token(), &other_query_url, STATUS, &query, &params);
    let mut tampered = good.clone();
    tampered.body = form_body(&callback_params(&sid, "read", PHONE)).into_bytes();
    let garbage = good.clone().with_header("X-Twilio-Signature", "not base64 at all");

    for (name, request) in [
        ("wrong token", wrong_token),
        ("missing", missing),
        ("other URL", other_url),
        ("other query", other_query),
        ("tampered body", tampered),
        ("garbage", garbage),
    ] {
        let metrics = Metrics::new("twilio-webhook");
        let response = handler.handle_counted(&request, &metrics).await;
        assert_eq!(response.status, 403, "{name}");
        assert_eq!(metrics.get("SignatureRejected"), 1.0, "{name}");
        assert_eq!(env.item("sig-1").await, item, "{name}: the item is untouched");
    }
    assert!(ok_empty(&handler.handle(&good).await));
    assert_eq!(env.item("sig-1").await.status, Some(Status::Delivered));
}

#[tokio::test]
async fn the_secondary_token_from_the_secret_is_accepted() {
    let mut env = TestEnv::start().await;
    let item = sent_message(&env, "rot-1", PHONE).await;
    let sid = item.twilio_sid.clone().unwrap();
    let secrets = aws_sdk_secretsmanager::Client::new(&env.aws);
    let secret = secrets
        .create_secret()
        .name(unique("twilio"))
        .secret_string(r#"{"auth_token": "primary-token", "auth_token_secondary": "secondary-token"}"#)
        .send()
        .await
        .expect("CreateSecret");
    env.set("TWILIO_SECRET_ARN", secret.arn());
    let handler = env.webhook_handler().await;
    assert_eq!(handler.tokens.len(), 2);
    let query = query_for("rot-1");
    // The environment's token gives way to the secret's.
    let stale = signed_post(&env.auth_token(), STATUS, &query, &callback_params(&sid, "sent", PHONE));
    assert_eq!(handler.handle(&stale).await.status, 403);
    let secondary = signed_post("secondary-token", STATUS, &query, &callback_params(&sid, "sent", PHONE));
    assert!(ok_empty(&handler.handle(&secondary).await));
    assert_eq!(env.item("rot-1").await.twilio_status.as_deref(), Some("sent"));
    let primary = signed_post("primary-token", STATUS, &query, &callback_params(&sid, "delivered", PHONE));
    assert!(ok_empty(&handler.handle(&primary).await));
    assert_eq!(env.item("rot-1").await.status, Some(Status::Delivered));
}

#[tokio::test]
async fn webhook_base_url_replaces_the_function_url() {
    let mut env = TestEnv::start().await;
    let item = sent_message(&env, "base-1", PHONE).await;
    let sid = item.twilio_sid.clone().unwrap();
    env.set("WEBHOOK_BASE_URL", Some("https://hooks.example.org/missive/"));
    let handler = env.webhook_handler().await;
    let query = query_for("base-1");
    let params = callback_params(&sid, "delivered", PHONE);

    // Signed for the Function URL: no longer accepted.
    let direct = signed_post(&env.auth_token(), STATUS, &query, &params);
    assert_eq!(handler.handle(&direct).await.status, 403);
    assert_eq!(env.item("base-1").await, item);

    let public = format!("https://hooks.example.org/missive{STATUS}?{query}");
    let request = signed_post_for_url(&env.auth_token(), &public, STATUS, &query, &params);
    assert!(ok_empty(&handler.handle(&request).await));
    assert_eq!(env.item("base-1").await.status, Some(Status::Delivered));

    let with_port = format!("https://hooks.example.org:443/missive{STATUS}?{query}");
    let request =
        signed_post_for_url(&env.auth_token(), &with_port, STATUS, &query, &callback_params(&sid, "read", PHONE));
    assert!(ok_empty(&handler.handle(&request).await));
    assert_eq!(env.item("base-1").await.status, Some(Status::Read));
}

#[tokio::test]
async fn without_an_auth_token_the_webhook_does_not_start() {
    let mut env = TestEnv::start().await;
    env.set("TWILIO_AUTH_TOKEN", None);
    let err = missive::wiring::webhook_handler(env.webhook_config(), &env.aws).await.err().expect("refused");
    assert!(matches!(err, StartupError::Config(ConfigError::Missing { .. })));
    assert!(err.to_string().contains("TWILIO_AUTH_TOKEN"), "{err}");
}

// ---------------------------------------------------------------------------------------
// Routing and content

#[tokio::test]
async fn unknown_routes_other_methods_and_non_form_bodies_write_nothing() {
    let env = TestEnv::start().await;
    let item = sent_message(&env, "route-1", PHONE).await;
    let sid = item.twilio_sid.clone().unwrap();
    let handler = env.webhook_handler().await;
    let params = callback_params(&sid, "delivered", PHONE);
    let query = query_for("route-1");

    let unknown = signed_post(&env.auth_token(), "/twilio/other", &query, &params);
    assert_eq!(handler.handle(&unknown).await.status, 404);
    let root = signed_post(&env.auth_token(), "/", "", &[]);
    assert_eq!(handler.handle(&root).await.status, 404);

    let mut get = signed_post(&env.auth_token(), STATUS, &query, &params);
    get.method = "GET".into();
    assert_eq!(handler.handle(&get).await.status, 405);
    let lambda = handler
        .handle_lambda(
            lambda_http::request::from_str(
                &serde_json::json!({
                    "version": "2.0", "routeKey": "$default", "rawPath": INBOUND, "rawQueryString": "",
                    "headers": {"host": WEBHOOK_DOMAIN},
                    "requestContext": {"domainName": WEBHOOK_DOMAIN, "http": {"method": "GET", "path": INBOUND}},
                    "isBase64Encoded": false
                })
                .to_string(),
            )
            .expect("a Function URL event"),
        )
        .await;
    assert_eq!(lambda.status(), 405);
    assert_eq!(lambda.headers().get("allow").and_then(|v| v.to_str().ok()), Some("POST"));

    // JSON, even signed over its (absent) parameters: there is nothing to sign.
    let json = WebhookRequest {
        headers: vec![
            ("Content-Type".into(), "application/json".into()),
            (
                "X-Twilio-Signature".into(),
                fake_twilio::sign::<&str, &str>(
                    &env.auth_token(),
                    &format!("https://{WEBHOOK_DOMAIN}{STATUS}?{query}"),
                    &[],
                ),
            ),
        ],
        body: serde_json::json!({"MessageSid": sid, "MessageStatus": "delivered"}).to_string().into_bytes(),
        ..signed_post(&env.auth_token(), STATUS, &query, &params)
    };
    assert_eq!(handler.handle(&json).await.status, 400);
    let mut no_type = signed_post(&env.auth_token(), STATUS, &query, &params);
    no_type.headers.retain(|(name, _)| !name.eq_ignore_ascii_case("content-type"));
    assert_eq!(handler.handle(&no_type).await.status, 400);
    let mut not_utf8 = signed_post(&env.auth_token(), STATUS, &query, &params);
    not_utf8.body = vec![0xff, 0xfe, b'='];
    assert_eq!(handler.handle(&not_utf8).await.status, 400);
    // An unsigned request to an unknown route is a 404, not a 403: routing comes first.
    let unsigned = WebhookRequest { method: "POST".into(), raw_path: "/nope".into(), ..Default::default() };
    assert_eq!(handler.handle(&unsigned).await.status, 404);

    assert_eq!(env.item("route-1").await, item, "nothing written");
    let stop = inbound_request(&env, PHONE, "STOP");
    let mut stop_as_json = stop.clone();
    stop_as_json.headers = vec![("content-type".into(), "text/plain".into())];
    assert_eq!(handler.handle(&stop_as_json).await.status, 400);
    let mut stop_get = stop;
    stop_get.method = "PUT".into();
    assert_eq!(handler.handle(&stop_get).await.status, 405);
    assert_eq!(consent_of(&env, PHONE).await.unwrap().state.as_deref(), Some("opted_in"), "no consent written");
}

fn inbound_request(env: &TestEnv, from: &str, body: &str) -> WebhookRequest {
    let from = format!("whatsapp:{from}");
    signed_post(&env.auth_token(), INBOUND, "", &[("Body", body), ("From", from.as_str()), ("MessageSid", "SMin")])
}

#[tokio::test]
async fn a_base64_encoded_function_url_body_is_accepted() {
    let env = TestEnv::start().await;
    let item = sent_message(&env, "b64-1", PHONE).await;
    let sid = item.twilio_sid.clone().unwrap();
    let handler = env.webhook_handler().await;
    let query = query_for("b64-1");
    let params = callback_params(&sid, "delivered", PHONE);
    let signed = fake_twilio::sign(&env.auth_token(), &format!("https://{WEBHOOK_DOMAIN}{STATUS}?{query}"), &params);
    let event = serde_json::json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": STATUS,
        "rawQueryString": query,
        "headers": {
            "content-type": "application/x-www-form-urlencoded; charset=UTF-8",
            "host": WEBHOOK_DOMAIN,
            "x-twilio-signature": signed,
            "x-forwarded-proto": "https",
        },
        "queryStringParameters": {"message_id": "b64-1"},
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "abcdefghijklmnopqrstuvwxyz012345",
            "domainName": WEBHOOK_DOMAIN,
            "domainPrefix": "abcdefghijklmnopqrstuvwxyz012345",
            "http": {"method": "POST", "path": STATUS, "protocol": "HTTP/1.1", "sourceIp": "54.0.0.1", "userAgent": "TwilioProxy/1.1"},
            "requestId": "r-1",
            "routeKey": "$default",
            "stage": "$default",
            "time": "01/Jan/2026:00:00:00 +0000",
            "timeEpoch": 1767225600000i64
        },
        "body": base64::engine::general_purpose::STANDARD.encode(form_body(&params)),
        "isBase64Encoded": true
    });
    let request = lambda_http::request::from_str(&event.to_string()).expect("a Function URL event");
    let response = handler.handle_lambda(request).await;
    assert_eq!(response.status(), 200);
    assert_eq!(env.item("b64-1").await.status, Some(Status::Delivered));
}

// ---------------------------------------------------------------------------------------
// Status callbacks

#[tokio::test]
async fn delivered_then_a_late_sent_stays_delivered() {
    let env = TestEnv::start().await;
    let item = sent_message(&env, "late-1", PHONE).await;
    let sid = item.twilio_sid.clone().unwrap();
    let handler = env.webhook_handler().await;
    let metrics = post_status(&env, &handler, "late-1", &sid, "delivered").await;
    assert_eq!(metrics.get("Delivered"), 1.0);
    let delivered = env.item("late-1").await;
    assert_eq!(delivered.status, Some(Status::Delivered));
    assert_eq!((delivered.twilio_status.as_deref(), delivered.twilio_rank), (Some("delivered"), Some(4)));
    assert!(delivered.delivered_at.is_some() && delivered.read_at.is_none());
    assert_eq!(delivered.sent_at, item.sent_at, "sent_at kept");

    let metrics = post_status(&env, &handler, "late-1", &sid, "sent").await;
    assert_eq!(metrics.get("Delivered"), 0.0);
    assert_eq!(env.item("late-1").await, delivered, "a late sent changes nothing");
}

#[tokio::test]
async fn read_after_delivered() {
    let env = TestEnv::start().await;
    let item = sent_message(&env, "read-1", PHONE).await;
    let sid = item.twilio_sid.clone().unwrap();
    let handler = env.webhook_handler().await;
    post_status(&env, &handler, "read-1", &sid, "sent").await;
    assert_eq!(env.item("read-1").await.status, Some(Status::Sent));
    post_status(&env, &handler, "read-1", &sid, "delivered").await;
    let delivered_at = env.item("read-1").await.delivered_at;
    let metrics = post_status(&env, &handler, "read-1", &sid, "read").await;
    assert_eq!(metrics.get("Read"), 1.0);
    let read = env.item("read-1").await;
    assert_eq!((read.status, read.twilio_rank), (Some(Status::Read), Some(5)));
    assert!(read.read_at.is_some());
    assert_eq!(read.delivered_at, delivered_at, "delivered_at kept");
    // A read without a delivered before it also sets delivered_at.
    let other = sent_message(&env, "read-2", &phone(2)).await;
    post_status(&env, &handler, "read-2", other.twilio_sid.as_deref().unwrap(), "read").await;
    let read = env.item("read-2").await;
    assert!(read.read_at.is_some() && read.delivered_at.is_some());
}

#[tokio::test]
async fn failed_with_63016_is_undelivered_with_the_code() {
    let env = TestEnv::start().await;
    let item = sent_message(&env, "undeliv-1", PHONE).await;
    let sid = item.twilio_sid.clone().unwrap();
    let handler = env.webhook_handler().await;
    let mut params = callback_params(&sid, "failed", PHONE);
    params.push(("ErrorCode", "63016"));
    let (response, metrics) = post_callback(&env, &handler, "undeliv-1", &params).await;
    assert!(ok_empty(&response));
    assert_eq!(metrics.get("Undelivered"), 1.0);
    let item = env.item("undeliv-1").await;
    assert_eq!(item.status, Some(Status::Undelivered));
    assert_eq!((item.twilio_status.as_deref(), item.last_error_code), (Some("failed"), Some(63016)));
    assert!(item.last_error.as_deref().is_some_and(|e| e.starts_with("63016: ")), "{:?}", item.last_error);
    assert!(consent_of(&env, PHONE).await.unwrap().state.as_deref() == Some("opted_in"), "63016 is no opt-out");
    // A `delivered` has the same rank: it does not overwrite the failure.
    post_status(&env, &handler, "undeliv-1", &sid, "delivered").await;
    assert_eq!(env.item("undeliv-1").await.status, Some(Status::Undelivered), "same rank: nothing");
}

#[tokio::test]
async fn an_undelivered_21610_records_the_opt_out() {
    let env = TestEnv::start().await;
    let item = sent_message(&env, "unsub-1", PHONE).await;
    let sid = item.twilio_sid.clone().unwrap();
    let handler = env.webhook_handler().await;
    let mut params = callback_params(&sid, "undelivered", PHONE);
    params.push(("ErrorCode", "21610"));
    let (response, metrics) = post_callback(&env, &handler, "unsub-1", &params).await;
    assert!(ok_empty(&response));
    assert_eq!((metrics.get("Undelivered"), metrics.get("OptOut")), (1.0, 1.0));
    let item = env.item("unsub-1").await;
    assert_eq!((item.status, item.last_error_code), (Some(Status::Undelivered), Some(21610)));
    let consent = consent_of(&env, PHONE).await.unwrap();
    assert_eq!(
        (consent.state.as_deref().unwrap_or_default(), consent.source.as_deref()),
        ("opted_out", Some("twilio-21610"))
    );
    assert_eq!(consent.evidence.as_deref(), Some(sid.as_str()));
    assert_eq!(consent.history.len(), 2);
    // A replay changes nothing, not even the consent history.
    let (_, metrics) = post_callback(&env, &handler, "unsub-1", &params).await;
    assert_eq!(metrics.get("OptOut"), 0.0);
    assert_eq!(consent_of(&env, PHONE).await.unwrap().history.len(), 2);
    // And the send function now skips this parent.
    let send = env.send_handler().await;
    env.run_send(&send, &[body_message("unsub-2", PHONE, "x")]).await;
    assert_eq!(env.item("unsub-2").await.status, Some(Status::Skipped));
}

fn unsubscribed_params(sid: &str) -> Vec<(&str, &str)> {
    let mut params = callback_params(sid, "undelivered", PHONE);
    params.push(("ErrorCode", "21610"));
    params
}

/// The parts of a Consent record a change would move.
fn consent_summary(
    item: &missive::domain::consent::ConsentItem,
) -> (Option<String>, Option<String>, Option<String>, Option<i64>, usize) {
    (item.state.clone(), item.source.clone(), item.evidence.clone(), item.updated_at, item.history.len())
}

#[tokio::test]
async fn a_replayed_21610_after_start_leaves_the_parent_opted_in() {
    let env = TestEnv::start().await;
    let item = sent_message(&env, "unsub-start-1", PHONE).await;
    let sid = item.twilio_sid.clone().unwrap();
    let handler = env.webhook_handler().await;
    let params = unsubscribed_params(&sid);
    let (response, metrics) = post_callback(&env, &handler, "unsub-start-1", &params).await;
    assert!(ok_empty(&response));
    assert_eq!(metrics.get("OptOut"), 1.0);
    assert_eq!(consent_of(&env, PHONE).await.unwrap().state.as_deref(), Some("opted_out"));

    // The parent comes back with START: opted in by their own keyword.
    let start = inbound(&env, &handler, PHONE, "START", "SMstartagain00000000000000000000").await;
    assert_eq!(start.body, missive::handlers::webhook::twiml(Some(OPT_IN_REPLY)));
    let opted_in = consent_of(&env, PHONE).await.unwrap();
    assert_eq!(
        (opted_in.state.as_deref().unwrap_or_default(), opted_in.source.as_deref()),
        ("opted_in", Some("whatsapp-reply"))
    );

    // Twilio replays the old 21610 report: its write is refused (rank not above), and the
    // opt-out it carried is already in the history. Nothing changes.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (response, metrics) = post_callback(&env, &handler, "unsub-start-1", &params).await;
    assert!(ok_empty(&response));
    assert_eq!((metrics.get("OptOut"), metrics.get("Undelivered")), (0.0, 0.0));
    let after = consent_of(&env, PHONE).await.unwrap();
    assert_eq!(consent_summary(&after), consent_summary(&opted_in), "still opted in, history untouched");
}

#[tokio::test]
async fn a_21610_retried_after_a_failed_consent_write_still_records_the_opt_out() {
    let env = TestEnv::start().await;
    let item = sent_message(&env, "unsub-retry-1", PHONE).await;
    let sid = item.twilio_sid.clone().unwrap();
    let params = unsubscribed_params(&sid);
    // The first delivery: the MessageLog write applies, the Consent table cannot be reached.
    let mut broken = env.webhook_handler().await;
    broken.consent =
        std::sync::Arc::new(missive::adapters::dynamo::DynamoConsent::new(env.dynamo.clone(), unique("NoSuchConsent")));
    let (response, _) = post_callback(&env, &broken, "unsub-retry-1", &params).await;
    assert_eq!(response.status, 500, "Twilio is asked to retry");
    assert_eq!(env.item("unsub-retry-1").await.status, Some(Status::Undelivered));
    assert_eq!(consent_of(&env, PHONE).await.unwrap().state.as_deref(), Some("opted_in"));

    // Twilio's retry: the MessageLog write is refused now, but the opt-out was never recorded.
    let handler = env.webhook_handler().await;
    let (response, metrics) = post_callback(&env, &handler, "unsub-retry-1", &params).await;
    assert!(ok_empty(&response));
    assert_eq!(metrics.get("OptOut"), 1.0);
    let consent = consent_of(&env, PHONE).await.unwrap();
    assert_eq!(
        (consent.state.as_deref().unwrap_or_default(), consent.source.as_deref(), consent.evidence.as_deref()),
        ("opted_out", Some("twilio-21610"), Some(sid.as_str()))
    );
}

#[tokio::test]
async fn a_callback_before_the_outcome_write_heals_the_item() {
    let env = TestEnv::start().await;
    let now = chrono::Utc::now().timestamp();
    let identity = ItemIdentity {
        message_id: MessageId::parse("trip:p-1").unwrap(),
        phone: Some(PhoneNumber::parse(PHONE).unwrap()),
        campaign: Some("trip".into()),
        recipient_id: Some("p-1".into()),
        request: Some(body_message("trip:p-1", PHONE, "x")),
        max_attempts: 3,
        requested_by: None,
    };
    let take = Take { owner: "sender".into(), now, lease_until: now + 120, due: now + 5 };
    assert!(matches!(
        env.log().claim(&identity, &take, ContentKind::Body, 365).await.unwrap(),
        Conditional::Applied(_)
    ));
    let claimed = env.item("trip:p-1").await;
    assert_eq!((claimed.status, claimed.twilio_sid.as_deref()), (Some(Status::Sending), None));
    assert!(claimed.retry_shard.is_some() && claimed.lease_owner.is_some());

    let handler = env.webhook_handler().await;
    // The query as the send function writes it: `message_id=trip%3Ap-1`.
    assert_eq!(query_for("trip:p-1"), "message_id=trip%3Ap-1");
    post_status(&env, &handler, "trip:p-1", "SMhealed000000000000000000000000", "sent").await;
    let healed = env.item("trip:p-1").await;
    assert_eq!(healed.status, Some(Status::Sent));
    assert_eq!(healed.twilio_sid.as_deref(), Some("SMhealed000000000000000000000000"));
    assert_eq!((healed.twilio_status.as_deref(), healed.twilio_rank), (Some("sent"), Some(3)));
    for (name, present) in [
        ("lease_owner", healed.lease_owner.is_some()),
        ("lease_until", healed.lease_until.is_some()),
        ("retry_shard", healed.retry_shard.is_some()),
        ("retry_due_at", healed.retry_due_at.is_some()),
        ("next_attempt_at", healed.next_attempt_at.is_some()),
    ] {
        assert!(!present, "{name} removed");
    }
    assert_eq!(healed.attempts, 1);
    assert!(healed.sent_at.is_some());

    // The send function's outcome write then finds its lease gone and changes nothing.
    let outcome = Outcome::Accepted { sid: "SMhealed000000000000000000000000".into(), twilio_status: "queued".into() };
    let written = env.log().record_outcome(&identity.message_id, "sender", &outcome, now + 1).await.unwrap();
    assert!(matches!(written, Conditional::Refused(_)));
    assert_eq!(env.item("trip:p-1").await, healed);
}

#[tokio::test]
async fn a_replayed_callback_changes_nothing() {
    let env = TestEnv::start().await;
    let item = sent_message(&env, "replay-1", PHONE).await;
    let sid = item.twilio_sid.clone().unwrap();
    let handler = env.webhook_handler().await;
    post_status(&env, &handler, "replay-1", &sid, "delivered").await;
    let once = env.item("replay-1").await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let metrics = post_status(&env, &handler, "replay-1", &sid, "delivered").await;
    assert_eq!(metrics.get("Delivered"), 0.0);
    assert_eq!(env.item("replay-1").await, once, "not even updated_at moves");
}

#[tokio::test]
async fn another_sid_on_an_item_with_a_sid_is_a_duplicate() {
    let env = TestEnv::start().await;
    let item = sent_message(&env, "dupsid-1", PHONE).await;
    let handler = env.webhook_handler().await;
    let other = "SMduplicate0000000000000000000000";
    let metrics = post_status(&env, &handler, "dupsid-1", other, "delivered").await;
    assert_eq!((metrics.get("DuplicateCreate"), metrics.get("Delivered")), (1.0, 0.0));
    let after = env.item("dupsid-1").await;
    assert_eq!(after.extra_sids, Some(vec![other.to_owned()]));
    assert_eq!(
        (after.status, after.twilio_sid.clone(), after.twilio_status.clone()),
        (item.status, item.twilio_sid.clone(), item.twilio_status.clone())
    );
    assert_eq!(after.twilio_rank, item.twilio_rank);
    // The duplicate's next report is not counted again.
    let metrics = post_status(&env, &handler, "dupsid-1", other, "read").await;
    assert_eq!(metrics.get("DuplicateCreate"), 0.0);
    assert_eq!(env.item("dupsid-1").await.extra_sids, Some(vec![other.to_owned()]));
    // The real SID's reports still apply.
    post_status(&env, &handler, "dupsid-1", item.twilio_sid.as_deref().unwrap(), "delivered").await;
    assert_eq!(env.item("dupsid-1").await.status, Some(Status::Delivered));
}

#[tokio::test]
async fn a_callback_without_message_id_or_item_writes_nothing() {
    let env = TestEnv::start().await;
    let item = sent_message(&env, "noid-1", PHONE).await;
    let sid = item.twilio_sid.clone().unwrap();
    let handler = env.webhook_handler().await;
    let request = signed_post(&env.auth_token(), STATUS, "", &callback_params(&sid, "delivered", PHONE));
    assert!(ok_empty(&handler.handle(&request).await));
    let request = signed_post(&env.auth_token(), STATUS, "other=1", &callback_params(&sid, "delivered", PHONE));
    assert!(ok_empty(&handler.handle(&request).await));
    assert_eq!(env.item("noid-1").await, item);
    // A message_id with no item: 200, and no item is created.
    post_status(&env, &handler, "ghost-1", &sid, "delivered").await;
    assert!(env.maybe_item("ghost-1").await.is_none());
    // An unusable message_id: 200, nothing.
    let request =
        signed_post(&env.auth_token(), STATUS, "message_id=%20bad%20id", &callback_params(&sid, "delivered", PHONE));
    assert!(ok_empty(&handler.handle(&request).await));
}

#[tokio::test]
async fn rejected_and_dry_run_items_refuse_callbacks() {
    let mut env = TestEnv::start().await;
    let send = env.send_handler().await;
    env.run_send(&send, &[serde_json::json!({"v": 1, "message_id": "rej-1", "to": "+33612"}).to_string()]).await;
    let rejected = env.item("rej-1").await;
    assert_eq!(rejected.status, Some(Status::Rejected));
    env.set("TWILIO_AUTH_TOKEN", None);
    env.opt_in(&[PHONE]).await;
    let dry = env.send_handler().await;
    env.run_send(&dry, &[body_message("dry-1", PHONE, "x")]).await;
    let dry_item = env.item("dry-1").await;
    assert_eq!(dry_item.status, Some(Status::DryRun));
    let token = env.twilio.auth_token().to_owned();
    env.set("TWILIO_AUTH_TOKEN", Some(&token));
    let handler = env.webhook_handler().await;
    let mut params = callback_params("SMnever00000000000000000000000000", "undelivered", PHONE);
    params.push(("ErrorCode", "21610"));
    post_callback(&env, &handler, "rej-1", &params).await;
    post_callback(&env, &handler, "dry-1", &params).await;
    assert_eq!(env.item("rej-1").await, rejected);
    assert_eq!(env.item("dry-1").await, dry_item);
    assert_eq!(consent_of(&env, PHONE).await.unwrap().state.as_deref(), Some("opted_in"));
}

#[tokio::test]
async fn healing_a_failed_item_is_a_missed_reconcile() {
    let env = TestEnv::start().await;
    let now = chrono::Utc::now().timestamp();
    let identity = ItemIdentity {
        message_id: MessageId::parse("missed-1").unwrap(),
        phone: Some(PhoneNumber::parse(PHONE).unwrap()),
        campaign: None,
        recipient_id: None,
        request: None,
        max_attempts: 1,
        requested_by: None,
    };
    let take = Take { owner: "t".into(), now, lease_until: now + 120, due: now };
    env.log().claim(&identity, &take, ContentKind::Body, 365).await.unwrap();
    let outcome = Outcome::Final {
        status: Status::Failed,
        last_error: "in doubt and not found at Twilio".into(),
        last_error_code: None,
    };
    env.log().record_outcome(&identity.message_id, "t", &outcome, now).await.unwrap();
    let handler = env.webhook_handler().await;
    let metrics = post_status(&env, &handler, "missed-1", "SMmissed000000000000000000000000", "delivered").await;
    assert_eq!((metrics.get("ReconcileMissed"), metrics.get("Delivered")), (1.0, 1.0));
    let item = env.item("missed-1").await;
    assert_eq!(
        (item.status, item.twilio_sid.as_deref()),
        (Some(Status::Delivered), Some("SMmissed000000000000000000000000"))
    );
}

#[tokio::test]
async fn a_status_outside_the_lifecycle_is_ignored() {
    let env = TestEnv::start().await;
    let item = sent_message(&env, "recv-1", PHONE).await;
    let handler = env.webhook_handler().await;
    post_status(&env, &handler, "recv-1", item.twilio_sid.as_deref().unwrap(), "receiving").await;
    assert_eq!(env.item("recv-1").await, item);
}

// ---------------------------------------------------------------------------------------
// Inbound messages

#[tokio::test]
async fn opt_out_keywords_stop_the_parent_and_start_resumes() {
    let env = TestEnv::start().await;
    let handler = env.webhook_handler().await;
    let send = env.send_handler().await;
    for (n, body) in ["STOP", "  arrêt. ", "StOp"].into_iter().enumerate() {
        let parent = phone(100 + n as u32);
        env.opt_in(&[parent.as_str()]).await;
        let sid = format!("SMinbound{n:024}");
        let response = inbound(&env, &handler, &parent, body, &sid).await;
        assert_eq!((response.status, response.content_type), (200, "text/xml; charset=utf-8"), "{body:?}");
        assert!(response.body.contains("<Message>") && response.body.contains("START"), "{}", response.body);
        assert!(response.body.contains("l&apos;école"), "escaped: {}", response.body);
        let consent = consent_of(&env, &parent).await.unwrap();
        assert_eq!(
            (consent.state.as_deref().unwrap_or_default(), consent.source.as_deref()),
            ("opted_out", Some("whatsapp-reply")),
            "{body:?}"
        );
        assert_eq!(consent.evidence.as_deref(), Some(sid.as_str()));
        let last = consent.history.last().unwrap();
        assert_eq!(
            (last.state.as_str(), last.source.as_str(), last.evidence.as_str()),
            ("opted_out", "whatsapp-reply", sid.as_str())
        );

        let id = format!("after-stop-{n}");
        env.run_send(&send, &[body_message(&id, &parent, "Bonjour")]).await;
        assert_eq!(env.item(&id).await.status, Some(Status::Skipped), "{body:?}");
        assert_eq!(env.twilio.created_count_for(&parent), 0);
    }

    // START: opted in again, by the parent's own keyword, and messages flow again.
    let parent = phone(100);
    let response = inbound(&env, &handler, &parent, "Start", "SMstart0000000000000000000000000").await;
    assert_eq!(response.body, missive::handlers::webhook::twiml(Some(OPT_IN_REPLY)));
    let consent = consent_of(&env, &parent).await.unwrap();
    assert_eq!(
        (consent.state.as_deref().unwrap_or_default(), consent.source.as_deref()),
        ("opted_in", Some("whatsapp-reply"))
    );
    assert_eq!(consent.evidence.as_deref(), Some("SMstart0000000000000000000000000"));
    env.run_send(&send, &[body_message("after-start", &parent, "Bonjour")]).await;
    assert_eq!(env.item("after-start").await.status, Some(Status::Sent));
    assert_eq!(env.twilio.created_count_for(&parent), 1);
}

#[tokio::test]
async fn opt_out_type_help_and_other_bodies() {
    let env = TestEnv::start().await;
    let handler = env.webhook_handler().await;
    let parent = phone(7);
    let from = format!("whatsapp:{parent}");
    // Advanced Opt-Out: OptOutType is honoured whatever the body says.
    let params = [("Body", "Arrêtez svp"), ("From", from.as_str()), ("MessageSid", "SMopt"), ("OptOutType", "STOP")];
    let metrics = Metrics::new("twilio-webhook");
    let response = handler.handle_counted(&signed_post(&env.auth_token(), INBOUND, "", &params), &metrics).await;
    assert_eq!(response.body, missive::handlers::webhook::twiml(Some(OPT_OUT_REPLY)));
    assert_eq!(metrics.get("OptOut"), 1.0);
    assert_eq!(consent_of(&env, &parent).await.unwrap().state.as_deref(), Some("opted_out"));

    let help = inbound(&env, &handler, &parent, "help", "SMhelp").await;
    assert!(
        help.body.contains("STOP") && help.body.contains("START") && help.body.contains("<Message>"),
        "{}",
        help.body
    );
    let consent = consent_of(&env, &parent).await.unwrap();
    assert_eq!(consent.history.len(), 1, "HELP changes nothing");
    let now = chrono::Utc::now().timestamp();
    assert!(
        consent.last_inbound_at.is_some_and(|at| (now - 60..=now).contains(&at)),
        "a keyword opens the 24-hour window too: {consent:?}"
    );

    let other = inbound(&env, &handler, &parent, "Merci pour l'info <3", "SMother").await;
    assert_eq!((other.status, other.content_type), (200, "text/xml; charset=utf-8"));
    assert_eq!(other.body, "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>");
    assert_eq!(consent_of(&env, &parent).await.unwrap().history.len(), 1);

    let metrics = Metrics::new("twilio-webhook");
    let yes = handler.handle_counted(&inbound_request(&env, &parent, "oui !"), &metrics).await;
    assert_eq!(yes.body, missive::handlers::webhook::twiml(Some(OPT_IN_REPLY)));
    assert_eq!(metrics.get("OptIn"), 1.0);
    assert_eq!(consent_of(&env, &parent).await.unwrap().state.as_deref(), Some("opted_in"));
}

#[tokio::test]
async fn an_erasure_outlasts_stop_21610_and_start() {
    let env = TestEnv::start().await;
    let parent = PhoneNumber::parse(&phone(11)).unwrap();
    let item = sent_message(&env, "erased-21610", parent.as_str()).await;
    env.consent().suppress(&parent, chrono::Utc::now().timestamp()).await.unwrap();
    let erased = consent_of(&env, parent.as_str()).await.unwrap();
    assert_eq!((erased.source.as_deref(), erased.history.len()), (Some("erasure"), 0));
    let handler = env.webhook_handler().await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;

    // A STOP asks what the record already says: nothing is written.
    let metrics = Metrics::new("twilio-webhook");
    let stop = handler.handle_counted(&inbound_request(&env, parent.as_str(), "STOP"), &metrics).await;
    assert_eq!(stop.status, 200);
    assert_eq!(metrics.get("OptOut"), 0.0);
    assert_eq!(consent_summary(&consent_of(&env, parent.as_str()).await.unwrap()), consent_summary(&erased));

    // Nor does a 21610 report about a message sent before the erasure.
    let mut params = callback_params(item.twilio_sid.as_deref().unwrap(), "undelivered", parent.as_str());
    params.push(("ErrorCode", "21610"));
    let (response, metrics) = post_callback(&env, &handler, "erased-21610", &params).await;
    assert!(ok_empty(&response));
    assert_eq!(metrics.get("OptOut"), 0.0);
    assert_eq!(consent_summary(&consent_of(&env, parent.as_str()).await.unwrap()), consent_summary(&erased));

    // So a START still finds the erasure, and cannot undo it.
    let start = inbound(&env, &handler, parent.as_str(), "START", "SMafterstop").await;
    assert_eq!(start.body, "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>");
    let after = consent_of(&env, parent.as_str()).await.unwrap();
    assert_eq!(consent_summary(&after), consent_summary(&erased), "still the bare suppression record");
    assert_eq!((after.state.as_deref().unwrap_or_default(), after.source.as_deref()), ("opted_out", Some("erasure")));
}

#[tokio::test]
async fn a_badly_signed_inbound_keyword_is_refused_and_leaves_consent_untouched() {
    let env = TestEnv::start().await;
    env.opt_in(&[PHONE]).await;
    let handler = env.webhook_handler().await;
    let before = consent_of(&env, PHONE).await.unwrap();
    let unknown = phone(12);
    for (from, body) in [(PHONE, "STOP"), (unknown.as_str(), "START")] {
        let sender = format!("whatsapp:{from}");
        let params = [("Body", body), ("From", sender.as_str()), ("MessageSid", "SMforged")];
        let forged = signed_post("not-the-token", INBOUND, "", &params);
        let mut unsigned = forged.clone();
        unsigned.headers.retain(|(name, _)| !name.eq_ignore_ascii_case("x-twilio-signature"));
        for (name, request) in [("wrong token", forged), ("no signature", unsigned)] {
            let metrics = Metrics::new("twilio-webhook");
            let response = handler.handle_counted(&request, &metrics).await;
            assert_eq!(response.status, 403, "{name} {body}");
            assert_eq!(
                (metrics.get("SignatureRejected"), metrics.get("OptOut"), metrics.get("OptIn")),
                (1.0, 0.0, 0.0),
                "{name} {body}"
            );
        }
    }
    assert_eq!(consent_summary(&consent_of(&env, PHONE).await.unwrap()), consent_summary(&before));
    assert!(consent_of(&env, &unknown).await.is_none(), "no record created");
}

#[tokio::test]
async fn an_erased_parent_cannot_opt_in_by_keyword() {
    let env = TestEnv::start().await;
    let handler = env.webhook_handler().await;
    let parent = PhoneNumber::parse(&phone(9)).unwrap();
    env.consent().suppress(&parent, chrono::Utc::now().timestamp()).await.unwrap();
    let response = inbound(&env, &handler, parent.as_str(), "START", "SMerased").await;
    assert_eq!(response.body, "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>");
    let consent = consent_of(&env, parent.as_str()).await.unwrap();
    assert_eq!(
        (consent.state.as_deref().unwrap_or_default(), consent.source.as_deref()),
        ("opted_out", Some("erasure"))
    );
}

// ---------------------------------------------------------------------------------------
// Sample events

/// The auth token `events/README.md` says the sample events were signed with.
fn noted_token() -> String {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/events/README.md")).expect("events/README.md");
    let line = readme.lines().find(|line| line.contains("Webhook auth token:")).expect("a `Webhook auth token:` line");
    line.split('`').nth(1).expect("the token between backquotes").to_owned()
}

fn event(name: &str) -> lambda_http::Request {
    let path = format!("{}/events/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    lambda_http::request::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn the_sample_events_are_signed_with_the_noted_token() {
    let token = noted_token();
    for name in ["webhook-status-delivered.json", "webhook-inbound-stop.json"] {
        let request = WebhookRequest::from_lambda(&event(name));
        assert_eq!(request.method, "POST", "{name}");
        let url = request.function_url().expect("a domain name");
        let body = std::str::from_utf8(&request.body).expect("a UTF-8 form body");
        let params: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes()).into_owned().collect();
        let provided = request.header("x-twilio-signature").expect("a signature header");
        assert!(signature::verify(&[token.as_str()], std::slice::from_ref(&url), &params, provided), "{name}: {url}");
        assert!(!signature::verify(&["another-token"], &[url], &params, provided), "{name}");
    }
}

#[tokio::test]
async fn the_sample_events_run_through_the_handler() {
    let mut env = TestEnv::start().await;
    env.set("TWILIO_AUTH_TOKEN", Some(&noted_token()));
    let handler = env.webhook_handler().await;
    let status = WebhookRequest::from_lambda(&event("webhook-status-delivered.json"));
    let id = url::form_urlencoded::parse(status.raw_query.as_bytes())
        .find(|(name, _)| name == "message_id")
        .map(|(_, value)| value.into_owned())
        .expect("the sample callback names a message_id");
    let body = std::str::from_utf8(&status.body).unwrap().to_owned();
    let params: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    let to = params.iter().find(|(k, _)| k == "To").map(|(_, v)| v.clone()).unwrap();
    let now = chrono::Utc::now().timestamp();
    let identity = ItemIdentity {
        message_id: MessageId::parse(&id).unwrap(),
        phone: Some(PhoneNumber::parse(&to).unwrap()),
        campaign: None,
        recipient_id: None,
        request: None,
        max_attempts: 3,
        requested_by: None,
    };
    env.log()
        .claim(&identity, &Take { owner: "o".into(), now, lease_until: now + 120, due: now }, ContentKind::Body, 365)
        .await
        .unwrap();

    let response = handler.handle_lambda(event("webhook-status-delivered.json")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(env.item(&id).await.status, Some(Status::Delivered));

    let response = handler.handle_lambda(event("webhook-inbound-stop.json")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers().get("content-type").and_then(|v| v.to_str().ok()), Some("text/xml; charset=utf-8"));
    let stop = WebhookRequest::from_lambda(&event("webhook-inbound-stop.json"));
    let body = String::from_utf8(stop.body).unwrap();
    let from =
        url::form_urlencoded::parse(body.as_bytes()).find(|(k, _)| k == "From").map(|(_, v)| v.into_owned()).unwrap();
    assert_eq!(consent_of(&env, &from).await.unwrap().state.as_deref(), Some("opted_out"));
}

//! The Twilio client against Twilio's own OpenAPI description, served by Prism (`PRISM_URL`,
//! started by the test command): the requests it builds for body, template and
//! messaging-service sends are accepted, and a request Twilio would refuse is refused.

use std::time::Duration;

use missive::adapters::twilio::TwilioClient;
use missive::config::{Credentials, TwilioAccount};
use missive::domain::message::{MessageId, Template};
use missive::domain::phone::PhoneNumber;
use missive::domain::twilio::Sender;
use missive::ports::{CreateAnswer, CreateRequest, Messenger};
use missive::secret::Secret;

const ACCOUNT_SID: &str = "AC0123456789abcdef0123456789abcdef";

fn prism_url() -> String {
    let url = std::env::var("PRISM_URL")
        .expect("PRISM_URL must point at Prism on loopback: run the tests through `make test`");
    assert!(url.starts_with("http://127.0.0.1"), "Prism must be on loopback: {url}");
    url
}

fn client(sender: Sender, credentials: Credentials) -> TwilioClient {
    TwilioClient::new(TwilioAccount { account_sid: ACCOUNT_SID.into(), credentials, sender }, &prism_url())
}

fn token() -> Credentials {
    Credentials::AuthToken(Secret::new("not-a-real-token"))
}

fn request(sender: Sender) -> CreateRequest {
    CreateRequest {
        message_id: MessageId::parse("trip:p-1").unwrap(),
        to: PhoneNumber::parse("+33612345678").unwrap(),
        sender,
        body: Some("Sortie au musée demain, départ 8 h.".into()),
        template: None,
        media_url: Some("https://example.org/autorisation.pdf".into()),
        status_callback: Some("https://hooks.example.org/twilio/status?message_id=trip%3Ap-1".into()),
        validity_period: Some(3600),
    }
}

async fn expect_accepted(client: &TwilioClient, request: &CreateRequest) {
    match client.create(request, Duration::from_secs(10)).await {
        CreateAnswer::Accepted(message) => assert!(!message.sid.is_empty()),
        other => panic!("Prism refused the request: {other:?}"),
    }
}

#[tokio::test]
async fn a_body_send_from_a_number_matches_twilios_schema() {
    let sender = Sender::From("whatsapp:+14155238886".into());
    expect_accepted(&client(sender.clone(), token()), &request(sender)).await;
}

#[tokio::test]
async fn a_template_send_matches_twilios_schema() {
    let sender = Sender::From("whatsapp:+14155238886".into());
    let mut request = request(sender.clone());
    request.body = None;
    request.media_url = None;
    request.template = Some(Template {
        content_sid: "HX0123456789abcdef0123456789abcdef".into(),
        variables: [("1".to_string(), "Jean".to_string()), ("2".to_string(), "lundi".to_string())].into(),
    });
    expect_accepted(&client(sender, token()), &request).await;
}

#[tokio::test]
async fn a_messaging_service_send_with_an_api_key_matches_twilios_schema() {
    let sender = Sender::MessagingService("MG0123456789abcdef0123456789abcdef".into());
    let credentials =
        Credentials::ApiKey { sid: "SK0123456789abcdef0123456789abcdef".into(), secret: Secret::new("s") };
    expect_accepted(&client(sender.clone(), credentials), &request(sender)).await;
}

#[tokio::test]
async fn requests_twilio_would_refuse_are_refused() {
    let sender = Sender::From("whatsapp:+14155238886".into());
    let url = format!("{}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json", prism_url());
    let http = reqwest::Client::new();

    let without_to: Vec<_> =
        TwilioClient::form(&request(sender.clone())).into_iter().filter(|(name, _)| *name != "To").collect();
    let answer = http.post(&url).basic_auth(ACCOUNT_SID, Some("t")).form(&without_to).send().await.unwrap();
    assert_eq!(answer.status().as_u16(), 422, "a create without To is refused");

    let mut bad_template = request(sender.clone());
    bad_template.body = None;
    bad_template.template = Some(Template { content_sid: "HX123".into(), variables: Default::default() });
    let answer = http
        .post(&url)
        .basic_auth(ACCOUNT_SID, Some("t"))
        .form(&TwilioClient::form(&bad_template))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 422, "a malformed ContentSid is refused");

    let answer = http.post(&url).form(&TwilioClient::form(&request(sender))).send().await.unwrap();
    assert_eq!(answer.status().as_u16(), 401, "a create without credentials is refused");
}

#[tokio::test]
async fn the_reconcile_list_call_matches_twilios_schema() {
    let client = client(Sender::From("whatsapp:+14155238886".into()), token());
    let phone = PhoneNumber::parse("+33612345678").unwrap();
    // Prism answers every page with the spec's example (two messages created at
    // 2019-05-24T17:44:46Z) and its `next_page_uri`, so the pages never end. From a window
    // start before them, the client follows 20 pages, each request valid to Prism (an invalid
    // one is a 4xx) and each answer decoded, then says it could not reach the window's start:
    // an error, never "not found".
    let endless = client.list_since(&phone, Some("whatsapp:+14155238886"), 0).await;
    let error = endless.expect_err("an endless page chain is not a complete list").to_string();
    assert!(error.contains("more than 20 pages"), "{error}");
    // From a window start after them, the first page's messages are older: the list ends there.
    let after_examples = 1_558_719_886 + 1;
    let listed = client
        .list_since(&phone, Some("whatsapp:+14155238886"), after_examples)
        .await
        .expect("Prism answers the list call");
    assert!(listed.is_empty(), "{listed:?}");
}

//! The fake Twilio against a real HTTP client.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{OriginalUri, State};
use axum::http::HeaderMap;
use fake_twilio::{sign, CallbackOptions, CallbackOutcome, FakeTwilio, Fault, Options};
use serde_json::Value;

const TO: &str = "whatsapp:+33612345678";
const FROM: &str = "whatsapp:+14155238886";
const SERVICE: &str = "MG0123456789abcdef0123456789abcdef";

async fn start(options: Options) -> FakeTwilio {
    FakeTwilio::start(options).await.expect("start fake twilio")
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// A create with the account's credentials.
async fn create(twilio: &FakeTwilio, form: &[(&str, &str)]) -> reqwest::Result<reqwest::Response> {
    client()
        .post(twilio.messages_url())
        .basic_auth(twilio.account_sid(), Some(twilio.auth_token()))
        .form(form)
        .send()
        .await
}

async fn create_json(twilio: &FakeTwilio, form: &[(&str, &str)]) -> (u16, Value) {
    let response = create(twilio, form).await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

async fn get_json(twilio: &FakeTwilio, path_and_query: &str) -> (u16, Value) {
    let response = client()
        .get(format!("{}{path_and_query}", twilio.base_url()))
        .basic_auth(twilio.account_sid(), Some(twilio.auth_token()))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

fn is_sid(value: &Value, prefix: &str) -> bool {
    value.as_str().is_some_and(|s| {
        s.len() == 34
            && s.starts_with(prefix)
            && s[2..].bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

#[tokio::test]
async fn create_round_trip() {
    let twilio = start(Options::default()).await;
    let form = [
        ("To", TO),
        ("From", FROM),
        ("Body", "Bonjour"),
        ("MediaUrl", "https://example.com/a.png"),
        ("MediaUrl", "https://example.com/b.png"),
    ];
    let (status, m) = create_json(&twilio, &form).await;
    assert_eq!(status, 201, "{m}");
    assert!(is_sid(&m["sid"], "SM"), "{m}");
    let sid = m["sid"].as_str().unwrap().to_owned();
    assert_eq!(m["account_sid"], twilio.account_sid());
    assert_eq!(m["to"], TO);
    assert_eq!(m["from"], FROM);
    assert_eq!(m["messaging_service_sid"], Value::Null);
    assert_eq!(m["body"], "Bonjour");
    assert_eq!(m["status"], "queued");
    assert_eq!(m["direction"], "outbound-api");
    assert_eq!(m["date_sent"], Value::Null);
    assert_eq!(m["num_segments"], "1");
    assert_eq!(m["num_media"], "2");
    assert_eq!(m["price"], Value::Null);
    assert_eq!(m["error_code"], Value::Null);
    assert_eq!(m["error_message"], Value::Null);
    assert_eq!(m["api_version"], "2010-04-01");
    let date = m["date_created"].as_str().unwrap();
    assert!(chrono::DateTime::parse_from_rfc2822(date).is_ok(), "{date}");
    assert!(date.ends_with(" +0000"));
    assert_eq!(m["date_updated"], m["date_created"]);
    let uri = format!("/2010-04-01/Accounts/{}/Messages/{sid}.json", twilio.account_sid());
    assert_eq!(m["uri"], uri);
    assert_eq!(m["subresource_uris"]["media"], uri.replace(".json", "/Media.json"));

    let (status, fetched) = get_json(&twilio, &uri).await;
    assert_eq!(status, 200);
    assert_eq!(fetched, m);

    let creates = twilio.creates();
    assert_eq!(creates.len(), 1);
    assert_eq!(creates[0].status, Some(201));
    assert_eq!(creates[0].sid.as_deref(), Some(sid.as_str()));
    assert_eq!(creates[0].username.as_deref(), Some(twilio.account_sid()));
    assert_eq!(creates[0].params_named("MediaUrl").len(), 2);
    assert_eq!(twilio.created_count_for("+33612345678"), 1);
    assert_eq!(twilio.messages()[0].sid, sid);

    let (status, missing) = get_json(&twilio, &uri.replace(&sid[2..], &"0".repeat(32))).await;
    assert_eq!((status, missing["code"].as_u64()), (404, Some(20404)));
}

#[tokio::test]
async fn messaging_service_messages_start_accepted_without_from() {
    let twilio = start(Options::default()).await;
    let (status, m) = create_json(&twilio, &[("To", TO), ("MessagingServiceSid", SERVICE), ("Body", "x")]).await;
    assert_eq!(status, 201);
    assert_eq!(m["status"], "accepted");
    assert_eq!(m["from"], Value::Null);
    assert_eq!(m["messaging_service_sid"], SERVICE);
    let sid = m["sid"].as_str().unwrap();
    assert!(twilio.set_message_status(sid, "delivered"));
    let stored = twilio.message(sid).unwrap();
    assert_eq!(stored.status, "delivered");
    assert_eq!(stored.from.as_deref(), Some("whatsapp:+14155238886"));
    assert!(stored.date_sent.is_some());
}

#[tokio::test]
async fn authentication_failures_and_api_keys() {
    let twilio =
        start(Options { api_keys: vec![("SK0123".to_owned(), "key-secret".to_owned())], ..Options::default() }).await;
    let form = [("To", TO), ("From", FROM), ("Body", "x")];
    let wrong = client()
        .post(twilio.messages_url())
        .basic_auth(twilio.account_sid(), Some("wrong"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert!(wrong.headers().contains_key("www-authenticate"));
    let body: Value = wrong.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({"code": 20003, "message": "Authenticate",
            "more_info": "https://www.twilio.com/docs/errors/20003", "status": 401})
    );
    let missing = client().post(twilio.messages_url()).form(&form).send().await.unwrap();
    assert_eq!(missing.status(), 401);

    let with_key =
        client().post(twilio.messages_url()).basic_auth("SK0123", Some("key-secret")).form(&form).send().await.unwrap();
    assert_eq!(with_key.status(), 201);

    let other_account = client()
        .post(twilio.messages_url().replace(twilio.account_sid(), "AC0000000000000000000000000000ffff"))
        .basic_auth(twilio.account_sid(), Some(twilio.auth_token()))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(other_account.status(), 404);
    let body: Value = other_account.json().await.unwrap();
    assert_eq!(body["code"], 20404);

    let creates = twilio.creates();
    let statuses: Vec<_> = creates.iter().map(|c| c.status).collect();
    assert_eq!(statuses, [Some(401), Some(401), Some(201), Some(404)]);
    assert_eq!(creates[2].username.as_deref(), Some("SK0123"));
    assert_eq!(twilio.messages().len(), 1);
}

#[tokio::test]
async fn validation_errors_use_twilio_codes() {
    let twilio = start(Options::default()).await;
    let (status, e) = create_json(&twilio, &[("From", FROM), ("Body", "x")]).await;
    assert_eq!(status, 400);
    assert_eq!(
        e,
        serde_json::json!({"code": 21604, "message": "A 'To' phone number is required.",
            "more_info": "https://www.twilio.com/docs/errors/21604", "status": 400})
    );
    let (_, e) = create_json(&twilio, &[("To", TO), ("Body", "x")]).await;
    assert_eq!(e["code"], 21603);
    let (_, e) = create_json(&twilio, &[("To", TO), ("From", FROM)]).await;
    assert_eq!(e["code"], 21602);
    let (_, e) = create_json(&twilio, &[("To", "whatsapp:+33"), ("From", FROM), ("Body", "x")]).await;
    assert_eq!(e["code"], 21211);
    assert!(twilio.messages().is_empty());
}

#[tokio::test]
async fn scripted_503_then_success() {
    let twilio = start(Options::default()).await;
    let fault =
        Fault::Error { http: 503, code: Some(20503), message: "Service unavailable".to_owned(), retry_after: Some(7) };
    twilio.push_fault(Some("+33612345678"), fault.clone());
    let form = [("To", TO), ("From", FROM), ("Body", "x")];
    // Another recipient does not meet the fault.
    let (status, _) = create_json(&twilio, &[("To", "whatsapp:+33612345679"), ("From", FROM), ("Body", "x")]).await;
    assert_eq!(status, 201);

    let first = create(&twilio, &form).await.unwrap();
    assert_eq!(first.status(), 503);
    assert_eq!(first.headers()["retry-after"], "7");
    let body: Value = first.json().await.unwrap();
    assert_eq!(body["code"], 20503);
    assert_eq!(body["message"], "Service unavailable");
    assert_eq!(twilio.created_count_for(TO), 0);

    let (status, _) = create_json(&twilio, &form).await;
    assert_eq!(status, 201);
    assert_eq!(twilio.created_count_for(TO), 1);
    let creates = twilio.creates();
    assert_eq!(creates[1].fault, Some(fault));
    assert_eq!(creates[2].fault, None);
}

#[tokio::test]
async fn global_faults_and_bare_429() {
    let twilio = start(Options::default()).await;
    twilio.push_fault(Some(TO), Fault::Delay(Duration::from_millis(1)));
    twilio.push_fault(None, Fault::Error { http: 429, code: None, message: String::new(), retry_after: None });
    let form = [("To", TO), ("From", FROM), ("Body", "x")];
    assert_eq!(create(&twilio, &form).await.unwrap().status(), 201);
    let bare = create(&twilio, &form).await.unwrap();
    assert_eq!(bare.status(), 429);
    let body: Value = bare.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"message": "Too Many Requests", "status": 429}));
    assert_eq!(create(&twilio, &form).await.unwrap().status(), 201);
}

#[tokio::test]
async fn transport_faults() {
    let twilio = start(Options::default()).await;
    let form = [("To", TO), ("From", FROM), ("Body", "x")];

    twilio.push_fault(Some(TO), Fault::ResetBeforeAccept);
    assert!(create(&twilio, &form).await.is_err());
    assert_eq!(twilio.created_count_for(TO), 0);

    twilio.push_fault(Some(TO), Fault::ResetAfterAccept);
    assert!(create(&twilio, &form).await.is_err());
    assert_eq!(twilio.created_count_for(TO), 1);
    assert_eq!(twilio.creates()[1].status, None);
    assert!(twilio.creates()[1].sid.is_some());

    twilio.push_fault(Some(TO), Fault::BrokenBodyAfterAccept);
    let broken = create(&twilio, &form).await.unwrap();
    assert_eq!(broken.status(), 201);
    assert!(broken.bytes().await.is_err());
    assert_eq!(twilio.created_count_for(TO), 2);

    twilio.push_fault(Some(TO), Fault::InvalidJson);
    let invalid = create(&twilio, &form).await.unwrap();
    assert_eq!(invalid.status(), 201);
    assert!(invalid.json::<Value>().await.is_err());
    assert_eq!(twilio.created_count_for(TO), 2);

    twilio.push_fault(Some(TO), Fault::AcceptThenStall(Duration::from_secs(5)));
    let stalled = client()
        .post(twilio.messages_url())
        .basic_auth(twilio.account_sid(), Some(twilio.auth_token()))
        .timeout(Duration::from_millis(300))
        .form(&form)
        .send()
        .await;
    assert!(stalled.unwrap_err().is_timeout());
    assert_eq!(twilio.created_count_for(TO), 3);

    twilio.push_fault(Some(TO), Fault::StallThenReject(Duration::from_millis(50)));
    let rejected = create(&twilio, &form).await.unwrap();
    assert_eq!(rejected.status(), 503);
    assert_eq!(twilio.created_count_for(TO), 3);

    // The server is still healthy.
    assert_eq!(create(&twilio, &form).await.unwrap().status(), 201);
}

#[tokio::test]
async fn broken_connections_are_not_retried_by_a_pooled_client() {
    let twilio = start(Options::default()).await;
    let client = client();
    let form = [("To", TO), ("From", FROM), ("Body", "x")];
    let send = || {
        client
            .post(twilio.messages_url())
            .basic_auth(twilio.account_sid(), Some(twilio.auth_token()))
            .form(&form)
            .send()
    };
    for _ in 0..3 {
        assert_eq!(send().await.unwrap().status(), 201);
        twilio.push_fault(Some(TO), Fault::ResetAfterAccept);
        assert!(send().await.is_err());
        twilio.push_fault(Some(TO), Fault::ResetBeforeAccept);
        assert!(send().await.is_err());
    }
    assert_eq!(twilio.creates().len(), 9);
    assert_eq!(twilio.created_count_for(TO), 6);
}

#[tokio::test]
async fn list_is_newest_first_and_paged() {
    let twilio = start(Options::default()).await;
    let mut sids = Vec::new();
    for i in 0..5 {
        let body = format!("message {i}");
        let (_, m) = create_json(&twilio, &[("To", TO), ("From", FROM), ("Body", &body)]).await;
        sids.push(m["sid"].as_str().unwrap().to_owned());
    }
    create_json(&twilio, &[("To", "whatsapp:+33612345670"), ("From", FROM), ("Body", "other")]).await;
    sids.reverse();

    let path = format!("/2010-04-01/Accounts/{}/Messages.json", twilio.account_sid());
    let query = serde_urlencoded::to_string([("To", TO), ("PageSize", "2")]).unwrap();
    let (status, page) = get_json(&twilio, &format!("{path}?{query}")).await;
    assert_eq!(status, 200, "{page}");
    let got: Vec<&str> = page["messages"].as_array().unwrap().iter().map(|m| m["sid"].as_str().unwrap()).collect();
    assert_eq!(got, &sids[0..2]);
    assert_eq!(page["page"], 0);
    assert_eq!(page["page_size"], 2);
    assert_eq!(page["start"], 0);
    assert_eq!(page["end"], 1);
    assert_eq!(page["previous_page_uri"], Value::Null);
    assert_eq!(page["first_page_uri"], format!("{path}?To=whatsapp%3A%2B33612345678&PageSize=2&Page=0"));
    assert_eq!(page["uri"], page["first_page_uri"]);

    let mut seen = got.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let mut next = page["next_page_uri"].as_str().map(str::to_owned);
    let mut pages = 1;
    let mut last_page = page;
    while let Some(uri) = next {
        let (status, page) = get_json(&twilio, &uri).await;
        assert_eq!(status, 200);
        assert_eq!(page["page"], pages);
        assert!(page["previous_page_uri"].is_string());
        for m in page["messages"].as_array().unwrap() {
            seen.push(m["sid"].as_str().unwrap().to_owned());
        }
        next = page["next_page_uri"].as_str().map(str::to_owned);
        pages += 1;
        last_page = page;
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, sids);
    assert_eq!(last_page["start"], 4);
    assert_eq!(last_page["end"], 4);

    // The previous page of the last one is the middle one.
    let (_, previous) = get_json(&twilio, last_page["previous_page_uri"].as_str().unwrap()).await;
    let got: Vec<&str> = previous["messages"].as_array().unwrap().iter().map(|m| m["sid"].as_str().unwrap()).collect();
    assert_eq!(got, &sids[2..4]);

    // Page numbers alone work too; everything unfiltered is newest first.
    let (_, all) = get_json(&twilio, &format!("{path}?PageSize=50")).await;
    assert_eq!(all["messages"].as_array().unwrap().len(), 6);
    assert_eq!(all["messages"][0]["to"], "whatsapp:+33612345670");
    assert_eq!(all["next_page_uri"], Value::Null);
    // A queued message has no date_sent, so a DateSent filter does not find it.
    let (_, by_date) = get_json(&twilio, &format!("{path}?DateSent%3E=2000-01-01")).await;
    assert_eq!(by_date["messages"].as_array().unwrap().len(), 0);
    assert_eq!(twilio.list_calls(), 6);
}

#[tokio::test]
async fn rate_limit_per_sender() {
    let twilio = start(Options { rate_per_sender: Some(1), ..Options::default() }).await;
    let form = [("To", TO), ("From", FROM), ("Body", "x")];
    assert_eq!(create(&twilio, &form).await.unwrap().status(), 201);
    let limited = create(&twilio, &form).await.unwrap();
    assert_eq!(limited.status(), 429);
    let body: Value = limited.json().await.unwrap();
    assert_eq!(body["code"], 20429);
    assert_eq!(body["status"], 429);
    // Another sender has its own bucket.
    let other = [("To", TO), ("MessagingServiceSid", SERVICE), ("Body", "x")];
    assert_eq!(create(&twilio, &other).await.unwrap().status(), 201);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(create(&twilio, &form).await.unwrap().status(), 201);
    assert_eq!(twilio.created_count_for(TO), 3);
    let statuses: Vec<_> = twilio.creates().iter().map(|c| c.status).collect();
    assert_eq!(statuses, [Some(201), Some(429), Some(201), Some(201)]);
}

/// What a callback receiver got: full URL, signature header, form.
type Received = Arc<Mutex<Vec<(String, String, Vec<(String, String)>)>>>;

async fn receive(
    State(received): State<Received>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: String,
) -> &'static str {
    let host = headers["host"].to_str().unwrap().to_owned();
    let signature = headers.get("x-twilio-signature").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    let params: Vec<(String, String)> = serde_urlencoded::from_str(&body).unwrap();
    received.lock().unwrap().push((format!("http://{host}{uri}"), signature, params));
    ""
}

#[tokio::test]
async fn status_callbacks_arrive_signed() {
    let received: Received = Arc::default();
    let app =
        axum::Router::new().route("/twilio/status", axum::routing::post(receive)).with_state(Arc::clone(&received));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let receiver = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let twilio = start(Options {
        callbacks: Some(CallbackOptions { delay: Duration::from_millis(20), read: true }),
        ..Options::default()
    })
    .await;
    twilio.set_callback_outcome("+33612345679", CallbackOutcome::Undelivered(63016));
    let callback = format!("http://{receiver}/twilio/status?message_id=m-1");
    let (status, m) = create_json(
        &twilio,
        &[("To", TO), ("MessagingServiceSid", SERVICE), ("Body", "x"), ("StatusCallback", &callback)],
    )
    .await;
    assert_eq!(status, 201);
    let sid = m["sid"].as_str().unwrap().to_owned();
    let callback2 = format!("http://{receiver}/twilio/status?message_id=m-2");
    let (_, m2) = create_json(
        &twilio,
        &[("To", "whatsapp:+33612345679"), ("From", FROM), ("Body", "y"), ("StatusCallback", &callback2)],
    )
    .await;
    let sid2 = m2["sid"].as_str().unwrap().to_owned();

    for _ in 0..500 {
        if received.lock().unwrap().len() >= 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let received = received.lock().unwrap().clone();
    assert_eq!(received.len(), 5, "{received:?}");
    let mut statuses = Vec::new();
    for (url, signature, params) in &received {
        assert_eq!(signature, &sign(twilio.auth_token(), url, params), "{url}");
        let get = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        assert_eq!(get("AccountSid"), Some(twilio.account_sid()));
        assert_eq!(get("ApiVersion"), Some("2010-04-01"));
        assert_eq!(get("ChannelPrefix"), Some("whatsapp"));
        assert_eq!(get("MessageStatus"), get("SmsStatus"));
        assert_eq!(get("MessageSid"), get("SmsSid"));
        statuses.push((
            get("MessageSid").unwrap().to_owned(),
            get("MessageStatus").unwrap().to_owned(),
            get("ErrorCode").map(str::to_owned),
        ));
        if get("MessageSid") == Some(sid.as_str()) {
            assert!(url.ends_with("message_id=m-1"));
            assert_eq!(get("From"), Some("whatsapp:+14155238886"));
            assert_eq!(get("MessagingServiceSid"), Some(SERVICE));
        }
    }
    let of = |s: &str| -> Vec<(String, Option<String>)> {
        statuses.iter().filter(|(x, _, _)| x == s).map(|(_, st, c)| (st.clone(), c.clone())).collect()
    };
    assert_eq!(of(&sid), [("sent".to_owned(), None), ("delivered".to_owned(), None), ("read".to_owned(), None)]);
    assert_eq!(of(&sid2), [("sent".to_owned(), None), ("undelivered".to_owned(), Some("63016".to_owned()))]);
    assert_eq!(twilio.message(&sid).unwrap().status, "read");
    let undelivered = twilio.message(&sid2).unwrap();
    assert_eq!((undelivered.status.as_str(), undelivered.error_code), ("undelivered", Some(63016)));
    assert_eq!(twilio.callbacks_sent().len(), 5);
    assert!(twilio.callbacks_sent().iter().all(|c| c.status == Some(200)));
}

#[tokio::test]
async fn shutdown_closes_the_port() {
    let twilio = start(Options::default()).await;
    let addr = twilio.addr();
    let form = [("To", TO), ("From", FROM), ("Body", "x")];
    assert_eq!(create(&twilio, &form).await.unwrap().status(), 201);
    twilio.shutdown().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[test]
fn binary_prints_its_address_and_stops_on_sigterm() {
    use std::io::{BufRead as _, BufReader};
    use std::process::{Command, Stdio};

    let dir = std::env::temp_dir().join(format!("fake-twilio-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let behaviour = dir.join("behaviour.json");
    std::fs::write(
        &behaviour,
        r#"{"+33612345603": [{"error": {"http": 503, "code": 20503, "message": "Service unavailable"}}]}"#,
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_fake-twilio"))
        .args(["--behaviour", behaviour.to_str().unwrap(), "--rate-per-sender", "10"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let base = line.trim().strip_prefix("fake-twilio listening on ").unwrap().to_owned();
    assert!(base.starts_with("http://127.0.0.1:"), "{line}");

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let statuses = runtime.block_on(async {
        let url = format!("{base}/2010-04-01/Accounts/{}/Messages.json", fake_twilio::TEST_ACCOUNT_SID);
        let mut statuses = Vec::new();
        for _ in 0..2 {
            let response = client()
                .post(&url)
                .basic_auth(fake_twilio::TEST_ACCOUNT_SID, Some(fake_twilio::TEST_AUTH_TOKEN))
                .form(&[("To", "whatsapp:+33612345603"), ("From", FROM), ("Body", "x")])
                .send()
                .await
                .unwrap();
            statuses.push(response.status().as_u16());
        }
        statuses
    });
    assert_eq!(statuses, [503, 201]);

    let killed = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

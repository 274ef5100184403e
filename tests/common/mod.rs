//! The one shared set-up of the integration tests: fresh, uniquely named tables and queues on
//! the moto server that the test command started (`AWS_ENDPOINT_URL`), a fake Twilio on a
//! random loopback port, and the real handlers built as the functions build them.
#![allow(dead_code)]

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use aws_lambda_events::event::sqs::SqsBatchResponse;
use fake_twilio::{FakeTwilio, Options};
use missive::adapters::dynamo::{DynamoConsent, DynamoMessageLog};
use missive::adapters::provision::{create_queues, create_table};
use missive::config::{Env, SendConfig};
use missive::domain::consent::{ConsentChange, ConsentSource, ConsentState};
use missive::domain::phone::PhoneNumber;
use missive::handlers::send::SendHandler;
use missive::ports::{ConsentStore, LogItem, MessageLog};
use missive::schema::{CAMPAIGNS, CONSENT, INBOX, MESSAGE_LOG};

pub const FROM: &str = "whatsapp:+14155238886";
pub const PHONE: &str = "+33612345678";

pub use test_support::{sqs_event, unique};

/// The emulator's SDK configuration: the moto server `make test` started, or one started
/// from the project's venv when `AWS_ENDPOINT_URL` is not set (`test_support`).
pub async fn aws() -> aws_config::SdkConfig {
    if let Err(err) = test_support::ensure_emulator() {
        panic!("{err}");
    }
    missive::wiring::aws_config().await
}

/// A number of the French mobile range, distinct per `n`.
pub fn phone(n: u32) -> String {
    format!("+336{:08}", 12_000_000 + n)
}

/// A version-1 body message.
pub fn body_message(id: &str, to: &str, text: &str) -> String {
    serde_json::json!({"v": 1, "message_id": id, "to": to, "body": text}).to_string()
}

pub struct TestEnv {
    pub aws: aws_config::SdkConfig,
    pub dynamo: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub log_table: String,
    pub consent_table: String,
    pub campaign_table: String,
    pub inbox_table: String,
    pub queue_url: String,
    pub dlq_url: String,
    pub twilio: FakeTwilio,
    pub vars: HashMap<&'static str, String>,
}

impl TestEnv {
    pub async fn start() -> TestEnv {
        Self::with_twilio(Options::default()).await
    }

    pub async fn with_twilio(options: Options) -> TestEnv {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
            .with_test_writer()
            .try_init();
        let aws = aws().await;
        let dynamo = aws_sdk_dynamodb::Client::new(&aws);
        let sqs = aws_sdk_sqs::Client::new(&aws);
        let log_table = unique("MessageLog");
        let consent_table = unique("Consent");
        create_table(&dynamo, &log_table, &MESSAGE_LOG).await.expect("create MessageLog");
        create_table(&dynamo, &consent_table, &CONSENT).await.expect("create Consent");
        let campaign_table = unique("Campaigns");
        let inbox_table = unique("Inbox");
        create_table(&dynamo, &campaign_table, &CAMPAIGNS).await.expect("create Campaigns");
        create_table(&dynamo, &inbox_table, &INBOX).await.expect("create Inbox");
        let queues = create_queues(&sqs, &unique("send"), 30).await.expect("create queues");
        let twilio = FakeTwilio::start(options).await.expect("start fake Twilio");
        let vars = HashMap::from([
            ("MESSAGE_LOG_TABLE", log_table.clone()),
            ("CONSENT_TABLE", consent_table.clone()),
            ("CAMPAIGN_TABLE", campaign_table.clone()),
            ("INBOX_TABLE", inbox_table.clone()),
            ("SEND_QUEUE_URL", queues.queue_url.clone()),
            ("TWILIO_ACCOUNT_SID", twilio.account_sid().to_owned()),
            ("TWILIO_AUTH_TOKEN", twilio.auth_token().to_owned()),
            ("TWILIO_WHATSAPP_FROM", FROM.to_owned()),
            ("TWILIO_API_BASE_URL", twilio.base_url()),
            ("TWILIO_TIMEOUT_MS", "2000".to_owned()),
            ("STATUS_CALLBACK_URL", "https://hooks.example.org/twilio/status".to_owned()),
            ("BACKOFF_BASE_SECONDS", "0".to_owned()),
            ("RECONCILE_DELAY_SECONDS", "0".to_owned()),
        ]);
        TestEnv {
            aws,
            dynamo,
            sqs,
            log_table,
            consent_table,
            campaign_table,
            inbox_table,
            queue_url: queues.queue_url,
            dlq_url: queues.dlq_url,
            twilio,
            vars,
        }
    }

    /// Sets (or with `None`, unsets) a configuration variable for handlers built afterwards.
    pub fn set(&mut self, name: &'static str, value: Option<&str>) {
        match value {
            Some(value) => self.vars.insert(name, value.to_owned()),
            None => self.vars.remove(name),
        };
    }

    pub fn env(&self) -> Env<'_> {
        Env::from_fn(|name| self.vars.get(name).cloned())
    }

    pub fn send_config(&self) -> SendConfig {
        SendConfig::from_env(&self.env()).expect("valid test configuration")
    }

    /// The send handler exactly as the `send` function builds it.
    pub async fn send_handler(&self) -> SendHandler {
        missive::wiring::send_handler(self.send_config(), &self.aws).await.expect("send handler")
    }

    pub fn log(&self) -> DynamoMessageLog {
        DynamoMessageLog::new(self.dynamo.clone(), &self.log_table)
    }

    pub fn consent(&self) -> DynamoConsent {
        DynamoConsent::new(self.dynamo.clone(), &self.consent_table)
    }

    pub async fn item(&self, id: &str) -> LogItem {
        self.log().get(id).await.expect("GetItem").unwrap_or_else(|| panic!("no MessageLog item {id}"))
    }

    pub async fn maybe_item(&self, id: &str) -> Option<LogItem> {
        self.log().get(id).await.expect("GetItem")
    }

    pub async fn set_consent(&self, phone: &str, state: ConsentState) {
        let change = ConsentChange { state, source: ConsentSource::Cli, has_evidence: true };
        let applied = self
            .consent()
            .change(&PhoneNumber::parse(phone).unwrap(), change, "test set-up", chrono::Utc::now().timestamp())
            .await
            .expect("consent change");
        assert!(applied);
    }

    pub async fn opt_in(&self, phones: &[&str]) {
        for phone in phones {
            self.set_consent(phone, ConsentState::OptedIn).await;
        }
    }

    /// Runs one SQS batch of these bodies through `handler`, as Lambda would (15 minutes left).
    pub async fn run_send(&self, handler: &SendHandler, bodies: &[String]) -> SqsBatchResponse {
        handler.handle(sqs_event(bodies), SystemTime::now() + Duration::from_secs(900)).await
    }

    /// Receives and deletes every message that becomes visible within `wait`.
    pub async fn drain_queue(&self, url: &str, wait: Duration) -> Vec<String> {
        let deadline = std::time::Instant::now() + wait;
        let mut bodies = Vec::new();
        while std::time::Instant::now() < deadline {
            let output = self
                .sqs
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .expect("ReceiveMessage");
            for message in output.messages.unwrap_or_default() {
                bodies.push(message.body.clone().unwrap_or_default());
                self.sqs
                    .delete_message()
                    .queue_url(url)
                    .receipt_handle(message.receipt_handle.unwrap_or_default())
                    .send()
                    .await
                    .expect("DeleteMessage");
            }
        }
        bodies
    }

    /// What a `send` invocation that died right after its create left at Twilio: the message,
    /// created directly at the fake Twilio from our sender.
    pub async fn create_at_twilio(&self, to: &str, body: &str) {
        let created = reqwest::Client::new()
            .post(self.twilio.messages_url())
            .basic_auth(self.twilio.account_sid(), Some(self.twilio.auth_token()))
            .form(&[("To", format!("whatsapp:{to}").as_str()), ("From", FROM), ("Body", body)])
            .send()
            .await
            .expect("create at the fake Twilio");
        assert_eq!(created.status().as_u16(), 201);
    }

    /// The bodies re-enqueued on the send queue (waits long enough for a zero delay).
    pub async fn requeued(&self) -> Vec<String> {
        self.drain_queue(&self.queue_url, Duration::from_secs(2)).await
    }
}

/// The identifiers of a response's batch item failures.
pub fn failures(response: &SqsBatchResponse) -> Vec<String> {
    let mut ids: Vec<String> = response.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect();
    ids.sort();
    ids
}

/// The Function URL host the webhook tests post to.
pub const WEBHOOK_DOMAIN: &str = "abcdefghijklmnopqrstuvwxyz012345.lambda-url.eu-west-3.on.aws";

impl TestEnv {
    pub fn webhook_config(&self) -> missive::config::WebhookConfig {
        missive::config::WebhookConfig::from_env(&self.env()).expect("valid webhook configuration")
    }

    /// The webhook handler exactly as the `twilio-webhook` function builds it.
    pub async fn webhook_handler(&self) -> missive::handlers::webhook::WebhookHandler {
        missive::wiring::webhook_handler(self.webhook_config(), &self.aws).await.expect("webhook handler")
    }

    /// The auth token the webhook checks signatures with (the fake Twilio's).
    pub fn auth_token(&self) -> String {
        self.vars.get("TWILIO_AUTH_TOKEN").cloned().unwrap_or_default()
    }
}

/// A form POST to the webhook's Function URL, signed with `token` for the URL Twilio would
/// have used (`https://WEBHOOK_DOMAIN` + path + `?query`).
pub fn signed_post(
    token: &str,
    path: &str,
    query: &str,
    params: &[(&str, &str)],
) -> missive::handlers::webhook::WebhookRequest {
    let url = if query.is_empty() {
        format!("https://{WEBHOOK_DOMAIN}{path}")
    } else {
        format!("https://{WEBHOOK_DOMAIN}{path}?{query}")
    };
    signed_post_for_url(token, &url, path, query, params)
}

/// A form POST to the webhook's Function URL, signed with `token` for `signed_url`.
pub fn signed_post_for_url(
    token: &str,
    signed_url: &str,
    path: &str,
    query: &str,
    params: &[(&str, &str)],
) -> missive::handlers::webhook::WebhookRequest {
    let body = form_body(params);
    missive::handlers::webhook::WebhookRequest::form_post(WEBHOOK_DOMAIN, path, query, body)
        .with_header("X-Twilio-Signature", &fake_twilio::sign(token, signed_url, params))
}

/// `application/x-www-form-urlencoded` of `params`, in order.
pub fn form_body(params: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish()
}

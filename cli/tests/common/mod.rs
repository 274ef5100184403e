//! Shared set-up of the CLI's tests: fresh, uniquely named tables and queues on the moto
//! server the test command started (`AWS_ENDPOINT_URL`), the real `missive` binary run with
//! them in its environment, and the real `send` handler (against a fake Twilio) to process
//! what the CLI enqueued.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use aws_sdk_dynamodb::types::AttributeValue;
use fake_twilio::{FakeTwilio, Options};
use missive::adapters::dynamo::{DynamoConsent, DynamoMessageLog};
use missive::adapters::provision::{create_queues, create_table};
use missive::config::{Env, SendConfig};
use missive::domain::consent::ConsentItem;
use missive::domain::consent::{ConsentChange, ConsentSource, ConsentState};
use missive::domain::phone::PhoneNumber;
use missive::handlers::send::SendHandler;
use missive::ports::{ConsentStore, LogItem, MessageLog};
use missive::schema::{CAMPAIGNS, CONSENT, INBOX, MESSAGE_LOG};

pub const TEMPLATE: &str = "HX0123456789abcdef0123456789abcdef";
pub const FROM: &str = "whatsapp:+14155238886";

pub use test_support::{sqs_event, unique};

/// A French mobile number, distinct per `n` (E.164).
pub fn phone(n: u32) -> String {
    format!("+336{:08}", 13_000_000 + n)
}

/// The same number as a person writes it (`06 13 00 00 07`).
pub fn human_phone(n: u32) -> String {
    let national = format!("06{:08}", 13_000_000 + n);
    national.as_bytes().chunks(2).map(|c| std::str::from_utf8(c).unwrap()).collect::<Vec<_>>().join(" ")
}

/// The repository's root (the sample campaign lives in `events/campaign/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("cli/ is in the workspace").to_path_buf()
}

/// A directory of its own for a test's files.
pub fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(unique("missive-cli-test"));
    std::fs::create_dir_all(&dir).expect("create a temporary directory");
    dir
}

/// Writes `text` to `name` in a fresh directory; returns its path.
pub fn write_file(name: &str, text: &str) -> PathBuf {
    let path = temp_dir().join(name);
    std::fs::write(&path, text).expect("write a test file");
    path
}

/// The output of one run of the binary.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The stdout as one JSON document (the last line, for `--watch`).
    pub fn json(&self) -> serde_json::Value {
        let line = self.stdout.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("");
        serde_json::from_str(line).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }

    #[track_caller]
    pub fn ok(&self) -> &Self {
        assert_eq!(self.code, 0, "expected success: {self:#?}");
        self
    }

    #[track_caller]
    pub fn code(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "expected exit {code}: {self:#?}");
        self
    }
}

/// Tables, queues, and the environment that names them.
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
    /// What the binary gets on top of the AWS variables (flags could say the same).
    pub vars: HashMap<&'static str, String>,
}

/// The moto server `make test` started, or one started from the project's venv when
/// `AWS_ENDPOINT_URL` is not set (`test_support`); the `missive` binary inherits it.
fn check_emulator() {
    if let Err(err) = test_support::ensure_emulator() {
        panic!("{err}");
    }
}

impl TestEnv {
    pub async fn start() -> TestEnv {
        let _ = tracing_subscriber_init();
        check_emulator();
        let aws = missive::wiring::aws_config().await;
        let dynamo = aws_sdk_dynamodb::Client::new(&aws);
        let sqs = aws_sdk_sqs::Client::new(&aws);
        let log_table = unique("cli-MessageLog");
        let consent_table = unique("cli-Consent");
        create_table(&dynamo, &log_table, &MESSAGE_LOG).await.expect("create MessageLog");
        create_table(&dynamo, &consent_table, &CONSENT).await.expect("create Consent");
        let campaign_table = unique("cli-Campaigns");
        let inbox_table = unique("cli-Inbox");
        create_table(&dynamo, &campaign_table, &CAMPAIGNS).await.expect("create Campaigns");
        create_table(&dynamo, &inbox_table, &INBOX).await.expect("create Inbox");
        // A short visibility timeout: what a failed invocation leaves comes back quickly.
        let queues = create_queues(&sqs, &unique("cli-send"), 5).await.expect("create queues");
        let vars = HashMap::from([
            ("MESSAGE_LOG_TABLE", log_table.clone()),
            ("CONSENT_TABLE", consent_table.clone()),
            ("CAMPAIGN_TABLE", campaign_table.clone()),
            ("INBOX_TABLE", inbox_table.clone()),
            ("SEND_QUEUE_URL", queues.queue_url.clone()),
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
            vars,
        }
    }

    /// The `missive` command with this environment (and nothing of the developer's).
    pub fn command(&self, args: &[&str]) -> std::process::Command {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_missive"));
        command.args(args);
        for name in [
            "DLQ_URL",
            "MISSIVE_PHONE_REGION",
            "MESSAGE_LOG_TABLE",
            "CONSENT_TABLE",
            "CAMPAIGN_TABLE",
            "INBOX_TABLE",
            "SEND_QUEUE_URL",
        ] {
            command.env_remove(name);
        }
        command.envs(self.vars.iter().map(|(k, v)| (*k, v.as_str())));
        command.env("RUST_LOG", "warn");
        command
    }

    /// Runs `missive ARGS…` to completion.
    pub async fn missive(&self, args: &[&str]) -> Run {
        run(self.command(args)).await
    }

    pub fn log(&self) -> DynamoMessageLog {
        DynamoMessageLog::new(self.dynamo.clone(), &self.log_table)
    }

    pub fn consent(&self) -> DynamoConsent {
        DynamoConsent::new(self.dynamo.clone(), &self.consent_table)
    }

    pub async fn item(&self, id: &str) -> Option<LogItem> {
        self.log().get(id).await.expect("GetItem")
    }

    pub async fn consent_item(&self, phone: &str) -> Option<ConsentItem> {
        self.consent().item(&PhoneNumber::parse(phone).unwrap()).await.expect("GetItem Consent")
    }

    pub async fn set_consent(&self, phone: &str, state: ConsentState, source: ConsentSource, evidence: &str) {
        let change = ConsentChange { state, source, has_evidence: true };
        let applied = self
            .consent()
            .change(&PhoneNumber::parse(phone).unwrap(), change, evidence, chrono::Utc::now().timestamp())
            .await
            .expect("consent change");
        assert!(applied, "set-up consent change refused");
    }

    /// Every item of the MessageLog table (a Scan: fine in a test's own table, never in the code).
    pub async fn all_items(&self) -> Vec<HashMap<String, AttributeValue>> {
        scan(&self.dynamo, &self.log_table).await
    }

    pub async fn all_consent(&self) -> Vec<HashMap<String, AttributeValue>> {
        scan(&self.dynamo, &self.consent_table).await
    }

    /// Receives and deletes every message that becomes visible within `wait`.
    pub async fn drain(&self, url: &str, wait: Duration) -> Vec<String> {
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

    /// What the CLI put on the send queue.
    pub async fn enqueued(&self) -> Vec<serde_json::Value> {
        self.drain(&self.queue_url, Duration::from_secs(1))
            .await
            .iter()
            .map(|b| serde_json::from_str(b).expect("queue bodies are JSON"))
            .collect()
    }

    /// The send configuration of these tables and queue, against `twilio`.
    pub fn send_config(&self, twilio: &FakeTwilio, extra: &[(&'static str, &str)]) -> SendConfig {
        let mut vars: HashMap<&'static str, String> = HashMap::from([
            ("MESSAGE_LOG_TABLE", self.log_table.clone()),
            ("CONSENT_TABLE", self.consent_table.clone()),
            ("CAMPAIGN_TABLE", self.campaign_table.clone()),
            ("INBOX_TABLE", self.inbox_table.clone()),
            ("SEND_QUEUE_URL", self.queue_url.clone()),
            ("TWILIO_ACCOUNT_SID", twilio.account_sid().to_owned()),
            ("TWILIO_AUTH_TOKEN", twilio.auth_token().to_owned()),
            ("TWILIO_WHATSAPP_FROM", FROM.to_owned()),
            ("TWILIO_API_BASE_URL", twilio.base_url()),
            ("TWILIO_TIMEOUT_MS", "2000".to_owned()),
            ("BACKOFF_BASE_SECONDS", "0".to_owned()),
            ("RECONCILE_DELAY_SECONDS", "0".to_owned()),
        ]);
        for (name, value) in extra {
            vars.insert(name, (*value).to_owned());
        }
        SendConfig::from_env(&Env::from_fn(move |name| vars.get(name).cloned())).expect("valid send configuration")
    }

    /// The `send` handler exactly as the function builds it.
    pub async fn send_handler(&self, twilio: &FakeTwilio, extra: &[(&'static str, &str)]) -> SendHandler {
        missive::wiring::send_handler(self.send_config(twilio, extra), &self.aws).await.expect("send handler")
    }

    /// Drains the send queue into `handler`, batch after batch, as Lambda would.
    pub async fn process_queue(&self, handler: &SendHandler) -> usize {
        let bodies = self.drain(&self.queue_url, Duration::from_secs(1)).await;
        for chunk in bodies.chunks(10) {
            let response = handler.handle(sqs_event(chunk), SystemTime::now() + Duration::from_secs(60)).await;
            assert!(response.batch_item_failures.is_empty(), "send returned records: {response:?}");
        }
        bodies.len()
    }
}

/// Runs a prepared command to completion off the async threads.
pub async fn run(mut command: std::process::Command) -> Run {
    let output = tokio::task::spawn_blocking(move || command.output()).await.expect("join").expect("run missive");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

async fn scan(dynamo: &aws_sdk_dynamodb::Client, table: &str) -> Vec<HashMap<String, AttributeValue>> {
    let mut pages = dynamo.scan().table_name(table).into_paginator().items().send();
    let mut items = Vec::new();
    while let Some(item) = pages.next().await {
        items.push(item.expect("Scan"));
    }
    items
}

/// A fake Twilio with default options.
pub async fn fake_twilio() -> FakeTwilio {
    FakeTwilio::start(Options::default()).await.expect("start fake Twilio")
}

fn tracing_subscriber_init() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_test_writer()
        .try_init()
}

/// A text attribute of a raw item.
pub fn text(item: &HashMap<String, AttributeValue>, name: &str) -> Option<String> {
    match item.get(name) {
        Some(AttributeValue::S(value)) => Some(value.clone()),
        _ => None,
    }
}

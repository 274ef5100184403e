//! What every scenario needs: the emulator clients, a counting proxy in front of moto (the
//! functions' only way to AWS, so that every DynamoDB and SQS request they make is counted),
//! opted-in phones, fresh tables and queues, a fake Twilio, the function's environment.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use fake_twilio::{FakeTwilio, Options};
use futures::StreamExt as _;
use lambda_harness::{FunctionSpec, TcpProxy};
use missive::adapters::dynamo::DynamoConsent;
use missive::adapters::provision::{create_queues, create_table};
use missive::domain::consent::{ConsentChange, ConsentSource, ConsentState};
use missive::domain::phone::PhoneNumber;
use missive::ports::ConsentStore;
use missive::schema::{CAMPAIGNS, CONSENT, MESSAGE_LOG};

pub const FROM: &str = "whatsapp:+14155238886";
pub const CALLBACK: &str = "https://hooks.example.org/twilio/status";

pub struct Bench {
    pub aws: aws_config::SdkConfig,
    pub dynamo: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    /// Between the functions and moto.
    pub proxy: TcpProxy,
    pub consent_table: String,
    pub campaign_table: String,
    pub phones: Vec<String>,
    pub send_bin: PathBuf,
    pub sweep_bin: Option<PathBuf>,
    pub log_dir: PathBuf,
    pub quick: bool,
    /// moto's process, when known: its CPU time says whether it set the pace.
    pub moto_pid: Option<u32>,
}

/// One scenario's own table and queue.
pub struct Scene {
    pub log_table: String,
    pub queue_url: String,
}

pub use test_support::unique;

/// A French mobile number per `i`, in an allocated range.
pub fn phone(i: usize) -> String {
    format!("+3361{:07}", i % 10_000_000)
}

pub fn body(id: &str, to: &str) -> String {
    serde_json::json!({"v": 1, "message_id": id, "to": to, "body": format!("Réunion parents-professeurs, message {id}")})
        .to_string()
}

impl Bench {
    pub async fn new(
        send_bin: PathBuf,
        sweep_bin: Option<PathBuf>,
        log_dir: PathBuf,
        quick: bool,
        moto_pid: Option<u32>,
    ) -> anyhow::Result<Bench> {
        let moto =
            std::env::var("AWS_ENDPOINT_URL").context("AWS_ENDPOINT_URL (moto) must be set: run scripts/bench.sh")?;
        let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let dynamo = aws_sdk_dynamodb::Client::new(&aws);
        let sqs = aws_sdk_sqs::Client::new(&aws);
        let proxy = TcpProxy::in_front_of(&moto).await.context("counting proxy")?;
        let consent_table = unique("BenchConsent");
        create_table(&dynamo, &consent_table, &CONSENT).await?;
        let campaign_table = unique("BenchCampaigns");
        create_table(&dynamo, &campaign_table, &CAMPAIGNS).await?;
        let bench = Bench {
            aws,
            dynamo,
            sqs,
            proxy,
            consent_table,
            campaign_table,
            phones: (0..1000).map(phone).collect(),
            send_bin,
            sweep_bin,
            log_dir,
            quick,
            moto_pid,
        };
        bench.opt_in_all().await?;
        Ok(bench)
    }

    /// Every phone of the pool opted in (`require-optin`, the default policy, reads it).
    async fn opt_in_all(&self) -> anyhow::Result<()> {
        let consent = DynamoConsent::new(self.dynamo.clone(), &self.consent_table);
        let now = chrono::Utc::now().timestamp();
        let results: Vec<_> = futures::stream::iter(self.phones.iter())
            .map(|phone| {
                let consent = consent.clone();
                async move {
                    let change = ConsentChange {
                        state: ConsentState::OptedIn,
                        source: ConsentSource::CsvImport,
                        has_evidence: true,
                    };
                    consent.change(&PhoneNumber::parse(phone).expect("valid phone"), change, "bench.csv", now).await
                }
            })
            .buffer_unordered(16)
            .collect()
            .await;
        for result in results {
            result?;
        }
        Ok(())
    }

    pub async fn scene(&self, name: &str, visibility_timeout: u32) -> anyhow::Result<Scene> {
        let log_table = unique(&format!("BenchLog-{name}"));
        create_table(&self.dynamo, &log_table, &MESSAGE_LOG).await?;
        let queues = create_queues(&self.sqs, &unique(&format!("bench-{name}")), visibility_timeout).await?;
        Ok(Scene { log_table, queue_url: queues.queue_url })
    }

    /// The `send` function's environment for a scene: everything through the proxy.
    pub fn send_function(&self, scene: &Scene, twilio: &FakeTwilio, concurrency: usize, tag: &str) -> FunctionSpec {
        FunctionSpec::new(&self.send_bin, "send")
            .inherit_aws()
            .env("AWS_ENDPOINT_URL", self.proxy.url())
            .env("MESSAGE_LOG_TABLE", &scene.log_table)
            .env("CONSENT_TABLE", &self.consent_table)
            .env("CAMPAIGN_TABLE", &self.campaign_table)
            .env("SEND_QUEUE_URL", &scene.queue_url)
            .env("TWILIO_ACCOUNT_SID", twilio.account_sid())
            .env("TWILIO_AUTH_TOKEN", twilio.auth_token())
            .env("TWILIO_WHATSAPP_FROM", FROM)
            .env("TWILIO_API_BASE_URL", twilio.base_url())
            .env("TWILIO_ENABLED", "true")
            .env("STATUS_CALLBACK_URL", CALLBACK)
            .env("SEND_CONCURRENCY", concurrency.to_string())
            .env("RUST_LOG", "info")
            .log_to(self.log_dir.join(format!("bench-send-{tag}.log")))
    }

    /// Median latency of a conditional `UpdateItem` through the proxy, as `send`'s claim and
    /// outcome writes are: the "one write" of the ideal batch time.
    pub async fn write_latency(&self, scene: &Scene) -> anyhow::Result<Duration> {
        let via_proxy = aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(&self.aws).endpoint_url(self.proxy.url()).build(),
        );
        let mut samples = Vec::new();
        for i in 0..40 {
            let started = Instant::now();
            via_proxy
                .update_item()
                .table_name(&scene.log_table)
                .key("message_id", aws_sdk_dynamodb::types::AttributeValue::S(format!("latency-probe-{}", i % 4)))
                .update_expression("SET #status = :s, updated_at = :t")
                .condition_expression("attribute_not_exists(lease_owner)")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":s", aws_sdk_dynamodb::types::AttributeValue::S("probe".into()))
                .expression_attribute_values(":t", aws_sdk_dynamodb::types::AttributeValue::N(i.to_string()))
                .send()
                .await?;
            if i >= 5 {
                samples.push(started.elapsed());
            }
        }
        samples.sort();
        Ok(samples[samples.len() / 2])
    }
}

impl Bench {
    /// moto's CPU time so far.
    pub fn moto_cpu(&self) -> Option<Duration> {
        lambda_harness::cpu_time(self.moto_pid?)
    }
}

/// moto's capacity: conditional `UpdateItem`s per second at `concurrency`, through the proxy
/// (`via_proxy`) or directly.
pub async fn moto_capacity(bench: &Bench, scene: &Scene, concurrency: usize, via_proxy: bool) -> anyhow::Result<f64> {
    let mut config = aws_sdk_dynamodb::config::Builder::from(&bench.aws);
    if via_proxy {
        config = config.endpoint_url(bench.proxy.url());
    }
    let client = aws_sdk_dynamodb::Client::from_conf(config.build());
    let requests = 50 * concurrency.max(4);
    let started = Instant::now();
    let results: Vec<_> = futures::stream::iter(0..requests)
        .map(|i| {
            let client = client.clone();
            let table = scene.log_table.clone();
            async move {
                client
                    .update_item()
                    .table_name(table)
                    .key("message_id", aws_sdk_dynamodb::types::AttributeValue::S(format!("capacity-{i}")))
                    .update_expression("SET #status = :s, updated_at = :t")
                    .condition_expression("attribute_not_exists(lease_owner)")
                    .expression_attribute_names("#status", "status")
                    .expression_attribute_values(":s", aws_sdk_dynamodb::types::AttributeValue::S("probe".into()))
                    .expression_attribute_values(":t", aws_sdk_dynamodb::types::AttributeValue::N(i.to_string()))
                    .send()
                    .await
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    for result in results {
        result?;
    }
    Ok(requests as f64 / started.elapsed().as_secs_f64())
}

/// A fake Twilio with this latency and rate limit.
pub async fn twilio(latency: Duration, rate_per_sender: Option<u32>) -> anyhow::Result<FakeTwilio> {
    FakeTwilio::start(Options { latency, rate_per_sender, ..Options::default() }).await
}

/// An `SqsEvent` as Lambda delivers it, for bodies given directly (a batch from the queue
/// is the same thing, with real ids).
pub use test_support::sqs_event_json as sqs_event;

/// DynamoDB and SQS requests counted by the proxy, grouped.
#[derive(Debug, Clone, Default)]
pub struct Requests {
    pub by_operation: BTreeMap<String, u64>,
}

impl Requests {
    pub fn of(counts: BTreeMap<String, u64>) -> Requests {
        Requests { by_operation: counts }
    }

    fn sum(&self, names: &[&str]) -> u64 {
        self.by_operation
            .iter()
            .filter(|(k, _)| names.iter().any(|n| k.rsplit('.').next() == Some(*n)) && k.starts_with("DynamoDB"))
            .map(|(_, v)| v)
            .sum()
    }

    pub fn dynamo_writes(&self) -> u64 {
        self.sum(&["PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"])
    }

    pub fn dynamo_reads(&self) -> u64 {
        self.sum(&["GetItem", "Query", "Scan", "BatchGetItem"])
    }

    pub fn op(&self, name: &str) -> u64 {
        self.by_operation.iter().filter(|(k, _)| k.rsplit('.').next() == Some(name)).map(|(_, v)| v).sum()
    }

    pub fn summary(&self) -> String {
        self.by_operation
            .iter()
            .map(|(k, v)| format!("{}: {v}", k.rsplit('.').next().unwrap_or(k)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

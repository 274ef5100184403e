//! The `send` function inside the benchmark's process, to measure `send` itself (DESIGN.md,
//! "The function's own ceiling"): the real `SendHandler` over the in-memory MessageLog,
//! Consent and send queue, with the real Twilio client (reqwest + rustls) pointed at the fake
//! Twilio, a loopback HTTP server on a runtime of its own. Each invocation is what the Lambda
//! runtime does with one: the event's JSON parsed, the handler run, its answer serialised —
//! on the function's own runtime, whose threads' CPU is what `send` costs. The handler's log
//! lines are written as the function writes them (text, `info`), to a file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use fake_twilio::{FakeTwilio, Options};
use missive::adapters::memory::{MemoryCampaigns, MemoryConsent, MemoryMessageLog, MemoryQueue};
use missive::adapters::twilio::TwilioClient;
use missive::config::{Env, SendConfig};
use missive::domain::consent::{ConsentChange, ConsentSource, ConsentState};
use missive::domain::item::ItemIdentity;
use missive::domain::message::MessageId;
use missive::domain::outcome::EarlyFinal;
use missive::domain::phone::PhoneNumber;
use missive::handlers::send::SendHandler;
use missive::ports::{Clock as _, ConsentStore as _, MessageLog as _, SystemClock};
use tracing::instrument::WithSubscriber as _;

use crate::cpu::{process_cpu, CpuSplit, ThreadGroup};
use crate::setup::{CALLBACK, FROM};

/// The invocation's deadline: Lambda's longest.
const FUNCTION_TIMEOUT: Duration = Duration::from_secs(900);

/// The two runtimes of the in-process runs, the Consent table they share (every phone of the
/// pool opted in), and where the handler's output goes.
pub struct InProcess {
    function: tokio::runtime::Runtime,
    twilio: tokio::runtime::Runtime,
    function_threads: Arc<ThreadGroup>,
    twilio_threads: Arc<ThreadGroup>,
    consent: MemoryConsent,
    logs: tracing::Dispatch,
    /// Where the handler's stdout (its metrics lines) goes during a run.
    pub stdout_log: PathBuf,
}

/// One run's fresh store: the MessageLog and the send queue (delays on the system clock).
#[derive(Clone)]
pub struct World {
    pub log: MemoryMessageLog,
    pub queue: MemoryQueue,
    /// The Campaigns table: no campaign and no budget in these runs, read all the same.
    pub campaigns: MemoryCampaigns,
}

/// Runs invocations on the function's runtime; `Clone`, for the event source's pollers.
#[derive(Clone)]
pub struct Invoker {
    function: tokio::runtime::Handle,
    logs: tracing::Dispatch,
}

impl InProcess {
    pub async fn new(phones: &[String], log_dir: &Path) -> anyhow::Result<InProcess> {
        let function_threads = Arc::new(ThreadGroup::default());
        let twilio_threads = Arc::new(ThreadGroup::default());
        let log_file = std::fs::File::create(log_dir.join("bench-memory-send.log"))?;
        let logs = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .with_writer(Mutex::new(log_file))
            .finish();
        let in_process = InProcess {
            function: function_threads.runtime("send-in-process")?,
            twilio: twilio_threads.runtime("fake-twilio")?,
            function_threads,
            twilio_threads,
            consent: MemoryConsent::new(),
            logs: tracing::Dispatch::new(logs),
            stdout_log: log_dir.join("bench-memory-stdout.log"),
        };
        let now = SystemClock.now();
        for phone in phones {
            let phone = PhoneNumber::parse(phone).map_err(|e| anyhow::anyhow!("{phone}: {e}"))?;
            let change =
                ConsentChange { state: ConsentState::OptedIn, source: ConsentSource::CsvImport, has_evidence: true };
            in_process.consent.change(&phone, change, "bench.csv", now).await?;
        }
        Ok(in_process)
    }

    /// A fake Twilio on its own runtime (its CPU is counted apart from `send`'s).
    pub async fn twilio(&self, latency: Duration, rate_per_sender: Option<u32>) -> anyhow::Result<FakeTwilio> {
        self.twilio.spawn(FakeTwilio::start(Options { latency, rate_per_sender, ..Options::default() })).await?
    }

    /// A fresh MessageLog and send queue.
    pub fn world(&self) -> World {
        World {
            log: MemoryMessageLog::new(),
            queue: MemoryQueue::new(Arc::new(SystemClock)),
            campaigns: MemoryCampaigns::new(),
        }
    }

    /// The `send` handler of one execution environment, configured from the same variables
    /// as the function (its own Twilio client, so its own connections), over `world`.
    pub fn function(&self, world: &World, twilio: &FakeTwilio, concurrency: usize) -> anyhow::Result<Arc<SendHandler>> {
        let env: HashMap<&str, String> = HashMap::from([
            ("SEND_QUEUE_URL", "in-memory".to_owned()),
            ("TWILIO_ACCOUNT_SID", twilio.account_sid().to_owned()),
            ("TWILIO_AUTH_TOKEN", twilio.auth_token().to_owned()),
            ("TWILIO_WHATSAPP_FROM", FROM.to_owned()),
            ("TWILIO_API_BASE_URL", twilio.base_url()),
            ("TWILIO_ENABLED", "true".to_owned()),
            ("STATUS_CALLBACK_URL", CALLBACK.to_owned()),
            ("SEND_CONCURRENCY", concurrency.to_string()),
        ]);
        let config = SendConfig::from_env(&Env::from_fn(|name| env.get(name).cloned()))?;
        let account = config.twilio.resolve().map_err(|missing| anyhow::anyhow!("Twilio settings: {missing}"))?;
        let messenger = TwilioClient::new(account, &config.twilio_api_base_url);
        Ok(Arc::new(SendHandler {
            config,
            log: Arc::new(world.log.clone()),
            consent: Arc::new(self.consent.clone()),
            queue: Arc::new(world.queue.clone()),
            campaigns: Arc::new(world.campaigns.clone()),
            budget: Arc::new(world.campaigns.clone()),
            messenger: Some(Arc::new(messenger)),
            clock: Arc::new(SystemClock),
        }))
    }

    pub fn invoker(&self) -> Invoker {
        Invoker { function: self.function.handle().clone(), logs: self.logs.clone() }
    }

    /// CPU so far: the function's runtime, the fake Twilio's, the whole process.
    pub fn cpu(&self) -> CpuSplit {
        CpuSplit { send: self.function_threads.cpu(), twilio: self.twilio_threads.cpu(), process: process_cpu() }
    }

    /// The median time of one conditional write on the in-memory MessageLog, on the
    /// function's runtime: the "one write" of the ideal batch time.
    pub async fn write_latency(&self) -> anyhow::Result<Duration> {
        let samples = self
            .function
            .spawn(async {
                let log = MemoryMessageLog::new();
                let now = SystemClock.now();
                let mut samples = Vec::new();
                for i in 0..200 {
                    let identity = ItemIdentity {
                        message_id: MessageId::parse(&format!("latency-probe-{i}")).expect("a valid id"),
                        phone: None,
                        campaign: None,
                        recipient_id: None,
                        request: None,
                        max_attempts: 3,
                        requested_by: None,
                    };
                    let started = Instant::now();
                    log.record_early_final(&identity, EarlyFinal::Rejected, "probe", now, 1).await?;
                    samples.push(started.elapsed());
                }
                anyhow::Ok(samples)
            })
            .await??;
        Ok(crate::median(&samples[20..]))
    }

    /// Stops both runtimes (their tasks are dropped).
    pub fn shutdown(self) {
        self.function.shutdown_background();
        self.twilio.shutdown_background();
    }
}

impl Invoker {
    /// One invocation, as the Lambda runtime makes it: `event` (JSON) parsed, handled with the
    /// deadline of a 15-minute function, the answer serialised. Returns the answer and the
    /// invocation's duration (parse to serialised answer).
    pub async fn invoke(
        &self,
        handler: &Arc<SendHandler>,
        event: Vec<u8>,
    ) -> anyhow::Result<(SqsBatchResponse, Duration)> {
        let handler = Arc::clone(handler);
        let invocation = async move {
            let started = Instant::now();
            let event: SqsEvent = serde_json::from_slice(&event).context("the SQS event")?;
            let response = handler.handle(event, SystemTime::now() + FUNCTION_TIMEOUT).await;
            let answer = serde_json::to_vec(&response)?;
            let took = started.elapsed();
            drop(answer);
            anyhow::Ok((response, took))
        };
        self.function.spawn(invocation.with_subscriber(self.logs.clone())).await?
    }
}

/// An SQS event of these bodies, as JSON bytes (what the Runtime API hands the function).
pub fn event(bodies: &[String]) -> Vec<u8> {
    serde_json::to_vec(&crate::setup::sqs_event(bodies)).expect("a JSON value serialises")
}

/// The body of the record a batch item failure names (the event's records are numbered by
/// `setup::sqs_event`).
pub fn failed_body<'a>(bodies: &'a [String], item_identifier: &str) -> Option<&'a String> {
    let index: usize = item_identifier.rsplit('-').next()?.parse().ok()?;
    bodies.get(index)
}

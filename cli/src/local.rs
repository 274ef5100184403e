//! The local pipeline: what AWS does around the three functions, done on one machine.
//!
//! - The **poller** plays Lambda's SQS event source: it receives up to 10 messages from the
//!   send queue, invokes `send` with a real SQS batch event, and deletes every message the
//!   response does not list in `batchItemFailures` (those, and all of a batch whose
//!   invocation failed, come back after the queue's visibility timeout, and reach the DLQ
//!   after 5 receives, as on AWS).
//! - The **sweep loop** plays EventBridge's schedule: it invokes `retry-sweep` every N
//!   seconds.
//! - Status callbacks go from the (fake) Twilio to the webhook directly: under
//!   `cargo lambda watch` through its Function-URL endpoint; in process through
//!   [`serve_webhook`].
//!
//! The functions are reached through [`Functions`]: [`LambdaApi`] invokes them under
//! `cargo lambda watch` (the demo), [`InProcess`] calls the handlers directly (the
//! end-to-end test). Both go through the same [`run`].

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName};
use missive::handlers::send::SendHandler;
use missive::handlers::sweep::SweepHandler;
use missive::handlers::webhook::{WebhookHandler, WebhookRequest};
use serde::Serialize;
use tokio::sync::watch;
use tracing::{info, warn};

/// The two functions the pipeline drives.
#[async_trait]
pub trait Functions: Send + Sync {
    /// Invokes `send` with one SQS batch.
    async fn send(&self, event: SqsEvent) -> Result<SqsBatchResponse, String>;
    /// Invokes `retry-sweep` (its payload is not read); returns its report.
    async fn sweep(&self) -> Result<serde_json::Value, String>;
}

/// The functions under `cargo lambda watch` (or any Lambda Invoke API on loopback):
/// `POST {base}/2015-03-31/functions/{name}/invocations`.
///
/// `cargo lambda watch` runs `cargo run --bin NAME` in the package it is given, and this
/// workspace's root package is the library: the demo runs one watch per function
/// (`--manifest-path functions/NAME/Cargo.toml`), so each function has its own base URL.
pub struct LambdaApi {
    http: reqwest::Client,
    send: (String, String),
    sweep: (String, String),
}

impl LambdaApi {
    /// `send_api` / `sweep_api`: the base URLs (`http://127.0.0.1:PORT`) serving each function.
    pub fn new(send_api: &str, send_function: &str, sweep_api: &str, sweep_function: &str) -> Self {
        LambdaApi {
            // The first invoke of a function compiles it: be patient.
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(900))
                .no_proxy()
                .build()
                .expect("a plain HTTP client builds"),
            send: (send_api.trim_end_matches('/').to_owned(), send_function.to_owned()),
            sweep: (sweep_api.trim_end_matches('/').to_owned(), sweep_function.to_owned()),
        }
    }

    async fn invoke(&self, (base, function): &(String, String), payload: String) -> Result<serde_json::Value, String> {
        let url = format!("{base}/2015-03-31/functions/{function}/invocations");
        let response = self
            .http
            .post(&url)
            .header("content-type", "application/json")
            .body(payload)
            .send()
            .await
            .map_err(|e| format!("invoke {function}: {}", missive::adapters::describe(&e)))?;
        let status = response.status();
        let function_error = response.headers().get("x-amz-function-error").is_some();
        let text = response.text().await.map_err(|e| format!("invoke {function}: reading the answer: {e}"))?;
        if !status.is_success() || function_error {
            return Err(format!("invoke {function}: HTTP {status}: {}", crate::output::shorten(&text, 300)));
        }
        serde_json::from_str(&text).map_err(|e| format!("invoke {function}: answer is not JSON ({e}): {text}"))
    }
}

#[async_trait]
impl Functions for LambdaApi {
    async fn send(&self, event: SqsEvent) -> Result<SqsBatchResponse, String> {
        let payload = serde_json::to_string(&event).map_err(|e| e.to_string())?;
        let answer = self.invoke(&self.send, payload).await?;
        serde_json::from_value(answer).map_err(|e| format!("invoke send: not an SqsBatchResponse: {e}"))
    }

    async fn sweep(&self) -> Result<serde_json::Value, String> {
        self.invoke(&self.sweep, "{}".into()).await
    }
}

/// The handlers called in this process, with a Lambda-like deadline.
pub struct InProcess {
    pub send: Arc<SendHandler>,
    pub sweep: SweepHandler,
    /// The function's timeout: each invocation's deadline is now + this.
    pub timeout: Duration,
}

#[async_trait]
impl Functions for InProcess {
    async fn send(&self, event: SqsEvent) -> Result<SqsBatchResponse, String> {
        Ok(self.send.handle(event, SystemTime::now() + self.timeout).await)
    }

    async fn sweep(&self) -> Result<serde_json::Value, String> {
        serde_json::to_value(self.sweep.run(SystemTime::now() + self.timeout).await).map_err(|e| e.to_string())
    }
}

/// How the pipeline runs.
#[derive(Debug, Clone)]
pub struct Options {
    pub queue_url: String,
    /// Messages per `send` invocation (1–10).
    pub batch_size: i32,
    /// ReceiveMessage long-poll, in seconds.
    pub wait_seconds: i32,
    /// Concurrent pollers (Lambda runs several invocations at once).
    pub workers: usize,
    /// How often the sweep runs; `None`: never.
    pub sweep_every: Option<Duration>,
    /// The run stops after this long, whatever happens (a bound for scripts and tests).
    pub run_for: Duration,
}

/// What a run did.
#[derive(Debug, Default)]
pub struct Stats {
    pub invocations: AtomicU64,
    pub received: AtomicU64,
    pub deleted: AtomicU64,
    /// Records `send` listed as batch item failures (left for SQS to deliver again).
    pub returned: AtomicU64,
    pub invoke_errors: AtomicU64,
    pub sweeps: AtomicU64,
    pub swept_enqueued: AtomicU64,
}

/// A snapshot of [`Stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub invocations: u64,
    pub received: u64,
    pub deleted: u64,
    pub returned: u64,
    pub invoke_errors: u64,
    pub sweeps: u64,
    pub swept_enqueued: u64,
}

impl Stats {
    pub fn summary(&self) -> Summary {
        let get = |counter: &AtomicU64| counter.load(Ordering::SeqCst);
        Summary {
            invocations: get(&self.invocations),
            received: get(&self.received),
            deleted: get(&self.deleted),
            returned: get(&self.returned),
            invoke_errors: get(&self.invoke_errors),
            sweeps: get(&self.sweeps),
            swept_enqueued: get(&self.swept_enqueued),
        }
    }
}

/// One SQS record as Lambda's event source builds it.
pub fn record(message: &Message, queue_arn: &str, region: &str) -> SqsMessage {
    let mut record = SqsMessage::default();
    record.message_id = message.message_id.clone();
    record.receipt_handle = message.receipt_handle.clone();
    record.body = message.body.clone();
    record.md5_of_body = message.md5_of_body.clone();
    record.attributes = message
        .attributes
        .as_ref()
        .map(|attrs| attrs.iter().map(|(name, value)| (name.as_str().to_owned(), value.clone())).collect())
        .unwrap_or_default();
    record.event_source = Some("aws:sqs".into());
    record.event_source_arn = Some(queue_arn.to_owned());
    record.aws_region = Some(region.to_owned());
    record
}

/// Runs the poller workers and the sweep loop until `stop` turns true or `run_for` ends.
pub async fn run(
    sqs: aws_sdk_sqs::Client,
    functions: Arc<dyn Functions>,
    options: Options,
    stop: watch::Receiver<bool>,
) -> Result<Arc<Stats>, String> {
    let queue_arn = crate::queues::arn(&sqs, &options.queue_url).await.map_err(|e| e.to_string())?;
    let region = sqs.config().region().map_or_else(|| "eu-west-3".to_owned(), |r| r.to_string());
    let stats = Arc::new(Stats::default());
    let until = Instant::now() + options.run_for;
    let mut tasks = Vec::new();
    for worker in 0..options.workers.max(1) {
        let context = Poller {
            sqs: sqs.clone(),
            functions: Arc::clone(&functions),
            options: options.clone(),
            queue_arn: queue_arn.clone(),
            region: region.clone(),
            stats: Arc::clone(&stats),
            until,
        };
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move { context.poll(worker, stop).await }));
    }
    if let Some(every) = options.sweep_every {
        let functions = Arc::clone(&functions);
        let stats = Arc::clone(&stats);
        let mut stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = stop.changed() => return,
                }
                if *stop.borrow() || Instant::now() >= until {
                    return;
                }
                match functions.sweep().await {
                    Ok(report) => {
                        stats.sweeps.fetch_add(1, Ordering::SeqCst);
                        let enqueued = report["enqueued"].as_u64().unwrap_or(0);
                        stats.swept_enqueued.fetch_add(enqueued, Ordering::SeqCst);
                        if report["due"].as_u64().unwrap_or(0) > 0 {
                            info!(%report, "retry-sweep ran");
                        }
                    }
                    Err(error) => {
                        stats.invoke_errors.fetch_add(1, Ordering::SeqCst);
                        warn!(%error, "retry-sweep invocation failed");
                    }
                }
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    Ok(stats)
}

struct Poller {
    sqs: aws_sdk_sqs::Client,
    functions: Arc<dyn Functions>,
    options: Options,
    queue_arn: String,
    region: String,
    stats: Arc<Stats>,
    until: Instant,
}

impl Poller {
    async fn poll(&self, worker: usize, mut stop: watch::Receiver<bool>) {
        while !*stop.borrow() && Instant::now() < self.until {
            let receive = self
                .sqs
                .receive_message()
                .queue_url(&self.options.queue_url)
                .max_number_of_messages(self.options.batch_size.clamp(1, 10))
                .wait_time_seconds(self.options.wait_seconds.clamp(0, 20))
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .send();
            let received = tokio::select! {
                received = receive => received,
                _ = stop.changed() => return,
            };
            let messages = match received {
                Ok(output) => output.messages.unwrap_or_default(),
                Err(err) => {
                    warn!(worker, error = %missive::adapters::describe(&err), "ReceiveMessage failed; retrying in 1 s");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if messages.is_empty() {
                continue;
            }
            self.invoke(worker, messages).await;
        }
    }

    async fn invoke(&self, worker: usize, messages: Vec<Message>) {
        let mut event = SqsEvent::default();
        event.records = messages.iter().map(|m| record(m, &self.queue_arn, &self.region)).collect();
        self.stats.received.fetch_add(messages.len() as u64, Ordering::SeqCst);
        self.stats.invocations.fetch_add(1, Ordering::SeqCst);
        let response = match self.functions.send(event).await {
            Ok(response) => response,
            Err(error) => {
                self.stats.invoke_errors.fetch_add(1, Ordering::SeqCst);
                warn!(worker, %error, records = messages.len(), "send invocation failed; the batch comes back after the visibility timeout");
                return;
            }
        };
        let failed: HashSet<&str> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
        self.stats.returned.fetch_add(failed.len() as u64, Ordering::SeqCst);
        let handles: HashMap<usize, &str> = messages
            .iter()
            .enumerate()
            .filter(|(_, m)| !failed.contains(m.message_id.as_deref().unwrap_or("")))
            .filter_map(|(i, m)| Some((i, m.receipt_handle.as_deref()?)))
            .collect();
        if handles.is_empty() {
            return;
        }
        let entries: Vec<DeleteMessageBatchRequestEntry> = handles
            .iter()
            .filter_map(|(i, handle)| {
                DeleteMessageBatchRequestEntry::builder().id(i.to_string()).receipt_handle(*handle).build().ok()
            })
            .collect();
        match self.sqs.delete_message_batch().queue_url(&self.options.queue_url).set_entries(Some(entries)).send().await
        {
            Ok(output) => {
                self.stats.deleted.fetch_add(output.successful.len() as u64, Ordering::SeqCst);
                if !output.failed.is_empty() {
                    warn!(worker, failed = output.failed.len(), "DeleteMessageBatch left some messages: they come back, and send acknowledges them as duplicates");
                }
            }
            Err(err) => {
                warn!(worker, error = %missive::adapters::describe(&err), "DeleteMessageBatch failed: the batch comes back, and send acknowledges it as duplicates");
            }
        }
        info!(worker, records = messages.len(), returned = failed.len(), "send invoked");
    }
}

/// Serves the webhook handler over HTTP on `listener`, as a Function URL would: the request's
/// path and query become `rawPath` and `rawQueryString`, its `Host` the `domainName`.
pub async fn serve_webhook(
    handler: Arc<WebhookHandler>,
    listener: tokio::net::TcpListener,
) -> tokio::task::JoinHandle<()> {
    use axum::body::{to_bytes, Body};
    use axum::http::{Request, Response, StatusCode};

    let app = axum::Router::new().fallback(move |request: Request<Body>| {
        let handler = Arc::clone(&handler);
        async move {
            let (parts, body) = request.into_parts();
            let body = to_bytes(body, 1 << 20).await.unwrap_or_default();
            let webhook_request = WebhookRequest {
                method: parts.method.as_str().to_owned(),
                raw_path: parts.uri.path().to_owned(),
                raw_query: parts.uri.query().unwrap_or_default().to_owned(),
                domain_name: parts.headers.get("host").and_then(|h| h.to_str().ok()).map(str::to_owned),
                headers: parts
                    .headers
                    .iter()
                    .filter_map(|(name, value)| Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned())))
                    .collect(),
                body: body.to_vec(),
            };
            let answer = handler.handle(&webhook_request).await;
            Response::builder()
                .status(StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
                .header("content-type", answer.content_type)
                .body(Body::from(answer.body))
                .unwrap_or_default()
        }
    });
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            warn!(%error, "the local webhook server stopped");
        }
    })
}

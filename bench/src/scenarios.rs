//! The measurements, each on its own tables, queue, fake Twilio and function processes.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context as _};
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use fake_twilio::CreateRecord;
use lambda_harness::{FunctionSpec, Instance, RuntimeApi, SqsEventSource};
use missive::adapters::dynamo::{n, s};
use missive::domain::item::retry_shard;

use crate::setup::{body, sqs_event, twilio, Bench, Requests};

pub const TWILIO_LATENCY: Duration = Duration::from_millis(150);
/// How long an invocation may take (Lambda's maximum).
const FUNCTION_TIMEOUT: Duration = Duration::from_secs(900);

/// The `message_id` a create was made for (from its `StatusCallback` URL).
pub fn create_message_id(create: &CreateRecord) -> Option<String> {
    let url = url_query_value(create.param("StatusCallback")?, "message_id");
    url
}

fn url_query_value(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    query.split('&').filter_map(|pair| pair.split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| v.to_owned())
}

/// Successful creates per message_id.
pub fn sids_by_message(creates: &[CreateRecord]) -> HashMap<String, usize> {
    let mut by_id = HashMap::new();
    for create in creates.iter().filter(|c| c.sid.is_some()) {
        if let Some(id) = create_message_id(create) {
            *by_id.entry(id).or_default() += 1;
        }
    }
    by_id
}

// ---- batch wall time ---------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct BatchRun {
    pub messages: usize,
    pub concurrency: usize,
    pub wall: Duration,
    pub ideal: Duration,
    pub write_latency: Duration,
    pub sent: usize,
    pub requests: Requests,
    pub peak_rss_kib: Option<u64>,
    /// CPU time moto and the `send` process used during the batch.
    pub moto_cpu: Option<Duration>,
    pub send_cpu: Option<Duration>,
}

/// `used` as a share of `wall` (of one core).
pub fn busy(used: Option<Duration>, wall: Duration) -> Option<f64> {
    used.map(|u| u.as_secs_f64() / wall.as_secs_f64())
}

impl BatchRun {
    pub fn waves(&self) -> usize {
        self.messages.div_ceil(self.concurrency)
    }

    pub fn ratio(&self) -> f64 {
        self.wall.as_secs_f64() / self.ideal.as_secs_f64()
    }

    pub fn per_second(&self) -> f64 {
        self.messages as f64 / self.wall.as_secs_f64()
    }
}

/// One batch of `messages` records through a fresh, warmed `send` process at
/// `concurrency`, Twilio answering after 150 ms.
pub async fn batch(bench: &Bench, messages: usize, concurrency: usize) -> anyhow::Result<BatchRun> {
    let tag = format!("batch-{messages}-c{concurrency}");
    let scene = bench.scene(&tag, 30).await?;
    let twilio = twilio(TWILIO_LATENCY, None).await?;
    let write_latency = bench.write_latency(&scene).await?;
    let spec = bench.send_function(&scene, &twilio, concurrency, &tag);
    let instance = Instance::start(&spec).await?;
    // Warm: the first invocation of a process pays for loading phone metadata and opening
    // connections; the batch is measured on a warm environment.
    let warm =
        instance.invoke(&sqs_event(&[body(&format!("{tag}-warm"), &bench.phones[999])]), FUNCTION_TIMEOUT).await?;
    ensure!(
        warm.response["batchItemFailures"].as_array().is_some_and(|f| f.is_empty()),
        "warm-up failed: {}",
        warm.response
    );
    let bodies: Vec<String> = (0..messages).map(|i| body(&format!("{tag}-{i:05}"), &bench.phones[i % 999])).collect();
    bench.proxy.reset_counts();
    let (moto_before, send_before) = (bench.moto_cpu(), instance.cpu_time());
    let invocation = instance.invoke(&sqs_event(&bodies), FUNCTION_TIMEOUT).await?;
    let (moto_after, send_after) = (bench.moto_cpu(), instance.cpu_time());
    let requests = Requests::of(bench.proxy.counts());
    let peak_rss_kib = instance.peak_rss_kib();
    drop(instance);
    let failures = invocation.response["batchItemFailures"].as_array().map(Vec::len).unwrap_or(usize::MAX);
    let sids = sids_by_message(&twilio.creates());
    let sent = (0..messages).filter(|i| sids.get(&format!("{tag}-{i:05}")) == Some(&1)).count();
    ensure!(failures == 0 && sent == messages, "{tag}: {failures} batch item failures, {sent}/{messages} sent once");
    let ideal = (TWILIO_LATENCY + write_latency) * messages.div_ceil(concurrency) as u32;
    Ok(BatchRun {
        messages,
        concurrency,
        wall: invocation.duration(),
        ideal,
        write_latency,
        sent,
        requests,
        peak_rss_kib,
        moto_cpu: moto_after.zip(moto_before).map(|(a, b)| a.saturating_sub(b)),
        send_cpu: send_after.zip(send_before).map(|(a, b)| a.saturating_sub(b)),
    })
}

// ---- sustained throughput under the per-sender rate limit --------------------------------

#[derive(Debug, Clone)]
pub struct Throughput {
    pub messages: usize,
    pub rate_limit: u32,
    pub environments: usize,
    pub concurrency: usize,
    pub batch_size: usize,
    pub wall: Duration,
    /// Messages per second from the start to the last message accepted.
    pub held: f64,
    /// The same, between the 10th and the 90th percentile of acceptances (steady state).
    pub steady: f64,
    pub throttled: usize,
    /// Not accepted when the run's time was up (not lost: still on their way).
    pub unfinished: usize,
    pub lost: usize,
    pub duplicated: usize,
    pub invocations: usize,
    /// Accepted creates per second, from the start.
    pub timeline: Vec<u32>,
    /// 429 answers per second, from the start.
    pub throttled_timeline: Vec<u32>,
    /// CPU time moto used during the run.
    pub moto_cpu: Option<Duration>,
}

/// `messages` through an SQS queue, `environments` `send` processes fed by an event source
/// mapping, against a Twilio that accepts `rate` messages per second per sender and answers
/// 429 (20429) beyond.
pub async fn throughput(
    bench: &Bench,
    messages: usize,
    rate: u32,
    environments: usize,
    concurrency: usize,
    batch_size: usize,
) -> anyhow::Result<Throughput> {
    let tag = format!("throughput-{messages}-at-{rate}");
    let scene = bench.scene(&tag, 60).await?;
    let twilio = twilio(TWILIO_LATENCY, Some(rate)).await?;
    let ids: Vec<String> = (0..messages).map(|i| format!("{tag}-{i:05}")).collect();
    let bodies: Vec<String> = ids.iter().enumerate().map(|(i, id)| body(id, &bench.phones[i % 1000])).collect();
    for chunk in bodies.chunks(10) {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, b)| {
                aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder().id(i.to_string()).message_body(b).build()
            })
            .collect::<Result<Vec<_>, _>>()?;
        bench.sqs.send_message_batch().queue_url(&scene.queue_url).set_entries(Some(entries)).send().await?;
    }
    let spec: FunctionSpec = bench.send_function(&scene, &twilio, concurrency, &tag);
    let mut source =
        SqsEventSource::new(bench.sqs.clone(), &scene.queue_url, batch_size).await.map_err(anyhow::Error::msg)?;
    source.window = Duration::from_millis(200);
    let mut instances = Vec::new();
    for _ in 0..environments {
        let instance = Instance::start(&spec).await?;
        // Started and warm before the clock starts, as a steady flow finds them.
        instance.invoke(&serde_json::json!({"Records": []}), FUNCTION_TIMEOUT).await?;
        instances.push(instance);
    }
    let done = Arc::new(AtomicBool::new(false));
    let moto_before = bench.moto_cpu();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(if bench.quick { 120 } else { 300 });
    let pollers: Vec<_> = instances
        .into_iter()
        .map(|instance| {
            let (source, done) = (source.clone(), Arc::clone(&done));
            tokio::spawn(async move {
                let mut invocations = 0;
                while !done.load(Ordering::SeqCst) {
                    let round = source
                        .run_once(Duration::from_millis(500), |event| {
                            let instance = &instance;
                            async move { instance.invoke(&event, FUNCTION_TIMEOUT).await.map(|i| i.response) }
                        })
                        .await;
                    if matches!(round, Ok(Some(_))) {
                        invocations += 1;
                    }
                }
                invocations
            })
        })
        .collect();
    // Done when every message was accepted once by Twilio and the queue is empty (the
    // throttled copies that were re-enqueued have come back and been acknowledged).
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let accepted = twilio.messages().len();
        if accepted >= messages && source.depth().await.map(|d| d == (0, 0, 0)).unwrap_or(false) {
            break;
        }
        if Instant::now() > deadline {
            // Reported as unfinished rather than failing the whole benchmark.
            eprintln!("throughput: only {accepted}/{messages} accepted after {:?}", started.elapsed());
            break;
        }
    }
    done.store(true, Ordering::SeqCst);
    let moto_cpu = bench.moto_cpu().zip(moto_before).map(|(a, b)| a.saturating_sub(b));
    let mut invocations = 0;
    for poller in pollers {
        invocations += poller.await?;
    }
    let creates = twilio.creates();
    let acceptance = Acceptance::of(&creates, started, messages)?;
    let accepted = acceptance.accepted;
    let sids = sids_by_message(&creates);
    let duplicated = sids.values().filter(|n| **n > 1).count();
    // Lost: not accepted, or accepted but its item does not say `sent` (a run that ran out
    // of time counts what it did not reach as unfinished, not lost).
    let lost = if accepted == messages {
        let not_accepted = ids.iter().filter(|id| !sids.contains_key(*id)).count();
        not_accepted.max(count_not_sent(bench, &scene.log_table, &ids).await?)
    } else {
        0
    };
    Ok(Throughput {
        messages,
        rate_limit: rate,
        environments,
        concurrency,
        batch_size,
        wall: started.elapsed(),
        held: acceptance.held,
        steady: acceptance.steady,
        unfinished: messages - accepted,
        throttled: acceptance.throttled,
        lost,
        duplicated,
        invocations,
        timeline: acceptance.timeline,
        throttled_timeline: acceptance.throttled_timeline,
        moto_cpu,
    })
}

/// When Twilio accepted the creates of a throughput run, from its start: the rates held, and
/// per-second counts of acceptances and 429s.
pub struct Acceptance {
    /// Accepted creates, at most the run's messages.
    pub accepted: usize,
    /// From the start to the last acceptance.
    pub held: f64,
    /// Between the 10th and the 90th percentile of acceptances.
    pub steady: f64,
    pub throttled: usize,
    pub timeline: Vec<u32>,
    pub throttled_timeline: Vec<u32>,
    /// Seconds from the start at which each accepted create was accepted, in order.
    pub accepted_at: Vec<f64>,
}

impl Acceptance {
    /// A create is accepted (or refused) when the fake Twilio has waited its latency after
    /// receiving it.
    pub fn of(creates: &[CreateRecord], started: Instant, messages: usize) -> anyhow::Result<Acceptance> {
        let wall_start = chrono::Utc::now() - chrono::Duration::from_std(started.elapsed())?;
        let at = |c: &CreateRecord| {
            (c.received_at - wall_start).num_microseconds().unwrap_or(0) as f64 / 1e6 + TWILIO_LATENCY.as_secs_f64()
        };
        let mut accepted_at: Vec<f64> = creates.iter().filter(|c| c.sid.is_some()).map(at).collect();
        accepted_at.sort_by(f64::total_cmp);
        ensure!(accepted_at.len() >= 10, "throughput: {} messages accepted", accepted_at.len());
        let accepted = accepted_at.len().min(messages);
        let last = accepted_at[accepted - 1];
        let (p10, p90) = (accepted_at[accepted / 10], accepted_at[accepted * 9 / 10]);
        let seconds = last.ceil().max(1.0) as usize;
        let mut timeline = vec![0u32; seconds];
        for at in &accepted_at {
            timeline[(at.max(0.0) as usize).min(seconds - 1)] += 1;
        }
        let mut throttled_timeline = vec![0u32; seconds];
        let refused: Vec<&CreateRecord> = creates.iter().filter(|c| c.status == Some(429)).collect();
        for c in &refused {
            throttled_timeline[(at(c).max(0.0) as usize).min(seconds - 1)] += 1;
        }
        Ok(Acceptance {
            accepted,
            held: accepted as f64 / last,
            steady: (accepted * 8 / 10) as f64 / (p90 - p10),
            throttled: refused.len(),
            timeline,
            throttled_timeline,
            accepted_at,
        })
    }
}

/// Items of `ids` whose status is not `sent` (missing ones included).
async fn count_not_sent(bench: &Bench, table: &str, ids: &[String]) -> anyhow::Result<usize> {
    let mut statuses: HashMap<String, String> = HashMap::new();
    let mut start = None;
    loop {
        let page =
            bench.dynamo.scan().table_name(table).consistent_read(true).set_exclusive_start_key(start).send().await?;
        for item in page.items.unwrap_or_default() {
            if let (Some(AttributeValue::S(id)), Some(AttributeValue::S(status))) =
                (item.get("message_id"), item.get("status"))
            {
                statuses.insert(id.clone(), status.clone());
            }
        }
        match page.last_evaluated_key {
            Some(key) if !key.is_empty() => start = Some(key),
            _ => break,
        }
    }
    Ok(ids.iter().filter(|id| statuses.get(*id).map(String::as_str) != Some("sent")).count())
}

// ---- cold start ----------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct ColdStarts {
    pub event: &'static str,
    /// exec → first `/next` (Lambda's "Init Duration").
    pub init: Vec<Duration>,
    /// exec → the first event's response received.
    pub first_answer: Vec<Duration>,
}

/// `runs` fresh processes, each on a fresh Runtime API port with the event already queued.
pub async fn cold_starts(bench: &Bench, runs: usize, with_message: bool) -> anyhow::Result<ColdStarts> {
    let tag = if with_message { "cold-message" } else { "cold-empty" };
    let scene = bench.scene(tag, 30).await?;
    let twilio = twilio(Duration::ZERO, None).await?;
    let spec = bench.send_function(&scene, &twilio, 16, tag).env("RUST_LOG", "warn");
    let mut result = ColdStarts {
        event: if with_message { "one message (consent read, claim, create, outcome)" } else { "empty batch" },
        init: Vec::new(),
        first_answer: Vec::new(),
    };
    for run in 0..runs {
        let event = if with_message {
            sqs_event(&[body(&format!("{tag}-{run}"), &bench.phones[run % 1000])])
        } else {
            serde_json::json!({"Records": []})
        };
        let api = Arc::new(RuntimeApi::start("send").await?);
        let pending = api.submit(&event, FUNCTION_TIMEOUT);
        let mut instance = Instance::start_with(&spec, Arc::clone(&api)).await?;
        let invocation = pending.wait(Duration::from_secs(30)).await.context("cold start invocation")?;
        ensure!(
            invocation.response["batchItemFailures"].as_array().is_some_and(|f| f.is_empty()),
            "cold start: {}",
            invocation.response
        );
        result.init.push(invocation.delivered_at - instance.spawned_at());
        result.first_answer.push(invocation.answered_at - instance.spawned_at());
        instance.kill().await;
    }
    if with_message {
        ensure!(twilio.messages().len() == runs, "every cold start sent its message");
    }
    Ok(result)
}

// ---- the sweep's requests ----------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct SweepRequests {
    pub due: usize,
    pub other_items: usize,
    pub requests: Requests,
    pub response: serde_json::Value,
    pub binary: bool,
}

/// `due` items due for the sweep among `other` items (final ones and in-flight ones not yet
/// due), one run of `retry-sweep`, the requests it made.
pub async fn sweep_requests(bench: &Bench, due: usize, other: usize) -> anyhow::Result<SweepRequests> {
    let scene = bench.scene("sweep", 30).await?;
    let now = chrono::Utc::now().timestamp();
    let items: Vec<HashMap<String, AttributeValue>> = (0..due + other)
        .map(|i| {
            let id = format!("sweep-{i:05}");
            let mut item = HashMap::from([
                ("message_id".to_owned(), s(&id)),
                ("phone".to_owned(), s(&bench.phones[i % 1000])),
                ("created_at".to_owned(), n(now - 3600)),
                ("attempts".to_owned(), n(1)),
                ("request".to_owned(), s(body(&id, &bench.phones[i % 1000]))),
            ]);
            let (status, retry_due_at) = match i {
                i if i < due => ("retrying", Some(now - 30)),
                i if i < due + other / 10 => ("retrying", Some(now + 3600)),
                _ => ("sent", None),
            };
            item.insert("status".into(), s(status));
            if let Some(at) = retry_due_at {
                item.insert("retry_shard".into(), n(retry_shard(&id)));
                item.insert("retry_due_at".into(), n(at));
                item.insert("next_attempt_at".into(), n(at - 120));
            }
            item
        })
        .collect();
    for chunk in items.chunks(25) {
        let writes: Vec<WriteRequest> = chunk
            .iter()
            .map(|item| {
                Ok(WriteRequest::builder()
                    .put_request(PutRequest::builder().set_item(Some(item.clone())).build()?)
                    .build())
            })
            .collect::<anyhow::Result<_>>()?;
        let output = bench.dynamo.batch_write_item().request_items(&scene.log_table, writes).send().await?;
        ensure!(output.unprocessed_items.unwrap_or_default().is_empty(), "unprocessed items");
    }
    bench.proxy.reset_counts();
    let (response, binary) = match &bench.sweep_bin {
        Some(program) => {
            let spec = FunctionSpec::new(program, "retry-sweep")
                .inherit_aws()
                .env("AWS_ENDPOINT_URL", bench.proxy.url())
                .env("MESSAGE_LOG_TABLE", &scene.log_table)
                .env("SEND_QUEUE_URL", &scene.queue_url)
                .log_to(bench.log_dir.join("bench-retry-sweep.log"));
            let instance = Instance::start(&spec).await?;
            let event = serde_json::json!({"version": "0", "source": "aws.events", "detail-type": "Scheduled Event", "detail": {}});
            (instance.invoke(&event, Duration::from_secs(300)).await?.response, true)
        }
        None => {
            let aws = aws_config::defaults(aws_config::BehaviorVersion::latest())
                .endpoint_url(bench.proxy.url())
                .load()
                .await;
            let config = missive::config::SweepConfig {
                message_log_table: scene.log_table.clone(),
                send_queue_url: scene.queue_url.clone(),
                reschedule_seconds: 300,
                margin: Duration::from_secs(5),
            };
            let report = missive::wiring::sweep_handler(config, &aws)
                .run(std::time::SystemTime::now() + Duration::from_secs(300))
                .await;
            (serde_json::to_value(report)?, false)
        }
    };
    let requests = Requests::of(bench.proxy.counts());
    ensure!(response["enqueued"].as_u64() == Some(due as u64), "sweep: {response}");
    Ok(SweepRequests { due, other_items: other, requests, response, binary })
}

/// Sizes of the `bootstrap`s (or release binaries).
pub fn sizes(paths: &[(String, std::path::PathBuf)]) -> BTreeMap<String, u64> {
    paths.iter().filter_map(|(name, path)| Some((name.clone(), std::fs::metadata(path).ok()?.len()))).collect()
}

//! The function's own ceiling: the moto scenarios again with the store in memory, in the
//! benchmark's process (`memory.rs`), the fake Twilio answering after 150 ms. Every
//! configuration runs several times, interleaved (round after round), so that the machine's
//! noise shows as a spread rather than as one configuration's bad luck.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context as _};
use missive::domain::status::Status;
use missive::ports::{MessageLog as _, SendQueue as _};

use crate::cpu::CpuSplit;
use crate::memory::{event, failed_body, InProcess};
use crate::scenarios::{create_message_id, sids_by_message, Acceptance, Throughput, TWILIO_LATENCY};
use crate::setup::body;
use crate::stdout::Redirect;

/// SQS's visibility timeout in the in-process event source: a batch item failure comes back
/// after it, as from SQS.
const VISIBILITY_TIMEOUT_SECONDS: u32 = 30;

/// One configuration's repeated batches.
#[derive(Debug, Clone)]
pub struct Batches {
    pub messages: usize,
    pub concurrency: usize,
    pub latency: Duration,
    /// The in-memory conditional write's median time (the ideal's "one write").
    pub write_latency: Duration,
    pub runs: Vec<BatchRun>,
}

#[derive(Debug, Clone, Copy)]
pub struct BatchRun {
    pub wall: Duration,
    pub cpu: CpuSplit,
}

/// (min, median, max).
pub fn spread(values: impl IntoIterator<Item = f64>) -> (f64, f64, f64) {
    let mut v: Vec<f64> = values.into_iter().collect();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    (v[0], v[v.len() / 2], v[v.len() - 1])
}

impl Batches {
    pub fn waves(&self) -> usize {
        self.messages.div_ceil(self.concurrency)
    }

    /// The same definition as the moto batches': waves × (Twilio's latency + one write).
    pub fn ideal(&self) -> Duration {
        (self.latency + self.write_latency) * self.waves() as u32
    }

    /// Wall times in ms.
    pub fn wall_ms(&self) -> (f64, f64, f64) {
        spread(self.runs.iter().map(|r| r.wall.as_secs_f64() * 1000.0))
    }

    /// Wall time over the ideal.
    pub fn ratio(&self) -> (f64, f64, f64) {
        let ideal = self.ideal().as_secs_f64();
        spread(self.runs.iter().map(|r| r.wall.as_secs_f64() / ideal))
    }

    pub fn per_second(&self) -> (f64, f64, f64) {
        spread(self.runs.iter().map(|r| self.messages as f64 / r.wall.as_secs_f64()))
    }

    /// µs of CPU per message: of `send`'s runtime, the fake Twilio's, the rest of the process.
    pub fn cpu_us(&self, of: impl Fn(&CpuSplit) -> Duration) -> (f64, f64, f64) {
        spread(self.runs.iter().map(|r| of(&r.cpu).as_secs_f64() * 1e6 / self.messages as f64))
    }
}

/// One event of `messages` records given to a fresh, warmed handler at `concurrency`.
async fn batch_once(
    in_process: &InProcess,
    phones: &[String],
    messages: usize,
    concurrency: usize,
    latency: Duration,
    tag: &str,
) -> anyhow::Result<BatchRun> {
    let twilio = in_process.twilio(latency, None).await?;
    let world = in_process.world();
    let handler = in_process.function(&world, &twilio, concurrency)?;
    let invoker = in_process.invoker();
    let redirect = Redirect::to(&in_process.stdout_log)?;
    // Warm, as the moto batches: the first invocation opens the first connection.
    let (warm, _) = invoker.invoke(&handler, event(&[body(&format!("{tag}-warm"), &phones[999])])).await?;
    ensure!(warm.batch_item_failures.is_empty(), "{tag}: the warm-up failed");
    let ids: Vec<String> = (0..messages).map(|i| format!("{tag}-{i:05}")).collect();
    let bodies: Vec<String> = ids.iter().enumerate().map(|(i, id)| body(id, &phones[i % 999])).collect();
    let event = event(&bodies);
    let before = in_process.cpu();
    let (response, wall) = invoker.invoke(&handler, event).await?;
    let cpu = in_process.cpu().since(&before);
    drop(redirect);
    ensure!(
        response.batch_item_failures.is_empty(),
        "{tag}: {} batch item failures",
        response.batch_item_failures.len()
    );
    let sids = sids_by_message(&twilio.creates());
    let once = ids.iter().filter(|id| sids.get(*id) == Some(&1)).count();
    ensure!(once == messages && sids.len() == messages + 1, "{tag}: {once}/{messages} created once");
    for id in &ids {
        let item = world.log.get(id).await?.with_context(|| format!("{tag}: no item {id}"))?;
        ensure!(item.status == Some(Status::Sent), "{tag}: {id} is {:?}", item.status);
    }
    twilio.shutdown().await;
    Ok(BatchRun { wall, cpu })
}

/// `rounds` rounds of every (messages, concurrency) configuration.
pub async fn run_batches(
    in_process: &InProcess,
    phones: &[String],
    configurations: &[(usize, usize)],
    latency: Duration,
    rounds: usize,
) -> anyhow::Result<Vec<Batches>> {
    let write_latency = in_process.write_latency().await?;
    let mut all: Vec<Batches> = configurations
        .iter()
        .map(|&(messages, concurrency)| Batches { messages, concurrency, latency, write_latency, runs: Vec::new() })
        .collect();
    for round in 0..rounds {
        for b in &mut all {
            let tag = format!("memory-{}-c{}-l{}-r{round}", b.messages, b.concurrency, latency.as_millis());
            b.runs.push(batch_once(in_process, phones, b.messages, b.concurrency, latency, &tag).await?);
        }
    }
    Ok(all)
}

/// A throughput run on the in-memory store, and what it cost.
#[derive(Debug, Clone)]
pub struct MemoryThroughput {
    pub run: Throughput,
    pub cpu: CpuSplit,
    /// Create requests made (accepted and refused).
    pub creates: usize,
    /// Records returned as batch item failures (re-enqueued after the visibility timeout).
    pub returned: usize,
    /// The most 429s one message met (each doubles its next delay).
    pub most_throttled: usize,
    /// Seconds between the acceptance of 97 % of the messages and the last one's.
    pub last_share_took: f64,
}

/// A throughput run's load: `messages` on the in-memory queue, `environments` handlers at
/// `concurrency` fed by an in-process event source (batches of up to `batch_size`, as SQS's
/// event source mapping delivers them; the delayed re-enqueues received back when due),
/// against a Twilio that accepts `rate` per second per sender; bounded by `time_limit`.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    pub messages: usize,
    pub rate: u32,
    pub environments: usize,
    pub concurrency: usize,
    pub batch_size: usize,
    pub time_limit: Duration,
}

pub async fn throughput(
    in_process: &InProcess,
    phones: &[String],
    load: Load,
    round: usize,
) -> anyhow::Result<MemoryThroughput> {
    let Load { messages, rate, environments, concurrency, batch_size, time_limit } = load;
    let tag = format!("memory-throughput-{messages}-at-{rate}-r{round}");
    let twilio = in_process.twilio(TWILIO_LATENCY, Some(rate)).await?;
    let world = in_process.world();
    let ids: Vec<String> = (0..messages).map(|i| format!("{tag}-{i:05}")).collect();
    for (chunk, at) in ids.chunks(10).zip((0..).step_by(10)) {
        let bodies: Vec<String> = chunk.iter().enumerate().map(|(i, id)| body(id, &phones[(at + i) % 1000])).collect();
        let refs: Vec<&str> = bodies.iter().map(String::as_str).collect();
        ensure!(world.queue.send_batch(&refs).await.is_empty(), "enqueueing");
    }
    let invoker = in_process.invoker();
    let redirect = Redirect::to(&in_process.stdout_log)?;
    let mut handlers = Vec::new();
    for _ in 0..environments {
        let handler = in_process.function(&world, &twilio, concurrency)?;
        // Started and warm before the clock starts, as a steady flow finds them.
        invoker.invoke(&handler, event(&[])).await?;
        handlers.push(handler);
    }
    let done = Arc::new(AtomicBool::new(false));
    let busy = Arc::new(AtomicUsize::new(0));
    let before = in_process.cpu();
    let started = Instant::now();
    let deadline = started + time_limit;
    let pollers: Vec<_> = handlers
        .into_iter()
        .map(|handler| {
            let (invoker, queue, done, busy) = (invoker.clone(), world.queue.clone(), done.clone(), busy.clone());
            tokio::spawn(async move {
                let (mut invocations, mut returned) = (0usize, 0usize);
                while !done.load(Ordering::SeqCst) && Instant::now() < deadline {
                    busy.fetch_add(1, Ordering::SeqCst);
                    let bodies = queue.receive(batch_size);
                    if bodies.is_empty() {
                        busy.fetch_sub(1, Ordering::SeqCst);
                        // SQS's long poll answers as soon as a message is visible: poll often.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                    let handled = async {
                        let (response, _) = invoker.invoke(&handler, event(&bodies)).await?;
                        for failure in &response.batch_item_failures {
                            let body = failed_body(&bodies, &failure.item_identifier).context("a failure's record")?;
                            queue.send(body, VISIBILITY_TIMEOUT_SECONDS).await?;
                            returned += 1;
                        }
                        anyhow::Ok(())
                    }
                    .await;
                    busy.fetch_sub(1, Ordering::SeqCst);
                    if handled.is_err() {
                        done.store(true, Ordering::SeqCst);
                    }
                    handled?;
                    invocations += 1;
                }
                anyhow::Ok((invocations, returned))
            })
        })
        .collect();
    // Done when every message was accepted by Twilio, the queue is empty (the throttled copies
    // have come back and been handled) and no invocation is running.
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let accepted = twilio.messages().len();
        if accepted >= messages && world.queue.messages().is_empty() && busy.load(Ordering::SeqCst) == 0 {
            break;
        }
        if Instant::now() > deadline {
            eprintln!("{tag}: only {accepted}/{messages} accepted after {:?}", started.elapsed());
            break;
        }
    }
    done.store(true, Ordering::SeqCst);
    let (mut invocations, mut returned) = (0, 0);
    for poller in pollers {
        let (i, r) = poller.await??;
        invocations += i;
        returned += r;
    }
    let wall = started.elapsed();
    let cpu = in_process.cpu().since(&before);
    drop(redirect);
    let creates = twilio.creates();
    let acceptance = Acceptance::of(&creates, started, messages)?;
    let sids = sids_by_message(&creates);
    let duplicated = sids.values().filter(|n| **n > 1).count();
    let mut throttled_per_message: HashMap<String, usize> = HashMap::new();
    for create in creates.iter().filter(|c| c.status == Some(429)) {
        if let Some(id) = create_message_id(create) {
            *throttled_per_message.entry(id).or_default() += 1;
        }
    }
    let most_throttled = throttled_per_message.values().copied().max().unwrap_or(0);
    let share_index = ((acceptance.accepted as f64 * 0.97).ceil() as usize).clamp(1, acceptance.accepted) - 1;
    let last_share_took = acceptance.accepted_at[acceptance.accepted - 1] - acceptance.accepted_at[share_index];
    // Lost: not accepted, or accepted but its item does not say `sent` (what a run that ran
    // out of time did not reach is unfinished, not lost).
    let lost = if acceptance.accepted == messages {
        let mut lost = 0;
        for id in &ids {
            let sent = world.log.get(id).await?.is_some_and(|item| item.status == Some(Status::Sent));
            if !sent || !sids.contains_key(id) {
                lost += 1;
            }
        }
        lost
    } else {
        0
    };
    twilio.shutdown().await;
    Ok(MemoryThroughput {
        run: Throughput {
            messages,
            rate_limit: rate,
            environments,
            concurrency,
            batch_size,
            wall,
            held: acceptance.held,
            steady: acceptance.steady,
            throttled: acceptance.throttled,
            unfinished: messages - acceptance.accepted,
            lost,
            duplicated,
            invocations,
            timeline: acceptance.timeline,
            throttled_timeline: acceptance.throttled_timeline,
            moto_cpu: None,
        },
        cpu,
        creates: creates.len(),
        returned,
        most_throttled,
        last_share_took,
    })
}

/// Everything the in-process runs measured.
pub struct Ceiling {
    /// At Twilio's 150 ms: every (messages, SEND_CONCURRENCY) of the moto batches.
    pub batches: Vec<Batches>,
    /// 100 messages at SEND_CONCURRENCY 1.
    pub sequential: Batches,
    /// Twilio answering at once: what `send` alone can do in this process.
    pub zero_latency: Batches,
    pub throughputs: Vec<MemoryThroughput>,
    pub load: Load,
}

impl Ceiling {
    /// The run of `messages` at `concurrency`, 150 ms.
    pub fn batch(&self, messages: usize, concurrency: usize) -> Option<&Batches> {
        self.batches.iter().find(|b| b.messages == messages && b.concurrency == concurrency)
    }
}

fn print_batches(all: &[Batches]) {
    for b in all {
        let (wall, ratio, rate, cpu) = (b.wall_ms(), b.ratio(), b.per_second(), b.cpu_us(|c| c.send));
        println!(
            "   {:>4} messages, SEND_CONCURRENCY {:>2}, Twilio {:>3} ms, {} runs: wall {:.0} ms (min {:.0}, max {:.0}), \
             ideal {:.0} ms, ratio {:.3} ({:.3}–{:.3}), {:.1} msg/s, send CPU {:.0} µs/msg ({:.0}–{:.0})",
            b.messages,
            b.concurrency,
            b.latency.as_millis(),
            b.runs.len(),
            wall.1,
            wall.0,
            wall.2,
            b.ideal().as_secs_f64() * 1000.0,
            ratio.1,
            ratio.0,
            ratio.2,
            rate.1,
            cpu.1,
            cpu.0,
            cpu.2
        );
    }
}

/// Every in-process run, with its progress on stdout.
pub async fn measure(in_process: &InProcess, phones: &[String], quick: bool) -> anyhow::Result<Ceiling> {
    let sizes: &[usize] = if quick { &[10, 100] } else { &[10, 100, 1000] };
    let configurations: Vec<(usize, usize)> =
        [16, 32].iter().flat_map(|&c| sizes.iter().map(move |&m| (m, c))).collect();
    let rounds = if quick { 2 } else { 5 };
    println!("== in process, store in memory: batch wall time, Twilio latency {} ms", TWILIO_LATENCY.as_millis());
    let batches = run_batches(in_process, phones, &configurations, TWILIO_LATENCY, rounds).await?;
    print_batches(&batches);

    println!("== in process, store in memory: SEND_CONCURRENCY 1, 100 messages");
    let sequential = run_batches(in_process, phones, &[(100, 1)], TWILIO_LATENCY, if quick { 1 } else { 3 }).await?;
    print_batches(&sequential);
    let sequential = sequential.into_iter().next().context("the sequential run")?;
    if let Some(concurrent) = batches.iter().find(|b| b.messages == 100 && b.concurrency == 32) {
        println!(
            "   speed-up, SEND_CONCURRENCY 32 vs 1: {:.1}×",
            concurrent.per_second().1 / sequential.per_second().1
        );
    }

    println!("== in process, store in memory: Twilio answering at once (send's own CPU)");
    let zero = run_batches(in_process, phones, &[(1000, 32)], Duration::ZERO, rounds).await?;
    print_batches(&zero);
    let zero_latency = zero.into_iter().next().context("the zero-latency run")?;

    let load = Load {
        messages: if quick { 600 } else { 3000 },
        rate: crate::RATE_LIMIT,
        environments: 2,
        concurrency: 16,
        batch_size: 10,
        time_limit: Duration::from_secs(if quick { 60 } else { 180 }),
    };
    let mut throughputs = Vec::new();
    for round in 0..if quick { 1 } else { 3 } {
        println!(
            "== in process, store in memory: {} messages, Twilio limit {}/s per sender (run {})",
            load.messages,
            load.rate,
            round + 1
        );
        let t = throughput(in_process, phones, load, round).await?;
        println!(
            "   held {:.1} msg/s ({:.1} % of the limit), steady {:.1} msg/s, {} × 429, lost {}, duplicated {}, \
             unfinished {}, {} invocations, {:.1} s, send CPU {:.0} µs per accepted message",
            t.run.held,
            t.run.held / load.rate as f64 * 100.0,
            t.run.steady,
            t.run.throttled,
            t.run.lost,
            t.run.duplicated,
            t.run.unfinished,
            t.run.invocations,
            t.run.wall.as_secs_f64(),
            t.cpu.send.as_secs_f64() * 1e6 / (load.messages - t.run.unfinished).max(1) as f64
        );
        throughputs.push(t);
    }
    Ok(Ceiling { batches, sequential, zero_latency, throughputs, load })
}

//! Missive's benchmark: the release `send` (and `retry-sweep`) binaries run as Lambda runs
//! them — a loopback Lambda Runtime API feeding them events, one process per execution
//! environment — against moto (through a proxy that counts every AWS request) and a
//! Twilio-shaped server; then the same scenarios with the store in memory, the handler in
//! this process (`ceiling`), to measure `send` itself. Writes docs/bench.md and docs/bench.png.
//!
//! Run it through `make bench` (scripts/bench.sh), which builds the binaries, starts moto and
//! passes:
//!
//! ```text
//! missive-bench --send PATH [--sweep PATH] [--size NAME=PATH]… [--build TEXT] [--font TTF]
//!               [--out DIR] [--log-dir DIR] [--commit TEXT] [--moto-pid PID] [--quick]
//! ```

mod ceiling;
mod chart;
mod cpu;
mod memory;
mod memory_report;
mod scenarios;
mod setup;
mod stdout;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context as _};

use crate::scenarios::{BatchRun, ColdStarts, SweepRequests, Throughput};
use crate::setup::Bench;

/// The targets of the benchmark issue.
const TARGET_BATCH_RATIO: f64 = 1.15;
const TARGET_HELD_SHARE: f64 = 0.95;
const TARGET_SPEEDUP: f64 = 20.0;
const TARGET_COLD_START_MS: f64 = 30.0;
const TARGET_RSS_MIB: f64 = 32.0;
const TARGET_WRITES_PER_MESSAGE: f64 = 2.0;
const RATE_LIMIT: u32 = 80;

#[derive(Debug, Default)]
struct Args {
    send: Option<PathBuf>,
    sweep: Option<PathBuf>,
    sizes: Vec<(String, PathBuf)>,
    build: String,
    font: Option<PathBuf>,
    out: PathBuf,
    log_dir: PathBuf,
    commit: String,
    quick: bool,
    moto_pid: Option<u32>,
}

fn args() -> anyhow::Result<Args> {
    let mut args =
        Args { out: "docs".into(), log_dir: std::env::temp_dir(), build: "unknown".into(), ..Args::default() };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--send" => args.send = Some(value()?.into()),
            "--sweep" => args.sweep = Some(value()?.into()),
            "--size" => {
                let v = value()?;
                let (name, path) = v.split_once('=').context("--size NAME=PATH")?;
                args.sizes.push((name.to_owned(), path.into()));
            }
            "--build" => args.build = value()?,
            "--font" => args.font = Some(value()?.into()),
            "--out" => args.out = value()?.into(),
            "--log-dir" => args.log_dir = value()?.into(),
            "--commit" => args.commit = value()?,
            "--quick" => args.quick = true,
            "--moto-pid" => args.moto_pid = Some(value()?.parse().context("--moto-pid PID")?),
            other => bail!("unknown argument {other} (see the comment at the top of bench/src/main.rs)"),
        }
    }
    Ok(args)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(values: &[Duration]) -> Duration {
    let mut v = values.to_vec();
    v.sort();
    v[v.len() / 2]
}

fn percentile(values: &[Duration], p: f64) -> Duration {
    let mut v = values.to_vec();
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn percent(share: Option<f64>) -> String {
    share.map(|s| format!("{:.0} %", s * 100.0)).unwrap_or_else(|| "n/a".into())
}

fn mib(kib: Option<u64>) -> String {
    kib.map(|k| format!("{:.1} MiB", k as f64 / 1024.0)).unwrap_or_else(|| "n/a".into())
}

fn met(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "**missed**"
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cores} cores ({cpu}), Linux {}", kernel.trim())
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let args = args()?;
    let send = args.send.clone().context("--send PATH is required")?;
    // What the first phone number parse of a process costs (phonenumber loads its metadata):
    // part of every cold start that handles a message. Measured first, before anything else
    // in this process parses a number.
    let phone_load = {
        let started = std::time::Instant::now();
        missive::domain::phone::PhoneNumber::parse("+33612345678").map_err(|e| anyhow::anyhow!("{e}"))?;
        started.elapsed()
    };
    println!("== first phone number parse in a process (phonenumber's metadata): {:.1} ms", ms(phone_load));
    let bench = Bench::new(send, args.sweep.clone(), args.log_dir.clone(), args.quick, args.moto_pid).await?;
    let started = std::time::Instant::now();

    // The function's own ceiling first: it needs no moto, and a failure there shows at once.
    let in_process = memory::InProcess::new(&bench.phones, &args.log_dir).await?;
    let ceiling = ceiling::measure(&in_process, &bench.phones, args.quick).await?;
    in_process.shutdown();
    let runs = if args.quick { 5 } else { 20 };

    println!("== moto's capacity (conditional UpdateItem per second)");
    let probe = bench.scene("capacity", 30).await?;
    let mut capacity = Vec::new();
    for concurrency in [1, 8, 32] {
        for via_proxy in [false, true] {
            let per_second = setup::moto_capacity(&bench, &probe, concurrency, via_proxy).await?;
            println!(
                "   concurrency {concurrency:>2}, {}: {per_second:.0}/s",
                if via_proxy { "through the proxy" } else { "direct" }
            );
            capacity.push((concurrency, via_proxy, per_second));
        }
    }

    println!("== cold start ({runs} starts each)");
    let cold_empty = scenarios::cold_starts(&bench, runs, false).await?;
    let cold_message = scenarios::cold_starts(&bench, runs, true).await?;
    for c in [&cold_empty, &cold_message] {
        println!(
            "   {}: exec → first answer median {:.1} ms (init median {:.1} ms)",
            c.event,
            ms(median(&c.first_answer)),
            ms(median(&c.init))
        );
    }

    println!("== batch wall time, Twilio latency {} ms", scenarios::TWILIO_LATENCY.as_millis());
    let sizes: &[usize] = if args.quick { &[10, 100] } else { &[10, 100, 1000] };
    let mut batches = Vec::new();
    for concurrency in [16, 32] {
        for &messages in sizes {
            let run = scenarios::batch(&bench, messages, concurrency).await?;
            println!(
                "   {:>4} messages, SEND_CONCURRENCY {:>2}: {:>7.0} ms, ideal {:>7.0} ms, ratio {:.2}, {:.1} msg/s, \
                 {:.2} DynamoDB writes/msg, peak RSS {}, moto busy {}, send CPU {}",
                run.messages,
                run.concurrency,
                ms(run.wall),
                ms(run.ideal),
                run.ratio(),
                run.per_second(),
                run.requests.dynamo_writes() as f64 / run.sent as f64,
                mib(run.peak_rss_kib),
                percent(scenarios::busy(run.moto_cpu, run.wall)),
                percent(scenarios::busy(run.send_cpu, run.wall))
            );
            batches.push(run);
        }
    }
    let sequential = scenarios::batch(&bench, 100, 1).await?;
    let concurrent = batches.iter().find(|b| b.messages == 100 && b.concurrency == 32).cloned().context("100×32")?;
    println!("== the first issue's benchmark: 100 messages, Twilio latency 150 ms");
    for run in [&sequential, &concurrent] {
        println!(
            "   SEND_CONCURRENCY {:>2}: {:.1} msg/s ({:.0} ms), {:.2} DynamoDB write requests per sent message",
            run.concurrency,
            run.per_second(),
            ms(run.wall),
            run.requests.dynamo_writes() as f64 / run.sent as f64
        );
    }
    let speedup = concurrent.per_second() / sequential.per_second();
    println!("   ratio: {speedup:.1}×");

    println!("== retry sweep: requests per due item");
    let sweep = scenarios::sweep_requests(&bench, 200, 2000).await?;
    println!(
        "   {} due among {}: {} → {}",
        sweep.due,
        sweep.due + sweep.other_items,
        sweep.requests.summary(),
        sweep.response
    );

    let (messages, environments, concurrency, batch_size) =
        if args.quick { (600, 2, 8, 100) } else { (3000, 2, 8, 100) };
    let mut throughputs = Vec::new();
    // As specified (80/s), then with the limit below what moto lets the send path reach on
    // this machine, so that the limit, not moto, binds and the throttled path is exercised.
    let mut runs = vec![(RATE_LIMIT, messages)];
    while let Some(&(rate, messages)) = runs.get(throughputs.len()) {
        println!("== sustained throughput: {messages} messages, Twilio limit {rate}/s per sender");
        let t = scenarios::throughput(&bench, messages, rate, environments, concurrency, batch_size).await?;
        println!(
            "   held {:.1} msg/s ({:.0} % of the limit), steady {:.1} msg/s, {} × 429, lost {}, duplicated {}, unfinished {}, \
             {} invocations, moto busy {}",
            t.held,
            t.held / rate as f64 * 100.0,
            t.steady,
            t.throttled,
            t.lost,
            t.duplicated,
            t.unfinished,
            t.invocations,
            percent(scenarios::busy(t.moto_cpu, t.wall))
        );
        if throughputs.is_empty() && t.held < RATE_LIMIT as f64 * TARGET_HELD_SHARE {
            // The pipeline could not reach the limit: once more with the limit at 60 % of what
            // it reached, so that the limit, not moto, binds.
            let scaled = ((t.held * 0.6) as u32).max(3);
            runs.push((scaled, if args.quick { 300 } else { (scaled as usize * 60).clamp(500, 3000) }));
        }
        throughputs.push(t);
    }

    let sizes = scenarios::sizes(&args.sizes);
    for (name, size) in &sizes {
        println!("== {name}: {size} bytes");
    }

    std::fs::create_dir_all(&args.out)?;
    let text = chart::load_font(args.font.as_deref());
    chart::draw(&args.out.join("bench.png"), &batches, &throughputs, &ceiling, text)?;
    let report = report(&Report {
        args: &args,
        capacity: &capacity,
        phone_load,
        batches: &batches,
        sequential: &sequential,
        concurrent: &concurrent,
        cold: &[cold_empty, cold_message],
        sweep: &sweep,
        throughputs: &throughputs,
        ceiling: &ceiling,
        sizes: &sizes,
        chart_has_text: text,
        took: started.elapsed(),
    });
    std::fs::write(args.out.join("bench.md"), report)?;
    println!(
        "== wrote {} and {} in {:.0} s",
        args.out.join("bench.md").display(),
        args.out.join("bench.png").display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

struct Report<'a> {
    args: &'a Args,
    /// (concurrency, through the proxy, UpdateItem/s)
    capacity: &'a [(usize, bool, f64)],
    phone_load: Duration,
    batches: &'a [BatchRun],
    sequential: &'a BatchRun,
    concurrent: &'a BatchRun,
    cold: &'a [ColdStarts],
    sweep: &'a SweepRequests,
    throughputs: &'a [Throughput],
    ceiling: &'a ceiling::Ceiling,
    sizes: &'a std::collections::BTreeMap<String, u64>,
    chart_has_text: bool,
    took: Duration,
}

fn writes_per_message(b: &BatchRun) -> f64 {
    b.requests.dynamo_writes() as f64 / b.sent as f64
}

fn report(r: &Report) -> String {
    let mut md = String::new();
    let date = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC");
    let args = r.args;
    let _ = writeln!(md, "# Benchmark\n");
    let _ = writeln!(
        md,
        "Measured by `make bench` (scripts/bench.sh → `bench/`, {date}, commit {}) on {}, in {:.0} s. \
         Functions: {}. Everything runs on this one machine: moto (Python) for DynamoDB and SQS, reached \
         through a loopback proxy that counts every request; the Twilio-shaped server (`fake-twilio`) answering \
         after 150 ms; each function a separate process driven through a loopback Lambda Runtime API \
         (`lambda-harness`), as Lambda drives it. Beside them, the same scenarios with the store in memory and \
         the handler in the benchmark's own process measure `send` itself (\"The function's own ceiling\"). The \
         figures are this machine's, with its noise (the in-memory runs are repeated to show it); what they \
         compare is the point.\n",
        if args.commit.is_empty() { "?" } else { &args.commit },
        machine(),
        r.took.as_secs_f64(),
        args.build,
    );
    let _ =
        writeln!(md, "![Batch wall time against the ideal; sustained throughput under the rate limit](bench.png)\n");
    let _ = writeln!(
        md,
        "Left: for each batch (messages × SEND_CONCURRENCY: {}), the ideal (grey), the measured wall time against \
         moto (blue) and with the store in memory (green, the median; the black line spans the runs' min–max), \
         log scale. Right: messages Twilio accepted per second in the 80 msg/s run against moto (blue, the limit \
         red), in the run with the limit below moto's ceiling (purple, its limit pink), and with the store in \
         memory (green: the median run), with the 429 answers per second of the last two (orange, light green).{}\n",
        r.batches.iter().map(|b| format!("{}×{}", b.messages, b.concurrency)).collect::<Vec<_>>().join(", "),
        if r.chart_has_text { "" } else { " (Drawn without text: no font was found.)" }
    );

    // -- moto's ceiling ------------------------------------------------------------------------
    let best_capacity = r.capacity.iter().map(|c| c.2).fold(0.0, f64::max);
    let busiest = r.batches.iter().filter_map(|b| scenarios::busy(b.moto_cpu, b.wall)).fold(0.0, f64::max);
    let moto_ms_per_message = r
        .batches
        .iter()
        .filter(|b| b.messages >= 100 && b.concurrency > 1)
        .filter_map(|b| b.moto_cpu.map(|c| ms(c) / b.sent as f64))
        .fold(f64::NAN, f64::min);
    let moto_bound = r.batches.iter().filter(|b| b.concurrency > 1).map(BatchRun::per_second).fold(0.0, f64::max);
    let _ = writeln!(md, "## What sets the pace here: moto\n");
    let _ = writeln!(
        md,
        "moto answers a simple conditional `UpdateItem` at about {best_capacity:.0}/s on this machine whatever the \
         concurrency ({}): it is one Python process, serialised by its interpreter lock and by the lock that makes \
         its writes atomic. The send path's own requests cost it far more: the claim is a 15-clause update \
         expression with `ALL_OLD`, and moto's expression validator walks its syntax tree once per check (about \
         14 ms of CPU per claim, profiled). Measured during the batches below: **{} of moto's CPU per sent message** \
         (consent read, claim, outcome), moto busy up to **{:.0} %** of a core while the `send` process used a few \
         per cent. So the send path cannot go faster than about **{:.0} messages/s** against moto here — whatever \
         SEND_CONCURRENCY — against the {} msg/s the rate-limit target asks for. On DynamoDB, which serves \
         requests in parallel at a few milliseconds each, the same binary is bound by Twilio's latency and the \
         concurrency, as the ideal assumes. The targets below are measured as asked, against moto; those moto \
         makes unreachable on this machine say so; the runs with the store in memory (the next section) measure \
         the function itself against issue 11's stricter targets.\n",
        r.capacity
            .iter()
            .map(|(c, proxy, per)| format!("{per:.0}/s at {c}{}", if *proxy { " via the proxy" } else { "" }))
            .collect::<Vec<_>>()
            .join(", "),
        if moto_ms_per_message.is_nan() {
            "n/a (moto's PID unknown)".to_owned()
        } else {
            format!("{moto_ms_per_message:.1} ms")
        },
        busiest * 100.0,
        moto_bound,
        RATE_LIMIT,
    );

    // -- targets -------------------------------------------------------------------------------
    let _ = writeln!(md, "## Targets against moto (the first benchmark issue's)\n\n| target | measured | | why |\n| --- | --- | --- | --- |");
    for (name, measured, ok, why) in targets(r, moto_bound) {
        let _ = writeln!(md, "| {name} | {measured} | {} | {why} |", met(ok));
    }
    let _ = writeln!(md, "\n{}", memory_report::section(r.ceiling, r.batches));

    // -- batches -------------------------------------------------------------------------------
    let _ = writeln!(md, "## Batch wall time against moto (Twilio latency 150 ms)\n");
    let _ = writeln!(
        md,
        "One SQS event of N records given to a warm `send` process (a first one-message invocation loaded the \
         phone metadata and opened the connections). Ideal = waves × (Twilio round trip + one DynamoDB write), \
         waves = ⌈N / SEND_CONCURRENCY⌉, the write being the median conditional `UpdateItem` measured through \
         the same proxy just before ({:.1} ms). \"moto busy\" and \"send CPU\" are the CPU time each process used \
         during the batch, as a share of its wall time (100 % = one core).\n",
        ms(r.batches[0].write_latency)
    );
    let _ = writeln!(
        md,
        "| messages | SEND_CONCURRENCY | waves | wall | ideal | ratio | msg/s | DynamoDB writes / msg | reads / msg | moto busy | send CPU | peak RSS |\n\
         | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    for b in r.batches.iter().chain(std::iter::once(r.sequential)) {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {:.0} ms | {:.0} ms | {:.2} | {:.1} | {:.2} | {:.2} | {} | {} | {} |",
            b.messages,
            b.concurrency,
            b.waves(),
            ms(b.wall),
            ms(b.ideal),
            b.ratio(),
            b.per_second(),
            writes_per_message(b),
            b.requests.dynamo_reads() as f64 / b.sent as f64,
            percent(scenarios::busy(b.moto_cpu, b.wall)),
            percent(scenarios::busy(b.send_cpu, b.wall)),
            mib(b.peak_rss_kib)
        );
    }

    // -- sequential ----------------------------------------------------------------------------
    let (seq, conc) = (r.sequential, r.concurrent);
    let _ =
        writeln!(md, "\n## Sequential baseline and the first issue's benchmark against moto (100 messages, 150 ms)\n");
    let _ = writeln!(
        md,
        "| SEND_CONCURRENCY | wall | msg/s | DynamoDB write requests / sent message |\n| ---: | ---: | ---: | ---: |"
    );
    for b in [seq, conc] {
        let _ = writeln!(
            md,
            "| {} | {:.0} ms | {:.1} | {:.2} |",
            b.concurrency,
            ms(b.wall),
            b.per_second(),
            writes_per_message(b)
        );
    }
    let seq_store_ms = ms(seq.wall) / seq.sent as f64 - scenarios::TWILIO_LATENCY.as_secs_f64() * 1000.0;
    let _ = writeln!(
        md,
        "\nRatio: **{:.1}×**. Concurrency 1 is how the original Python service sent (one message at a time). \
         Sequentially each message costs the Twilio round trip plus {seq_store_ms:.0} ms of moto requests; \
         concurrently, moto's CPU is the limit (above), so the ratio is bounded by about \
         (150 + {seq_store_ms:.0}) / {:.0} ≈ {:.1}× here, where DynamoDB would let it approach \
         SEND_CONCURRENCY × (150 + a few ms) / (150 + a few ms) = 32× at 100 messages (4 waves: ≈ 25×).",
        conc.per_second() / seq.per_second(),
        1000.0 / moto_bound,
        (150.0 + seq_store_ms) / (1000.0 / moto_bound),
    );

    // -- throughput ----------------------------------------------------------------------------
    let _ = writeln!(md, "\n## Sustained throughput under Twilio's per-sender limit, against moto\n");
    if let Some(t) = r.throughputs.first() {
        let _ = writeln!(
            md,
            "Messages on an SQS queue; an event source mapping as Lambda's (batches of up to {}, {} execution \
             environments, `ReportBatchItemFailures`) feeding `send` with SEND_CONCURRENCY {}; Twilio (150 ms) \
             accepts N messages per second per sender (a token bucket holding one second) and answers 429 with \
             code 20429 beyond. A throttled message gives its attempt back, is re-enqueued with a delay of 1–2 s \
             (more if throttled again) and pauses its invocation's creates for 1 s. The second run lowers the limit \
             below moto's ceiling, so that the limit binds.\n",
            t.batch_size, t.environments, t.concurrency
        );
    }
    let _ = writeln!(
        md,
        "| messages | limit | held (start → last accepted) | of the limit | steady (10th–90th pct) | 429s | lost | duplicated | invocations | moto busy | wall |\n\
         | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    for t in r.throughputs {
        let _ = writeln!(
            md,
            "| {} | {}/s | {:.1} msg/s | {:.0} % | {:.1} msg/s | {} | {} | {} | {} | {} | {:.1} s |",
            t.messages,
            t.rate_limit,
            t.held,
            t.held / t.rate_limit as f64 * 100.0,
            t.steady,
            t.throttled,
            t.lost,
            t.duplicated,
            t.invocations,
            percent(scenarios::busy(t.moto_cpu, t.wall)),
            t.wall.as_secs_f64()
        );
    }
    let _ = writeln!(
        md,
        "\nLost: messages without exactly one successful create or whose item is not `sent`; duplicated: messages \
         created more than once (counted at the Twilio-shaped server, from each create's `StatusCallback`)."
    );

    // -- cold start ----------------------------------------------------------------------------
    let _ = writeln!(md, "\n## Cold start\n");
    let _ = writeln!(
        md,
        "A fresh process per start, on a fresh Runtime API port with the event already queued: from just before \
         `exec` to the first `/next` (init: configuration read, AWS and Twilio clients built; Lambda's \"Init \
         Duration\") and to the first event's response received. The one-message event reads consent, claims, \
         creates (Twilio answering at once) and records the outcome; its first phone number parse loads \
         `phonenumber`'s metadata, which alone took **{:.0} ms** in the benchmark's own (release) process. The \
         binary is in the page cache (Lambda's cold start also fetches the code).\n",
        ms(r.phone_load)
    );
    let _ = writeln!(md, "| event | starts | init median | first answer median | p90 | min | max |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for c in r.cold {
        let _ = writeln!(
            md,
            "| {} | {} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms |",
            c.event,
            c.first_answer.len(),
            ms(median(&c.init)),
            ms(median(&c.first_answer)),
            ms(percentile(&c.first_answer, 0.9)),
            ms(percentile(&c.first_answer, 0.0)),
            ms(percentile(&c.first_answer, 1.0))
        );
    }

    // -- requests ------------------------------------------------------------------------------
    let _ = writeln!(md, "\n## DynamoDB requests\n");
    let big = r.batches.iter().max_by_key(|b| (b.messages, b.concurrency)).expect("a batch");
    let per = |n: u64| n as f64 / big.sent as f64;
    let _ = writeln!(
        md,
        "Send path ({} messages, all sent at the first attempt), per sent message: {:.2} `GetItem` (consent), \
         {:.2} `UpdateItem` (claim, outcome), {:.2} `PutItem`, {:.2} `Query`: **{:.2} writes**, as DESIGN.md \
         says (one consent read and two writes). Requests seen: {}.\n",
        big.sent,
        per(big.requests.op("GetItem")),
        per(big.requests.op("UpdateItem")),
        per(big.requests.op("PutItem")),
        per(big.requests.op("Query")),
        per(big.requests.dynamo_writes()),
        big.requests.summary()
    );
    let sweep = r.sweep;
    let due = sweep.due as f64;
    let _ = writeln!(
        md,
        "Retry sweep ({}, one run; {} items due among {} — the others final or not yet due): {:.3} `Query` and \
         {:.2} `UpdateItem` per due item (16 queries, one per shard, then one conditional take per item), {:.2} \
         SQS `SendMessageBatch` per due item (10 per call, 16 shards); no `Scan`. Requests seen: {}. Its answer: \
         `{}`.",
        if sweep.binary {
            "the release `retry-sweep` binary under the Runtime API"
        } else {
            "the sweep handler in process"
        },
        sweep.due,
        sweep.due + sweep.other_items,
        sweep.requests.op("Query") as f64 / due,
        sweep.requests.op("UpdateItem") as f64 / due,
        sweep.requests.op("SendMessageBatch") as f64 / due,
        sweep.requests.summary(),
        sweep.response
    );

    // -- sizes ---------------------------------------------------------------------------------
    let _ = writeln!(md, "\n## Sizes and memory\n\nBuilt with {}.\n\n| function | size |\n| --- | ---: |", args.build);
    for (name, size) in r.sizes {
        let _ = writeln!(md, "| `{name}` | {:.1} MiB ({size} B) |", *size as f64 / 1_048_576.0);
    }
    let _ = writeln!(
        md,
        "\nPeak RSS (`VmHWM` of the `send` process after the batch): {}.",
        r.batches
            .iter()
            .map(|b| format!("{} messages at {}: {}", b.messages, b.concurrency, mib(b.peak_rss_kib)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    md
}

fn targets(r: &Report, moto_bound: f64) -> Vec<(String, String, bool, String)> {
    let mut targets = Vec::new();
    for concurrency in [16, 32] {
        let runs: Vec<&BatchRun> = r.batches.iter().filter(|b| b.concurrency == concurrency).collect();
        let worst = runs.iter().map(|b| b.ratio()).fold(0.0, f64::max);
        let busy = runs.iter().filter_map(|b| scenarios::busy(b.moto_cpu, b.wall)).fold(0.0, f64::max);
        targets.push((
            format!("batch wall ≤ {TARGET_BATCH_RATIO}× ideal (SEND_CONCURRENCY {concurrency})"),
            runs.iter().map(|b| format!("{}: {:.2}×", b.messages, b.ratio())).collect::<Vec<_>>().join(", "),
            worst <= TARGET_BATCH_RATIO,
            format!("moto busy up to {:.0} %: its CPU, not the waves, sets the wall time", busy * 100.0),
        ));
    }
    for t in r.throughputs {
        let share = t.held / t.rate_limit as f64;
        let why = if t.rate_limit == RATE_LIMIT && share < TARGET_HELD_SHARE {
            format!("moto caps the send path at ≈ {moto_bound:.0} msg/s here, below the limit: no 429 can even occur")
        } else {
            "the limit binds: 429s absorbed by the throttled path".to_owned()
        };
        targets.push((
            format!(
                "≥ {:.0} % of {} msg/s held over {} messages, 0 lost, 0 duplicated",
                TARGET_HELD_SHARE * 100.0,
                t.rate_limit,
                t.messages
            ),
            format!(
                "{:.1} msg/s ({:.0} %), steady {:.1}; {} × 429; lost {}, duplicated {}{}",
                t.held,
                share * 100.0,
                t.steady,
                t.throttled,
                t.lost,
                t.duplicated,
                if t.unfinished > 0 {
                    format!(", {} unfinished when time was up", t.unfinished)
                } else {
                    String::new()
                }
            ),
            share >= TARGET_HELD_SHARE && t.lost == 0 && t.duplicated == 0 && t.unfinished == 0,
            why,
        ));
    }
    let speedup = r.concurrent.per_second() / r.sequential.per_second();
    targets.push((
        format!("≥ {TARGET_SPEEDUP}× the sequential baseline at 100 messages"),
        format!("{speedup:.1}× (SEND_CONCURRENCY {} vs 1)", r.concurrent.concurrency),
        speedup >= TARGET_SPEEDUP,
        "the concurrent run is moto-bound (see above); the sequential one is not".to_owned(),
    ));
    for c in r.cold {
        let median = ms(median(&c.first_answer));
        let why = if c.event.starts_with("empty") {
            "runtime, configuration, AWS and Twilio clients".to_owned()
        } else {
            format!("+ phonenumber's metadata ({:.0} ms, once per process) + four moto round trips", ms(r.phone_load))
        };
        targets.push((
            format!("cold start ≤ {TARGET_COLD_START_MS} ms ({})", c.event),
            format!("{median:.1} ms median (init {:.1} ms)", ms(crate::median(&c.init))),
            median <= TARGET_COLD_START_MS,
            why,
        ));
    }
    let rss = r.batches.iter().find(|b| b.messages == 100 && b.concurrency == 16).and_then(|b| b.peak_rss_kib);
    targets.push((
        format!("peak RSS ≤ {TARGET_RSS_MIB} MB at 100 messages"),
        format!(
            "{} (1,000 messages: {})",
            mib(rss),
            mib(r.batches.iter().find(|b| b.messages == 1000 && b.concurrency == 16).and_then(|b| b.peak_rss_kib))
        ),
        rss.is_some_and(|k| k as f64 / 1024.0 <= TARGET_RSS_MIB),
        "SEND_CONCURRENCY 16".to_owned(),
    ));
    let worst_writes = r.batches.iter().chain([r.sequential]).map(writes_per_message).fold(0.0, f64::max);
    targets.push((
        format!("≤ {TARGET_WRITES_PER_MESSAGE} DynamoDB writes per sent message (send path)"),
        format!("{worst_writes:.2} (worst batch)"),
        worst_writes <= TARGET_WRITES_PER_MESSAGE,
        "claim + outcome; plus one consent read".to_owned(),
    ));
    targets
}

//! `missive report --campaign NAME [--watch]`: the campaign's items counted by status (from
//! `by-campaign`), and the depth of the send queue and of its dead-letter queue.
//! With `--html FILE` and/or `--csv FILE`: the staff report page and its paper list instead
//! (see [`crate::report_page`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::{ArgGroup, Args};
use missive::domain::status::Status;
use serde::Serialize;

use crate::campaign;
use crate::context::Context;
use crate::error::{CliError, CliResult};
use crate::output::{print_json, warn};
use crate::queues::{self, Depth};
use crate::report_page::load::{self, Tables};
use crate::report_page::paper_list::paper_list;
use crate::report_page::{render_html, Lang, RenderOptions};

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("page").args(["html", "csv"]).multiple(true)))]
pub struct ReportArgs {
    /// The campaign (as given to `bulk` or `send --campaign`).
    #[arg(long, value_name = "NAME")]
    pub campaign: String,
    /// Refresh until at least one message of the campaign is recorded, the send queue is
    /// empty and none of the campaign's messages is in flight (sending, retrying, in_doubt).
    #[arg(long)]
    pub watch: bool,
    /// Seconds between refreshes with --watch.
    #[arg(long, default_value_t = 2.0, value_name = "S", requires = "watch")]
    pub interval: f64,
    /// Give up watching after this many seconds (exit 5).
    #[arg(long, default_value_t = 600.0, value_name = "S", requires = "watch")]
    pub timeout: f64,
    /// Items per Query page (tests use it to cross page boundaries).
    #[arg(long, hide = true, value_parser = clap::value_parser!(i32).range(1..))]
    pub page_size: Option<i32>,
    /// Write the staff report to FILE: one self-contained HTML page (opens offline, prints
    /// on A4) for the head teacher or the secretary.
    #[arg(long, value_name = "FILE", conflicts_with = "watch")]
    pub html: Option<PathBuf>,
    /// Write the families not reached to FILE as CSV (the paper list).
    #[arg(long, value_name = "FILE", conflicts_with = "watch")]
    pub csv: Option<PathBuf>,
    /// The language of the page and of the paper list: fr or en.
    #[arg(long, env = "SCHOOL_LANG", default_value = "fr", value_name = "LANG", value_parser = parse_lang)]
    pub lang: Lang,
    /// Show phone numbers whole on the page and in the paper list (masked otherwise).
    #[arg(long, requires = "page")]
    pub show_phones: bool,
    /// The time zone of the page's dates (an IANA name).
    #[arg(long, env = "SCHOOL_TIMEZONE", default_value = "Europe/Paris", value_name = "ZONE", value_parser = parse_zone)]
    pub timezone: chrono_tz::Tz,
}

fn parse_lang(text: &str) -> Result<Lang, String> {
    Lang::parse(text).map_err(|e| format!("{e} (from --lang or SCHOOL_LANG)"))
}

fn parse_zone(text: &str) -> Result<chrono_tz::Tz, String> {
    text.trim().parse::<chrono_tz::Tz>().map_err(|_| {
        format!("{text:?} is not an IANA time zone such as Europe/Paris (from --timezone or SCHOOL_TIMEZONE)")
    })
}

/// What `report` shows (and prints with `--json`).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub campaign: String,
    /// Items of the campaign in MessageLog (a message enqueued but not yet taken has none).
    pub items: u64,
    /// Every status, with 0 for those no item has.
    pub by_status: BTreeMap<String, u64>,
    /// Items `sending`, `retrying` or `in_doubt`.
    pub in_flight: u64,
    /// Items `scheduled`: waiting for their time, neither in flight nor final.
    pub scheduled: u64,
    /// Items in a final status.
    #[serde(rename = "final")]
    pub final_items: u64,
    /// The send queue: the whole queue, every campaign.
    pub send_queue: Depth,
    /// The dead-letter queue, when there is one.
    pub dlq: Option<Depth>,
    /// At least one item of the campaign is recorded, the send queue is empty and no item of
    /// the campaign is in flight. Without an item, an empty queue proves nothing: the name may
    /// be misspelt, or SQS's approximate counts may not show the messages just enqueued yet.
    pub settled: bool,
    /// The parents' replies to the campaign (the Inbox).
    pub replies: u64,
    /// The quick-reply answers (`ack`), each message's last.
    pub acks: BTreeMap<String, u64>,
    /// When it was read (RFC 3339).
    pub at: String,
}

pub async fn read(ctx: &Context, campaign: &str, dlq_url: Option<&str>, page_size: Option<i32>) -> CliResult<Report> {
    let dynamo = ctx.dynamo().await;
    let sqs = ctx.sqs().await;
    let queue_url = ctx.queue_url()?;
    let inbox = missive::adapters::dynamo::DynamoInbox::new(dynamo.clone(), &ctx.global.inbox_table);
    let (items, replies, send_queue, dlq) = tokio::try_join!(
        campaign::items(&dynamo, &ctx.global.message_log_table, campaign, None, page_size),
        async {
            use missive::ports::Inbox as _;
            inbox.for_campaign(campaign).await.map_err(CliError::from)
        },
        queues::depth(&sqs, queue_url),
        async {
            match dlq_url {
                Some(url) => queues::depth(&sqs, url).await.map(Some),
                None => Ok(None),
            }
        }
    )?;
    let mut by_status: BTreeMap<String, u64> = Status::ALL.iter().map(|s| (s.as_str().to_owned(), 0)).collect();
    let mut in_flight = 0;
    let mut scheduled = 0;
    for item in &items {
        *by_status.entry(item.status.clone()).or_default() += 1;
        // A `scheduled` message waits for its time (hours, days): the campaign is settled
        // without it, as the report's counts show it.
        match item.status.parse::<Status>() {
            Ok(status) if status.is_busy() => in_flight += 1,
            Ok(Status::Scheduled) => scheduled += 1,
            _ => {}
        }
    }
    let count = items.len() as u64;
    Ok(Report {
        campaign: campaign.to_owned(),
        items: count,
        by_status,
        in_flight,
        scheduled,
        final_items: count - in_flight - scheduled,
        settled: is_settled(count, in_flight, &send_queue),
        send_queue,
        dlq,
        replies: replies.len() as u64,
        acks: crate::commands::replies::ack_counts(&replies),
        at: chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    })
}

/// See [`Report::settled`].
fn is_settled(items: u64, in_flight: u64, send_queue: &Depth) -> bool {
    items > 0 && in_flight == 0 && send_queue.total() == 0
}

/// The counts that are not zero, in the order of the status table.
fn nonzero(report: &Report) -> Vec<(String, u64)> {
    let mut order: Vec<String> = Status::ALL.iter().map(|s| s.as_str().to_owned()).collect();
    order.extend(report.by_status.keys().filter(|k| !order.contains(k)).cloned().collect::<Vec<_>>());
    order.into_iter().filter_map(|s| report.by_status.get(&s).filter(|n| **n > 0).map(|n| (s, *n))).collect()
}

pub fn print_text(report: &Report) {
    let waiting = if report.scheduled > 0 { format!(", {} scheduled", report.scheduled) } else { String::new() };
    println!(
        "campaign {}: {} message(s) recorded, {} in flight{waiting}, {} final",
        report.campaign, report.items, report.in_flight, report.final_items
    );
    for (status, count) in nonzero(report) {
        let note = match status.as_str() {
            "sending" | "retrying" | "in_doubt" => "  (in flight)",
            "scheduled" => "  (waiting for its time)",
            _ => "",
        };
        println!("  {status:<12} {count:>6}{note}");
    }
    if report.replies > 0 || !report.acks.is_empty() {
        let answers: Vec<String> = report.acks.iter().map(|(word, n)| format!("{word} {n}")).collect();
        let answers = if answers.is_empty() { "none".to_owned() } else { answers.join(", ") };
        println!("replies: {} (answers: {answers}; missive replies --campaign {})", report.replies, report.campaign);
    }
    let q = &report.send_queue;
    println!("send queue:        {} waiting, {} in flight, {} delayed", q.waiting, q.in_flight, q.delayed);
    match &report.dlq {
        Some(d) => println!("dead-letter queue: {} message(s)", d.total()),
        None => println!("dead-letter queue: none found"),
    }
    if report.settled {
        println!("settled: the send queue is empty and none of the campaign's messages is in flight");
    } else if report.items == 0 {
        println!("not settled: {}", nothing_recorded(&report.campaign));
    } else {
        println!("not settled yet: messages are waiting in the queue or in flight");
    }
}

fn nothing_recorded(campaign: &str) -> String {
    format!(
        "no item of campaign {campaign} recorded yet (a misspelt name, or messages not yet taken from the queue: SQS's counts lag)"
    )
}

fn watch_line(report: &Report) {
    let counts: Vec<String> = nonzero(report).iter().map(|(s, n)| format!("{s} {n}")).collect();
    let q = &report.send_queue;
    println!(
        "{}  {} recorded, {} in flight | {} | queue {} waiting, {} in flight, {} delayed | dlq {}",
        &report.at[11..19],
        report.items,
        report.in_flight,
        if counts.is_empty() { "-".into() } else { counts.join(", ") },
        q.waiting,
        q.in_flight,
        q.delayed,
        report.dlq.map_or("-".into(), |d| d.total().to_string())
    );
}

pub async fn run(ctx: &Context, args: ReportArgs) -> CliResult<()> {
    crate::compose::check_campaign(&args.campaign)?;
    let valid = args.interval > 0.0 && args.interval.is_finite() && args.timeout >= 0.0 && args.timeout.is_finite();
    if !valid {
        return Err(CliError::Usage("--interval must be above 0 and --timeout at least 0".into()));
    }
    if args.html.is_some() || args.csv.is_some() {
        return write_page(ctx, &args).await;
    }
    let dlq = queues::dlq_url(ctx).await?;
    if !args.watch {
        let report = read(ctx, &args.campaign, dlq.as_deref(), args.page_size).await?;
        if ctx.json() {
            print_json(&report);
        } else {
            print_text(&report);
        }
        return Ok(());
    }
    let started = Instant::now();
    let timeout = Duration::from_secs_f64(args.timeout);
    let mut warned = false;
    loop {
        let report = read(ctx, &args.campaign, dlq.as_deref(), args.page_size).await?;
        // Nothing recorded while the queue looks empty: what used to pass for settled. Said
        // once; messages visibly in the queue need no warning (they are being taken).
        if !warned && report.items == 0 && report.send_queue.total() == 0 {
            warn(&format!("{}; watching until --timeout ({} s)", nothing_recorded(&args.campaign), args.timeout));
            warned = true;
        }
        let timed_out = !report.settled && started.elapsed() >= timeout;
        if ctx.json() {
            print_json(&report);
        } else if report.settled || timed_out {
            watch_line(&report);
            println!();
            print_text(&report);
        } else {
            watch_line(&report);
        }
        if report.settled {
            return Ok(());
        }
        if timed_out {
            let why = if report.items == 0 { ": no item of it was recorded" } else { "" };
            return Err(CliError::Timeout(format!(
                "campaign {} did not settle within {} s{why}",
                args.campaign, args.timeout
            )));
        }
        tokio::time::sleep(Duration::from_secs_f64(args.interval)).await;
    }
}

/// `--html` / `--csv`: reads the campaign once, writes the page and the paper list.
async fn write_page(ctx: &Context, args: &ReportArgs) -> CliResult<()> {
    let dynamo = ctx.dynamo().await;
    let tables = Tables {
        message_log: &ctx.global.message_log_table,
        consent: &ctx.global.consent_table,
        campaigns: &ctx.global.campaign_table,
        inbox: &ctx.global.inbox_table,
    };
    let report = load::load(&dynamo, tables, &args.campaign, chrono::Utc::now().timestamp(), args.page_size).await?;
    if report.recorded.items == 0 {
        warn(&format!("{}; the page says so", nothing_recorded(&args.campaign)));
    }
    if let Some(path) = &args.html {
        let options = RenderOptions { lang: args.lang, show_phones: args.show_phones, zone: args.timezone };
        let html =
            render_html(&report, &options).map_err(|e| CliError::Runtime(format!("render the report page: {e}")))?;
        write_file(path, "--html", html.as_bytes())?;
    }
    if let Some(path) = &args.csv {
        let csv = paper_list(&report, args.lang, args.show_phones)
            .map_err(|e| CliError::Runtime(format!("write the paper list: {e}")))?;
        write_file(path, "--csv", csv.as_bytes())?;
    }
    let path_text = |path: &Option<PathBuf>| path.as_ref().map(|p| p.display().to_string());
    if ctx.json() {
        print_json(&serde_json::json!({
            "campaign": args.campaign,
            "items": report.recorded.items,
            "unreached": report.unreached.len(),
            "html": path_text(&args.html),
            "csv": path_text(&args.csv),
            "lang": args.lang,
            "phones_shown": args.show_phones,
        }));
    } else {
        if let Some(path) = &args.html {
            println!("report page: {}", path.display());
        }
        if let Some(path) = &args.csv {
            println!("paper list:  {} ({} families not reached)", path.display(), report.unreached.len());
        }
    }
    Ok(())
}

/// Writes `bytes` to `path` through a temporary file beside it, so that a reader never sees
/// half a page; errors name the flag and the path.
fn write_file(path: &Path, flag: &str, bytes: &[u8]) -> CliResult<()> {
    let name =
        path.file_name().ok_or_else(|| CliError::Usage(format!("{flag}: {} is not a file name", path.display())))?;
    let mut temporary = name.to_owned();
    temporary.push(format!(".{}.tmp", std::process::id()));
    let temporary = path.with_file_name(temporary);
    let result = std::fs::write(&temporary, bytes).and_then(|()| std::fs::rename(&temporary, path));
    result.map_err(|e| {
        let _ = std::fs::remove_file(&temporary);
        CliError::Runtime(format!("{flag} {}: {e}", path.display()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settled_needs_an_item_an_empty_queue_and_nothing_in_flight() {
        let empty = Depth::default();
        let waiting = Depth { waiting: 1, ..Depth::default() };
        assert!(is_settled(3, 0, &empty));
        assert!(!is_settled(0, 0, &empty), "nothing recorded: a misspelt name, or counts that lag");
        assert!(!is_settled(3, 1, &empty));
        assert!(!is_settled(3, 0, &waiting));
    }
}

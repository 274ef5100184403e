//! `missive bulk FILE.csv --campaign NAME`: one message per parent, checked whole before
//! anything is written; consent recorded from `whatsapp_optin`; then `SendMessageBatch`es.
//!
//! `message_id = <campaign>:<parent_id>`, so sending the same file twice sends nothing twice.
//! Rows whose `message_id` MessageLog already holds are not enqueued again (`recorded`); a
//! row enqueued but not yet taken by `send` has no item, so a second run made before `send`
//! took it enqueues it again, and `send` acknowledges that copy as a duplicate.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use clap::Args;
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use missive::adapters::dynamo::DynamoConsent;
use missive::adapters::sqs::SqsSendQueue;
use missive::domain::consent::ConsentState;
use missive::domain::message::Label;
use missive::domain::phone::PhoneNumber;
use missive::ports::SendQueue;
use serde::Serialize;
use serde_json::json;

use crate::compose::{check_campaign, parse_pair, parse_phone, Content, ContentArgs, Draft, MessageOptions};
use crate::consent_rules::{self, Current, Written};
use crate::context::Context;
use crate::error::{CliError, CliResult};
use crate::output::{note, print_json, warn, BODY_WARNING};
use crate::recorded;
use crate::sheet::{parse_bool, RowError, Sheet};

#[derive(Debug, Args)]
pub struct BulkArgs {
    /// The CSV file: columns parent_id, phone, whatsapp_optin, plus variable columns.
    #[arg(value_name = "FILE.csv")]
    pub file: PathBuf,
    /// The campaign: message ids are <campaign>:<parent_id>.
    #[arg(long, value_name = "NAME")]
    pub campaign: String,
    #[command(flatten)]
    pub content: ContentArgs,
    /// A template variable read from a column, `COLUMN=N` (`--var-column first_name=1`);
    /// repeatable. Columns named by a number (`1`, `2`) are variables of that number.
    #[arg(long = "var-column", value_name = "COLUMN=N", requires = "template", value_parser = parse_pair)]
    pub var_columns: Vec<(String, String)>,
    #[command(flatten)]
    pub options: MessageOptions,
    /// Enqueue the valid rows of a file that has invalid ones (listed) instead of refusing.
    #[arg(long)]
    pub skip_invalid: bool,
    /// Show what would be sent and recorded; write nothing (no AWS call at all).
    #[arg(long)]
    pub dry_run: bool,
    /// Concurrent consent writes and SendMessageBatch calls.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
}

/// A valid row, ready to enqueue.
#[derive(Debug, Clone)]
pub struct Planned {
    pub line: u64,
    pub parent_id: String,
    pub phone: PhoneNumber,
    pub optin: bool,
    pub message_id: String,
    pub body: String,
    pub content: Content,
}

/// Checks every row; returns the valid ones and every problem, by line.
pub fn plan(
    sheet: &Sheet,
    campaign: &str,
    content: &Content,
    var_columns: &[(String, String)],
    options: &MessageOptions,
    region: &str,
) -> CliResult<(Vec<Planned>, Vec<RowError>)> {
    let parent_col = sheet.require("parent_id")?;
    let phone_col = sheet.require("phone")?;
    let optin_col = sheet.require("whatsapp_optin")?;
    // Variable columns: --var-column COLUMN=N, and columns named by a number.
    let mut variables: Vec<(usize, String, String)> = Vec::new();
    if !content.is_body() {
        for (column, name) in var_columns {
            let index = sheet.require(column)?;
            variables.push((index, column.clone(), name.clone()));
        }
        for (index, header) in sheet.headers.iter().enumerate() {
            if header.parse::<u32>().is_ok() && !variables.iter().any(|(i, _, _)| *i == index) {
                variables.push((index, header.clone(), header.clone()));
            }
        }
    }
    let mut errors = sheet.errors.clone();
    let mut planned = Vec::new();
    let mut parent_lines: HashMap<String, u64> = HashMap::new();
    let mut phone_optin: HashMap<PhoneNumber, (u64, bool)> = HashMap::new();
    for row in &sheet.rows {
        let line = row.line;
        let mut row_errors = Vec::new();
        let mut error = |field: &str, reason: String| row_errors.push(RowError { line, field: field.into(), reason });
        let parent_id = row.get(parent_col).to_owned();
        if parent_id.is_empty() {
            error("parent_id", "required".into());
        } else if let Err(e) = Label::parse(&parent_id, 63) {
            error("parent_id", e);
        } else if let Some(first) = parent_lines.get(&parent_id) {
            error("parent_id", format!("{parent_id:?} is already on line {first} (one message per parent)"));
        }
        let phone = match row.get(phone_col) {
            "" => {
                error("phone", "required".into());
                None
            }
            raw => parse_phone(raw, region).map_err(|e| error("phone", e)).ok(),
        };
        let optin = match parse_bool(row.get(optin_col)) {
            Some(optin) => Some(optin),
            None => {
                error("whatsapp_optin", format!("expected true or false, got {:?}", row.get(optin_col)));
                None
            }
        };
        if let (Some(phone), Some(optin)) = (&phone, optin) {
            if let Some((first, other)) = phone_optin.get(phone) {
                if *other != optin {
                    error("whatsapp_optin", format!("{optin}, but line {first} says {other} for the same phone"));
                }
            }
        }
        let mut values = BTreeMap::new();
        for (index, column, name) in &variables {
            match row.get(*index) {
                "" => error(column, format!("empty (template variable {name})")),
                value => {
                    values.insert(name.clone(), value.to_owned());
                }
            }
        }
        if !row_errors.is_empty() {
            errors.extend(row_errors);
            continue;
        }
        let (Some(phone), Some(optin)) = (phone, optin) else { continue };
        let content = content.with_variables(&values);
        let message_id = format!("{campaign}:{parent_id}");
        let draft = Draft {
            message_id: &message_id,
            to: &phone,
            content: &content,
            campaign: Some(campaign),
            recipient_id: Some(&parent_id),
            options,
        };
        match draft.build() {
            Ok((body, _)) => {
                parent_lines.insert(parent_id.clone(), line);
                phone_optin.entry(phone.clone()).or_insert((line, optin));
                planned.push(Planned { line, parent_id, phone, optin, message_id, body, content });
            }
            Err(reason) => errors.push(RowError { line, field: "message".into(), reason }),
        }
    }
    errors.sort_by_key(|e| e.line);
    Ok((planned, errors))
}

/// A row whose consent was left as it is.
#[derive(Debug, Serialize)]
struct LeftAlone {
    line: u64,
    parent_id: String,
    phone: String,
    whatsapp_optin: bool,
    current: Current,
    reason: String,
}

fn progress(ctx: &Context, len: usize, what: &'static str) -> ProgressBar {
    if !ctx.interactive() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    if let Ok(style) = ProgressStyle::with_template("{msg:>8} [{bar:30}] {pos}/{len} {elapsed}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what);
    bar
}

pub async fn run(ctx: &Context, args: BulkArgs) -> CliResult<()> {
    check_campaign(&args.campaign)?;
    let content = Content::from_args(&args.content)?;
    if content.is_body() {
        warn(BODY_WARNING);
    }
    let sheet = Sheet::open(&args.file)?;
    let (planned, invalid) =
        plan(&sheet, &args.campaign, &content, &args.var_columns, &args.options, ctx.phone_region())?;
    let rows = sheet.rows.len() + sheet.errors.len();
    let invalid_lines = {
        let mut lines: Vec<u64> = invalid.iter().map(|e| e.line).collect();
        lines.dedup();
        lines.len()
    };
    if !invalid.is_empty() && !args.skip_invalid {
        if ctx.json() {
            print_json(&json!({
                "file": sheet.name, "campaign": args.campaign, "rows": rows, "invalid_rows": invalid_lines,
                "errors": invalid, "enqueued": 0,
            }));
        } else {
            for error in &invalid {
                eprintln!("{}: {error}", sheet.name);
            }
        }
        return Err(CliError::InvalidRows(format!(
            "{}: {invalid_lines} invalid row(s) of {rows}; nothing was recorded or enqueued (fix them, or pass --skip-invalid to send the valid rows)",
            sheet.name
        )));
    }
    if !ctx.json() {
        for error in &invalid {
            eprintln!("{}: skipped: {error}", sheet.name);
        }
    }
    if args.dry_run {
        return dry_run(ctx, &args, &sheet, rows, &planned, &invalid, invalid_lines);
    }
    if planned.is_empty() {
        return Err(CliError::InvalidRows(format!("{}: no valid row to send", sheet.name)));
    }
    let queue_url = ctx.queue_url()?.to_owned();
    let concurrency = usize::from(args.concurrency);

    // 1. What an earlier run already sent: `send` recorded an item for it. Read before any
    //    write, so that a failed lookup leaves nothing half done.
    let to_send = not_yet_recorded(ctx, &planned, concurrency).await?;
    let already_recorded = planned.len() - to_send.len();

    // 2. Consent, once per phone (the first line that names it is the evidence), for every
    //    valid row: the file states it, whether or not its message went out before.
    let store = DynamoConsent::new(ctx.dynamo().await, &ctx.global.consent_table);
    let mut firsts: Vec<&Planned> = Vec::new();
    for row in &planned {
        if !firsts.iter().any(|r| r.phone == row.phone) {
            firsts.push(row);
        }
    }
    let bar = progress(ctx, firsts.len(), "consent");
    let now = chrono::Utc::now().timestamp();
    let results: Vec<(&Planned, Result<Written, missive::ports::StoreError>)> = futures::stream::iter(firsts)
        .map(|row| {
            let store = &store;
            let bar = &bar;
            let evidence = format!("{}:{}", sheet.name, row.line);
            async move {
                let state = if row.optin { ConsentState::OptedIn } else { ConsentState::OptedOut };
                let result = consent_rules::import(store, &row.phone, state, &evidence, now).await;
                bar.inc(1);
                (row, result)
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    bar.finish_and_clear();
    let (mut recorded, mut unchanged, mut left_alone, mut failed) = (0, 0, Vec::new(), Vec::new());
    for (row, result) in results {
        match result {
            Ok(Written::Applied) => recorded += 1,
            Ok(Written::Unchanged) => unchanged += 1,
            Ok(Written::LeftAlone(current)) => left_alone.push(LeftAlone {
                line: row.line,
                parent_id: row.parent_id.clone(),
                phone: row.phone.masked(),
                whatsapp_optin: row.optin,
                reason: consent_rules::why_left_alone(&current),
                current,
            }),
            Err(err) => failed.push(format!("line {}: {err}", row.line)),
        }
    }
    left_alone.sort_by_key(|l| l.line);
    if !failed.is_empty() {
        failed.sort();
        return Err(CliError::Runtime(format!(
            "consent could not be recorded, so nothing was enqueued (running the same file again is safe):\n  {}",
            failed.join("\n  ")
        )));
    }

    // 3. The messages not recorded yet, 10 per SendMessageBatch, `concurrency` calls at a time.
    let queue = SqsSendQueue::new(ctx.sqs().await, &queue_url);
    let bar = progress(ctx, to_send.len(), "enqueue");
    let enqueued = AtomicU64::new(0);
    let not_enqueued: Vec<u64> = futures::stream::iter(to_send.chunks(10))
        .map(|chunk| {
            let (queue, bar, enqueued) = (&queue, &bar, &enqueued);
            async move {
                let bodies: Vec<&str> = chunk.iter().map(|row| row.body.as_str()).collect();
                let failed = queue.send_batch(&bodies).await;
                let still_failed: Vec<usize> = if failed.is_empty() {
                    failed
                } else {
                    let retry: Vec<&str> = failed.iter().map(|&i| bodies[i]).collect();
                    queue.send_batch(&retry).await.into_iter().map(|i| failed[i]).collect()
                };
                enqueued.fetch_add((chunk.len() - still_failed.len()) as u64, Ordering::SeqCst);
                bar.inc(chunk.len() as u64);
                still_failed.into_iter().map(|i| chunk[i].line).collect::<Vec<u64>>()
            }
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .flatten()
        .collect();
    bar.finish_and_clear();
    let enqueued = enqueued.load(Ordering::SeqCst);

    if ctx.json() {
        print_json(&json!({
            "file": sheet.name,
            "campaign": args.campaign,
            "rows": rows,
            "invalid_rows": invalid_lines,
            "errors": invalid,
            "already_recorded": already_recorded,
            "enqueued": enqueued,
            "not_enqueued_lines": not_enqueued,
            "consent": {"recorded": recorded, "unchanged": unchanged, "left_alone": left_alone},
        }));
    } else {
        println!(
            "{}: {rows} row(s), {invalid_lines} invalid{}, {already_recorded} already recorded, {enqueued} enqueued for campaign {}",
            sheet.name,
            if invalid_lines > 0 { " (skipped)" } else { "" },
            args.campaign
        );
        if already_recorded > 0 {
            println!(
                "already recorded: {already_recorded} message(s) that MessageLog holds from an earlier run were not enqueued again"
            );
        }
        println!("consent: {recorded} recorded, {unchanged} unchanged, {} left alone", left_alone.len());
        for row in &left_alone {
            println!(
                "  line {} ({}, {}): whatsapp_optin={} not applied: {}",
                row.line, row.parent_id, row.phone, row.whatsapp_optin, row.reason
            );
        }
        if enqueued > 0 {
            note(&format!("follow it with: missive report --campaign {} --watch", args.campaign));
        } else if already_recorded > 0 && not_enqueued.is_empty() {
            note(&format!("nothing new to send; see: missive report --campaign {}", args.campaign));
        }
    }
    if !not_enqueued.is_empty() {
        return Err(CliError::Runtime(format!(
            "{} message(s) could not be enqueued (lines {}); run the same file again: what was enqueued is not sent twice",
            not_enqueued.len(),
            not_enqueued.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")
        )));
    }
    Ok(())
}

/// The rows whose `message_id` MessageLog does not hold yet (`BatchGetItem`, key only). A row
/// DynamoDB left unprocessed after every retry is kept: `send` would acknowledge a duplicate.
async fn not_yet_recorded<'a>(
    ctx: &Context,
    planned: &'a [Planned],
    concurrency: usize,
) -> CliResult<Vec<&'a Planned>> {
    let table = &ctx.global.message_log_table;
    let ids: Vec<String> = planned.iter().map(|row| row.message_id.clone()).collect();
    let lookup = recorded::lookup(&ctx.dynamo().await, table, &ids, concurrency).await.map_err(|err| {
        CliError::Runtime(format!("{err}; nothing was recorded or enqueued (running the same file again is safe)"))
    })?;
    if !lookup.unchecked.is_empty() {
        warn(&format!(
            "{} message id(s) could not be looked up in {table} (DynamoDB left them unprocessed after {} attempts): enqueued all the same; send acknowledges any already recorded as a duplicate",
            lookup.unchecked.len(),
            recorded::ATTEMPTS
        ));
    }
    Ok(planned.iter().filter(|row| !lookup.recorded.contains(&row.message_id)).collect())
}

fn dry_run(
    ctx: &Context,
    args: &BulkArgs,
    sheet: &Sheet,
    rows: usize,
    planned: &[Planned],
    invalid: &[RowError],
    invalid_lines: usize,
) -> CliResult<()> {
    let state = |optin: bool| if optin { "opted_in" } else { "opted_out" };
    if ctx.json() {
        let messages: Vec<_> = planned
            .iter()
            .map(|row| {
                json!({
                    "line": row.line,
                    "message_id": row.message_id,
                    "to": row.phone.masked(),
                    "whatsapp_optin": row.optin,
                    "consent": state(row.optin),
                    "content": row.content.summary(),
                })
            })
            .collect();
        print_json(&json!({
            "dry_run": true, "file": sheet.name, "campaign": args.campaign, "rows": rows,
            "invalid_rows": invalid_lines, "errors": invalid, "would_enqueue": planned.len(), "messages": messages,
        }));
    } else {
        println!(
            "dry run: {}: {rows} row(s), {invalid_lines} invalid; would enqueue {} message(s) for campaign {}:",
            sheet.name,
            planned.len(),
            args.campaign
        );
        for row in planned {
            println!(
                "  line {:<4} {:<40} {:<14} consent {:<9} {}",
                row.line,
                row.message_id,
                row.phone.masked(),
                state(row.optin),
                row.content.summary()
            );
        }
        println!("nothing was written (consent is recorded unless the parent's own opt-out says otherwise)");
        println!("not checked: which of these MessageLog already holds (a real run does not enqueue those again)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template() -> Content {
        Content::Template { content_sid: "HX0123456789abcdef0123456789abcdef".into(), variables: BTreeMap::new() }
    }

    #[test]
    fn every_bad_row_is_reported_with_its_line_and_field() {
        let csv = "parent_id,phone,whatsapp_optin,first_name\n\
                   p01,+33612345601,true,Jean\n\
                   p02,07 12 34 56 78,true,Marie\n\
                   p03,06 12 34 56 03,maybe,Luc\n\
                   p01,+33612345604,false,Zoé\n\
                   p 5,+33612345605,true,\n\
                   p06,+33612345601,false,Ana\n\
                   p07,0612345607,yes,Léa\n";
        let sheet = Sheet::parse("parents.csv", csv.as_bytes()).unwrap();
        let vars = [("first_name".to_owned(), "1".to_owned())];
        let (planned, errors) = plan(&sheet, "trip", &template(), &vars, &MessageOptions::default(), "FR").unwrap();
        let found: Vec<(u64, &str)> = errors.iter().map(|e| (e.line, e.field.as_str())).collect();
        assert_eq!(
            found,
            [
                (3, "phone"),
                (4, "whatsapp_optin"),
                (5, "parent_id"),
                (6, "parent_id"),
                (6, "first_name"),
                (7, "whatsapp_optin"),
            ]
        );
        assert_eq!(planned.iter().map(|p| p.line).collect::<Vec<_>>(), [2, 8]);
        assert_eq!(planned[1].message_id, "trip:p07");
        assert_eq!(planned[1].phone.as_str(), "+33612345607");
        let body: serde_json::Value = serde_json::from_str(&planned[0].body).unwrap();
        assert_eq!(body["template"]["variables"]["1"], "Jean");
        assert_eq!(body["recipient_id"], "p01");
    }

    #[test]
    fn a_missing_column_is_an_error_naming_it() {
        let sheet = Sheet::parse("p.csv", b"parent_id,phone\np1,+33612345678\n").unwrap();
        let err = plan(&sheet, "c", &template(), &[], &MessageOptions::default(), "FR").unwrap_err();
        assert_eq!(err.exit_code(), 4);
        assert!(err.to_string().contains("\"whatsapp_optin\" is missing"), "{err}");
    }
}

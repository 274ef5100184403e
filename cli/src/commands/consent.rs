//! `missive consent import | set | show`: the Consent table from the operator's side.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use futures::StreamExt;
use missive::adapters::dynamo::DynamoConsent;
use missive::domain::consent::{ConsentChange, ConsentSource, ConsentState};
use missive::domain::phone::PhoneNumber;
use missive::ports::ConsentStore;
use serde::Serialize;
use serde_json::json;

use crate::compose::parse_phone;
use crate::consent_rules::{self, Current, Written};
use crate::context::Context;
use crate::error::{CliError, CliResult};
use crate::output::{print_json, time};
use crate::sheet::{parse_bool, RowError, Sheet};

#[derive(Debug, Subcommand)]
pub enum ConsentCommand {
    /// Records consent from a CSV file: columns phone, optin (true/false), optional evidence.
    /// A parent's own opt-out is never undone by a file: such rows are listed and left alone.
    Import(ImportArgs),
    /// Records one phone's consent (source `cli`). Undoing a parent's own opt-out needs --evidence.
    Set(SetArgs),
    /// Shows one phone's consent and its history.
    Show(ShowArgs),
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    #[arg(value_name = "FILE.csv")]
    pub file: PathBuf,
    /// Record the valid rows of a file that has invalid ones (listed) instead of refusing.
    #[arg(long)]
    pub skip_invalid: bool,
    /// Concurrent writes.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("state").required(true).multiple(false).args(["optin", "optout"])))]
pub struct SetArgs {
    #[arg(long, value_name = "PHONE")]
    pub phone: String,
    /// The parent agreed to WhatsApp messages.
    #[arg(long)]
    pub optin: bool,
    /// The parent does not want WhatsApp messages.
    #[arg(long)]
    pub optout: bool,
    /// What proves it (a signed form, a ticket, an e-mail); required to undo a parent's own opt-out.
    #[arg(long, value_name = "TEXT")]
    pub evidence: Option<String>,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    #[arg(long, value_name = "PHONE")]
    pub phone: String,
    /// Show the whole phone number (masked otherwise).
    #[arg(long)]
    pub show_phone: bool,
}

pub async fn run(ctx: &Context, command: ConsentCommand) -> CliResult<()> {
    match command {
        ConsentCommand::Import(args) => import(ctx, args).await,
        ConsentCommand::Set(args) => set(ctx, args).await,
        ConsentCommand::Show(args) => show(ctx, args).await,
    }
}

fn store(ctx: &Context, dynamo: aws_sdk_dynamodb::Client) -> DynamoConsent {
    DynamoConsent::new(dynamo, &ctx.global.consent_table)
}

struct ImportRow {
    line: u64,
    phone: PhoneNumber,
    optin: bool,
    evidence: String,
}

#[derive(Debug, Serialize)]
struct LeftAlone {
    line: u64,
    phone: String,
    optin: bool,
    current: Current,
    reason: String,
}

async fn import(ctx: &Context, args: ImportArgs) -> CliResult<()> {
    let sheet = Sheet::open(&args.file)?;
    let phone_col = sheet.require("phone")?;
    let optin_col = sheet.require("optin")?;
    let evidence_col = sheet.column("evidence");
    let mut errors: Vec<RowError> = sheet.errors.clone();
    let mut rows: Vec<ImportRow> = Vec::new();
    for row in &sheet.rows {
        let line = row.line;
        let phone = parse_phone(row.get(phone_col), ctx.phone_region())
            .map_err(|reason| errors.push(RowError { line, field: "phone".into(), reason }))
            .ok();
        let optin = parse_bool(row.get(optin_col));
        if optin.is_none() {
            errors.push(RowError {
                line,
                field: "optin".into(),
                reason: format!("expected true or false, got {:?}", row.get(optin_col)),
            });
        }
        let (Some(phone), Some(optin)) = (phone, optin) else { continue };
        if let Some(first) = rows.iter().find(|r| r.phone == phone) {
            errors.push(RowError {
                line,
                field: "phone".into(),
                reason: format!("already on line {} (one row per phone)", first.line),
            });
            continue;
        }
        let evidence = evidence_col
            .map(|c| row.get(c))
            .filter(|e| !e.is_empty())
            .map_or_else(|| format!("{}:{line}", sheet.name), str::to_owned);
        rows.push(ImportRow { line, phone, optin, evidence });
    }
    errors.sort_by_key(|e| e.line);
    if !errors.is_empty() && !args.skip_invalid {
        if ctx.json() {
            print_json(&json!({"file": sheet.name, "errors": errors, "recorded": 0}));
        } else {
            for error in &errors {
                eprintln!("{}: {error}", sheet.name);
            }
        }
        return Err(CliError::InvalidRows(format!(
            "{}: {} invalid row(s); nothing was recorded (fix them, or pass --skip-invalid)",
            sheet.name,
            errors.len()
        )));
    }
    if !ctx.json() {
        for error in &errors {
            eprintln!("{}: skipped: {error}", sheet.name);
        }
    }
    let store = store(ctx, ctx.dynamo().await);
    let now = chrono::Utc::now().timestamp();
    let results: Vec<(&ImportRow, Result<Written, missive::ports::StoreError>)> = futures::stream::iter(&rows)
        .map(|row| {
            let store = &store;
            async move {
                let state = if row.optin { ConsentState::OptedIn } else { ConsentState::OptedOut };
                (row, consent_rules::import(store, &row.phone, state, &row.evidence, now).await)
            }
        })
        .buffer_unordered(usize::from(args.concurrency))
        .collect()
        .await;
    let (mut recorded, mut unchanged, mut left_alone, mut failed) = (0, 0, Vec::new(), Vec::new());
    for (row, result) in results {
        match result {
            Ok(Written::Applied) => recorded += 1,
            Ok(Written::Unchanged) => unchanged += 1,
            Ok(Written::LeftAlone(current)) => left_alone.push(LeftAlone {
                line: row.line,
                phone: row.phone.masked(),
                optin: row.optin,
                reason: consent_rules::why_left_alone(&current),
                current,
            }),
            Err(err) => failed.push((row.line, err.to_string())),
        }
    }
    left_alone.sort_by_key(|l| l.line);
    failed.sort();
    if ctx.json() {
        print_json(&json!({
            "file": sheet.name, "rows": sheet.rows.len() + sheet.errors.len(), "errors": errors,
            "recorded": recorded, "unchanged": unchanged, "left_alone": left_alone,
            "failed": failed.iter().map(|(line, error)| json!({"line": line, "error": error})).collect::<Vec<_>>(),
        }));
    } else {
        println!(
            "{}: {recorded} recorded, {unchanged} unchanged, {} left alone, {} invalid",
            sheet.name,
            left_alone.len(),
            errors.len()
        );
        for row in &left_alone {
            println!("  line {} ({}): optin={} not applied: {}", row.line, row.phone, row.optin, row.reason);
        }
    }
    if !failed.is_empty() {
        let lines: Vec<String> = failed.iter().map(|(line, error)| format!("line {line}: {error}")).collect();
        return Err(CliError::Runtime(format!(
            "some rows could not be recorded (importing the file again is safe):\n  {}",
            lines.join("\n  ")
        )));
    }
    Ok(())
}

async fn set(ctx: &Context, args: SetArgs) -> CliResult<()> {
    let phone = parse_phone(&args.phone, ctx.phone_region()).map_err(|e| CliError::Usage(format!("--phone: {e}")))?;
    let state = if args.optin { ConsentState::OptedIn } else { ConsentState::OptedOut };
    let evidence = args.evidence.as_deref().map(str::trim).filter(|e| !e.is_empty());
    let store = store(ctx, ctx.dynamo().await);
    let change = ConsentChange { state, source: ConsentSource::Cli, has_evidence: evidence.is_some() };
    let now = chrono::Utc::now().timestamp();
    let applied = store.change(&phone, change, evidence.unwrap_or("set with missive consent set"), now).await?;
    if !applied {
        let current = store.item(&phone).await?;
        // An opt-out over a record that already suppresses the phone (an erasure keeps its
        // bare record): what was asked holds, and nothing needed writing.
        if state == ConsentState::OptedOut
            && current.as_ref().is_some_and(|item| item.state.as_deref() == Some(state.as_str()))
        {
            let source = current.as_ref().and_then(|item| item.source.as_deref()).unwrap_or("unknown");
            if ctx.json() {
                print_json(
                    &json!({"phone": phone.masked(), "state": state.as_str(), "source": source, "unchanged": true}),
                );
            } else {
                println!("{}: already opted_out (source {source}): unchanged", phone.masked());
            }
            return Ok(());
        }
        let why = current.as_ref().map(|item| consent_rules::why_left_alone(&Current::from(item))).unwrap_or_default();
        return Err(CliError::Refused(format!(
            "{} not changed: {why}; pass --evidence TEXT (what proves the parent's new consent) to undo it",
            phone.masked()
        )));
    }
    if ctx.json() {
        print_json(&json!({"phone": phone.masked(), "state": state.as_str(), "source": "cli", "evidence": evidence}));
    } else {
        println!(
            "{}: {} (source cli{})",
            phone.masked(),
            state.as_str(),
            evidence.map(|e| format!(", evidence {e:?}")).unwrap_or_default()
        );
    }
    Ok(())
}

async fn show(ctx: &Context, args: ShowArgs) -> CliResult<()> {
    let phone = parse_phone(&args.phone, ctx.phone_region()).map_err(|e| CliError::Usage(format!("--phone: {e}")))?;
    let shown = if args.show_phone { phone.as_str().to_owned() } else { phone.masked() };
    let store = store(ctx, ctx.dynamo().await);
    let item = store
        .item(&phone)
        .await?
        .filter(|item| item.state.is_some())
        .ok_or_else(|| CliError::NotFound(format!("no consent on record for {shown}")))?;
    if ctx.json() {
        print_json(&json!({
            "phone": shown, "state": item.state, "source": item.source, "evidence": item.evidence,
            "updated_at": item.updated_at, "history": item.history,
        }));
        return Ok(());
    }
    println!("{shown}: {} since {}", item.state.as_deref().unwrap_or("-"), time(item.updated_at));
    println!("  source   {}", item.source.as_deref().unwrap_or("-"));
    println!("  evidence {}", item.evidence.as_deref().unwrap_or("-"));
    if item.history.is_empty() {
        println!("  history  (none)");
    } else {
        println!("  history (oldest first):");
        for entry in &item.history {
            println!(
                "    {}  {:<9} {:<14} {}",
                time(Some(entry.updated_at)),
                entry.state,
                entry.source,
                entry.evidence
            );
        }
    }
    Ok(())
}

//! `missive consent import | set | show`: the Consent table from the operator's side.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use missive::domain::consent::{ConsentChange, ConsentSource, ConsentState};
use missive::ports::ConsentStore;
use serde::Serialize;
use serde_json::json;

use crate::consent_column::{as_column_value, ConsentColumn};
use crate::consent_rules::{self, ConsentLine, Current};
use crate::context::Context;
use crate::error::{CliError, CliResult};
use crate::invalid_rows::{refuse_or_skip, Refusal};
use crate::output::{print_json, progress_bar, time};
use crate::phone_input::{parse_phone, parse_phone_flag};
use crate::sheet::{lines_with_errors, RowError, Sheet};

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

/// A row whose consent was left as it is.
#[derive(Debug, Serialize)]
struct LeftAlone {
    line: u64,
    phone: String,
    optin: bool,
    current: Current,
    reason: String,
}

/// Every valid row (one per phone), and every problem by line.
fn read_rows(sheet: &Sheet, region: &str) -> CliResult<(Vec<ConsentLine>, Vec<RowError>)> {
    let phone_col = sheet.require("phone")?;
    let consent_col = ConsentColumn::of_import_file(sheet)?;
    let evidence_col = sheet.column("evidence");
    let mut errors: Vec<RowError> = sheet.errors.clone();
    let mut rows: Vec<ConsentLine> = Vec::new();
    for row in &sheet.rows {
        let line = row.line;
        let phone = parse_phone(row.get(phone_col), region)
            .map_err(|reason| errors.push(RowError::new(line, "phone", reason)))
            .ok();
        let state = consent_col.read(row).map_err(|error| errors.push(error)).ok();
        let (Some(phone), Some(state)) = (phone, state) else { continue };
        if let Some(first) = rows.iter().find(|r| r.phone == phone) {
            errors.push(RowError::new(line, "phone", format!("already on line {} (one row per phone)", first.line)));
            continue;
        }
        let evidence = evidence_col
            .map(|c| row.get(c))
            .filter(|e| !e.is_empty())
            .map_or_else(|| format!("{}:{line}", sheet.name), str::to_owned);
        rows.push(ConsentLine { line, phone, state, evidence });
    }
    errors.sort_by_key(|e| e.line);
    Ok((rows, errors))
}

async fn import(ctx: &Context, args: ImportArgs) -> CliResult<()> {
    let sheet = Sheet::open(&args.file)?;
    let (rows, errors) = read_rows(&sheet, ctx.phone_region())?;
    let refusal = Refusal { nothing_was: "recorded", skip_invalid_would: "record the valid rows" };
    refuse_or_skip(
        ctx,
        &sheet,
        &errors,
        args.skip_invalid,
        refusal,
        || json!({"file": sheet.name, "errors": errors, "recorded": 0}),
    )?;
    let store = ctx.consent_store().await;
    let bar = progress_bar(ctx.interactive(), rows.len(), "consent");
    let rows: Vec<&ConsentLine> = rows.iter().collect();
    let now = chrono::Utc::now().timestamp();
    let recorded = consent_rules::record_rows(&store, &rows, usize::from(args.concurrency), &bar, now).await;
    bar.finish_and_clear();
    let left_alone: Vec<LeftAlone> = recorded
        .left_alone
        .iter()
        .map(|(row, current)| LeftAlone {
            line: row.line,
            phone: row.phone.masked(),
            optin: as_column_value(row.state),
            reason: consent_rules::why_left_alone(current),
            current: current.clone(),
        })
        .collect();
    if ctx.json() {
        print_json(&json!({
            "file": sheet.name, "rows": sheet.row_count(), "errors": errors,
            "recorded": recorded.applied, "unchanged": recorded.unchanged, "left_alone": left_alone,
            "failed": recorded.failed.iter().map(|(row, error)| json!({"line": row.line, "error": error.to_string()})).collect::<Vec<_>>(),
        }));
    } else {
        println!(
            "{}: {} recorded, {} unchanged, {} left alone, {} invalid",
            sheet.name,
            recorded.applied,
            recorded.unchanged,
            left_alone.len(),
            lines_with_errors(&errors)
        );
        for row in &left_alone {
            println!("  line {} ({}): optin={} not applied: {}", row.line, row.phone, row.optin, row.reason);
        }
    }
    if !recorded.failed.is_empty() {
        return Err(CliError::Runtime(format!(
            "some rows could not be recorded (importing the file again is safe):\n  {}",
            recorded.failure_lines().join("\n  ")
        )));
    }
    Ok(())
}

async fn set(ctx: &Context, args: SetArgs) -> CliResult<()> {
    let phone = parse_phone_flag("--phone", &args.phone, ctx.phone_region())?;
    let state = if args.optin { ConsentState::OptedIn } else { ConsentState::OptedOut };
    let evidence = args.evidence.as_deref().map(str::trim).filter(|e| !e.is_empty());
    let store = ctx.consent_store().await;
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
    let phone = parse_phone_flag("--phone", &args.phone, ctx.phone_region())?;
    let shown = if args.show_phone { phone.as_str().to_owned() } else { phone.masked() };
    let store = ctx.consent_store().await;
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

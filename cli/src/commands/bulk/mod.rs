//! `missive bulk FILE.csv --campaign NAME`: one message per parent, checked whole before
//! anything is written; consent recorded from `whatsapp_optin`; then `SendMessageBatch`es.
//!
//! `message_id = <campaign>:<parent_id>`, so sending the same file twice sends nothing twice.
//! Rows whose `message_id` MessageLog already holds are not enqueued again (`recorded`); a
//! row enqueued but not yet taken by `send` has no item, so a second run made before `send`
//! took it enqueues it again, and `send` acknowledges that copy as a duplicate.
//!
//! The steps, one module each: [`plan`] reads and checks every row; [`dry_run`] prints the
//! plan and writes nothing; a real run looks up what an earlier run sent
//! ([`enqueue::not_yet_recorded`]), records the file's [`consent`], [`enqueue`]s the rest,
//! and prints its [`summary`].

mod consent;
mod dry_run;
mod enqueue;
mod languages;
mod plan;
mod summary;

use std::path::PathBuf;

use clap::Args;
use missive::ports::CampaignStore;
use serde_json::json;

use self::languages::Languages;
pub use self::plan::{plan, Planned};
use self::summary::Summary;
use crate::compose::{check_campaign, parse_pair, ContentArgs, MessageOptions};
use crate::context::Context;
use crate::error::{CliError, CliResult};
use crate::invalid_rows::{refuse_or_skip, Refusal};
use crate::output::{progress_bar, warn};
use crate::sheet::{lines_with_errors, Sheet};

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

pub async fn run(ctx: &Context, mut args: BulkArgs) -> CliResult<()> {
    check_campaign(&args.campaign)?;
    let now = chrono::Utc::now().timestamp();
    // Who asks is looked up only for a real run: a dry run makes no AWS call at all.
    let requester = if args.dry_run { None } else { Some(ctx.requester(args.options.requested_by.as_deref()).await) };
    args.options.resolve(now, || requester.unwrap_or_else(|| "unknown".to_owned()))?;
    // `--template fr=HX…,en=HX…`: the default language's template is the content; each row
    // gets its own language's in the plan.
    let default_lang = std::env::var("SCHOOL_LANG").unwrap_or_else(|_| "fr".to_owned());
    let languages = match args.content.template.as_deref() {
        Some(raw) => Languages::parse(raw, &default_lang)?,
        None => None,
    };
    if let Some(languages) = &languages {
        args.content.template = Some(languages.default_sid().to_owned());
    }
    let content = args.content.content()?;
    let sheet = Sheet::open(&args.file)?;
    let (planned, invalid) = plan(
        &sheet,
        &args.campaign,
        &content,
        &args.var_columns,
        &args.content.with_fallback(&args.options),
        languages.as_ref(),
        ctx.phone_region(),
    )?;
    warn_fallbacks(&planned, languages.as_ref());
    let refusal = Refusal { nothing_was: "recorded or enqueued", skip_invalid_would: "send the valid rows" };
    refuse_or_skip(ctx, &sheet, &invalid, args.skip_invalid, refusal, || {
        json!({
            "file": sheet.name, "campaign": args.campaign, "rows": sheet.row_count(),
            "invalid_rows": lines_with_errors(&invalid), "errors": invalid, "enqueued": 0,
        })
    })?;
    if args.dry_run {
        dry_run::print(ctx, &args.campaign, &sheet, &planned, &invalid);
        return Ok(());
    }
    if planned.is_empty() {
        return Err(CliError::InvalidRows(format!("{}: no valid row to send", sheet.name)));
    }
    // After the dry run, which makes no AWS call.
    if matches!(content, missive::domain::message::Content::Body(_))
        && args.content.fallback_template.is_none()
        && !planned.is_empty()
    {
        let phones: Vec<_> = planned.iter().map(|row| &row.phone).collect();
        let (closed, total) = crate::window_check::closed_windows(ctx, &phones, chrono::Utc::now().timestamp()).await?;
        crate::window_check::warning(closed, total).iter().for_each(|words| crate::output::warn(words));
    }
    let queue = ctx.send_queue().await?;
    let concurrency = usize::from(args.concurrency);

    // What an earlier run already sent: `send` recorded an item for it. Read before any
    // write, so that a failed lookup leaves nothing half done.
    let to_send = enqueue::not_yet_recorded(ctx, &planned, concurrency).await?;

    let bar = progress_bar(ctx.interactive(), consent::first_row_per_phone(&planned).len(), "consent");
    let consent = consent::record(&ctx.consent_store().await, &planned, concurrency, &bar, now).await;
    bar.finish_and_clear();
    let consent = consent?;

    let bar = progress_bar(ctx.interactive(), to_send.len(), "enqueue");
    let enqueued = enqueue::enqueue(&queue, &to_send, concurrency, &bar).await;
    bar.finish_and_clear();

    if enqueued.count > 0 {
        let by = args.options.requested_by.as_deref().unwrap_or("unknown");
        let description = args.options.description.as_deref();
        ctx.campaign_store().await.record_enqueued(&args.campaign, by, description, enqueued.count as u64, now).await?;
    }
    let already_recorded = planned.len() - to_send.len();
    let summary = Summary {
        campaign: &args.campaign,
        sheet: &sheet,
        invalid: &invalid,
        already_recorded,
        enqueued: &enqueued,
        consent: &consent,
    };
    summary::print(ctx, &summary);
    enqueued.check()
}

/// Lists the rows whose language has no template: they get the default language's.
fn warn_fallbacks(planned: &[Planned], languages: Option<&Languages>) {
    let Some(languages) = languages else { return };
    let rows: Vec<String> = planned
        .iter()
        .filter_map(|row| row.fallback_lang.as_ref().map(|lang| format!("line {} ({lang})", row.line)))
        .collect();
    if !rows.is_empty() {
        warn(&format!(
            "no template for the language of {} row(s), sent the default language's ({}): {}",
            rows.len(),
            languages.default,
            rows.join(", ")
        ));
    }
}

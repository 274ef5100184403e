//! `missive failures --campaign NAME`: the campaign's `failed`, `undelivered`, `rejected` and
//! `expired` messages with their reasons.

use clap::Args;
use missive::domain::twilio::codes;
use serde_json::json;

use crate::campaign::{self, CampaignItem};
use crate::context::Context;
use crate::error::CliResult;
use crate::output::{print_json, shorten, time};

/// The statuses listed.
pub const FAILURE_STATUSES: &[&str] = &["failed", "undelivered", "rejected", "expired"];

#[derive(Debug, Args)]
pub struct FailuresArgs {
    /// The campaign (required: messages without one are reachable only by id, with `status`).
    #[arg(long, value_name = "NAME")]
    pub campaign: String,
    /// Items per Query page (tests use it to cross page boundaries).
    #[arg(long, hide = true, value_parser = clap::value_parser!(i32).range(1..))]
    pub page_size: Option<i32>,
}

/// What Twilio's or our code means, in a few words, for the codes operators meet most (the
/// operator's words; `missive::domain::twilio::error_description` is Twilio's own).
pub fn explain(code: Option<u32>) -> Option<&'static str> {
    Some(match code? {
        21211 => "invalid 'To' number",
        21408 => "region not enabled on the account",
        codes::UNSUBSCRIBED => "the parent unsubscribed (STOP)",
        21614 => "not a mobile number",
        63003 => "the number is not on WhatsApp",
        codes::OUTSIDE_WINDOW => "outside the 24-hour window: use a template",
        63018 => "WhatsApp rate limit",
        63024 => "invalid recipient",
        63032 => "the parent blocked or left the business",
        63049 => "Meta chose not to deliver (marketing limits)",
        30003 => "unreachable handset",
        30005 => "unknown handset",
        30006 => "landline or unreachable carrier",
        30007 => "filtered as spam",
        30008 => "unknown error at the carrier",
        _ => return None,
    })
}

pub async fn run(ctx: &Context, args: FailuresArgs) -> CliResult<()> {
    crate::compose::check_campaign(&args.campaign)?;
    let dynamo = ctx.dynamo().await;
    let mut items =
        campaign::items(&dynamo, &ctx.global.message_log_table, &args.campaign, Some(FAILURE_STATUSES), args.page_size)
            .await?;
    items.sort_by(|a, b| a.message_id.cmp(&b.message_id));
    if ctx.json() {
        let failures: Vec<_> = items
            .iter()
            .map(|item| {
                let mut value = serde_json::to_value(item).unwrap_or_default();
                value["explanation"] = json!(explain(item.last_error_code));
                value
            })
            .collect();
        print_json(&json!({"campaign": args.campaign, "count": items.len(), "failures": failures}));
        return Ok(());
    }
    if items.is_empty() {
        println!("campaign {}: no failed, undelivered, rejected or expired message", args.campaign);
        return Ok(());
    }
    println!("campaign {}: {} message(s) failed, undelivered, rejected or expired", args.campaign, items.len());
    println!("{:<40} {:<12} {:>8} {:<20} reason", "message_id", "status", "attempts", "updated");
    for CampaignItem { message_id, status, attempts, last_error, last_error_code, updated_at, .. } in &items {
        let reason = last_error.clone().unwrap_or_else(|| last_error_code.map_or("-".into(), |c| format!("code {c}")));
        let reason = match explain(*last_error_code) {
            Some(meaning) => format!("{reason} ({meaning})"),
            None => reason,
        };
        println!(
            "{:<40} {:<12} {:>8} {:<20} {}",
            shorten(message_id, 40),
            status,
            attempts,
            time(*updated_at),
            shorten(&reason, 120)
        );
    }
    Ok(())
}

//! `missive cancel --campaign NAME --reason TEXT [--undo]`: the campaign's tombstone
//! (DESIGN.md, "Campaigns"). `send` reads it once per batch and records every message of a
//! cancelled campaign `cancelled` before claiming it; what was already claimed or sent is not
//! recalled. The command says how many are already sent, in flight, and will be stopped.

use clap::Args;
use missive::domain::status::Status;
use missive::ports::CampaignStore;
use serde::Serialize;

use crate::campaign::{self, CampaignItem};
use crate::context::Context;
use crate::error::{CliError, CliResult};
use crate::output::print_json;

#[derive(Debug, Args)]
pub struct CancelArgs {
    /// The campaign to stop.
    #[arg(long, value_name = "NAME")]
    pub campaign: String,
    /// Why, in your words (kept on the campaign and on each stopped message).
    #[arg(long, value_name = "TEXT", required_unless_present = "undo")]
    pub reason: Option<String>,
    /// Un-cancel: messages not yet stopped go again; those already `cancelled` stay so.
    #[arg(long)]
    pub undo: bool,
    /// Who asks (default: your AWS identity on AWS, your user name locally).
    #[arg(long = "as", value_name = "NAME")]
    pub requested_by: Option<String>,
}

/// Where a campaign's messages stand when it is cancelled.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CancelCounts {
    /// Twilio accepted them: not recalled.
    pub already_sent: u64,
    /// Claimed by a `send` right now (`sending`, `in_doubt`): they may still go.
    pub in_flight: u64,
    /// Enqueued but not yet taken, or waiting (`scheduled`, `retrying`): the tombstone stops them.
    pub stopped: u64,
    /// Already final without being sent (failed, skipped, …, or cancelled).
    pub ended: u64,
}

/// The counts from the campaign's items and what the CLI enqueued.
pub fn counts(enqueued: u64, items: &[CampaignItem]) -> CancelCounts {
    let mut counts = CancelCounts::default();
    for item in items {
        match item.status.parse::<Status>().ok() {
            Some(Status::Sent | Status::Delivered | Status::Read | Status::Undelivered) => counts.already_sent += 1,
            Some(Status::Sending | Status::InDoubt) => counts.in_flight += 1,
            Some(Status::Scheduled | Status::Retrying) => counts.stopped += 1,
            _ => counts.ended += 1,
        }
    }
    // Messages enqueued that have no item yet: `send` has not taken them.
    counts.stopped += enqueued.saturating_sub(items.len() as u64);
    counts
}

pub async fn run(ctx: &Context, args: CancelArgs) -> CliResult<()> {
    crate::compose::check_campaign(&args.campaign)?;
    let reason = args.reason.as_deref().map(str::trim).unwrap_or_default();
    if !args.undo && reason.is_empty() {
        return Err(CliError::Usage("--reason: say why the campaign is cancelled".into()));
    }
    let by = ctx.requester(args.requested_by.as_deref()).await;
    let now = chrono::Utc::now().timestamp();
    let store = ctx.campaign_store().await;
    let Some(item) = store.set_cancelled(&args.campaign, !args.undo, &by, reason, now).await? else {
        return Err(CliError::NotFound(format!(
            "campaign {}: no such campaign in the Campaigns table (it is created by the first bulk or send --campaign)",
            args.campaign
        )));
    };
    let items = campaign::items(&ctx.dynamo().await, &ctx.global.message_log_table, &args.campaign, None, None).await?;
    let counts = counts(item.enqueued, &items);
    if ctx.json() {
        print_json(&serde_json::json!({
            "campaign": args.campaign, "state": if item.is_cancelled() { "cancelled" } else { "active" },
            "by": by, "counts": counts,
        }));
        return Ok(());
    }
    if args.undo {
        println!(
            "campaign {}: cancellation undone by {by}; messages not yet stopped will go (already cancelled ones stay so)",
            args.campaign
        );
        return Ok(());
    }
    println!("campaign {} cancelled by {by}: {reason}", args.campaign);
    println!("  already sent (not recalled): {}", counts.already_sent);
    println!("  in flight now (may still go): {}", counts.in_flight);
    println!("  stopped by the cancel:       {}", counts.stopped);
    if counts.ended > 0 {
        println!("  already ended without being sent: {}", counts.ended);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(status: &str) -> CampaignItem {
        CampaignItem { message_id: format!("m-{status}"), status: status.into(), ..CampaignItem::default() }
    }

    #[test]
    fn messages_are_counted_by_where_they_stand() {
        let items: Vec<CampaignItem> =
            ["sent", "delivered", "read", "sending", "in_doubt", "scheduled", "retrying", "failed", "skipped"]
                .into_iter()
                .map(item)
                .collect();
        let counts = counts(12, &items);
        assert_eq!(counts, CancelCounts { already_sent: 3, in_flight: 2, stopped: 2 + 3, ended: 2 });
    }
}

//! `missive campaign show NAME` and `missive campaign list`: the Campaigns table's items
//! (DESIGN.md, "Campaigns"): state, who created it, what was enqueued, and its history.

use clap::{Args, Subcommand};
use missive::domain::campaign::CampaignItem;
use missive::ports::CampaignStore;

use crate::context::Context;
use crate::error::{CliError, CliResult};
use crate::output::{print_json, time};

#[derive(Debug, Subcommand)]
pub enum CampaignCommand {
    /// One campaign: its state, who created and cancelled it, and every operator action.
    Show(ShowArgs),
    /// Every campaign, newest first.
    List,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The campaign's name.
    #[arg(value_name = "NAME")]
    pub name: String,
}

pub async fn run(ctx: &Context, command: CampaignCommand) -> CliResult<()> {
    let store = ctx.campaign_store().await;
    match command {
        CampaignCommand::Show(args) => {
            crate::compose::check_campaign(&args.name)?;
            let Some(item) = store.get(&args.name).await? else {
                return Err(CliError::NotFound(format!(
                    "campaign {}: no such campaign in the Campaigns table",
                    args.name
                )));
            };
            if ctx.json() {
                print_json(&item);
            } else {
                print!("{}", describe(&item));
            }
        }
        CampaignCommand::List => {
            let items = store.list().await?;
            if ctx.json() {
                print_json(&serde_json::json!({ "campaigns": items }));
                return Ok(());
            }
            if items.is_empty() {
                println!("no campaign yet");
            }
            for item in &items {
                println!(
                    "{:<32} {:<9} {:>6} enqueued  created {} by {}{}",
                    item.campaign,
                    state(item),
                    item.enqueued,
                    time(Some(item.created_at)),
                    item.created_by,
                    item.description.as_deref().map(|d| format!("  {d}")).unwrap_or_default()
                );
            }
        }
    }
    Ok(())
}

fn state(item: &CampaignItem) -> &'static str {
    if item.is_cancelled() {
        "cancelled"
    } else {
        "active"
    }
}

/// The campaign for people: one fact a line, then its history, oldest first.
pub fn describe(item: &CampaignItem) -> String {
    let mut out = format!("campaign {}: {}\n", item.campaign, state(item));
    if let Some(description) = &item.description {
        out.push_str(&format!("  description  {description}\n"));
    }
    out.push_str(&format!("  created      {} by {}\n", time(Some(item.created_at)), item.created_by));
    out.push_str(&format!("  enqueued     {}\n", item.enqueued));
    if item.is_cancelled() {
        out.push_str(&format!(
            "  cancelled    {} by {}: {}\n",
            time(item.cancelled_at),
            item.cancelled_by.as_deref().unwrap_or("?"),
            item.cancel_reason.as_deref().unwrap_or("")
        ));
    }
    out.push_str("  history\n");
    for event in &item.history {
        let detail = if event.detail.is_empty() { String::new() } else { format!(": {}", event.detail) };
        out.push_str(&format!("    {} {:<10} by {}{detail}\n", time(Some(event.at)), event.action.as_str(), event.by));
    }
    out
}

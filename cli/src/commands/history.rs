//! `missive history --phone P`: what happened with one parent, newest first: the messages
//! sent to them (campaign, status, reason, who asked) from `by-recipient` and their items,
//! then the consent changes their Consent item records.

use clap::Args;
use futures::{StreamExt, TryStreamExt};
use missive::adapters::dynamo::DynamoMessageLog;
use missive::ports::{ConsentStore, MessageLog};
use serde::Serialize;

use crate::commands::forget::items_of_phone;
use crate::context::Context;
use crate::error::CliResult;
use crate::output::{print_json, shorten, time};
use crate::phone_input::parse_phone_flag;

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The parent's phone: +33612345678, or a national number of --phone-region.
    #[arg(long, value_name = "PHONE")]
    pub phone: String,
}

/// One message to the parent.
#[derive(Debug, Clone, Serialize)]
pub struct MessageLine {
    pub message_id: String,
    pub created_at: Option<i64>,
    pub campaign: Option<String>,
    pub status: String,
    pub reason: Option<String>,
    pub requested_by: Option<String>,
}

pub async fn run(ctx: &Context, args: HistoryArgs) -> CliResult<()> {
    let phone = parse_phone_flag("--phone", &args.phone, ctx.phone_region())?;
    let dynamo = ctx.dynamo().await;
    let table = &ctx.global.message_log_table;
    let mut found = items_of_phone(&dynamo, table, phone.as_str()).await?;
    found.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| b.message_id.cmp(&a.message_id)));
    let log = DynamoMessageLog::new(dynamo.clone(), table);
    // The index projects the status and SID only: each item is read whole, a few at a time.
    let messages: Vec<MessageLine> = futures::stream::iter(found)
        .map(|found| {
            let log = log.clone();
            async move {
                let item = log.get(&found.message_id).await?;
                Ok::<_, missive::ports::StoreError>(match item {
                    Some(item) => MessageLine {
                        message_id: item.message_id,
                        created_at: item.created_at,
                        campaign: item.campaign,
                        status: item.status.map(|s| s.as_str().to_owned()).unwrap_or(found.status),
                        reason: item.last_error,
                        requested_by: item.requested_by,
                    },
                    None => MessageLine {
                        message_id: found.message_id,
                        created_at: found.created_at,
                        campaign: None,
                        status: found.status,
                        reason: None,
                        requested_by: None,
                    },
                })
            }
        })
        .buffered(8)
        .try_collect()
        .await?;
    let consent = ctx.consent_store().await.item(&phone).await?;
    let mut changes = consent.as_ref().map(|c| c.history.clone()).unwrap_or_default();
    changes.sort_by_key(|change| std::cmp::Reverse(change.updated_at));
    if ctx.json() {
        print_json(&serde_json::json!({
            "phone": phone.masked(),
            "messages": messages,
            "consent": {
                "state": consent.as_ref().and_then(|c| c.state.clone()),
                "changes": changes,
            },
        }));
        return Ok(());
    }
    println!("{}: {} message(s), newest first", phone.masked(), messages.len());
    for m in &messages {
        println!(
            "  {} {:<40} {:<20} {:<11} by {:<20} {}",
            time(m.created_at),
            m.message_id,
            m.campaign.as_deref().unwrap_or("-"),
            m.status,
            m.requested_by.as_deref().unwrap_or("-"),
            m.reason.as_deref().map(|r| shorten(r, 60)).unwrap_or_default()
        );
    }
    match consent.as_ref().and_then(|c| c.state.as_deref()) {
        Some(state) => println!("consent: {state}; changes, newest first:"),
        None => println!("consent: nothing on record"),
    }
    for change in &changes {
        println!(
            "  {} {:<10} from {} ({})",
            time(Some(change.updated_at)),
            change.state,
            change.source,
            change.evidence
        );
    }
    Ok(())
}

//! `missive send`: one message, built, checked as `send` checks it, and enqueued.

use clap::Args;
use missive::ports::{CampaignStore, SendQueue};
use serde_json::json;

use crate::compose::{check_campaign, fresh_message_id, ContentArgs, Draft, MessageOptions};
use crate::context::Context;
use crate::error::{CliError, CliResult};
use crate::output::print_json;
use crate::phone_input::parse_phone_flag;

#[derive(Debug, Args)]
pub struct SendArgs {
    /// The recipient: +33612345678, or a national number of --phone-region (06 12 34 56 78).
    #[arg(long, value_name = "PHONE")]
    pub to: String,
    #[command(flatten)]
    pub content: ContentArgs,
    /// The message id, the idempotency key (default: a fresh `cli-…` id). Sending twice with
    /// the same id sends once.
    #[arg(long, value_name = "ID")]
    pub id: Option<String>,
    /// The campaign, for `report` and `failures`.
    #[arg(long, value_name = "NAME")]
    pub campaign: Option<String>,
    /// The parent's id in the school's system.
    #[arg(long, value_name = "ID")]
    pub recipient_id: Option<String>,
    #[command(flatten)]
    pub options: MessageOptions,
    /// Print the queue message and enqueue nothing.
    #[arg(long)]
    pub dry_run: bool,
}

pub async fn run(ctx: &Context, mut args: SendArgs) -> CliResult<()> {
    let to = parse_phone_flag("--to", &args.to, ctx.phone_region())?;
    if let Some(campaign) = &args.campaign {
        check_campaign(campaign)?;
    }
    let now = chrono::Utc::now().timestamp();
    let requester = ctx.requester(args.options.requested_by.as_deref()).await;
    args.options.resolve(now, || requester)?;
    let content = args.content.content()?;
    let message_id = args.id.clone().unwrap_or_else(fresh_message_id);
    let draft = Draft {
        message_id: &message_id,
        to: &to,
        content: &content,
        campaign: args.campaign.as_deref(),
        recipient_id: args.recipient_id.as_deref(),
        options: &args.content.with_fallback(&args.options),
    };
    let (body, _) =
        draft.build().map_err(|reason| CliError::Usage(format!("the message would be rejected: {reason}")))?;
    if args.dry_run {
        if ctx.json() {
            print_json(
                &json!({"message_id": message_id, "enqueued": false, "message": serde_json::from_str::<serde_json::Value>(&body).unwrap_or_default()}),
            );
        } else {
            println!("{body}");
        }
        return Ok(());
    }
    ctx.send_queue().await?.send(&body, 0).await?;
    if let Some(campaign) = &args.campaign {
        let by = args.options.requested_by.as_deref().unwrap_or("unknown");
        ctx.campaign_store().await.record_enqueued(campaign, by, args.options.description.as_deref(), 1, now).await?;
    }
    if ctx.json() {
        print_json(&json!({"message_id": message_id, "enqueued": true, "to": to.masked()}));
    } else {
        println!("{message_id}");
    }
    Ok(())
}

//! `missive requeue --campaign NAME [--code N]... [--dry-run]`: after a fix (a rotated token, a
//! sender re-enabled), a new round for the campaign's `failed` messages that Twilio never
//! accepted (DESIGN.md, "Campaigns"). A message Twilio accepted (it has a `twilio_sid`) is
//! never requeued: that would be a second message, a new campaign's decision.

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use clap::Args;
use futures::{StreamExt, TryStreamExt};
use missive::adapters::dynamo::DynamoMessageLog;
use missive::domain::campaign::{CampaignAction, CampaignEvent};
use missive::domain::item::retry_shard;
use missive::domain::status::Status;
use missive::ports::{CampaignStore, MessageLog, SendQueue};
use serde::Serialize;

use crate::campaign;
use crate::context::Context;
use crate::error::{CliError, CliResult};
use crate::output::print_json;

/// How long after its new `next_attempt_at` the sweep picks a requeued message up if its
/// queue copy is lost (the send function's default `SWEEP_GRACE_SECONDS`).
const SWEEP_GRACE_SECONDS: i64 = 120;

#[derive(Debug, Args)]
pub struct RequeueArgs {
    /// The campaign whose failed messages get a new round.
    #[arg(long, value_name = "NAME")]
    pub campaign: String,
    /// Only messages whose last error has this code (`--code 20003`); repeatable.
    #[arg(long = "code", value_name = "N")]
    pub codes: Vec<u32>,
    /// Print what would be requeued and what left; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Who asks (default: your AWS identity on AWS, your user name locally).
    #[arg(long = "as", value_name = "NAME")]
    pub requested_by: Option<String>,
}

/// One failed message and what this command does with it.
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    pub message_id: String,
    pub last_error_code: Option<u32>,
    /// `None`: requeued (or would be, in a dry run); else why it is left.
    pub left_because: Option<String>,
}

pub async fn run(ctx: &Context, args: RequeueArgs) -> CliResult<()> {
    crate::compose::check_campaign(&args.campaign)?;
    let dynamo = ctx.dynamo().await;
    let table = ctx.global.message_log_table.clone();
    let failed = campaign::items(&dynamo, &table, &args.campaign, Some(&["failed"]), None).await?;
    let log = DynamoMessageLog::new(dynamo.clone(), &table);
    // The index does not project the SID and the request: each failed item is read whole.
    let mut decisions: Vec<(Decision, Option<String>)> = futures::stream::iter(failed)
        .map(|indexed| {
            let log = log.clone();
            let codes = &args.codes;
            async move {
                let item = log.get(&indexed.message_id).await?;
                let code = item.as_ref().and_then(|i| i.last_error_code);
                let (left, request) = match item {
                    None => (Some("its item is gone (erased or expired)".to_owned()), None),
                    Some(item) if item.status != Some(Status::Failed) => (Some("no longer failed".to_owned()), None),
                    Some(item) if item.twilio_sid.is_some() => {
                        (Some("Twilio accepted it: sending it again would be a second message".to_owned()), None)
                    }
                    Some(_) if !codes.is_empty() && !code.is_some_and(|c| codes.contains(&c)) => (
                        Some(format!(
                            "its error code {} is not among --code",
                            code.map_or("none".into(), |c| c.to_string())
                        )),
                        None,
                    ),
                    Some(item) => match item.request {
                        Some(request) => (None, Some(request)),
                        None => (Some("no stored request to send again".to_owned()), None),
                    },
                };
                Ok::<_, missive::ports::StoreError>((
                    Decision { message_id: indexed.message_id, last_error_code: code, left_because: left },
                    request,
                ))
            }
        })
        .buffered(8)
        .try_collect()
        .await?;
    decisions.sort_by(|a, b| a.0.message_id.cmp(&b.0.message_id));

    if !args.dry_run {
        let queue = ctx.send_queue().await?;
        let now = chrono::Utc::now().timestamp();
        for (decision, request) in decisions.iter_mut() {
            let Some(request) = request.as_deref() else { continue };
            if !new_round(&dynamo, &table, &decision.message_id, now).await? {
                decision.left_because = Some("it changed meanwhile (no longer failed, or Twilio accepted it)".into());
                continue;
            }
            queue.send(request, 0).await?;
        }
        let requeued = decisions.iter().filter(|(d, _)| d.left_because.is_none()).count();
        if requeued > 0 {
            let by = ctx.requester(args.requested_by.as_deref()).await;
            let codes: Vec<String> = args.codes.iter().map(u32::to_string).collect();
            let detail = if codes.is_empty() {
                format!("{requeued} failed message(s)")
            } else {
                format!("{requeued} failed message(s) with code {}", codes.join(", "))
            };
            let event = CampaignEvent { action: CampaignAction::Requeued, at: now, by, detail };
            ctx.campaign_store().await.add_event(&args.campaign, event).await?;
        }
    }

    let requeued: Vec<&Decision> = decisions.iter().map(|(d, _)| d).filter(|d| d.left_because.is_none()).collect();
    let left: Vec<&Decision> = decisions.iter().map(|(d, _)| d).filter(|d| d.left_because.is_some()).collect();
    if ctx.json() {
        print_json(&serde_json::json!({
            "campaign": args.campaign, "dry_run": args.dry_run, "requeued": requeued, "left": left,
        }));
        return Ok(());
    }
    let verb = if args.dry_run { "would requeue" } else { "requeued" };
    println!("campaign {}: {verb} {} failed message(s), left {}", args.campaign, requeued.len(), left.len());
    for d in &requeued {
        println!("  {verb:<13} {}", d.message_id);
    }
    for d in &left {
        println!("  left          {}: {}", d.message_id, d.left_because.as_deref().unwrap_or_default());
    }
    Ok(())
}

/// The new round's conditional write: `failed` and never accepted by Twilio, else `false`.
async fn new_round(dynamo: &aws_sdk_dynamodb::Client, table: &str, message_id: &str, now: i64) -> CliResult<bool> {
    let n = |v: i64| AttributeValue::N(v.to_string());
    let s = |v: &str| AttributeValue::S(v.to_owned());
    let result = dynamo
        .update_item()
        .table_name(table)
        .key("message_id", s(message_id))
        .update_expression(
            "SET #status = :retrying, attempts = :zero, throttled = :zero, #round = if_not_exists(#round, :one) + :one, \
             next_attempt_at = :now, released_at = :now, updated_at = :now, retry_shard = :shard, retry_due_at = :due",
        )
        .condition_expression("#status = :failed AND attribute_not_exists(twilio_sid)")
        .expression_attribute_names("#status", "status")
        .expression_attribute_names("#round", "round")
        .expression_attribute_values(":retrying", s(Status::Retrying.as_str()))
        .expression_attribute_values(":failed", s(Status::Failed.as_str()))
        .expression_attribute_values(":zero", n(0))
        .expression_attribute_values(":one", n(1))
        .expression_attribute_values(":now", n(now))
        .expression_attribute_values(":shard", n(i64::from(retry_shard(message_id))))
        .expression_attribute_values(":due", n(now + SWEEP_GRACE_SECONDS))
        .return_values(ReturnValue::None)
        .send()
        .await;
    match result {
        Ok(_) => Ok(true),
        Err(err) if err.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(false),
        Err(err) => Err(CliError::aws(&format!("UpdateItem {table} {message_id}"), &err)),
    }
}

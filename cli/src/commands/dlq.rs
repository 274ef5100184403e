//! `missive dlq list | redrive`: the send queue's dead-letter queue, where a message lands
//! after 5 receives that no `send` could record (its body unusable, or DynamoDB down).

use std::time::{Duration, Instant};

use aws_sdk_sqs::config::http::HttpResponse;
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::operation::start_message_move_task::StartMessageMoveTaskError;
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, MessageSystemAttributeName,
    SendMessageBatchRequestEntry,
};
use clap::{Args, Subcommand};
use missive::domain::message::QueueMessage;
use missive::domain::phone::mask_phone;
use serde::Serialize;
use serde_json::json;

use crate::context::Context;
use crate::error::{CliError, CliResult};
use crate::output::{print_json, shorten, time};
use crate::queues;

#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// Lists the messages in the dead-letter queue (received and released at once).
    List(ListArgs),
    /// Moves the dead-letter queue's messages back to the send queue.
    Redrive(RedriveArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// At most this many messages.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub max: u32,
}

#[derive(Debug, Args)]
pub struct RedriveArgs {
    /// With the receive → send → delete fallback: at most this many messages.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max: u32,
    /// With the fallback: stop after this many seconds.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub timeout: u64,
    /// Skip StartMessageMoveTask and move the messages one batch at a time.
    #[arg(long)]
    pub manual: bool,
}

pub async fn run(ctx: &Context, command: DlqCommand) -> CliResult<()> {
    match command {
        DlqCommand::List(args) => list(ctx, args).await,
        DlqCommand::Redrive(args) => redrive(ctx, args).await,
    }
}

/// One message of the DLQ, with what `send` thinks of it.
#[derive(Debug, Serialize)]
struct Listed {
    sqs_message_id: String,
    message_id: Option<String>,
    campaign: Option<String>,
    to: Option<String>,
    receive_count: Option<u32>,
    first_received_at: Option<i64>,
    sent_at: Option<i64>,
    /// `null` when `send` would accept the body; else why it refuses it.
    problem: Option<String>,
}

fn describe_body(body: &str) -> (Option<String>, Option<String>, Option<String>, Option<String>) {
    let value: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    let field = |name: &str| value.get(name).and_then(|v| v.as_str()).map(str::to_owned);
    let problem = QueueMessage::parse(body).err().map(|rejection| rejection.reason);
    (field("message_id"), field("campaign"), field("to").map(|to| mask_phone(&to)), problem)
}

async fn list(ctx: &Context, args: ListArgs) -> CliResult<()> {
    let dlq = queues::require_dlq(ctx).await?;
    let sqs = ctx.sqs().await;
    let depth = queues::depth(&sqs, &dlq).await?;
    let mut listed: Vec<Listed> = Vec::new();
    let mut handles: Vec<String> = Vec::new();
    while (listed.len() as u32) < args.max {
        let want = (args.max - listed.len() as u32).min(10) as i32;
        let output = sqs
            .receive_message()
            .queue_url(&dlq)
            .max_number_of_messages(want)
            .visibility_timeout(30)
            .wait_time_seconds(if listed.is_empty() { 1 } else { 0 })
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .map_err(|e| CliError::aws("ReceiveMessage (DLQ)", &e))?;
        let messages = output.messages.unwrap_or_default();
        if messages.is_empty() {
            break;
        }
        for message in messages {
            let id = message.message_id.clone().unwrap_or_default();
            if let Some(handle) = message.receipt_handle.clone() {
                handles.push(handle);
            }
            if listed.iter().any(|l| l.sqs_message_id == id) {
                continue;
            }
            let attrs = message.attributes.clone().unwrap_or_default();
            let attr = |name: MessageSystemAttributeName| attrs.get(&name).and_then(|v| v.parse::<i64>().ok());
            let (message_id, campaign, to, problem) = describe_body(message.body.as_deref().unwrap_or(""));
            listed.push(Listed {
                sqs_message_id: id,
                message_id,
                campaign,
                to,
                receive_count: attr(MessageSystemAttributeName::ApproximateReceiveCount).map(|n| n as u32),
                first_received_at: attr(MessageSystemAttributeName::ApproximateFirstReceiveTimestamp)
                    .map(|ms| ms / 1000),
                sent_at: attr(MessageSystemAttributeName::SentTimestamp).map(|ms| ms / 1000),
                problem,
            });
        }
    }
    // Release what was received, so that the messages stay where they were.
    for chunk in handles.chunks(10) {
        let entries: Vec<_> = chunk
            .iter()
            .enumerate()
            .filter_map(|(i, handle)| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(handle)
                    .visibility_timeout(0)
                    .build()
                    .ok()
            })
            .collect();
        if let Err(err) = sqs.change_message_visibility_batch().queue_url(&dlq).set_entries(Some(entries)).send().await
        {
            crate::output::warn(&format!(
                "could not release listed messages at once (they reappear within 30 s): {}",
                missive::adapters::describe(&err)
            ));
        }
    }
    if ctx.json() {
        print_json(&json!({"dlq": dlq, "approximate_count": depth.total(), "messages": listed}));
        return Ok(());
    }
    println!("dead-letter queue {dlq}: about {} message(s)", depth.total());
    for l in &listed {
        println!(
            "  {}  message_id {}  campaign {}  to {}  received {}x  sent {}",
            l.sqs_message_id,
            l.message_id.as_deref().unwrap_or("-"),
            l.campaign.as_deref().unwrap_or("-"),
            l.to.as_deref().unwrap_or("-"),
            l.receive_count.map_or("?".into(), |n| n.to_string()),
            time(l.sent_at),
        );
        match &l.problem {
            Some(problem) => println!("      send refuses it: {}", shorten(problem, 160)),
            None => println!("      valid: it failed for another reason (DynamoDB or the function unavailable?)"),
        }
    }
    if !listed.is_empty() {
        println!("move them back with: missive dlq redrive");
    }
    Ok(())
}

/// Whether the answer means "this SQS does not implement StartMessageMoveTask", so that
/// moving the messages one batch at a time is the way. `emulator`: the SQS client points at
/// an endpoint of its own (`AWS_ENDPOINT_URL`), not AWS.
fn not_implemented(err: &SdkError<StartMessageMoveTaskError, HttpResponse>, emulator: bool) -> bool {
    match err {
        SdkError::ServiceError(service) => says_not_implemented(
            service.raw().status().as_u16(),
            service.err().code(),
            service.err().message(),
            emulator,
        ),
        _ => false,
    }
}

/// The rule behind [`not_implemented`]. An answer that says so (HTTP 501, an error code or
/// message naming it) counts anywhere. A bare HTTP 500 counts only on an emulator (moto
/// answers 500 with an HTML page): on AWS it is an internal error, to report, not a reason
/// to switch silently to another way of moving the messages.
fn says_not_implemented(status: u16, code: Option<&str>, message: Option<&str>, emulator: bool) -> bool {
    let named = matches!(code, Some("NotImplemented" | "UnsupportedOperation" | "InvalidAction"))
        || message.is_some_and(|m| m.to_ascii_lowercase().contains("not implemented"));
    status == 501 || named || (emulator && status == 500)
}

/// Whether the SQS client talks to an endpoint set in the environment or profile (an
/// emulator) rather than AWS's own.
async fn on_emulator(ctx: &Context) -> bool {
    let service_endpoint = std::env::var("AWS_ENDPOINT_URL_SQS").is_ok_and(|url| !url.trim().is_empty());
    service_endpoint || ctx.aws().await.endpoint_url().is_some()
}

async fn redrive(ctx: &Context, args: RedriveArgs) -> CliResult<()> {
    let dlq = queues::require_dlq(ctx).await?;
    let queue_url = ctx.queue_url()?.to_owned();
    let sqs = ctx.sqs().await;
    if !args.manual {
        let (dlq_arn, queue_arn) = tokio::try_join!(queues::arn(&sqs, &dlq), queues::arn(&sqs, &queue_url))?;
        match sqs.start_message_move_task().source_arn(&dlq_arn).destination_arn(&queue_arn).send().await {
            Ok(output) => {
                let handle = output.task_handle.unwrap_or_default();
                if ctx.json() {
                    print_json(&json!({"dlq": dlq, "method": "StartMessageMoveTask", "task_handle": handle}));
                } else {
                    println!(
                        "move task started ({handle}): SQS moves the messages back to {queue_url} in the background"
                    );
                }
                return Ok(());
            }
            Err(err) if not_implemented(&err, on_emulator(ctx).await) => {
                crate::output::note(
                    "StartMessageMoveTask is not implemented here (an emulator?): moving the messages one batch at a time",
                );
            }
            Err(err) => {
                return Err(CliError::Runtime(format!(
                    "StartMessageMoveTask: {}; nothing was moved. Try again later, or move the messages one batch at a time with: missive dlq redrive --manual",
                    missive::adapters::describe(&err)
                )))
            }
        }
    }
    let (moved, failed) = move_messages(&sqs, &dlq, &queue_url, args.max, Duration::from_secs(args.timeout)).await?;
    let left = queues::depth(&sqs, &dlq).await?.total();
    if ctx.json() {
        print_json(
            &json!({"dlq": dlq, "method": "receive-send-delete", "moved": moved, "failed": failed, "left": left}),
        );
    } else {
        println!("moved {moved} message(s) from the dead-letter queue back to the send queue; {failed} failed, about {left} left");
    }
    if failed > 0 {
        return Err(CliError::Runtime(format!("{failed} message(s) could not be moved (they stay in the DLQ)")));
    }
    Ok(())
}

/// Receive → SendMessageBatch → DeleteMessageBatch, 10 at a time, until the DLQ answers
/// empty, `max` messages moved, or `budget` spent. Returns (moved, failed).
pub async fn move_messages(
    sqs: &aws_sdk_sqs::Client,
    from: &str,
    to: &str,
    max: u32,
    budget: Duration,
) -> CliResult<(u32, u32)> {
    let started = Instant::now();
    let (mut moved, mut failed) = (0u32, 0u32);
    while moved + failed < max && started.elapsed() < budget {
        let want = (max - moved - failed).min(10) as i32;
        let output = sqs
            .receive_message()
            .queue_url(from)
            .max_number_of_messages(want)
            .visibility_timeout(60)
            .wait_time_seconds(1)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| CliError::aws("ReceiveMessage (DLQ)", &e))?;
        let messages = output.messages.unwrap_or_default();
        if messages.is_empty() {
            break;
        }
        let entries: Vec<SendMessageBatchRequestEntry> = messages
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(m.body.clone().unwrap_or_default())
                    .set_message_attributes(m.message_attributes.clone())
                    .build()
                    .ok()
            })
            .collect();
        let sent = sqs
            .send_message_batch()
            .queue_url(to)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| CliError::aws("SendMessageBatch (send queue)", &e))?;
        let ok: Vec<usize> = sent.successful.iter().filter_map(|s| s.id.parse().ok()).collect();
        failed += (messages.len() - ok.len()) as u32;
        let deletes: Vec<DeleteMessageBatchRequestEntry> = ok
            .iter()
            .filter_map(|&i| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(messages[i].receipt_handle.clone().unwrap_or_default())
                    .build()
                    .ok()
            })
            .collect();
        if !deletes.is_empty() {
            let deleted = sqs
                .delete_message_batch()
                .queue_url(from)
                .set_entries(Some(deletes))
                .send()
                .await
                .map_err(|e| CliError::aws("DeleteMessageBatch (DLQ)", &e))?;
            // A copy that could not be deleted comes back in the DLQ: its message is sent
            // twice, which `send`'s idempotency absorbs.
            moved += deleted.successful.len() as u32;
            failed += deleted.failed.len() as u32;
        }
    }
    Ok((moved, failed))
}

#[cfg(test)]
mod tests {
    use super::says_not_implemented;

    #[test]
    fn a_bare_http_500_falls_back_only_on_an_emulator() {
        assert!(says_not_implemented(500, Some("500"), Some("<!doctype html>…"), true), "moto's answer");
        assert!(!says_not_implemented(500, Some("InternalError"), Some("We encountered an internal error"), false));
        assert!(!says_not_implemented(500, None, None, false));
    }

    #[test]
    fn an_answer_that_says_not_implemented_falls_back_anywhere() {
        assert!(says_not_implemented(501, None, None, false));
        assert!(says_not_implemented(400, Some("UnsupportedOperation"), None, false));
        assert!(says_not_implemented(500, None, Some("The action StartMessageMoveTask is not implemented"), false));
    }

    #[test]
    fn other_errors_are_reported() {
        assert!(!says_not_implemented(403, Some("AccessDenied"), Some("not authorized"), true));
        assert!(!says_not_implemented(400, Some("InvalidParameterValue"), None, true));
    }
}

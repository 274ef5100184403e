//! The send queue and its dead-letter queue: depths, ARNs, and the DLQ found through the
//! send queue's RedrivePolicy.

use aws_sdk_sqs::types::QueueAttributeName;
use aws_sdk_sqs::Client;
use serde::Serialize;

use crate::context::Context;
use crate::error::{CliError, CliResult};

/// A queue's approximate depth, as SQS reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Depth {
    /// `ApproximateNumberOfMessages`: waiting to be received.
    pub waiting: u64,
    /// `ApproximateNumberOfMessagesNotVisible`: received, being processed.
    pub in_flight: u64,
    /// `ApproximateNumberOfMessagesDelayed`: re-enqueued with a delay (retries).
    pub delayed: u64,
}

impl Depth {
    pub fn total(&self) -> u64 {
        self.waiting + self.in_flight + self.delayed
    }
}

async fn attributes(
    sqs: &Client,
    url: &str,
    names: &[QueueAttributeName],
) -> CliResult<std::collections::HashMap<QueueAttributeName, String>> {
    let mut request = sqs.get_queue_attributes().queue_url(url);
    for name in names {
        request = request.attribute_names(name.clone());
    }
    let output = request.send().await.map_err(|e| CliError::aws(&format!("GetQueueAttributes {url}"), &e))?;
    Ok(output.attributes.unwrap_or_default())
}

/// The three counts of a queue.
pub async fn depth(sqs: &Client, url: &str) -> CliResult<Depth> {
    let attrs = attributes(
        sqs,
        url,
        &[
            QueueAttributeName::ApproximateNumberOfMessages,
            QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
            QueueAttributeName::ApproximateNumberOfMessagesDelayed,
        ],
    )
    .await?;
    let count = |name: QueueAttributeName| attrs.get(&name).and_then(|v| v.parse().ok()).unwrap_or(0);
    Ok(Depth {
        waiting: count(QueueAttributeName::ApproximateNumberOfMessages),
        in_flight: count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        delayed: count(QueueAttributeName::ApproximateNumberOfMessagesDelayed),
    })
}

/// A queue's ARN.
pub async fn arn(sqs: &Client, url: &str) -> CliResult<String> {
    attributes(sqs, url, &[QueueAttributeName::QueueArn])
        .await?
        .remove(&QueueAttributeName::QueueArn)
        .ok_or_else(|| CliError::Runtime(format!("GetQueueAttributes {url}: no QueueArn in the answer")))
}

/// The DLQ's ARN from the queue's RedrivePolicy, `None` when it has none.
pub async fn redrive_target(sqs: &Client, url: &str) -> CliResult<Option<String>> {
    let attrs = attributes(sqs, url, &[QueueAttributeName::RedrivePolicy]).await?;
    let Some(policy) = attrs.get(&QueueAttributeName::RedrivePolicy) else { return Ok(None) };
    let policy: serde_json::Value = serde_json::from_str(policy)
        .map_err(|e| CliError::Runtime(format!("the RedrivePolicy of {url} is not JSON: {e}")))?;
    Ok(policy["deadLetterTargetArn"].as_str().map(str::to_owned))
}

/// The URL of the queue an ARN names (`arn:aws:sqs:REGION:ACCOUNT:NAME`).
pub async fn url_of_arn(sqs: &Client, arn: &str) -> CliResult<String> {
    let parts: Vec<&str> = arn.split(':').collect();
    let [_, _, "sqs", _, account, name] = parts.as_slice() else {
        return Err(CliError::Runtime(format!("not an SQS queue ARN: {arn}")));
    };
    sqs.get_queue_url()
        .queue_name(*name)
        .queue_owner_aws_account_id(*account)
        .send()
        .await
        .map_err(|e| CliError::aws(&format!("GetQueueUrl {name}"), &e))?
        .queue_url
        .ok_or_else(|| CliError::Runtime(format!("GetQueueUrl {name}: no URL in the answer")))
}

/// The dead-letter queue: `--dlq-url` / `DLQ_URL`, else the send queue's RedrivePolicy.
/// `None` when neither names one.
pub async fn dlq_url(ctx: &Context) -> CliResult<Option<String>> {
    if let Some(url) = ctx.global.dlq_url.as_deref().filter(|u| !u.trim().is_empty()) {
        return Ok(Some(url.to_owned()));
    }
    let sqs = ctx.sqs().await;
    match redrive_target(&sqs, ctx.queue_url()?).await? {
        Some(arn) => Ok(Some(url_of_arn(&sqs, &arn).await?)),
        None => Ok(None),
    }
}

/// The dead-letter queue, or exit 3 naming what was looked at.
pub async fn require_dlq(ctx: &Context) -> CliResult<String> {
    dlq_url(ctx).await?.ok_or_else(|| {
        CliError::NotFound(
            "no dead-letter queue: the send queue has no RedrivePolicy, and neither DLQ_URL nor --dlq-url is set"
                .into(),
        )
    })
}

//! `missive setup`: the tables and queues, for local and emulator use, from the same
//! definitions as the SAM template (`missive::schema`, `adapters::provision`). On AWS, deploy
//! `infra/template.yaml` instead.

use clap::Args;
use missive::adapters::provision::{create_queues, create_table};
use missive::schema::{TableDef, CAMPAIGNS, CONSENT, INBOX, MESSAGE_LOG};
use serde_json::json;

use crate::context::Context;
use crate::error::{CliError, CliResult};
use crate::output::{note, print_json};
use crate::queues;

#[derive(Debug, Args)]
pub struct SetupArgs {
    /// The send queue's name (its dead-letter queue is NAME-dlq).
    #[arg(long, default_value = "missive-send", value_name = "NAME")]
    pub queue_name: String,
    /// The send queue's visibility timeout, in seconds (at least the send function's timeout).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..=43_200))]
    pub visibility_timeout: u32,
    /// Create them on real AWS (without AWS_ENDPOINT_URL). The SAM template is the way to deploy.
    #[arg(long)]
    pub yes_real_aws: bool,
}

async fn ensure_table(ctx: &Context, name: &str, def: &TableDef) -> CliResult<&'static str> {
    let dynamo = ctx.dynamo().await;
    match dynamo.describe_table().table_name(name).send().await {
        Ok(_) => Ok("exists"),
        Err(err) if err.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => {
            create_table(&dynamo, name, def).await?;
            Ok("created")
        }
        Err(err) => Err(CliError::aws(&format!("DescribeTable {name}"), &err)),
    }
}

pub async fn run(ctx: &Context, args: SetupArgs) -> CliResult<()> {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").ok().filter(|v| !v.trim().is_empty());
    if endpoint.is_none() && !args.yes_real_aws {
        return Err(CliError::Usage(
            "AWS_ENDPOINT_URL is not set: this would create tables and queues on real AWS. Deploy infra/template.yaml \
             there instead, or pass --yes-real-aws"
                .into(),
        ));
    }
    let log_table = ctx.global.message_log_table.clone();
    let consent_table = ctx.global.consent_table.clone();
    let log = ensure_table(ctx, &log_table, &MESSAGE_LOG).await?;
    let consent = ensure_table(ctx, &consent_table, &CONSENT).await?;
    let campaign_table = ctx.global.campaign_table.clone();
    let inbox_table = ctx.global.inbox_table.clone();
    let campaigns = ensure_table(ctx, &campaign_table, &CAMPAIGNS).await?;
    let inbox = ensure_table(ctx, &inbox_table, &INBOX).await?;
    let sqs = ctx.sqs().await;
    let (queue_url, dlq_url, queues_state) = match sqs.get_queue_url().queue_name(&args.queue_name).send().await {
        Ok(output) => {
            let url = output.queue_url.unwrap_or_default();
            let dlq = match queues::redrive_target(&sqs, &url).await? {
                Some(arn) => Some(queues::url_of_arn(&sqs, &arn).await?),
                None => None,
            };
            (url, dlq, "exists")
        }
        Err(err) if err.as_service_error().is_some_and(|e| e.is_queue_does_not_exist()) => {
            let created = create_queues(&sqs, &args.queue_name, args.visibility_timeout).await?;
            (created.queue_url, Some(created.dlq_url), "created")
        }
        Err(err) => return Err(CliError::aws(&format!("GetQueueUrl {}", args.queue_name), &err)),
    };
    if ctx.json() {
        print_json(&json!({
            "endpoint": endpoint,
            "tables": {
                log_table.clone(): log, consent_table.clone(): consent,
                campaign_table.clone(): campaigns, inbox_table.clone(): inbox,
            },
            "queues": queues_state,
            "env": {
                "MESSAGE_LOG_TABLE": log_table, "CONSENT_TABLE": consent_table,
                "CAMPAIGN_TABLE": campaign_table, "INBOX_TABLE": inbox_table,
                "SEND_QUEUE_URL": queue_url, "DLQ_URL": dlq_url,
            },
        }));
        return Ok(());
    }
    note(&format!(
        "table {log_table}: {log}; table {consent_table}: {consent}; table {campaign_table}: {campaigns}; \
         table {inbox_table}: {inbox}; queue {}: {queues_state}",
        args.queue_name
    ));
    note("export these (or eval \"$(missive setup)\"):");
    println!("export MESSAGE_LOG_TABLE={log_table}");
    println!("export CONSENT_TABLE={consent_table}");
    println!("export CAMPAIGN_TABLE={campaign_table}");
    println!("export INBOX_TABLE={inbox_table}");
    println!("export SEND_QUEUE_URL={queue_url}");
    if let Some(dlq) = dlq_url {
        println!("export DLQ_URL={dlq}");
    }
    if let Some(endpoint) = endpoint {
        println!("export AWS_ENDPOINT_URL={endpoint}");
    }
    Ok(())
}

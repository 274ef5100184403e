//! Settings shared by every command (the functions' environment variables, flags override)
//! and the AWS clients, built once and only when a command needs them.

use std::io::IsTerminal as _;

use aws_config::SdkConfig;
use clap::Args;
use missive::adapters::dynamo::{DynamoCampaigns, DynamoConsent};
use missive::adapters::sqs::SqsSendQueue;
use tokio::sync::OnceCell;

use crate::error::{CliError, CliResult};

/// The options every command takes.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// The MessageLog table.
    #[arg(
        long,
        env = "MESSAGE_LOG_TABLE",
        default_value = "MessageLog",
        global = true,
        value_name = "TABLE",
        help_heading = "Global options"
    )]
    pub message_log_table: String,
    /// The Consent table.
    #[arg(
        long,
        env = "CONSENT_TABLE",
        default_value = "Consent",
        global = true,
        value_name = "TABLE",
        help_heading = "Global options"
    )]
    pub consent_table: String,
    /// The Campaigns table (campaigns and the daily budget's items).
    #[arg(
        long,
        env = "CAMPAIGN_TABLE",
        default_value = "Campaigns",
        global = true,
        value_name = "TABLE",
        help_heading = "Global options"
    )]
    pub campaign_table: String,
    /// The Inbox table (the parents' replies).
    #[arg(
        long,
        env = "INBOX_TABLE",
        default_value = "Inbox",
        global = true,
        value_name = "TABLE",
        help_heading = "Global options"
    )]
    pub inbox_table: String,
    /// The send queue's URL.
    #[arg(
        long = "queue-url",
        env = "SEND_QUEUE_URL",
        global = true,
        value_name = "URL",
        help_heading = "Global options"
    )]
    pub send_queue_url: Option<String>,
    /// The dead-letter queue's URL (default: read from the send queue's RedrivePolicy).
    #[arg(long = "dlq-url", env = "DLQ_URL", global = true, value_name = "URL", help_heading = "Global options")]
    pub dlq_url: Option<String>,
    /// Default region for phone numbers written without a country code (`06 12 34 56 78`).
    #[arg(
        long,
        env = "MISSIVE_PHONE_REGION",
        default_value = "FR",
        global = true,
        value_name = "REGION",
        help_heading = "Global options"
    )]
    pub phone_region: String,
    /// Machine-readable output: one JSON object on stdout.
    #[arg(long, global = true, help_heading = "Global options")]
    pub json: bool,
}

/// The resolved settings and the lazily built AWS clients.
pub struct Context {
    pub global: GlobalArgs,
    aws: OnceCell<SdkConfig>,
}

impl Context {
    pub fn new(global: GlobalArgs) -> CliResult<Self> {
        let region = &global.phone_region;
        if region.len() != 2 || !region.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(CliError::Usage(format!(
                "--phone-region: expected a two-letter region code such as FR, got {region:?}"
            )));
        }
        Ok(Context { global, aws: OnceCell::new() })
    }

    /// The SDK configuration (`AWS_ENDPOINT_URL` points every client at an emulator).
    pub async fn aws(&self) -> &SdkConfig {
        self.aws.get_or_init(missive::wiring::aws_config).await
    }

    pub async fn dynamo(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(self.aws().await)
    }

    pub async fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(self.aws().await)
    }

    /// The Consent table (`--consent-table`).
    pub async fn consent_store(&self) -> DynamoConsent {
        DynamoConsent::new(self.dynamo().await, &self.global.consent_table)
    }

    /// The Campaigns table (`--campaign-table`).
    pub async fn campaign_store(&self) -> DynamoCampaigns {
        DynamoCampaigns::new(self.dynamo().await, &self.global.campaign_table)
    }

    /// Who runs this command, for `requested_by` when `--as` is not given: the caller's ARN
    /// on AWS (STS GetCallerIdentity), the OS user on an emulator or when STS cannot say.
    pub async fn caller(&self) -> String {
        let local = || {
            ["USER", "LOGNAME", "USERNAME"]
                .iter()
                .find_map(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
                .unwrap_or_else(|| "unknown".to_owned())
        };
        if std::env::var("AWS_ENDPOINT_URL").is_ok_and(|v| !v.trim().is_empty()) {
            return local();
        }
        let sts = aws_sdk_sts::Client::new(self.aws().await);
        match sts.get_caller_identity().send().await {
            Ok(identity) => identity.arn().map(str::to_owned).unwrap_or_else(local),
            Err(_) => local(),
        }
    }

    /// Who asks: `--as` when given (not blank), else [`Context::caller`].
    pub async fn requester(&self, given: Option<&str>) -> String {
        match given.map(str::trim).filter(|name| !name.is_empty()) {
            Some(name) => name.to_owned(),
            None => self.caller().await,
        }
    }

    /// The send queue (`--queue-url`), or a usage error naming the variable and the flag.
    pub async fn send_queue(&self) -> CliResult<SqsSendQueue> {
        let url = self.queue_url()?.to_owned();
        Ok(SqsSendQueue::new(self.sqs().await, url))
    }

    /// The send queue's URL, or a usage error naming the variable and the flag.
    pub fn queue_url(&self) -> CliResult<&str> {
        self.global
            .send_queue_url
            .as_deref()
            .filter(|url| !url.trim().is_empty())
            .ok_or_else(|| CliError::Usage("SEND_QUEUE_URL (or --queue-url) is required".into()))
    }

    pub fn json(&self) -> bool {
        self.global.json
    }

    pub fn phone_region(&self) -> &str {
        &self.global.phone_region
    }

    /// Whether a progress bar may be drawn (stderr is a terminal and the output is not JSON).
    pub fn interactive(&self) -> bool {
        !self.global.json && std::io::stderr().is_terminal()
    }
}

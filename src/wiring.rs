//! Builds each handler from its configuration and the AWS SDK configuration: what every
//! `main` does once at cold start, shared with the CLI and the tests.

use std::sync::Arc;

use aws_config::SdkConfig;

use crate::adapters::dynamo::{DynamoCampaigns, DynamoConsent, DynamoInbox, DynamoMessageLog, RetryDueIndex};
use crate::adapters::secrets::{read_twilio_secret, SecretError, SecretsManagerSource};
use crate::adapters::sns::SnsNotifier;
use crate::adapters::sqs::SqsSendQueue;
use crate::adapters::twilio::TwilioClient;
use crate::config::{ConfigError, SendConfig, TwilioEnv};
use crate::handlers::send::SendHandler;
use crate::ports::{Messenger, SystemClock};

/// Why a function could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Secret(#[from] SecretError),
}

/// The AWS SDK configuration from the environment (`AWS_ENDPOINT_URL` points every client at
/// an emulator).
pub async fn aws_config() -> SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

/// Merges the Secrets Manager secret into the Twilio settings, when `TWILIO_SECRET_ARN` is set.
pub async fn twilio_settings(twilio: TwilioEnv, aws: &SdkConfig) -> Result<TwilioEnv, SecretError> {
    let Some(arn) = twilio.secret_arn.clone() else { return Ok(twilio) };
    let client = aws_sdk_secretsmanager::Client::new(aws);
    Ok(twilio.with_secret(read_twilio_secret(&client, &arn).await?))
}

/// The `send` handler: live Twilio when configured, else a dry run (refused when
/// `TWILIO_ENABLED` is set).
pub async fn send_handler(config: SendConfig, aws: &SdkConfig) -> Result<SendHandler, StartupError> {
    let twilio = twilio_settings(config.twilio.clone(), aws).await?;
    let messenger: Option<Arc<dyn Messenger>> = match twilio.resolve() {
        Ok(account) => {
            let mut client = TwilioClient::new(account, &config.twilio_api_base_url);
            if let Some(arn) = &twilio.secret_arn {
                client = client.with_credential_source(Box::new(SecretsManagerSource {
                    client: aws_sdk_secretsmanager::Client::new(aws),
                    arn: arn.clone(),
                }));
            }
            Some(Arc::new(client))
        }
        Err(missing) if twilio.enabled => return Err(ConfigError::TwilioRequired { missing }.into()),
        Err(missing) => {
            tracing::warn!(missing = %missing, "Twilio is not configured: DRY RUN, every message is checked and recorded as dry_run, nothing is sent");
            None
        }
    };
    if config.status_callback_url.is_none() && messenger.is_some() {
        tracing::warn!("STATUS_CALLBACK_URL is not set: no delivery tracking and no healing of lost answers");
    }
    let dynamo = aws_sdk_dynamodb::Client::new(aws);
    let campaigns = Arc::new(DynamoCampaigns::new(dynamo.clone(), &config.campaign_table));
    Ok(SendHandler {
        log: Arc::new(DynamoMessageLog::new(dynamo.clone(), &config.message_log_table)),
        campaigns: campaigns.clone(),
        budget: campaigns,
        consent: Arc::new(DynamoConsent::new(dynamo, &config.consent_table)),
        queue: Arc::new(SqsSendQueue::new(aws_sdk_sqs::Client::new(aws), &config.send_queue_url)),
        messenger,
        clock: Arc::new(SystemClock),
        config,
    })
}

/// The `retry-sweep` handler.
pub fn sweep_handler(config: crate::config::SweepConfig, aws: &SdkConfig) -> crate::handlers::sweep::SweepHandler {
    let dynamo = aws_sdk_dynamodb::Client::new(aws);
    crate::handlers::sweep::SweepHandler {
        index: Arc::new(RetryDueIndex::new(DynamoMessageLog::new(dynamo, &config.message_log_table))),
        queue: Arc::new(SqsSendQueue::new(aws_sdk_sqs::Client::new(aws), &config.send_queue_url)),
        clock: Arc::new(SystemClock),
        config,
    }
}

/// The `twilio-webhook` handler. Its tokens: the secret's `auth_token` and
/// `auth_token_secondary` when `TWILIO_SECRET_ARN` is set, else `TWILIO_AUTH_TOKEN`; without
/// one, no signature could be checked, so the function does not start.
pub async fn webhook_handler(
    config: crate::config::WebhookConfig,
    aws: &SdkConfig,
) -> Result<crate::handlers::webhook::WebhookHandler, StartupError> {
    let tokens = match &config.twilio.secret_arn {
        Some(arn) => {
            let secret = read_twilio_secret(&aws_sdk_secretsmanager::Client::new(aws), arn).await?;
            std::iter::once(secret.auth_token).chain(secret.auth_token_secondary).collect()
        }
        None => config.twilio.auth_token.clone().into_iter().collect::<Vec<_>>(),
    };
    let tokens: Vec<_> = tokens.into_iter().filter(|token| !token.expose().trim().is_empty()).collect();
    if tokens.is_empty() {
        return Err(ConfigError::Missing { name: "TWILIO_AUTH_TOKEN (or TWILIO_SECRET_ARN)" }.into());
    }
    let dynamo = aws_sdk_dynamodb::Client::new(aws);
    let notifier = config
        .replies_topic_arn
        .as_ref()
        .map(|arn| Arc::new(SnsNotifier::new(aws_sdk_sns::Client::new(aws), arn)) as Arc<dyn crate::ports::Notifier>);
    let conversations = crate::handlers::webhook::Conversations {
        inbox: Arc::new(DynamoInbox::new(dynamo.clone(), &config.inbox_table)),
        notifier,
        auto_reply_text: config.auto_reply_text.clone(),
        retention_days: config.retention_days,
    };
    Ok(crate::handlers::webhook::WebhookHandler::new(
        Arc::new(DynamoMessageLog::new(dynamo.clone(), &config.message_log_table)),
        Arc::new(DynamoConsent::new(dynamo, &config.consent_table)),
        Arc::new(SystemClock),
        tokens,
        config.webhook_base_url,
    )
    .with_conversations(conversations))
}

/// The invocation's deadline from the runtime's `Lambda-Runtime-Deadline-Ms`. `cargo lambda
/// watch` (1.9) sends the constant 600000, an instant of 1970 rather than an epoch time in the
/// future as Lambda sends: with it every invocation would start out of time. A deadline before
/// 2000 is no deadline, so the invocation gets Lambda's maximum, 15 minutes, from now.
pub fn invocation_deadline(deadline_ms: u64) -> std::time::SystemTime {
    use std::time::{Duration, SystemTime};
    const NOT_AN_EPOCH_TIME_MS: u64 = 946_684_800_000; // 2000-01-01T00:00:00Z
    if deadline_ms < NOT_AN_EPOCH_TIME_MS {
        SystemTime::now() + Duration::from_secs(15 * 60)
    } else {
        SystemTime::UNIX_EPOCH + Duration::from_millis(deadline_ms)
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::invocation_deadline;

    #[test]
    fn a_real_deadline_is_kept_and_cargo_lambdas_constant_means_fifteen_minutes() {
        let real = 1_795_500_000_000;
        assert_eq!(invocation_deadline(real), SystemTime::UNIX_EPOCH + Duration::from_millis(real));
        let left = invocation_deadline(600_000).duration_since(SystemTime::now()).unwrap();
        assert!(left > Duration::from_secs(14 * 60) && left <= Duration::from_secs(15 * 60));
    }
}

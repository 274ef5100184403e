//! Reads the Twilio secret from Secrets Manager.

use aws_sdk_secretsmanager::Client;

use super::describe;
use crate::config::TwilioSecret;

/// Why the secret could not be used. Never carries the secret's text.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("TWILIO_SECRET_ARN: could not read the secret: {0}")]
    Read(String),
    #[error("TWILIO_SECRET_ARN: the secret has no SecretString")]
    NotAString,
    #[error("TWILIO_SECRET_ARN: the secret is not the expected JSON ({0})")]
    Malformed(String),
}

/// Reads and parses the secret named by `arn`.
pub async fn read_twilio_secret(client: &Client, arn: &str) -> Result<TwilioSecret, SecretError> {
    let output = client.get_secret_value().secret_id(arn).send().await.map_err(|e| SecretError::Read(describe(&e)))?;
    let text = output.secret_string().ok_or(SecretError::NotAString)?;
    // serde_json's error names the line and column, never the value.
    serde_json::from_str(text)
        .map_err(|e| SecretError::Malformed(format!("line {} column {}: {}", e.line(), e.column(), e.classify_name())))
}

trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "i/o error",
            serde_json::error::Category::Syntax => "not JSON",
            serde_json::error::Category::Data => "a field is missing, unknown or of the wrong type",
            serde_json::error::Category::Eof => "truncated",
        }
    }
}

/// Fresh Twilio credentials from the secret, after an account-level error.
pub struct SecretsManagerSource {
    pub client: Client,
    pub arn: String,
}

#[async_trait::async_trait]
impl crate::adapters::twilio::CredentialSource for SecretsManagerSource {
    async fn read(&self) -> Result<crate::config::Credentials, String> {
        let secret = read_twilio_secret(&self.client, &self.arn).await.map_err(|e| e.to_string())?;
        Ok(match (secret.api_key_sid, secret.api_key_secret) {
            (Some(sid), Some(secret)) => crate::config::Credentials::ApiKey { sid, secret },
            _ => crate::config::Credentials::AuthToken(secret.auth_token),
        })
    }
}

//! Twilio's Messages API over HTTPS (reqwest + rustls): create, and the list used by the
//! reconcile.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::Deserialize;

use crate::config::{Credentials, TwilioAccount};
use crate::domain::phone::PhoneNumber;
use crate::domain::twilio::Sender;
use crate::ports::{CreateAnswer, CreateRequest, Messenger, StoreError, TwilioMessage};

/// The list call stops after this many pages: a reconcile window never holds more.
const MAX_LIST_PAGES: usize = 20;
/// Credentials are read again at most this often after an account-level error.
const REFRESH_INTERVAL: Duration = Duration::from_secs(60);

/// Twilio's error JSON: `{"code": 21211, "message": "...", "more_info": "...", "status": 400}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TwilioError {
    pub code: Option<u32>,
    pub message: Option<String>,
    pub status: Option<u16>,
}

impl TwilioError {
    /// Parses an error body; anything else gives `None` (the HTTP status then decides).
    /// Each field is read on its own: one of an unexpected type (a `message` that is not a
    /// string, a `status` in quotes) hides none of the others, the `code` above all.
    pub fn parse(body: &[u8]) -> Option<Self> {
        let serde_json::Value::Object(fields) = serde_json::from_slice(body).ok()? else { return None };
        let number = |name: &str| fields.get(name).and_then(serde_json::Value::as_u64);
        Some(TwilioError {
            code: number("code").and_then(|code| u32::try_from(code).ok()),
            message: fields.get("message").and_then(serde_json::Value::as_str).map(str::to_owned),
            status: number("status").and_then(|status| u16::try_from(status).ok()),
        })
    }
}

/// Where fresh credentials come from after an account-level error (Secrets Manager).
#[async_trait]
pub trait CredentialSource: Send + Sync {
    async fn read(&self) -> Result<Credentials, String>;
}

#[derive(Deserialize)]
struct MessagePage {
    #[serde(default)]
    messages: Vec<TwilioMessage>,
    next_page_uri: Option<String>,
}

/// The Twilio client.
pub struct TwilioClient {
    http: reqwest::Client,
    base_url: String,
    account_sid: String,
    sender: Sender,
    credentials: Mutex<Credentials>,
    source: Option<Box<dyn CredentialSource>>,
    last_refresh: Mutex<Option<Instant>>,
}

impl TwilioClient {
    /// `base_url` without a trailing slash (`https://api.twilio.com`, or a test server).
    pub fn new(account: TwilioAccount, base_url: &str) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .pool_idle_timeout(Duration::from_secs(50))
            .user_agent(concat!("missive/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("a reqwest client with rustls builds");
        TwilioClient {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            account_sid: account.account_sid,
            sender: account.sender,
            credentials: Mutex::new(account.credentials),
            source: None,
            last_refresh: Mutex::new(None),
        }
    }

    pub fn with_credential_source(mut self, source: Box<dyn CredentialSource>) -> Self {
        self.source = Some(source);
        self
    }

    fn messages_url(&self) -> String {
        format!("{}/2010-04-01/Accounts/{}/Messages.json", self.base_url, self.account_sid)
    }

    fn auth(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        let credentials = self.credentials.lock().expect("credentials lock").clone();
        match credentials {
            Credentials::AuthToken(token) => request.basic_auth(&self.account_sid, Some(token.expose())),
            Credentials::ApiKey { sid, secret } => request.basic_auth(sid, Some(secret.expose())),
        }
    }

    /// The form fields of a create, in Twilio's names (`MediaUrl` repeated).
    pub fn form(request: &CreateRequest) -> Vec<(&'static str, String)> {
        let mut form = vec![("To", request.to.whatsapp())];
        match &request.sender {
            Sender::From(from) => form.push(("From", from.clone())),
            Sender::MessagingService(sid) => form.push(("MessagingServiceSid", sid.clone())),
        }
        if let Some(body) = &request.body {
            form.push(("Body", body.clone()));
        }
        if let Some(template) = &request.template {
            form.push(("ContentSid", template.content_sid.clone()));
            if !template.variables.is_empty() {
                let variables = serde_json::to_string(&template.variables).expect("a map of strings serialises");
                form.push(("ContentVariables", variables));
            }
        }
        if let Some(media) = &request.media_url {
            form.push(("MediaUrl", media.clone()));
        }
        if let Some(callback) = &request.status_callback {
            form.push(("StatusCallback", callback.clone()));
        }
        if let Some(validity) = request.validity_period {
            form.push(("ValidityPeriod", validity.to_string()));
        }
        form
    }
}

fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<u64> {
    headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim().parse().ok()
}

fn transport(err: reqwest::Error) -> CreateAnswer {
    // `is_connect` covers refused connections, DNS and TLS failures: nothing was sent.
    CreateAnswer::Transport {
        connection_opened: !err.is_connect(),
        detail: if err.is_timeout() { "timeout".into() } else { describe_http(err) },
    }
}

/// A reqwest error without its URL: the list call's query names the recipient's phone, and
/// this text reaches `last_error` and the logs, where phones are masked.
fn describe_http(err: reqwest::Error) -> String {
    crate::adapters::describe(&err.without_url())
}

#[async_trait]
impl Messenger for TwilioClient {
    fn sender(&self) -> &Sender {
        &self.sender
    }

    async fn create(&self, request: &CreateRequest, timeout: Duration) -> CreateAnswer {
        let form = Self::form(request);
        let response = self.auth(self.http.post(self.messages_url())).form(&form).timeout(timeout).send().await;
        let response = match response {
            Ok(response) => response,
            Err(err) => return transport(err),
        };
        let status = response.status().as_u16();
        let retry_after = retry_after(response.headers());
        let body = match response.bytes().await {
            Ok(body) => body,
            Err(err) => return transport(err),
        };
        if (200..300).contains(&status) {
            return match serde_json::from_slice::<TwilioMessage>(&body) {
                Ok(message) if !message.sid.is_empty() => CreateAnswer::Accepted(message),
                _ => CreateAnswer::Error {
                    http_status: status,
                    code: None,
                    message: format!("http {status} without a Message"),
                    retry_after,
                },
            };
        }
        let error = TwilioError::parse(&body);
        let code = error.as_ref().and_then(|e| e.code);
        let message = match (code, error.and_then(|e| e.message)) {
            (Some(code), Some(text)) => format!("{code}: {text}"),
            (Some(code), None) => format!("{code}: http {status}"),
            (None, _) => format!("http {status}"),
        };
        CreateAnswer::Error { http_status: status, code, message, retry_after }
    }

    async fn list_since(
        &self,
        to: &PhoneNumber,
        from: Option<&str>,
        since: i64,
    ) -> Result<Vec<TwilioMessage>, StoreError> {
        let mut query = vec![("To", to.whatsapp()), ("PageSize", "50".to_owned())];
        if let Some(from) = from {
            query.push(("From", from.to_owned()));
        }
        let mut request = self.http.get(self.messages_url()).query(&query);
        let mut found = Vec::new();
        for _ in 0..MAX_LIST_PAGES {
            let response = self
                .auth(request)
                .timeout(Duration::from_secs(10))
                .send()
                .await
                .map_err(|e| StoreError::new("Twilio list", describe_http(e)))?;
            let status = response.status();
            if !status.is_success() {
                return Err(StoreError::new("Twilio list", format!("http {}", status.as_u16())));
            }
            let page: MessagePage =
                response.json().await.map_err(|e| StoreError::new("Twilio list", describe_http(e)))?;
            let mut older_seen = false;
            for message in page.messages {
                match message.created_at() {
                    Some(created) if created < since => older_seen = true,
                    _ => found.push(message),
                }
            }
            match page.next_page_uri {
                Some(next) if !older_seen => request = self.http.get(format!("{}{}", self.base_url, next)),
                _ => return Ok(found),
            }
        }
        // Not reaching the window's start is not "not found": a new create could duplicate a
        // message on a page not read. The item stays in doubt.
        Err(StoreError::new(
            "Twilio list",
            format!("more than {MAX_LIST_PAGES} pages of messages to this phone since the attempt's window"),
        ))
    }

    async fn refresh_credentials(&self) {
        let Some(source) = &self.source else { return };
        {
            let mut last = self.last_refresh.lock().expect("refresh lock");
            if last.is_some_and(|at| at.elapsed() < REFRESH_INTERVAL) {
                return;
            }
            *last = Some(Instant::now());
        }
        match source.read().await {
            Ok(credentials) => {
                *self.credentials.lock().expect("credentials lock") = credentials;
                tracing::info!("Twilio credentials read again");
            }
            Err(err) => tracing::error!(error = %err, "could not read the Twilio credentials again"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::message::{MessageId, Template};

    #[test]
    fn twilio_error_json_is_parsed() {
        let body = br#"{"code": 21211, "message": "Invalid 'To' Phone Number", "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}"#;
        let error = TwilioError::parse(body).unwrap();
        assert_eq!(error.code, Some(21211));
        assert_eq!(error.status, Some(400));
        assert_eq!(TwilioError::parse(b"<html>"), None);
    }

    #[test]
    fn a_template_create_carries_content_sid_and_json_variables() {
        let request = CreateRequest {
            message_id: MessageId::parse("m1").unwrap(),
            to: PhoneNumber::parse("+33612345678").unwrap(),
            sender: Sender::MessagingService("MG0123".into()),
            body: None,
            template: Some(Template {
                content_sid: "HX0123456789abcdef0123456789abcdef".into(),
                variables: [("1".to_string(), "Jean".to_string())].into(),
            }),
            media_url: Some("https://example.org/a.pdf".into()),
            status_callback: Some("https://hook.example/twilio/status?message_id=m1".into()),
            validity_period: Some(600),
        };
        let form = TwilioClient::form(&request);
        assert_eq!(
            form,
            vec![
                ("To", "whatsapp:+33612345678".to_string()),
                ("MessagingServiceSid", "MG0123".into()),
                ("ContentSid", "HX0123456789abcdef0123456789abcdef".into()),
                ("ContentVariables", r#"{"1":"Jean"}"#.into()),
                ("MediaUrl", "https://example.org/a.pdf".into()),
                ("StatusCallback", "https://hook.example/twilio/status?message_id=m1".into()),
                ("ValidityPeriod", "600".into()),
            ]
        );
    }
}

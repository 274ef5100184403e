//! The `twilio-webhook` function: Twilio's status callbacks and the parents' replies, each
//! request checked against Twilio's signature before anything is read or written (DESIGN.md,
//! "Webhook").
//!
//! - here: routing, the order of the checks, the signature;
//! - [`request`]: the HTTP model (a plain request and answer, and their Lambda forms);
//! - [`status`]: `POST /twilio/status`, the status callback;
//! - [`inbound`]: `POST /twilio/inbound`, the parents' messages;
//! - [`conversation`]: a reply that is not a keyword (window, Inbox, acknowledgement, notice);
//! - [`twiml`] and [`replies`]: what a parent is answered.

mod conversation;
mod inbound;
mod replies;
mod request;
mod status;
mod twiml;

use std::sync::Arc;

use tracing::{error, warn};

pub use self::conversation::{notice, Conversations, MAX_BODY_CHARS, NOTICE_QUOTE_CHARS};
pub use self::replies::{HELP_REPLY, OPT_IN_REPLY, OPT_OUT_REPLY};
pub use self::request::{WebhookRequest, WebhookResponse};
pub use self::twiml::{escape_xml, twiml};
use crate::domain::signature::{self, SIGNATURE_HEADER};
use crate::metrics::Metrics;
use crate::ports::{Clock, ConsentStore, StatusCallbackLog};
use crate::secret::Secret;

/// The status callback's route (`?message_id=…`).
pub const STATUS_PATH: &str = "/twilio/status";
/// The incoming messages' route.
pub const INBOUND_PATH: &str = "/twilio/inbound";
/// The only content type Twilio signs as parameters.
pub const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded";

/// The form parameters of a body.
pub(super) fn form_params(body: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body.as_bytes()).into_owned().collect()
}

pub(super) fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str()).filter(|value| !value.is_empty())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Status,
    Inbound,
}

/// What the webhook needs, built once per cold start.
pub struct WebhookHandler {
    pub log: Arc<dyn StatusCallbackLog>,
    pub consent: Arc<dyn ConsentStore>,
    pub clock: Arc<dyn Clock>,
    /// The auth token, then the secondary one while a rotation is under way.
    pub tokens: Vec<Secret>,
    /// `WEBHOOK_BASE_URL` without its trailing slash: when set, the only base URL accepted.
    pub base_url: Option<String>,
    /// The replies' Inbox, notifier and auto-reply (none: a reply is only logged).
    pub conversations: Option<Conversations>,
}

impl WebhookHandler {
    pub fn new(
        log: Arc<dyn StatusCallbackLog>,
        consent: Arc<dyn ConsentStore>,
        clock: Arc<dyn Clock>,
        tokens: Vec<Secret>,
        base_url: Option<String>,
    ) -> Self {
        let base_url = base_url.map(|url| url.trim_end_matches('/').to_owned()).filter(|url| !url.is_empty());
        WebhookHandler { log, consent, clock, tokens, base_url, conversations: None }
    }

    /// Keeps the replies (DESIGN.md, "Conversations").
    pub fn with_conversations(mut self, conversations: Conversations) -> Self {
        self.conversations = Some(conversations);
        self
    }

    /// Handles one request and prints this invocation's metrics.
    pub async fn handle(&self, request: &WebhookRequest) -> WebhookResponse {
        let metrics = Metrics::new("twilio-webhook");
        let response = self.handle_counted(request, &metrics).await;
        metrics.flush();
        response
    }

    /// The Function URL adapter.
    pub async fn handle_lambda(&self, request: lambda_http::Request) -> lambda_http::Response<lambda_http::Body> {
        self.handle(&WebhookRequest::from_lambda(&request)).await.into_lambda()
    }

    /// Handles one request, counting into `metrics` (which the caller flushes).
    pub async fn handle_counted(&self, request: &WebhookRequest, metrics: &Metrics) -> WebhookResponse {
        // 1. Route: nothing else is looked at for an unknown path or another method.
        let route = match request.raw_path.as_str() {
            STATUS_PATH => Route::Status,
            INBOUND_PATH => Route::Inbound,
            _ => return WebhookResponse::text(404, "not found"),
        };
        if request.method != "POST" {
            return WebhookResponse::text(405, "method not allowed");
        }
        // 2. A form body, or there is nothing to sign.
        let is_form = request.header("content-type").is_some_and(|value| {
            value.split(';').next().unwrap_or_default().trim().eq_ignore_ascii_case(FORM_CONTENT_TYPE)
        });
        let body = match std::str::from_utf8(&request.body) {
            Ok(body) if is_form => body,
            _ => {
                warn!(path = %request.raw_path, "not a form body: refused");
                return WebhookResponse::text(400, "expected application/x-www-form-urlencoded");
            }
        };
        let params = form_params(body);
        // 3. Twilio's signature.
        if !self.signature_matches(request, &params) {
            metrics.count("SignatureRejected");
            warn!(
                path = %request.raw_path,
                signature_present = request.header(SIGNATURE_HEADER).is_some(),
                "X-Twilio-Signature missing or wrong: refused"
            );
            return WebhookResponse::text(403, "forbidden");
        }
        // 4. The work.
        let result = match route {
            Route::Status => self.status_callback(request, &params, metrics).await,
            Route::Inbound => self.inbound(&params, metrics).await,
        };
        result.unwrap_or_else(|err| {
            error!(path = %request.raw_path, error = %err, "store error: answered 500");
            WebhookResponse::internal_error()
        })
    }

    /// The URLs Twilio may have signed: `WEBHOOK_BASE_URL` + path when set (and then only it),
    /// else the Function URL as the request reached it.
    fn signed_urls(&self, request: &WebhookRequest) -> Vec<String> {
        match &self.base_url {
            Some(base) => vec![format!("{base}{}", request.path_and_query())],
            None => request.function_url().into_iter().collect(),
        }
    }

    fn signature_matches(&self, request: &WebhookRequest, params: &[(String, String)]) -> bool {
        let Some(provided) = request.header(SIGNATURE_HEADER) else { return false };
        let urls = self.signed_urls(request);
        let tokens: Vec<&str> = self.tokens.iter().map(Secret::expose).collect();
        !urls.is_empty() && signature::verify(&tokens, &urls, params, provided)
    }
}

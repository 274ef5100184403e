//! The `twilio-webhook` function: Twilio's status callbacks and the parents' replies, each
//! request checked against Twilio's signature before anything is read or written (DESIGN.md,
//! "Webhook").
//!
//! The handler works on a plain [`WebhookRequest`] and answers a plain [`WebhookResponse`], so
//! that tests drive it without Lambda types; [`WebhookHandler::handle_lambda`] is the thin
//! adapter from a Function URL event (API Gateway v2 payload).

use std::sync::Arc;

use tracing::{debug, error, info, warn};

use crate::domain::consent::{keyword, opt_out_type, ConsentChange, ConsentSource, ConsentState, Keyword};
use crate::domain::message::MessageId;
use crate::domain::phone::{mask_phone, PhoneNumber};
use crate::domain::signature::{self, SIGNATURE_HEADER};
use crate::domain::status::{status_for_twilio, twilio_rank, Status};
use crate::metrics::Metrics;
use crate::ports::{CallbackWrite, Clock, ConsentStore, StatusCallbackLog, StatusReport, StoreError};
use crate::secret::Secret;

/// The status callback's route (`?message_id=…`).
pub const STATUS_PATH: &str = "/twilio/status";
/// The incoming messages' route.
pub const INBOUND_PATH: &str = "/twilio/inbound";
/// The only content type Twilio signs as parameters.
pub const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded";
/// Twilio's error code for a recipient who unsubscribed.
pub const UNSUBSCRIBED_CODE: u32 = 21610;

/// The reply to an opt-out keyword.
pub const OPT_OUT_REPLY: &str = "Vous ne recevrez plus de messages de l'école sur WhatsApp. \
     Répondez START pour les recevoir de nouveau. / You will no longer receive messages from the school \
     on WhatsApp. Reply START to receive them again.";
/// The reply to an opt-in keyword.
pub const OPT_IN_REPLY: &str = "Vous recevrez de nouveau les messages de l'école sur WhatsApp. \
     Répondez STOP pour ne plus les recevoir. / You will receive messages from the school on WhatsApp \
     again. Reply STOP to stop receiving them.";
/// The reply to HELP.
pub const HELP_REPLY: &str = "Pour ne plus recevoir les messages de l'école, répondez STOP (ou ARRÊT) ; \
     pour les recevoir de nouveau, répondez START. / To stop receiving messages from the school, reply \
     STOP; to receive them again, reply START.";

/// An HTTP request as the webhook needs it: what a Function URL event carries.
#[derive(Debug, Clone, Default)]
pub struct WebhookRequest {
    /// `requestContext.http.method`
    pub method: String,
    /// `rawPath`
    pub raw_path: String,
    /// `rawQueryString`, without the `?` (empty when there is none)
    pub raw_query: String,
    /// `requestContext.domainName` (the Function URL's host)
    pub domain_name: Option<String>,
    /// Header names in any case.
    pub headers: Vec<(String, String)>,
    /// The body, already decoded when the event had `isBase64Encoded`.
    pub body: Vec<u8>,
}

impl WebhookRequest {
    /// A form POST (`application/x-www-form-urlencoded`) to `raw_path?raw_query` on `domain_name`.
    pub fn form_post(domain_name: &str, raw_path: &str, raw_query: &str, body: impl Into<Vec<u8>>) -> Self {
        WebhookRequest {
            method: "POST".into(),
            raw_path: raw_path.into(),
            raw_query: raw_query.into(),
            domain_name: Some(domain_name.into()),
            headers: vec![("content-type".into(), format!("{FORM_CONTENT_TYPE}; charset=utf-8"))],
            body: body.into(),
        }
    }

    /// Adds (or replaces) a header.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.retain(|(existing, _)| !existing.eq_ignore_ascii_case(name));
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(existing, _)| existing.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str())
    }

    /// The URL Twilio signed when it reached this Function URL directly: `https://` +
    /// `domainName` + `rawPath` + `?rawQueryString`.
    pub fn function_url(&self) -> Option<String> {
        let domain = self.domain_name.as_deref().filter(|domain| !domain.is_empty())?;
        Some(format!("https://{domain}{}", self.path_and_query()))
    }

    fn path_and_query(&self) -> String {
        if self.raw_query.is_empty() {
            self.raw_path.clone()
        } else {
            format!("{}?{}", self.raw_path, self.raw_query)
        }
    }

    /// The plain request of a Function URL event (API Gateway v2 payload); `lambda_http` has
    /// already decoded a base64 body.
    pub fn from_lambda(request: &lambda_http::Request) -> Self {
        use lambda_http::request::RequestContext;
        use lambda_http::RequestExt;

        let domain_name = match request.request_context_ref() {
            Some(RequestContext::ApiGatewayV2(context)) => context.domain_name.clone(),
            _ => None,
        };
        let raw_path = match request.raw_http_path() {
            "" => request.uri().path().to_owned(),
            raw => raw.to_owned(),
        };
        let headers = request
            .headers()
            .iter()
            .filter_map(|(name, value)| Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned())))
            .collect();
        WebhookRequest {
            method: request.method().as_str().to_owned(),
            raw_path,
            raw_query: request.uri().query().unwrap_or_default().to_owned(),
            domain_name,
            headers,
            body: request.body().as_ref().to_vec(),
        }
    }
}

/// The webhook's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookResponse {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

impl WebhookResponse {
    fn text(status: u16, body: &str) -> Self {
        WebhookResponse { status, content_type: "text/plain; charset=utf-8", body: body.into() }
    }

    /// 200 with an empty body: the answer to every status callback Twilio must not retry.
    fn ok_empty() -> Self {
        WebhookResponse::text(200, "")
    }

    fn twiml(reply: Option<&str>) -> Self {
        WebhookResponse { status: 200, content_type: "text/xml; charset=utf-8", body: twiml(reply) }
    }

    fn internal_error() -> Self {
        WebhookResponse::text(500, "internal error")
    }

    /// The `lambda_http` response (`Allow: POST` on a 405).
    pub fn into_lambda(self) -> lambda_http::Response<lambda_http::Body> {
        let mut builder =
            lambda_http::Response::builder().status(self.status).header("content-type", self.content_type);
        if self.status == 405 {
            builder = builder.header("allow", "POST");
        }
        builder.body(lambda_http::Body::from(self.body)).expect("a status and static headers always build")
    }
}

/// TwiML: one `<Message>` with `reply`, or an empty `<Response/>`.
pub fn twiml(reply: Option<&str>) -> String {
    match reply {
        Some(text) => format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Message>{}</Message></Response>",
            escape_xml(text)
        ),
        None => "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>".into(),
    }
}

/// Escapes text for XML element content and attribute values.
pub fn escape_xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// Readable descriptions of the delivery errors Twilio reports most often in callbacks.
fn error_description(code: u32) -> Option<&'static str> {
    Some(match code {
        21610 => "Attempt to send to unsubscribed recipient",
        30003 => "Unreachable destination handset",
        30004 => "Message blocked",
        30005 => "Unknown destination handset",
        30006 => "Landline or unreachable carrier",
        30007 => "Message filtered",
        30008 => "Unknown error",
        63016 => "Failed to send freeform message because you are outside the allowed window",
        _ => return None,
    })
}

/// The form parameters of a body.
fn form_params(body: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body.as_bytes()).into_owned().collect()
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
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
        WebhookHandler { log, consent, clock, tokens, base_url }
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

    /// `POST /twilio/status?message_id=…`
    async fn status_callback(
        &self,
        request: &WebhookRequest,
        params: &[(String, String)],
        metrics: &Metrics,
    ) -> Result<WebhookResponse, StoreError> {
        let sid = param(params, "MessageSid").or_else(|| param(params, "SmsSid"));
        let twilio_status = param(params, "MessageStatus").or_else(|| param(params, "SmsStatus"));
        let message_id = url::form_urlencoded::parse(request.raw_query.as_bytes())
            .find(|(name, _)| name == "message_id")
            .map(|(_, value)| value.into_owned());
        let Some(message_id) = message_id else {
            info!(twilio_sid = ?sid, twilio_status = ?twilio_status, "status callback without message_id: not a message Missive sent; nothing written");
            return Ok(WebhookResponse::ok_empty());
        };
        let message_id = match MessageId::parse(&message_id) {
            Ok(id) => id,
            Err(reason) => {
                warn!(twilio_sid = ?sid, reason = %reason, "status callback with an unusable message_id: nothing written");
                return Ok(WebhookResponse::ok_empty());
            }
        };
        let (Some(sid), Some(twilio_status)) = (sid, twilio_status) else {
            warn!(message_id = %message_id, "status callback without MessageSid or MessageStatus: nothing written");
            return Ok(WebhookResponse::ok_empty());
        };
        let (Some(rank), Some(status)) = (twilio_rank(twilio_status), status_for_twilio(twilio_status)) else {
            info!(message_id = %message_id, twilio_sid = sid, twilio_status, "a Twilio status outside the outbound lifecycle: ignored");
            return Ok(WebhookResponse::ok_empty());
        };
        let error_code = param(params, "ErrorCode").and_then(|code| code.trim().parse::<u32>().ok());
        let last_error = (status == Status::Undelivered).then(|| {
            let description = param(params, "ErrorMessage").or_else(|| error_description(error_code?));
            match (error_code, description) {
                (Some(code), Some(text)) => format!("{code}: {text}"),
                (Some(code), None) => format!("{code}: Twilio reported {twilio_status}"),
                (None, _) => format!("Twilio reported {twilio_status}"),
            }
        });
        let now = self.clock.now();
        let report = StatusReport {
            sid: sid.to_owned(),
            twilio_status: twilio_status.to_owned(),
            rank,
            status,
            error_code: if status == Status::Undelivered { error_code } else { None },
            last_error,
            now,
        };
        let existing = match self.log.apply_status(message_id.as_str(), &report).await? {
            CallbackWrite::Applied(before) => {
                self.on_applied(&message_id, &report, &before, metrics);
                before
            }
            CallbackWrite::Refused(None) => {
                warn!(message_id = %message_id, twilio_sid = sid, twilio_status, "status callback for a message_id with no MessageLog item: nothing written");
                return Ok(WebhookResponse::ok_empty());
            }
            CallbackWrite::Refused(Some(old)) => {
                self.on_refused(&message_id, &report, &old, metrics).await?;
                old
            }
        };
        // 21610 records an opt-out on the refused path too: a refused write may be Twilio's
        // retry of a report whose consent write failed. A replay (or a late copy) of a report
        // already recorded must change nothing, even after the parent's START: the Consent
        // store refuses an opt-out whose MessageSid its history already holds
        // (`domain::consent::repeats_history`).
        if error_code == Some(UNSUBSCRIBED_CODE) && existing.status.is_none_or(Status::accepts_callback) {
            let phone = existing.phone.as_deref().or_else(|| param(params, "To"));
            self.record_unsubscribed(&message_id, phone, sid, now, metrics).await?;
        }
        Ok(WebhookResponse::ok_empty())
    }

    fn on_applied(
        &self,
        message_id: &MessageId,
        report: &StatusReport,
        before: &crate::ports::LogItem,
        metrics: &Metrics,
    ) {
        match report.status {
            Status::Delivered => metrics.count("Delivered"),
            Status::Read => metrics.count("Read"),
            Status::Undelivered => metrics.count("Undelivered"),
            _ => {}
        }
        let previous = before.status.map(Status::as_str).unwrap_or("none");
        info!(
            message_id = %message_id,
            twilio_sid = %report.sid,
            twilio_status = %report.twilio_status,
            twilio_code = ?report.error_code,
            outcome = report.status.as_str(),
            previous,
            "status recorded"
        );
        match before.status {
            Some(Status::Failed | Status::Skipped | Status::Expired) => {
                metrics.count("ReconcileMissed");
                warn!(
                    message_id = %message_id,
                    twilio_sid = %report.sid,
                    previous,
                    outcome = report.status.as_str(),
                    "reconcile_missed: Twilio reports a message the send function concluded was never sent"
                );
            }
            Some(status) if status.is_in_flight() => {
                info!(message_id = %message_id, twilio_sid = %report.sid, previous, "healed: the callback recorded an outcome the send function had not written yet");
            }
            _ => {}
        }
    }

    async fn on_refused(
        &self,
        message_id: &MessageId,
        report: &StatusReport,
        old: &crate::ports::LogItem,
        metrics: &Metrics,
    ) -> Result<(), StoreError> {
        if old.status.is_some_and(|status| !status.accepts_callback()) {
            warn!(
                message_id = %message_id,
                twilio_sid = %report.sid,
                status = ?old.status.map(Status::as_str),
                "status callback names a message that never reached Twilio: nothing written"
            );
            return Ok(());
        }
        match old.twilio_sid.as_deref() {
            Some(held) if held != report.sid => {
                let known = old.extra_sids.as_ref().is_some_and(|sids| sids.iter().any(|sid| sid == &report.sid));
                if known {
                    info!(message_id = %message_id, twilio_sid = %report.sid, "a further report about a duplicate already recorded in extra_sids");
                    return Ok(());
                }
                self.log.add_extra_sid(message_id.as_str(), &report.sid, report.now).await?;
                metrics.count("DuplicateCreate");
                error!(
                    message_id = %message_id,
                    twilio_sid = %report.sid,
                    held_sid = held,
                    twilio_status = %report.twilio_status,
                    "duplicate create: Twilio holds a second message for this message_id; recorded in extra_sids"
                );
            }
            _ => debug!(
                message_id = %message_id,
                twilio_sid = %report.sid,
                twilio_status = %report.twilio_status,
                held_rank = ?old.twilio_rank,
                "a replayed or late status: nothing to change"
            ),
        }
        Ok(())
    }

    /// `ErrorCode` 21610: the recipient unsubscribed at Twilio; record the opt-out.
    async fn record_unsubscribed(
        &self,
        message_id: &MessageId,
        phone: Option<&str>,
        sid: &str,
        now: i64,
        metrics: &Metrics,
    ) -> Result<(), StoreError> {
        let Some(phone) = phone.and_then(|raw| PhoneNumber::parse(raw).ok()) else {
            warn!(message_id = %message_id, phone = ?phone.map(mask_phone), "21610 without a usable phone: no opt-out recorded");
            return Ok(());
        };
        let current = self.consent.current(&phone).await?;
        if current.is_some_and(|c| c.state == ConsentState::OptedOut && c.source.is_some_and(|s| s.is_from_parent())) {
            debug!(message_id = %message_id, phone = %phone, "21610: the opt-out is already recorded");
            return Ok(());
        }
        let change =
            ConsentChange { state: ConsentState::OptedOut, source: ConsentSource::Twilio21610, has_evidence: true };
        if self.consent.change(&phone, change, sid, now).await? {
            metrics.count("OptOut");
            info!(message_id = %message_id, phone = %phone, twilio_sid = sid, source = "twilio-21610", "opt-out recorded");
        } else {
            info!(
                message_id = %message_id,
                phone = %phone,
                twilio_sid = sid,
                "21610: no opt-out recorded (this report's opt-out is already in the history, or an erasure stands)"
            );
        }
        Ok(())
    }

    /// `POST /twilio/inbound`
    async fn inbound(&self, params: &[(String, String)], metrics: &Metrics) -> Result<WebhookResponse, StoreError> {
        let sid = param(params, "MessageSid").or_else(|| param(params, "SmsSid"));
        let from = param(params, "From");
        let asked = match param(params, "OptOutType").and_then(opt_out_type) {
            Some(keyword) => Some(keyword),
            None => keyword(param(params, "Body").unwrap_or_default()),
        };
        let Some(asked) = asked else {
            debug!(twilio_sid = ?sid, phone = ?from.map(mask_phone), "inbound message without a keyword");
            return Ok(WebhookResponse::twiml(None));
        };
        if asked == Keyword::Help {
            info!(twilio_sid = ?sid, phone = ?from.map(mask_phone), "HELP answered");
            return Ok(WebhookResponse::twiml(Some(HELP_REPLY)));
        }
        let Some(phone) = from.and_then(|raw| PhoneNumber::parse(raw).ok()) else {
            warn!(twilio_sid = ?sid, phone = ?from.map(mask_phone), "consent keyword from an unusable number: nothing recorded");
            return Ok(WebhookResponse::twiml(None));
        };
        let (state, reply, metric) = match asked {
            Keyword::OptOut => (ConsentState::OptedOut, OPT_OUT_REPLY, "OptOut"),
            _ => (ConsentState::OptedIn, OPT_IN_REPLY, "OptIn"),
        };
        let evidence = sid.unwrap_or("inbound message without MessageSid");
        let change = ConsentChange { state, source: ConsentSource::WhatsappReply, has_evidence: true };
        let now = self.clock.now();
        if self.consent.change(&phone, change, evidence, now).await? {
            metrics.count(metric);
            info!(phone = %phone, twilio_sid = ?sid, state = state.as_str(), source = "whatsapp-reply", "consent recorded");
            Ok(WebhookResponse::twiml(Some(reply)))
        } else {
            // Only an erasure refuses a parent's keyword: the parent stays suppressed either way.
            warn!(phone = %phone, twilio_sid = ?sid, state = state.as_str(), "consent change refused by the precedence rules (an erasure): nothing recorded");
            Ok(WebhookResponse::twiml(None))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twiml_is_escaped() {
        assert_eq!(
            twiml(Some("a < b & c > \"d\" l'e")),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Message>a &lt; b &amp; c &gt; &quot;d&quot; l&apos;e</Message></Response>"
        );
        assert_eq!(twiml(None), "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>");
        assert!(twiml(Some(OPT_OUT_REPLY)).contains("l&apos;école"));
    }

    #[test]
    fn the_function_url_is_rebuilt_from_domain_path_and_query() {
        let request = WebhookRequest::form_post("abc.lambda-url.eu-west-3.on.aws", STATUS_PATH, "message_id=m-1", "");
        assert_eq!(
            request.function_url().as_deref(),
            Some("https://abc.lambda-url.eu-west-3.on.aws/twilio/status?message_id=m-1")
        );
        let request = WebhookRequest::form_post("abc.lambda-url.eu-west-3.on.aws", INBOUND_PATH, "", "");
        assert_eq!(request.function_url().as_deref(), Some("https://abc.lambda-url.eu-west-3.on.aws/twilio/inbound"));
    }

    #[test]
    fn headers_are_found_in_any_case() {
        let request = WebhookRequest::default().with_header("X-Twilio-Signature", "abc");
        assert_eq!(request.header("x-twilio-signature"), Some("abc"));
        assert_eq!(request.with_header("x-twilio-signature", "def").header("X-TWILIO-SIGNATURE"), Some("def"));
    }
}

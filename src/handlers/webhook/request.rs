//! The webhook's HTTP model: the plain request a Function URL event carries, and the answer,
//! with their conversions from and to `lambda_http`, so that tests drive the handler without
//! Lambda types.

use super::twiml::twiml;
use super::FORM_CONTENT_TYPE;

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

    pub(super) fn path_and_query(&self) -> String {
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
    pub(super) fn text(status: u16, body: &str) -> Self {
        WebhookResponse { status, content_type: "text/plain; charset=utf-8", body: body.into() }
    }

    /// 200 with an empty body: the answer to every status callback Twilio must not retry.
    pub(super) fn ok_empty() -> Self {
        WebhookResponse::text(200, "")
    }

    pub(super) fn twiml(reply: Option<&str>) -> Self {
        WebhookResponse { status: 200, content_type: "text/xml; charset=utf-8", body: twiml(reply) }
    }

    pub(super) fn internal_error() -> Self {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handlers::webhook::{INBOUND_PATH, STATUS_PATH};

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

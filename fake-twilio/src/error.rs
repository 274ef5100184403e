//! Twilio's error answers: `{"code":…,"message":…,"more_info":…,"status":…}`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error answer in Twilio's JSON shape.
#[derive(Debug, Clone)]
pub(crate) struct TwilioError {
    pub status: StatusCode,
    pub code: Option<u32>,
    pub message: String,
    pub retry_after: Option<u64>,
}

impl TwilioError {
    /// An error with a Twilio code.
    pub fn new(status: StatusCode, code: u32, message: impl Into<String>) -> Self {
        Self { status, code: Some(code), message: message.into(), retry_after: None }
    }

    /// A scripted error; an impossible HTTP status becomes 500.
    pub fn scripted(http: u16, code: Option<u32>, message: &str, retry_after: Option<u64>) -> Self {
        let status = StatusCode::from_u16(http).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let message = if message.is_empty() {
            status.canonical_reason().unwrap_or("Error").to_owned()
        } else {
            message.to_owned()
        };
        Self { status, code, message, retry_after }
    }

    /// 401, code 20003, with Twilio's `WWW-Authenticate` challenge.
    pub fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, 20003, "Authenticate")
    }

    /// 404, code 20404, naming the path.
    pub fn not_found(path: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, 20404, format!("The requested resource {path} was not found"))
    }

    /// 400 for a request the server cannot read (code 20001, "invalid parameter").
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, 20001, message)
    }

    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        match self.code {
            Some(code) => json!({
                "code": code,
                "message": self.message,
                "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
                "status": self.status.as_u16(),
            }),
            None => json!({ "message": self.message, "status": self.status.as_u16() }),
        }
    }
}

impl IntoResponse for TwilioError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body())).into_response();
        let headers = response.headers_mut();
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"Twilio API\""));
        }
        response
    }
}

//! The HTTP routes: Messages create, list and fetch, in Twilio's shapes.

mod create;
mod list;
mod validate;

use std::sync::Arc;

use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine as _;

use crate::error::TwilioError;
use crate::message::new_sid;
use crate::state::Shared;

/// The router of the fake API.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/2010-04-01/Accounts/{account_sid}/Messages.json", post(create::create).get(list::list))
        .route("/2010-04-01/Accounts/{account_sid}/Messages/{file}", get(list::fetch))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::map_response(add_request_id))
        .with_state(shared)
}

async fn not_found(uri: Uri) -> Response {
    TwilioError::not_found(uri.path()).into_response()
}

async fn method_not_allowed() -> Response {
    TwilioError::new(StatusCode::METHOD_NOT_ALLOWED, 20004, "Method not allowed").into_response()
}

/// Every Twilio answer carries a `Twilio-Request-Id`.
async fn add_request_id(mut response: Response) -> Response {
    if let Ok(id) = HeaderValue::from_str(&new_sid("RQ")) {
        response.headers_mut().insert("twilio-request-id", id);
    }
    response
}

/// The Basic auth username and password, when the header is well formed.
pub(crate) fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// Checks Basic auth (account SID + auth token, or API key + secret), then the account SID
/// of the path.
pub(crate) fn authorize(
    shared: &Shared,
    headers: &HeaderMap,
    account_sid: &str,
    path: &str,
) -> Result<(), TwilioError> {
    let options = &shared.options;
    let (user, password) = basic_credentials(headers).ok_or_else(TwilioError::unauthorized)?;
    let valid = (user == options.account_sid && password == options.auth_token)
        || options.api_keys.iter().any(|(sid, secret)| *sid == user && *secret == password);
    if !valid {
        return Err(TwilioError::unauthorized());
    }
    if account_sid != options.account_sid {
        return Err(TwilioError::not_found(path));
    }
    Ok(())
}

/// Sleeps the configured latency.
pub(crate) async fn wait_latency(shared: &Shared) {
    let latency = shared.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
}

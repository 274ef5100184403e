//! `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`, with scripted faults.
//!
//! The request is handled in a task of its own, so that what the server decides (a message
//! created or not) does not depend on whether the client is still waiting; the handler then
//! only delivers the answer (after a stall, or by breaking the connection).

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use futures::StreamExt as _;

use super::validate::CreateForm;
use super::{authorize, basic_credentials, wait_latency};
use crate::callbacks;
use crate::conn::Conn;
use crate::error::TwilioError;
use crate::fault::Fault;
use crate::message::Message;
use crate::state::Shared;

/// How the handler delivers what was decided.
enum Delivery {
    /// An HTTP answer.
    Answer(Response),
    /// Break the connection instead.
    Reset,
}

/// What a create request came to.
struct Decision {
    /// Wait this long before delivering.
    stall: Duration,
    delivery: Delivery,
    /// The message created, if any.
    sid: Option<String>,
}

impl Decision {
    fn answer(response: impl IntoResponse) -> Self {
        Decision { stall: Duration::ZERO, delivery: Delivery::Answer(response.into_response()), sid: None }
    }
}

pub(super) async fn create(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(conn): ConnectInfo<Conn>,
    path: Result<Path<String>, PathRejection>,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let account_sid = path.map(|Path(sid)| sid).unwrap_or_default();
    let body = body.unwrap_or_default();
    let task = tokio::spawn(process(shared, account_sid, uri.path().to_owned(), headers, body));
    let decision = match task.await {
        Ok(decision) => decision,
        Err(error) => {
            tracing::error!(%error, "create task failed");
            return TwilioError::new(StatusCode::INTERNAL_SERVER_ERROR, 20500, "Internal Server Error").into_response();
        }
    };
    if !decision.stall.is_zero() {
        tokio::time::sleep(decision.stall).await;
    }
    match decision.delivery {
        Delivery::Answer(response) => response,
        Delivery::Reset => {
            conn.0.kill();
            // Never reaches the client: writing it fails on the killed connection.
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// Records the request, decides, and records the decision.
async fn process(shared: Arc<Shared>, account_sid: String, path: String, headers: HeaderMap, body: Bytes) -> Decision {
    let params = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body);
    let username = basic_credentials(&headers).map(|(user, _)| user);
    let index = shared.inner().record_create(params.clone().unwrap_or_default(), username);
    wait_latency(&shared).await;
    let (decision, fault) = decide(&shared, &account_sid, &path, &headers, params).await;
    let status = match &decision.delivery {
        Delivery::Answer(response) => Some(response.status().as_u16()),
        Delivery::Reset => None,
    };
    if let Some(record) = shared.inner().record(index) {
        record.status = status;
        record.sid.clone_from(&decision.sid);
        record.fault = fault;
    }
    decision
}

async fn decide(
    shared: &Arc<Shared>,
    account_sid: &str,
    path: &str,
    headers: &HeaderMap,
    params: Result<Vec<(String, String)>, serde_urlencoded::de::Error>,
) -> (Decision, Option<Fault>) {
    if let Err(error) = authorize(shared, headers, account_sid, path) {
        return (Decision::answer(error), None);
    }
    let Ok(params) = params else {
        let error = TwilioError::bad_request("The request body is not a valid form");
        return (Decision::answer(error), None);
    };
    let form = CreateForm::from_params(&params);
    let fault = shared.inner().take_fault(form.to.as_deref());
    let mut stall = Duration::ZERO;
    let mut reset = false;
    let mut broken_body = false;
    match &fault {
        None => {}
        Some(Fault::Error { http, code, message, retry_after }) => {
            let error = TwilioError::scripted(*http, *code, message, *retry_after);
            return (Decision::answer(error), fault);
        }
        Some(Fault::StallThenReject(wait)) => {
            let error = TwilioError::new(StatusCode::SERVICE_UNAVAILABLE, 20503, "Service Unavailable");
            let mut decision = Decision::answer(error);
            decision.stall = *wait;
            return (decision, fault);
        }
        Some(Fault::ResetBeforeAccept) => {
            let decision = Decision { stall: Duration::ZERO, delivery: Delivery::Reset, sid: None };
            return (decision, fault);
        }
        Some(Fault::InvalidJson) => {
            let response = (
                StatusCode::CREATED,
                [(header::CONTENT_TYPE, "application/json")],
                "<html><body><h1>201 Created</h1></body></html>",
            );
            return (Decision::answer(response), fault);
        }
        Some(Fault::Delay(wait)) => tokio::time::sleep(*wait).await,
        Some(Fault::AcceptThenStall(wait)) => stall = *wait,
        Some(Fault::ResetAfterAccept) => reset = true,
        Some(Fault::BrokenBodyAfterAccept) => broken_body = true,
    }
    let mut decision = match accept(shared, &form) {
        Ok(message) => {
            let json = serde_json::to_vec(&message).unwrap_or_default();
            let response = if broken_body {
                broken_json(StatusCode::CREATED, json)
            } else {
                (StatusCode::CREATED, [(header::CONTENT_TYPE, "application/json")], json).into_response()
            };
            Decision { stall: Duration::ZERO, delivery: Delivery::Answer(response), sid: Some(message.sid) }
        }
        Err(error) if broken_body => Decision::answer(broken_json(error.status, error.body().to_string().into_bytes())),
        Err(error) => Decision::answer(error),
    };
    decision.stall = stall;
    if reset {
        decision.delivery = Delivery::Reset;
    }
    (decision, fault)
}

/// Validates, applies the rate limit, and stores the message.
fn accept(shared: &Arc<Shared>, form: &CreateForm) -> Result<Message, TwilioError> {
    let new = form.validate()?;
    let mut inner = shared.inner();
    if let (Some(rate), Some(sender)) = (shared.options.rate_per_sender, form.sender()) {
        if !inner.rate_allows(sender, rate) {
            return Err(TwilioError::new(StatusCode::TOO_MANY_REQUESTS, 20429, "Too Many Requests"));
        }
    }
    let now = Utc::now();
    let message = Message::create(&shared.options.account_sid, new, now);
    inner.insert(message.clone(), now, form.status_callback.clone());
    drop(inner);
    callbacks::schedule(shared, message.sid.clone(), &message.to);
    Ok(message)
}

/// An answer whose JSON body stops half way with an error: hyper then closes the
/// connection, and the client sees the status line, then a broken body. The pause lets
/// hyper flush the head and the first half before the error.
fn broken_json(status: StatusCode, json: Vec<u8>) -> Response {
    let json = Bytes::from(json);
    let half = json.slice(..json.len() / 2);
    let first = futures::stream::once(async move { Ok::<_, std::io::Error>(half) });
    let broken = futures::stream::once(async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "body broken on purpose"))
    });
    let body = Body::from_stream(first.chain(broken));
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

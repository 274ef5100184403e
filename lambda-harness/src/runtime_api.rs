//! A Lambda Runtime API on loopback: what a function's runtime client talks to on AWS.
//!
//! Routes (API version 2018-06-01):
//!
//! - `GET /2018-06-01/runtime/invocation/next`: waits for the next invocation and answers
//!   it with the event as body and the headers `Lambda-Runtime-Aws-Request-Id`,
//!   `Lambda-Runtime-Deadline-Ms`, `Lambda-Runtime-Invoked-Function-Arn`,
//!   `Lambda-Runtime-Trace-Id`. While it waits, the connection is watched: a client that
//!   goes away (a killed process) never takes an invocation with it.
//! - `POST /2018-06-01/runtime/invocation/{id}/response` and `…/{id}/error`: the outcome.
//! - `POST /2018-06-01/runtime/init/error`: the function could not start.
//!
//! The HTTP/1.1 server is written by hand (keep-alive, `Content-Length` and chunked
//! bodies): it adds no framework to what it measures, and it sees a closed connection at
//! once.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, Notify};
use tokio::task::JoinHandle;

/// How an invocation ended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvokeError {
    /// The function reported an error (`…/error`).
    #[error("function error {error_type}: {body}")]
    Function { error_type: String, body: String },
    /// The function's process went away (killed, crashed) before it answered.
    #[error("abandoned: {0}")]
    Abandoned(String),
    /// No answer within the time given.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

/// A successful invocation.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub request_id: String,
    /// The response body, as JSON (`Null` when it was not JSON).
    pub response: serde_json::Value,
    /// When it was queued.
    pub queued_at: Instant,
    /// When a runtime client took it (`/next` answered).
    pub delivered_at: Instant,
    /// When the response arrived.
    pub answered_at: Instant,
}

impl Invocation {
    /// From delivery to response: the function's own time.
    pub fn duration(&self) -> Duration {
        self.answered_at.saturating_duration_since(self.delivered_at)
    }
}

#[derive(Debug)]
enum Outcome {
    Response { body: Vec<u8>, at: Instant },
    Error { error_type: String, body: Vec<u8> },
    Abandoned(String),
}

struct Pending {
    id: String,
    body: Vec<u8>,
    deadline_ms: u64,
    queued_at: Instant,
    reply: oneshot::Sender<(Outcome, Instant)>,
}

struct InFlight {
    reply: oneshot::Sender<(Outcome, Instant)>,
    delivered_at: Instant,
}

struct State {
    queue: Mutex<VecDeque<Pending>>,
    ready: Notify,
    in_flight: Mutex<HashMap<String, InFlight>>,
    delivered: AtomicU64,
    delivered_notify: Notify,
    init_error: Mutex<Option<String>>,
    function_arn: String,
    next_id: AtomicU64,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A queued or delivered invocation, awaited with [`PendingInvocation::wait`].
pub struct PendingInvocation {
    request_id: String,
    queued_at: Instant,
    reply: oneshot::Receiver<(Outcome, Instant)>,
}

impl PendingInvocation {
    pub fn request_id(&self) -> &str {
        &self.request_id
    }

    /// Waits at most `timeout` for the outcome.
    pub async fn wait(self, timeout: Duration) -> Result<Invocation, InvokeError> {
        let (outcome, delivered_at) = match tokio::time::timeout(timeout, self.reply).await {
            Err(_) => return Err(InvokeError::Timeout(timeout)),
            Ok(Err(_)) => return Err(InvokeError::Abandoned("the runtime API stopped".into())),
            Ok(Ok(outcome)) => outcome,
        };
        match outcome {
            Outcome::Response { body, at } => Ok(Invocation {
                request_id: self.request_id,
                response: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
                queued_at: self.queued_at,
                delivered_at,
                answered_at: at,
            }),
            Outcome::Error { error_type, body } => {
                Err(InvokeError::Function { error_type, body: String::from_utf8_lossy(&body).into_owned() })
            }
            Outcome::Abandoned(reason) => Err(InvokeError::Abandoned(reason)),
        }
    }
}

/// The Runtime API of one execution environment (one function process at a time, as on AWS).
/// Dropping it stops the server.
pub struct RuntimeApi {
    addr: SocketAddr,
    state: Arc<State>,
    server: JoinHandle<()>,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
        self.abandon_all("the runtime API stopped");
    }
}

impl RuntimeApi {
    /// Binds a fresh port on 127.0.0.1 (a fresh port per process: a late `/next` of a
    /// previous process can never take the next process's event).
    pub async fn start(function_name: &str) -> std::io::Result<RuntimeApi> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            queue: Mutex::default(),
            ready: Notify::new(),
            in_flight: Mutex::default(),
            delivered: AtomicU64::new(0),
            delivered_notify: Notify::new(),
            init_error: Mutex::default(),
            function_arn: format!("arn:aws:lambda:eu-west-3:000000000000:function:{function_name}"),
            next_id: AtomicU64::new(1),
        });
        let accept_state = Arc::clone(&state);
        let server = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let _ = stream.set_nodelay(true);
                tokio::spawn(serve(stream, Arc::clone(&accept_state)));
            }
        });
        Ok(RuntimeApi { addr, state, server })
    }

    /// `127.0.0.1:PORT`: the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// Queues an invocation; the deadline given to the function is `now + timeout`.
    pub fn submit(&self, event: &serde_json::Value, timeout: Duration) -> PendingInvocation {
        let n = self.state.next_id.fetch_add(1, Ordering::SeqCst);
        let id = format!("{:08x}-0000-4000-8000-{:012x}", rand::random::<u32>(), n);
        let deadline = SystemTime::now() + timeout;
        let deadline_ms = deadline.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64;
        let (tx, rx) = oneshot::channel();
        let queued_at = Instant::now();
        lock(&self.state.queue).push_back(Pending {
            id: id.clone(),
            body: serde_json::to_vec(event).expect("a JSON value serialises"),
            deadline_ms,
            queued_at,
            reply: tx,
        });
        self.state.ready.notify_waiters();
        PendingInvocation { request_id: id, queued_at, reply: rx }
    }

    /// Queues an invocation and waits for its outcome (`timeout` is both the function's
    /// deadline and how long this waits, plus a second).
    pub async fn invoke(&self, event: &serde_json::Value, timeout: Duration) -> Result<Invocation, InvokeError> {
        self.submit(event, timeout).wait(timeout + Duration::from_secs(1)).await
    }

    /// Fails every queued and delivered invocation (the process died).
    pub fn abandon_all(&self, reason: &str) {
        let queued: Vec<Pending> = lock(&self.state.queue).drain(..).collect();
        for pending in queued {
            let _ = pending.reply.send((Outcome::Abandoned(reason.to_owned()), Instant::now()));
        }
        let delivered: Vec<InFlight> = lock(&self.state.in_flight).drain().map(|(_, v)| v).collect();
        for in_flight in delivered {
            let _ = in_flight.reply.send((Outcome::Abandoned(reason.to_owned()), in_flight.delivered_at));
        }
    }

    /// How many invocations a runtime client has taken so far.
    pub fn delivered(&self) -> u64 {
        self.state.delivered.load(Ordering::SeqCst)
    }

    /// Waits until at least `n` invocations were taken.
    pub async fn wait_delivered(&self, n: u64) {
        loop {
            let notified = self.state.delivered_notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.delivered() >= n {
                return;
            }
            notified.await;
        }
    }

    /// The body of `/runtime/init/error`, if the function reported one.
    pub fn init_error(&self) -> Option<String> {
        lock(&self.state.init_error).clone()
    }
}

// ---- the HTTP side --------------------------------------------------------------------

struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Reads more bytes into `buf`; `false` at end of stream or on error.
async fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 16 * 1024];
    match stream.read(&mut chunk).await {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            true
        }
    }
}

/// One request from the connection; `None` when it closed.
async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Request> {
    let head_end = loop {
        if let Some(i) = find(buf, b"\r\n\r\n") {
            break i;
        }
        if buf.len() > 1024 * 1024 || !fill(stream, buf).await {
            return None;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    buf.drain(..head_end + 4);
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split_whitespace();
    let method = first.next()?.to_owned();
    let path = first.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut request = Request { method, path, headers, body: Vec::new() };
    if request.header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            let line_end = loop {
                if let Some(i) = find(buf, b"\r\n") {
                    break i;
                }
                if !fill(stream, buf).await {
                    return None;
                }
            };
            let size_text = String::from_utf8_lossy(&buf[..line_end]).into_owned();
            let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
            buf.drain(..line_end + 2);
            if size == 0 {
                // Trailers, then the empty line.
                loop {
                    if let Some(i) = find(buf, b"\r\n") {
                        let empty = i == 0;
                        buf.drain(..i + 2);
                        if empty {
                            break;
                        }
                    } else if !fill(stream, buf).await {
                        return None;
                    }
                }
                break;
            }
            while buf.len() < size + 2 {
                if !fill(stream, buf).await {
                    return None;
                }
            }
            request.body.extend_from_slice(&buf[..size]);
            buf.drain(..size + 2);
        }
    } else {
        let length: usize = request.header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
        while buf.len() < length {
            if !fill(stream, buf).await {
                return None;
            }
        }
        request.body = buf.drain(..length).collect();
    }
    Some(request)
}

async fn respond(stream: &mut TcpStream, status: &str, headers: &[(&str, String)], body: &[u8]) -> bool {
    let mut out = format!("HTTP/1.1 {status}\r\ncontent-length: {}\r\n", body.len());
    for (name, value) in headers {
        out.push_str(name);
        out.push_str(": ");
        out.push_str(value);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    stream.write_all(&bytes).await.is_ok() && stream.flush().await.is_ok()
}

/// Takes the next queued invocation, or `None` when the client went away meanwhile.
async fn next_invocation(state: &State, stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Pending> {
    loop {
        let notified = state.ready.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if let Some(pending) = lock(&state.queue).pop_front() {
            return Some(pending);
        }
        let mut probe = [0u8; 4096];
        tokio::select! {
            _ = &mut notified => {}
            read = stream.read(&mut probe) => match read {
                Ok(0) | Err(_) => return None,
                Ok(n) => buf.extend_from_slice(&probe[..n]),
            },
        }
    }
}

const ACCEPTED: &[u8] = br#"{"status":"OK"}"#;

async fn serve(mut stream: TcpStream, state: Arc<State>) {
    let mut buf = Vec::new();
    while let Some(request) = read_request(&mut stream, &mut buf).await {
        let close = request.header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let path = request.path.split('?').next().unwrap_or_default().to_owned();
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        let ok = match (request.method.as_str(), parts.as_slice()) {
            ("GET", ["2018-06-01", "runtime", "invocation", "next"]) => {
                let Some(pending) = next_invocation(&state, &mut stream, &mut buf).await else { return };
                let delivered_at = Instant::now();
                // In flight before the write: the response may come on another connection
                // before this write returns.
                lock(&state.in_flight).insert(pending.id.clone(), InFlight { reply: pending.reply, delivered_at });
                let headers = [
                    ("content-type", "application/json".to_owned()),
                    ("lambda-runtime-aws-request-id", pending.id.clone()),
                    ("lambda-runtime-deadline-ms", pending.deadline_ms.to_string()),
                    ("lambda-runtime-invoked-function-arn", state.function_arn.clone()),
                    ("lambda-runtime-trace-id", format!("Root=1-00000000-{:024x};Sampled=0", rand::random::<u64>())),
                ];
                if respond(&mut stream, "200 OK", &headers, &pending.body).await {
                    state.delivered.fetch_add(1, Ordering::SeqCst);
                    state.delivered_notify.notify_waiters();
                    true
                } else {
                    // The client is gone: the invocation goes back to the head of the queue.
                    if let Some(in_flight) = lock(&state.in_flight).remove(&pending.id) {
                        lock(&state.queue).push_front(Pending {
                            id: pending.id,
                            body: pending.body,
                            deadline_ms: pending.deadline_ms,
                            queued_at: pending.queued_at,
                            reply: in_flight.reply,
                        });
                        state.ready.notify_waiters();
                    }
                    return;
                }
            }
            ("POST", ["2018-06-01", "runtime", "invocation", id, kind @ ("response" | "error")]) => {
                let at = Instant::now();
                let found = lock(&state.in_flight).remove(*id);
                match found {
                    Some(in_flight) => {
                        let outcome = if *kind == "response" {
                            Outcome::Response { body: request.body, at }
                        } else {
                            Outcome::Error {
                                error_type: request
                                    .header("lambda-runtime-function-error-type")
                                    .unwrap_or("Unhandled")
                                    .to_owned(),
                                body: request.body,
                            }
                        };
                        let _ = in_flight.reply.send((outcome, in_flight.delivered_at));
                        respond(&mut stream, "202 Accepted", &[("content-type", "application/json".into())], ACCEPTED)
                            .await
                    }
                    None => {
                        let body = br#"{"errorMessage":"unknown request id","errorType":"InvalidRequestID"}"#;
                        respond(&mut stream, "400 Bad Request", &[("content-type", "application/json".into())], body)
                            .await
                    }
                }
            }
            ("POST", ["2018-06-01", "runtime", "init", "error"]) => {
                *lock(&state.init_error) = Some(String::from_utf8_lossy(&request.body).into_owned());
                respond(&mut stream, "202 Accepted", &[("content-type", "application/json".into())], ACCEPTED).await
            }
            _ => respond(&mut stream, "404 Not Found", &[], b"").await,
        };
        if !ok || close {
            return;
        }
    }
}

//! A Twilio-shaped HTTP server (Messages API, 2010-04-01) for Missive's tests, benchmark and
//! demo.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use fake_twilio::{Fault, FakeTwilio, Options};
//! let twilio = FakeTwilio::start(Options::default()).await?;
//! twilio.push_fault(Some("+33612345678"), Fault::service_unavailable());
//! // point the client at twilio.base_url() …
//! assert_eq!(twilio.created_count_for("+33612345678"), 0);
//! # Ok(()) }
//! ```
//!
//! What it serves (Basic auth: account SID + auth token, or API key SID + secret; else 401
//! with code 20003; another account SID in the path: 404 with code 20404):
//!
//! - `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`: creates a message (201) after
//!   Twilio's validation (21604, 21603, 21602, 21211, 21212, 21910, 21617, 21655, 21654,
//!   21656, 21624, 21609), the per-sender rate limit (429, 20429) and the scripted
//!   [`Fault`]s.
//! - `GET /2010-04-01/Accounts/{AccountSid}/Messages.json`: newest first, filtered by `To`,
//!   `From`, `DateSent`, `DateSent<`, `DateSent>`, paged with `PageSize`, `Page`,
//!   `PageToken`.
//! - `GET /2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json`.

mod callbacks;
mod conn;
mod error;
mod fault;
mod message;
mod options;
mod rate;
mod routes;
mod signature;
mod state;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use fault::{Behaviour, CallbackOutcome, Fault};
pub use message::{new_sid, rfc2822, Message, SubresourceUris, API_VERSION};
pub use options::{CallbackOptions, Options, DEFAULT_SERVICE_SENDER, TEST_ACCOUNT_SID, TEST_AUTH_TOKEN};
pub use signature::sign;
pub use state::{CallbackRecord, CreateRecord};

use conn::{Conn, KillListener};
use state::{lock, Shared};

/// A running fake Twilio. Dropping it (or [`FakeTwilio::shutdown`]) stops it: the listener
/// closes, open connections are reset, status callbacks stop.
pub struct FakeTwilio {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
}

impl FakeTwilio {
    /// Binds `127.0.0.1:options.port` and serves in a tokio task. Call it inside a tokio
    /// runtime.
    pub async fn start(options: Options) -> anyhow::Result<FakeTwilio> {
        let port = options.port;
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port))
            .await
            .with_context(|| format!("binding 127.0.0.1:{port}"))?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(options)?);
        let listener = KillListener::new(listener, Arc::clone(&shared.conns));
        let app = routes::router(Arc::clone(&shared)).into_make_service_with_connect_info::<Conn>();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let serve = axum::serve(listener, app);
            tokio::select! {
                result = serve => {
                    if let Err(error) = result {
                        tracing::error!(%error, "fake-twilio stopped");
                    }
                }
                _ = stopped => {}
            }
        });
        tracing::debug!(%addr, "fake-twilio listening");
        Ok(FakeTwilio { addr, shared, stop: Some(stop), server: Some(server) })
    }

    /// `http://127.0.0.1:PORT`; the client appends `/2010-04-01/Accounts/{sid}/Messages.json`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The full create/list URL of the configured account.
    pub fn messages_url(&self) -> String {
        format!("{}/{API_VERSION}/Accounts/{}/Messages.json", self.base_url(), self.shared.options.account_sid)
    }

    /// The configured account SID.
    pub fn account_sid(&self) -> &str {
        &self.shared.options.account_sid
    }

    /// The configured auth token (the key of callback signatures).
    pub fn auth_token(&self) -> &str {
        &self.shared.options.auth_token
    }

    /// Appends a fault to the FIFO queue of recipient `to` (compared without a `whatsapp:`
    /// prefix), or to the global queue with `None`, met by a create whose recipient has no
    /// queued fault.
    pub fn push_fault(&self, to: Option<&str>, fault: Fault) {
        self.shared.inner().push_fault(to, fault);
    }

    /// Empties every fault queue.
    pub fn reset_faults(&self) {
        let mut inner = self.shared.inner();
        inner.faults.clear();
        inner.global_faults.clear();
    }

    /// How messages to `to` progress once created (with [`Options::callbacks`]); the
    /// default is [`CallbackOutcome::Delivered`].
    pub fn set_callback_outcome(&self, to: &str, outcome: CallbackOutcome) {
        self.shared.inner().outcomes.insert(strip_channel(to).to_owned(), outcome);
    }

    /// Queues a behaviour file's faults and sets its outcomes.
    pub fn apply_behaviour(&self, behaviour: &Behaviour) {
        let mut inner = self.shared.inner();
        for (to, faults) in &behaviour.faults {
            for fault in faults {
                inner.push_fault(Some(to), fault.clone());
            }
        }
        for fault in &behaviour.global {
            inner.push_fault(None, fault.clone());
        }
        for (to, outcome) in &behaviour.outcomes {
            inner.outcomes.insert(to.clone(), *outcome);
        }
    }

    /// Changes the latency added before every request.
    pub fn set_latency(&self, latency: Duration) {
        *lock(&self.shared.latency) = latency;
    }

    /// Every create request received, in arrival order (answered or not, valid or not).
    pub fn creates(&self) -> Vec<CreateRecord> {
        self.shared.inner().creates.clone()
    }

    /// Every created message, in creation order.
    pub fn messages(&self) -> Vec<Message> {
        let inner = self.shared.inner();
        inner.messages.iter().map(|s| s.message.clone()).collect()
    }

    /// One message by SID.
    pub fn message(&self, sid: &str) -> Option<Message> {
        self.shared.inner().get(sid).map(|s| s.message.clone())
    }

    /// How many messages were created for `to` (compared without a `whatsapp:` prefix).
    pub fn created_count_for(&self, to: &str) -> usize {
        let to = strip_channel(to);
        let inner = self.shared.inner();
        inner.messages.iter().filter(|s| strip_channel(&s.message.to) == to).count()
    }

    /// How many list requests (`GET …/Messages.json`) were received.
    pub fn list_calls(&self) -> usize {
        self.shared.inner().list_calls
    }

    /// Every status callback POSTed, in order.
    pub fn callbacks_sent(&self) -> Vec<CallbackRecord> {
        self.shared.inner().callbacks.clone()
    }

    /// Sets a message's status (no callback is sent); `false` when there is no such SID.
    /// A status past the queue sets `date_sent`, and a sender for a Messaging Service.
    pub fn set_message_status(&self, sid: &str, status: &str) -> bool {
        let sender = self.shared.options.service_sender.clone();
        self.shared.inner().update(sid, |m| m.set_status(status, None, &sender)).is_some()
    }

    /// Changes a stored message at will (its `date_created` too: the list order follows);
    /// `false` when there is no such SID.
    pub fn update_message(&self, sid: &str, change: impl FnOnce(&mut Message)) -> bool {
        self.shared.inner().update(sid, change).is_some()
    }

    /// Stops the server and waits until its listener is closed.
    pub async fn shutdown(mut self) {
        self.stop_now();
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }

    fn stop_now(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        conn::kill_all(&self.shared.conns);
        self.shared.abort_tasks();
    }
}

impl Drop for FakeTwilio {
    fn drop(&mut self) {
        self.stop_now();
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

impl std::fmt::Debug for FakeTwilio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeTwilio").field("addr", &self.addr).finish_non_exhaustive()
    }
}

/// An address without its `whatsapp:` prefix.
pub(crate) fn strip_channel(address: &str) -> &str {
    address.strip_prefix("whatsapp:").unwrap_or(address)
}

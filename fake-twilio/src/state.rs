//! The server's state: messages, fault queues, rate buckets and what tests inspect.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::task::AbortHandle;

use crate::conn::ConnRegistry;
use crate::fault::{CallbackOutcome, Fault};
use crate::message::{parse_rfc2822, Message};
use crate::options::Options;
use crate::rate::TokenBucket;
use crate::strip_channel;

/// One create request as the server received and answered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateRecord {
    /// The form parameters, in order, repeated names kept (empty if the body was not a
    /// form).
    pub params: Vec<(String, String)>,
    /// The Basic auth username (account SID or API key SID), right or wrong.
    pub username: Option<String>,
    /// The HTTP status answered (or about to be, during a stall). `None` while the request
    /// is being handled, and when the connection was reset instead of answering.
    pub status: Option<u16>,
    /// The SID of the message this request created.
    pub sid: Option<String>,
    /// The scripted fault this request met.
    pub fault: Option<Fault>,
    /// When the request arrived.
    pub received_at: DateTime<Utc>,
}

impl CreateRecord {
    /// The last value of a form parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Every value of a (repeated) form parameter, in order.
    pub fn params_named(&self, name: &str) -> Vec<&str> {
        self.params.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect()
    }
}

/// One status callback the server POSTed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackRecord {
    /// The `StatusCallback` URL.
    pub url: String,
    /// The form parameters sent.
    pub params: Vec<(String, String)>,
    /// The `X-Twilio-Signature` sent.
    pub signature: String,
    /// The receiver's HTTP status; `None` when the POST failed.
    pub status: Option<u16>,
}

/// A stored message and what the server needs besides its JSON.
#[derive(Debug, Clone)]
pub(crate) struct Stored {
    pub message: Message,
    pub seq: u64,
    pub created_at: DateTime<Utc>,
    pub status_callback: Option<String>,
}

impl Stored {
    /// Newest first: by creation time, then by arrival.
    pub fn order_key(&self) -> (DateTime<Utc>, u64) {
        (self.created_at, self.seq)
    }
}

/// Everything behind the one lock.
#[derive(Debug, Default)]
pub(crate) struct Inner {
    pub messages: Vec<Stored>,
    pub by_sid: HashMap<String, usize>,
    pub next_seq: u64,
    pub creates: Vec<CreateRecord>,
    pub callbacks: Vec<CallbackRecord>,
    pub faults: HashMap<String, VecDeque<Fault>>,
    pub global_faults: VecDeque<Fault>,
    pub outcomes: HashMap<String, CallbackOutcome>,
    pub buckets: HashMap<String, TokenBucket>,
    pub list_calls: usize,
}

/// State shared by the handle, the handlers and background tasks.
pub(crate) struct Shared {
    pub options: Options,
    pub latency: Mutex<Duration>,
    pub inner: Mutex<Inner>,
    pub http: reqwest::Client,
    pub conns: Arc<ConnRegistry>,
    pub tasks: Mutex<Vec<AbortHandle>>,
}

/// Locks a mutex, shrugging off poisoning (the data stays usable).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    pub fn new(options: Options) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(15))
            .user_agent("TwilioProxy/1.1")
            .build()?;
        Ok(Self {
            latency: Mutex::new(options.latency),
            options,
            inner: Mutex::default(),
            http,
            conns: Arc::default(),
            tasks: Mutex::default(),
        })
    }

    pub fn inner(&self) -> MutexGuard<'_, Inner> {
        lock(&self.inner)
    }

    pub fn latency(&self) -> Duration {
        *lock(&self.latency)
    }

    /// Keeps a background task so that shutdown can stop it.
    pub fn track(&self, handle: AbortHandle) {
        let mut tasks = lock(&self.tasks);
        tasks.retain(|t| !t.is_finished());
        tasks.push(handle);
    }

    pub fn abort_tasks(&self) {
        for task in lock(&self.tasks).drain(..) {
            task.abort();
        }
    }
}

impl Inner {
    /// Records a create on arrival; returns its index.
    pub fn record_create(&mut self, params: Vec<(String, String)>, username: Option<String>) -> usize {
        self.creates.push(CreateRecord {
            params,
            username,
            status: None,
            sid: None,
            fault: None,
            received_at: Utc::now(),
        });
        self.creates.len() - 1
    }

    pub fn record(&mut self, index: usize) -> Option<&mut CreateRecord> {
        self.creates.get_mut(index)
    }

    /// The next fault for this recipient, else the next global one.
    pub fn take_fault(&mut self, to: Option<&str>) -> Option<Fault> {
        let own = to.map(strip_channel).and_then(|to| self.faults.get_mut(to)).and_then(VecDeque::pop_front);
        own.or_else(|| self.global_faults.pop_front())
    }

    pub fn push_fault(&mut self, to: Option<&str>, fault: Fault) {
        match to {
            Some(to) => self.faults.entry(strip_channel(to).to_owned()).or_default().push_back(fault),
            None => self.global_faults.push_back(fault),
        }
    }

    /// Takes one token from the sender's bucket.
    pub fn rate_allows(&mut self, sender: &str, rate: u32) -> bool {
        let now = Instant::now();
        self.buckets.entry(sender.to_owned()).or_insert_with(|| TokenBucket::new(rate, now)).try_take(rate, now)
    }

    pub fn insert(&mut self, message: Message, created_at: DateTime<Utc>, status_callback: Option<String>) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.by_sid.insert(message.sid.clone(), self.messages.len());
        self.messages.push(Stored { message, seq, created_at, status_callback });
    }

    pub fn get(&self, sid: &str) -> Option<&Stored> {
        self.by_sid.get(sid).and_then(|&i| self.messages.get(i))
    }

    /// Applies a change to a message, keeping the creation time in step with
    /// `date_created`.
    pub fn update(&mut self, sid: &str, change: impl FnOnce(&mut Message)) -> Option<&Stored> {
        let index = *self.by_sid.get(sid)?;
        let stored = self.messages.get_mut(index)?;
        change(&mut stored.message);
        if let Some(at) = parse_rfc2822(&stored.message.date_created) {
            if at.timestamp() != stored.created_at.timestamp() {
                stored.created_at = at;
            }
        }
        Some(stored)
    }

    /// Messages matching `keep`, newest first.
    pub fn newest_first(&self, keep: impl Fn(&Message) -> bool) -> Vec<&Stored> {
        let mut found: Vec<&Stored> = self.messages.iter().filter(|s| keep(&s.message)).collect();
        found.sort_by_key(|s| std::cmp::Reverse(s.order_key()));
        found
    }
}

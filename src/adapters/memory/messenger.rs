//! Twilio in memory: creates are answered from a script (accepted by default), and the list
//! the reconcile reads returns what was created, as Twilio would.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use crate::domain::phone::PhoneNumber;
use crate::domain::twilio::{CreateAnswer, Sender, TwilioMessage};
use crate::ports::{Clock, CreateRequest, Messenger, StoreError};

/// How Twilio answers the next create.
#[derive(Debug, Clone)]
pub enum Scripted {
    /// This answer, and nothing created.
    Answer(Box<CreateAnswer>),
    /// The message is created, but its answer is lost on the way back (the connection drops
    /// after Twilio accepted it): the case the reconcile exists for.
    CreatedThenLost,
}

#[derive(Debug, Clone)]
struct Created {
    message: TwilioMessage,
    created_at: i64,
    message_id: String,
}

/// Twilio in memory. `Clone` shares its state.
#[derive(Clone)]
pub struct MemoryMessenger {
    sender: Sender,
    clock: Arc<dyn Clock>,
    script: Arc<Mutex<VecDeque<Scripted>>>,
    created: Arc<Mutex<Vec<Created>>>,
    latency: Duration,
    list_fails: Arc<std::sync::atomic::AtomicBool>,
}

impl MemoryMessenger {
    pub fn new(sender: Sender, clock: Arc<dyn Clock>) -> Self {
        MemoryMessenger {
            sender,
            clock,
            script: Arc::default(),
            created: Arc::default(),
            latency: Duration::ZERO,
            list_fails: Arc::default(),
        }
    }

    /// Every create takes this long.
    pub fn with_latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// The next creates are answered so, in order; then accepted again.
    pub fn script(&self, answers: impl IntoIterator<Item = Scripted>) {
        self.script.lock().expect("script lock").extend(answers);
    }

    /// Makes the reconcile's list call fail (`true`) or work again.
    pub fn fail_lists(&self, fail: bool) {
        self.list_fails.store(fail, std::sync::atomic::Ordering::SeqCst);
    }

    /// The `message_id` of every message Twilio created, in order (a duplicate shows twice).
    pub fn created_ids(&self) -> Vec<String> {
        self.created.lock().expect("created lock").iter().map(|c| c.message_id.clone()).collect()
    }

    /// The messages Twilio created, in order.
    pub fn created(&self) -> Vec<TwilioMessage> {
        self.created.lock().expect("created lock").iter().map(|c| c.message.clone()).collect()
    }

    fn create_now(&self, request: &CreateRequest) -> TwilioMessage {
        let mut created = self.created.lock().expect("created lock");
        let now = self.clock.now();
        let (from, messaging_service_sid) = match &self.sender {
            Sender::From(from) => (Some(from.clone()), None),
            Sender::MessagingService(sid) => (None, Some(sid.clone())),
        };
        let message = TwilioMessage {
            sid: format!("SM{:032x}", created.len() + 1),
            status: "queued".into(),
            to: Some(request.to.whatsapp()),
            from,
            messaging_service_sid,
            body: request.body.clone(),
            direction: Some("outbound-api".into()),
            date_created: chrono::DateTime::from_timestamp(now, 0).map(|t| t.to_rfc2822()),
            error_code: None,
        };
        created.push(Created { message: message.clone(), created_at: now, message_id: request.message_id.to_string() });
        message
    }
}

#[async_trait]
impl Messenger for MemoryMessenger {
    fn sender(&self) -> &Sender {
        &self.sender
    }

    async fn create(&self, request: &CreateRequest, timeout: Duration) -> CreateAnswer {
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency.min(timeout)).await;
        }
        let next = self.script.lock().expect("script lock").pop_front();
        match next {
            Some(Scripted::Answer(answer)) => *answer,
            Some(Scripted::CreatedThenLost) => {
                self.create_now(request);
                CreateAnswer::Transport { connection_opened: true, detail: "connection reset".into() }
            }
            None => CreateAnswer::Accepted(self.create_now(request)),
        }
    }

    async fn list_since(
        &self,
        to: &PhoneNumber,
        from: Option<&str>,
        since: i64,
    ) -> Result<Vec<TwilioMessage>, StoreError> {
        if self.list_fails.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError::new("Twilio list", "http 503"));
        }
        let created = self.created.lock().expect("created lock");
        let mut listed: Vec<(i64, TwilioMessage)> = created
            .iter()
            .filter(|c| c.message.to.as_deref() == Some(to.whatsapp().as_str()))
            .filter(|c| from.is_none_or(|from| c.message.from.as_deref() == Some(from)))
            .filter(|c| c.created_at >= since)
            .map(|c| (c.created_at, c.message.clone()))
            .collect();
        listed.sort_by_key(|(created_at, _)| std::cmp::Reverse(*created_at));
        Ok(listed.into_iter().map(|(_, message)| message).collect())
    }
}

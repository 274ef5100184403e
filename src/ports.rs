//! The traits the handlers depend on: the MessageLog and Consent stores, the send queue,
//! Twilio (the `Messenger`) and the clock. Adapters implement them over DynamoDB, SQS and
//! HTTP; handlers never name AWS or reqwest.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::config::Sender;
use crate::domain::consent::{ConsentChange, CurrentConsent};
use crate::domain::message::{MessageId, Template};
use crate::domain::phone::PhoneNumber;
use crate::domain::status::Status;

/// A store or queue call that failed (network, throttling, emulator down). The record that
/// needed it goes back to SQS.
#[derive(Debug, thiserror::Error)]
#[error("{operation}: {detail}")]
pub struct StoreError {
    pub operation: &'static str,
    pub detail: String,
}

impl StoreError {
    pub fn new(operation: &'static str, detail: impl std::fmt::Display) -> Self {
        StoreError { operation, detail: detail.to_string() }
    }
}

impl Serialize for Status {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Status {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        raw.parse().map_err(serde::de::Error::custom)
    }
}

/// A MessageLog item as read back (attribute names as in DESIGN.md).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LogItem {
    pub message_id: String,
    pub status: Option<Status>,
    pub phone: Option<String>,
    pub campaign: Option<String>,
    pub recipient_id: Option<String>,
    pub request: Option<String>,
    #[serde(default)]
    pub attempts: u32,
    pub max_attempts: Option<u32>,
    #[serde(default)]
    pub throttled: u32,
    pub last_error: Option<String>,
    pub last_error_code: Option<u32>,
    pub twilio_sid: Option<String>,
    pub twilio_status: Option<String>,
    pub twilio_rank: Option<u8>,
    pub extra_sids: Option<Vec<String>>,
    pub created_at: Option<i64>,
    pub updated_at: Option<i64>,
    pub sent_at: Option<i64>,
    pub delivered_at: Option<i64>,
    pub read_at: Option<i64>,
    pub next_attempt_at: Option<i64>,
    pub attempt_started_at: Option<i64>,
    pub lease_owner: Option<String>,
    pub lease_until: Option<i64>,
    pub retry_shard: Option<u32>,
    pub retry_due_at: Option<i64>,
    pub expires_at: Option<i64>,
}

/// The fields an item gets when it is first written, whatever the first write is.
#[derive(Debug, Clone)]
pub struct ItemIdentity {
    pub message_id: MessageId,
    pub phone: Option<PhoneNumber>,
    pub campaign: Option<String>,
    pub recipient_id: Option<String>,
    /// The queue body verbatim, when at most 64 KiB.
    pub request: Option<String>,
    pub max_attempts: u32,
}

/// A final status written without any send (steps 1–2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EarlyFinal {
    /// Written only when no item exists.
    Rejected,
    /// Written when no item exists or the item is `retrying`.
    Skipped,
    Expired,
}

impl EarlyFinal {
    pub fn status(self) -> Status {
        match self {
            EarlyFinal::Rejected => Status::Rejected,
            EarlyFinal::Skipped => Status::Skipped,
            EarlyFinal::Expired => Status::Expired,
        }
    }
}

/// The result of a conditional write.
#[derive(Debug, Clone, PartialEq)]
pub enum Conditional {
    /// Applied; the item as it is now.
    Applied(LogItem),
    /// The condition failed; the item as it was (`None`: there is no item).
    Refused(Option<LogItem>),
}

/// A take of an item: who holds the lease, from when.
#[derive(Debug, Clone)]
pub struct Take {
    pub owner: String,
    pub now: i64,
    pub lease_until: i64,
    /// "Due" means at most this (`now + CLOCK_SKEW_SECONDS`).
    pub due: i64,
}

/// What an attempt ended in, to be written under the lease (step 5).
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Twilio has the message.
    Accepted { sid: String, twilio_status: String },
    /// Try again at `next_attempt_at`; `give_back` says whether the claim's attempt is
    /// returned.
    Retrying {
        last_error: String,
        last_error_code: Option<u32>,
        next_attempt_at: i64,
        retry_due_at: i64,
        give_back: GiveBack,
    },
    /// The attempt's outcome is unknown; reconcile at `next_attempt_at`.
    InDoubt { last_error: String, next_attempt_at: i64, retry_due_at: i64 },
    /// Final without success.
    Final { status: Status, last_error: String, last_error_code: Option<u32> },
    /// Twilio not configured: checked and logged, nothing sent.
    DryRun,
}

/// Whether a `retrying` outcome returns the attempt its claim counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GiveBack {
    /// The create was made and failed: the attempt counts.
    No,
    /// Twilio answered throttled or account-level: the request was never processed. The
    /// attempt is returned and `throttled` counts the answer (DESIGN.md, MessageLog).
    Answered,
    /// No create was started (the batch stopped after an account-level error, or too little of
    /// the invocation's time was left): the attempt is returned, and nothing else counted.
    NotStarted,
}

impl Outcome {
    /// The status this outcome writes.
    pub fn status(&self) -> Status {
        match self {
            Outcome::Accepted { twilio_status, .. } => {
                crate::domain::status::status_for_twilio(twilio_status).unwrap_or(Status::Sent)
            }
            Outcome::Retrying { .. } => Status::Retrying,
            Outcome::InDoubt { .. } => Status::InDoubt,
            Outcome::Final { status, .. } => *status,
            Outcome::DryRun => Status::DryRun,
        }
    }
}

/// The MessageLog table.
#[async_trait]
pub trait MessageLog: Send + Sync {
    async fn get(&self, message_id: &str) -> Result<Option<LogItem>, StoreError>;

    /// Steps 1–2: `rejected` (only if no item), `skipped` / `expired` (no item, or `retrying`).
    async fn record_early_final(
        &self,
        identity: &ItemIdentity,
        kind: EarlyFinal,
        reason: &str,
        now: i64,
        retention_days: i64,
    ) -> Result<Conditional, StoreError>;

    /// Step 3: the create claim (new item, or `retrying` and due); counts one attempt.
    async fn claim(&self, identity: &ItemIdentity, take: &Take, retention_days: i64)
        -> Result<Conditional, StoreError>;

    /// Step 3b: the reconcile claim (`in_doubt` and due, or `sending` with an expired lease).
    async fn reconcile_claim(&self, message_id: &MessageId, take: &Take) -> Result<Conditional, StoreError>;

    /// After a reconcile found nothing: counts the new attempt (`attempts = seen + 1`).
    async fn record_new_attempt(
        &self,
        message_id: &MessageId,
        take: &Take,
        seen_attempts: u32,
    ) -> Result<Conditional, StoreError>;

    /// Step 5: the outcome, under the lease.
    async fn record_outcome(
        &self,
        message_id: &MessageId,
        owner: &str,
        outcome: &Outcome,
        now: i64,
    ) -> Result<Conditional, StoreError>;

    /// After a lost lease: records an accepted SID on an item that has none, or adds it to
    /// `extra_sids` when the item holds another. `true` when it went to `extra_sids`: Twilio
    /// accepted two creates for one `message_id`.
    async fn record_orphan_sid(&self, message_id: &MessageId, sid: &str, now: i64) -> Result<bool, StoreError>;

    /// Twilio SIDs already held by the phone's items (through `by-recipient`), with their
    /// `message_id`.
    async fn sids_for_phone(&self, phone: &PhoneNumber) -> Result<Vec<(String, String)>, StoreError>;
}

/// The Consent table.
#[async_trait]
pub trait ConsentStore: Send + Sync {
    /// Strongly consistent read of the phone's current consent.
    async fn current(&self, phone: &PhoneNumber) -> Result<Option<CurrentConsent>, StoreError>;

    /// Applies a change if the precedence rules allow it; returns whether it was applied.
    async fn change(
        &self,
        phone: &PhoneNumber,
        change: ConsentChange,
        evidence: &str,
        now: i64,
    ) -> Result<bool, StoreError>;
}

/// The send queue.
#[async_trait]
pub trait SendQueue: Send + Sync {
    async fn send(&self, body: &str, delay_seconds: u32) -> Result<(), StoreError>;

    /// Sends up to 10 bodies in one call; returns the indexes of the entries that failed.
    async fn send_batch(&self, bodies: &[&str]) -> Vec<usize>;
}

/// Where a page of the `retry-due` index ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueCursor {
    pub message_id: String,
    pub retry_due_at: i64,
}

/// What the sweep does to an item it read as due; the write repeats the values read, so it
/// applies only if nothing took the item meanwhile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SweepAction {
    /// `retrying` or `in_doubt`: push `retry_due_at` forward, then enqueue.
    Reschedule,
    /// `sending` with an expired lease: its taker died; make it `in_doubt`, then enqueue.
    MarkInDoubt,
    /// `sending` with a live lease: due again when the lease ends; nothing enqueued.
    FollowLease,
}

/// The sweep's view of MessageLog: the sparse `retry-due` index.
#[async_trait]
pub trait RetryIndex: Send + Sync {
    /// One page of shard `shard`'s items with `retry_due_at <= now`.
    async fn due_page(
        &self,
        shard: u32,
        now: i64,
        after: Option<DueCursor>,
    ) -> Result<(Vec<LogItem>, Option<DueCursor>), StoreError>;

    /// The conditional write of `action` on `item` as read; `false` when another sweep or a
    /// `send` took it meanwhile.
    async fn sweep_take(
        &self,
        item: &LogItem,
        action: SweepAction,
        now: i64,
        reschedule_at: i64,
    ) -> Result<bool, StoreError>;
}

/// A create request, as Missive means it (the adapter turns it into Twilio's form fields).
#[derive(Debug, Clone)]
pub struct CreateRequest {
    pub message_id: MessageId,
    pub to: PhoneNumber,
    pub sender: Sender,
    pub body: Option<String>,
    pub template: Option<Template>,
    pub media_url: Option<String>,
    pub status_callback: Option<String>,
    pub validity_period: Option<u32>,
}

/// A message as Twilio describes it (the fields Missive reads).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TwilioMessage {
    pub sid: String,
    pub status: String,
    #[serde(default)]
    pub to: Option<String>,
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub messaging_service_sid: Option<String>,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub direction: Option<String>,
    /// RFC 2822, as Twilio writes it.
    #[serde(default)]
    pub date_created: Option<String>,
    #[serde(default)]
    pub error_code: Option<i64>,
}

impl TwilioMessage {
    /// `date_created` as Unix seconds.
    pub fn created_at(&self) -> Option<i64> {
        chrono::DateTime::parse_from_rfc2822(self.date_created.as_deref()?).ok().map(|t| t.timestamp())
    }
}

/// Twilio's answer to a create, before classification.
#[derive(Debug, Clone)]
pub enum CreateAnswer {
    /// A 2xx with a Message.
    Accepted(TwilioMessage),
    /// Any other HTTP answer, with Twilio's error where it sent one.
    Error { http_status: u16, code: Option<u32>, message: String, retry_after: Option<u64> },
    /// No answer: `connection_opened` says whether the request may have left.
    Transport { connection_opened: bool, detail: String },
}

/// Twilio's Messages API.
#[async_trait]
pub trait Messenger: Send + Sync {
    /// The sender messages go from.
    fn sender(&self) -> &Sender;

    async fn create(&self, request: &CreateRequest, timeout: std::time::Duration) -> CreateAnswer;

    /// Outbound messages to `to` (from `from` when given), newest first, created at or after
    /// `since` (Unix seconds); pages until older.
    async fn list_since(
        &self,
        to: &PhoneNumber,
        from: Option<&str>,
        since: i64,
    ) -> Result<Vec<TwilioMessage>, StoreError>;

    /// Reads the credentials again after an account-level error (at most once a minute).
    async fn refresh_credentials(&self) {}
}

/// Time, in Unix seconds.
pub trait Clock: Send + Sync {
    fn now(&self) -> i64;
}

/// The machine's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        chrono::Utc::now().timestamp()
    }
}

/// A status callback from Twilio, as the webhook applies it to a MessageLog item.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusReport {
    /// `MessageSid`.
    pub sid: String,
    /// `MessageStatus` (`queued`, `sent`, `delivered`, `read`, `failed`, `undelivered`, …).
    pub twilio_status: String,
    /// Its rank in Twilio's lifecycle (`domain::status::twilio_rank`).
    pub rank: u8,
    /// Our status for it (`domain::status::status_for_twilio`).
    pub status: crate::domain::status::Status,
    /// For `failed` / `undelivered`: `ErrorCode`, and the readable `last_error`.
    pub error_code: Option<u32>,
    pub last_error: Option<String>,
    pub now: i64,
}

/// The result of applying a status callback.
#[derive(Debug, Clone, PartialEq)]
pub enum CallbackWrite {
    /// Applied; the item as it was before the write.
    Applied(LogItem),
    /// The condition failed; the item as it was (`None`: there is no item).
    Refused(Option<LogItem>),
}

/// The webhook's view of MessageLog (DESIGN.md, "Webhook", "Status callback").
#[async_trait]
pub trait StatusCallbackLog: Send + Sync {
    /// The one conditional `UpdateItem`: the item exists, holds no SID or this one, its
    /// `twilio_rank` is below the report's, and it is neither `rejected` nor `dry_run`.
    async fn apply_status(&self, message_id: &str, report: &StatusReport) -> Result<CallbackWrite, StoreError>;

    /// Adds `sid` to the item's `extra_sids` (a duplicate create); `false` when there is no item.
    async fn add_extra_sid(&self, message_id: &str, sid: &str, now: i64) -> Result<bool, StoreError>;
}

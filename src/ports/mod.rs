//! The traits the handlers depend on: the MessageLog and Consent stores, the send queue, the
//! retry index, Twilio (the `Messenger`) and the clock. Adapters implement them over DynamoDB,
//! SQS and HTTP (`adapters::*`) and in memory (`adapters::memory`); handlers never name AWS or
//! reqwest.
//!
//! The data the ports carry is the domain's (`domain::item`, `domain::outcome`, …), re-exported
//! here for the adapters' convenience.

mod campaigns;
mod clock;
mod consent;
mod inbox;
mod message_log;
mod queue;
mod retry_index;
mod status_callback;
mod twilio;

pub use campaigns::{CampaignStore, RecipientBudget};
pub use clock::{Clock, SystemClock};
pub use consent::ConsentStore;
pub use inbox::{Inbox, Notifier};
pub use message_log::MessageLog;
pub use queue::SendQueue;
pub use retry_index::{DueCursor, RetryIndex};
pub use status_callback::{CallbackWrite, StatusCallbackLog, StatusReport};
pub use twilio::{CreateRequest, Messenger};

pub use crate::domain::claim::Take;
pub use crate::domain::item::{ItemIdentity, LogItem};
pub use crate::domain::outcome::{EarlyFinal, GiveBack, Outcome};
pub use crate::domain::sweep::SweepAction;
pub use crate::domain::twilio::{CreateAnswer, TwilioMessage};

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

/// The result of a conditional write.
#[derive(Debug, Clone, PartialEq)]
pub enum Conditional {
    /// Applied; the item as it is now.
    Applied(LogItem),
    /// The condition failed; the item as it was (`None`: there is no item).
    Refused(Option<LogItem>),
}

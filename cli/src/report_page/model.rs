//! The staff report's view model: everything the page shows about one campaign, as plain
//! data, in no language. The loader ([`super::load`]) fills it from the tables; the renderer
//! ([`super::render`]) and the paper list ([`super::paper_list`]) only read it. A section
//! whose data source does not exist yet is `None` or empty, and the page says so in words.
//!
//! Phones are kept whole here (E.164): masking is the renderer's job, so that one model serves
//! the masked page and the `--show-phones` one.

use std::collections::BTreeMap;

use serde::Serialize;

use super::reasons::Reason;

/// One campaign, as the staff report shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StaffReport {
    /// The campaign's name (the queue messages' `campaign`).
    pub campaign: String,
    /// When the report was read (Unix seconds).
    pub generated_at: i64,
    /// The Campaigns table's item (issue 12): `None` while that table does not exist.
    pub facts: Option<CampaignFacts>,
    /// What MessageLog itself says about when the campaign went out.
    pub recorded: RecordedFacts,
    /// When, and by whom, the campaign was sent, cancelled, requeued: the Campaigns item's
    /// `history`, oldest first; without it, what MessageLog shows (the first message).
    pub history: Vec<HistoryEntry>,
    pub funnel: Funnel,
    /// Items per status name (every name a MessageLog item may carry, known or not).
    pub by_status: BTreeMap<String, u64>,
    /// Families whose message will not arrive, with why.
    pub unreached: Vec<UnreachedFamily>,
    /// The quick-reply answers (`ack`), most frequent first.
    pub acks: Vec<AckCount>,
    /// The parents' replies (the Inbox table, issue 13), oldest first; empty until it exists.
    pub replies: Vec<Reply>,
    /// Messages per language (`missive bulk --template fr=…,en=…`); empty while no item
    /// records its language.
    pub by_language: Vec<LanguageCount>,
}

/// The campaign's own item (DESIGN.md, "Campaigns").
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CampaignFacts {
    pub description: Option<String>,
    pub created_at: Option<i64>,
    pub created_by: Option<String>,
    /// Messages the CLI enqueued for it: the funnel's first step.
    pub enqueued: Option<u64>,
    /// Set while the campaign is cancelled.
    pub cancelled: Option<Cancellation>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Cancellation {
    pub at: Option<i64>,
    pub by: Option<String>,
    pub reason: Option<String>,
}

/// What the campaign's MessageLog items tell, whatever other table exists.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RecordedFacts {
    /// Items of the campaign in MessageLog.
    pub items: u64,
    /// The earliest `created_at`: when the first message was taken.
    pub first_at: Option<i64>,
    /// The latest `updated_at`: the last news of any message.
    pub last_at: Option<i64>,
    /// The distinct `requested_by` of its items (who asked), sorted.
    pub requested_by: Vec<String>,
}

/// One operator action on the campaign (the Campaigns item's `history`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistoryEntry {
    /// `created`, `cancelled`, `uncancelled`, `requeued`, or a name this page does not know
    /// (shown as it is).
    pub action: String,
    pub at: Option<i64>,
    pub by: Option<String>,
    pub detail: Option<String>,
}

/// The funnel: each step counts the messages that got at least that far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Funnel {
    /// Messages enqueued (the Campaigns item); `None` until that table exists, and then the
    /// funnel starts from the items recorded.
    pub enqueued: Option<u64>,
    /// Items in MessageLog.
    pub recorded: u64,
    /// Accepted by Twilio: `sent`, `delivered`, `read`, `undelivered`.
    pub sent: u64,
    /// `delivered` or `read`.
    pub delivered: u64,
    pub read: u64,
    /// Items with an `ack`; `None` when no acknowledgement exists (the step is not drawn).
    pub acknowledged: Option<u64>,
}

impl Funnel {
    /// The first step: what was meant to go out.
    pub fn base(&self) -> u64 {
        self.enqueued.unwrap_or(self.recorded)
    }
}

/// A family the message will not reach.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnreachedFamily {
    pub message_id: String,
    /// The parent's id in the school's system.
    pub recipient_id: Option<String>,
    /// E.164, whole (masked when rendered, unless asked otherwise); absent when the queue
    /// message's number was invalid.
    pub phone: Option<String>,
    pub status: String,
    pub reason: Reason,
    /// Twilio's error code, for the administrator.
    pub code: Option<u32>,
    /// The recorded error text, for the administrator (may quote the phone).
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AckCount {
    /// The word after `ack:` in the button's payload.
    pub answer: String,
    pub count: u64,
}

/// A parent's message to the school (an Inbox item).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reply {
    pub received_at: i64,
    pub recipient_id: Option<String>,
    pub phone: Option<String>,
    /// The parent's WhatsApp profile name.
    pub profile_name: Option<String>,
    pub body: Option<String>,
    /// The quick-reply button's text, when the reply is a button.
    pub button_text: Option<String>,
    pub media_count: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LanguageCount {
    /// A language code (`fr`, `en`, `ar`…).
    pub lang: String,
    pub count: u64,
}

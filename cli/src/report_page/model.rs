//! The staff report's view model: everything the page shows about one campaign, as plain
//! data, in no language. The loader ([`super::load`]) fills it from the tables; the renderer
//! ([`super::render`]) and the paper list ([`super::paper_list`]) only read it. A section
//! whose data source does not exist yet is `None` or empty, and the page says so in words.
//!
//! Phones are kept whole here (E.164): masking is the renderer's job, so that one model serves
//! the masked page and the `--show-phones` one. They, and error texts that may quote them, are
//! masked in `Debug`.

use std::collections::BTreeMap;
use std::fmt;

use missive::domain::phone::{mask_phone, mask_phones_in};
use serde::Deserialize;

use super::reasons::Reason;

/// A parent's phone number, whole (E.164, as MessageLog stores it); `Debug` masks it.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(transparent)]
pub struct Phone(String);

impl Phone {
    pub fn new(number: impl Into<String>) -> Self {
        Phone(number.into())
    }

    pub fn whole(&self) -> &str {
        &self.0
    }

    /// `+33*******78`.
    pub fn masked(&self) -> String {
        mask_phone(&self.0)
    }

    /// Whole when `whole`, else masked.
    pub fn shown(&self, whole: bool) -> String {
        if whole {
            self.0.clone()
        } else {
            self.masked()
        }
    }
}

impl fmt::Debug for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Phone({})", self.masked())
    }
}

/// A recorded error text, which may quote the phone (`The 'To' number +336… is not valid`);
/// `Debug` masks every phone in it.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct ErrorText(String);

impl ErrorText {
    pub fn new(text: impl Into<String>) -> Self {
        ErrorText(text.into())
    }

    pub fn whole(&self) -> &str {
        &self.0
    }

    /// Whole when `whole`, else with every phone masked.
    pub fn shown(&self, whole: bool) -> String {
        if whole {
            self.0.clone()
        } else {
            mask_phones_in(&self.0)
        }
    }
}

impl fmt::Debug for ErrorText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", mask_phones_in(&self.0))
    }
}

/// One campaign, as the staff report shows it.
#[derive(Debug, Clone, Default, PartialEq)]
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
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CampaignFacts {
    pub description: Option<String>,
    pub created_at: Option<i64>,
    pub created_by: Option<String>,
    /// Messages the CLI enqueued for it: the funnel's first step.
    pub enqueued: Option<u64>,
    /// Set while the campaign is cancelled.
    pub cancelled: Option<Cancellation>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cancellation {
    pub at: Option<i64>,
    pub by: Option<String>,
    pub reason: Option<String>,
}

/// What the campaign's MessageLog items tell, whatever other table exists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// `created`, `enqueued`, `cancelled`, `resumed`, `requeued` (`CampaignAction`), or a name this page does not know
    /// (shown as it is).
    pub action: String,
    pub at: Option<i64>,
    pub by: Option<String>,
    pub detail: Option<String>,
}

/// The funnel: each step counts the messages that got at least that far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnreachedFamily {
    pub message_id: String,
    /// The parent's id in the school's system.
    pub recipient_id: Option<String>,
    /// E.164, whole (masked when rendered, unless asked otherwise); absent when the queue
    /// message's number was invalid.
    pub phone: Option<Phone>,
    pub status: String,
    pub reason: Reason,
    /// Twilio's error code, for the administrator.
    pub code: Option<u32>,
    /// The recorded error text, for the administrator (may quote the phone).
    pub error: Option<ErrorText>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckCount {
    /// The word after `ack:` in the button's payload.
    pub answer: String,
    pub count: u64,
}

/// A parent's message to the school (an Inbox item).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub received_at: i64,
    pub recipient_id: Option<String>,
    pub phone: Option<Phone>,
    /// The parent's WhatsApp profile name.
    pub profile_name: Option<String>,
    pub body: Option<String>,
    /// The quick-reply button's text, when the reply is a button.
    pub button_text: Option<String>,
    pub media_count: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LanguageCount {
    /// A language code (`fr`, `en`, `ar`…).
    pub lang: String,
    pub count: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report_page::fixtures::full_report;

    #[test]
    fn debug_output_never_shows_a_whole_phone() {
        let report = full_report();
        let debug = format!("{report:?}");
        assert!(!debug.contains("+3361234560") && !debug.contains("+3361234561"), "{debug}");
        assert!(debug.contains("Phone(+33*******03)"), "{debug}");
        assert!(debug.contains("The 'To' number +33*******08 is not valid"), "{debug}");
        assert_eq!(report.unreached[0].phone.as_ref().map(Phone::whole), Some("+33612345603"), "kept whole");
    }
}

//! A campaign (DESIGN.md, "Campaigns"): what a school sends to many parents at once, whether
//! it is cancelled, and the history of what operators did to it.

use serde::{Deserialize, Serialize};

/// The most events a campaign's `history` keeps (the oldest dropped).
pub const HISTORY_LIMIT: usize = 50;

/// A campaign's `state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CampaignState {
    Active,
    Cancelled,
}

/// What an operator did to a campaign (`history[].action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CampaignAction {
    /// The first `missive bulk` or `send` of it.
    Created,
    /// A later `bulk` or `send` added messages.
    Enqueued,
    Cancelled,
    /// `missive cancel --undo`.
    Resumed,
    /// `missive requeue`.
    Requeued,
}

impl CampaignAction {
    pub fn as_str(self) -> &'static str {
        match self {
            CampaignAction::Created => "created",
            CampaignAction::Enqueued => "enqueued",
            CampaignAction::Cancelled => "cancelled",
            CampaignAction::Resumed => "resumed",
            CampaignAction::Requeued => "requeued",
        }
    }
}

/// One event of a campaign's `history`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignEvent {
    pub action: CampaignAction,
    pub at: i64,
    pub by: String,
    #[serde(default)]
    pub detail: String,
}

/// A Campaigns item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignItem {
    pub campaign: String,
    pub state: CampaignState,
    pub created_at: i64,
    pub created_by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Messages the CLI enqueued for it: the funnel's first step.
    #[serde(default)]
    pub enqueued: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancelled_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancelled_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_reason: Option<String>,
    #[serde(default)]
    pub history: Vec<CampaignEvent>,
}

impl CampaignItem {
    pub fn is_cancelled(&self) -> bool {
        self.state == CampaignState::Cancelled
    }

    /// The `last_error` of a message this campaign's cancel stopped.
    pub fn cancel_note(&self) -> String {
        let by = self.cancelled_by.as_deref().unwrap_or("an operator");
        match self.cancel_reason.as_deref() {
            Some(reason) => format!("campaign {} cancelled by {by}: {reason}", self.campaign),
            None => format!("campaign {} cancelled by {by}", self.campaign),
        }
    }
}

/// Appends `event` to `history`, keeping the last [`HISTORY_LIMIT`].
pub fn push_event(history: &mut Vec<CampaignEvent>, event: CampaignEvent) {
    history.push(event);
    let overflow = history.len().saturating_sub(HISTORY_LIMIT);
    history.drain(..overflow);
}

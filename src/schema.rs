//! The shape of the DynamoDB tables (MessageLog, Consent, Campaigns, Inbox), in one place.
//!
//! The SAM template, the test set-up and the local pipeline all create the same tables; the
//! template test compares `infra/template.yaml` with these definitions, so a key or an index
//! can only change here and there together.

/// The type of a key attribute, as DynamoDB names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// `S`
    String,
    /// `N`
    Number,
}

impl KeyType {
    /// DynamoDB's one-letter name of the type.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::String => "S",
            KeyType::Number => "N",
        }
    }
}

/// Which attributes an index carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Projection {
    /// Every attribute.
    All,
    /// The keys and these attributes.
    Include(&'static [&'static str]),
}

/// A global secondary index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexDef {
    pub name: &'static str,
    pub partition: (&'static str, KeyType),
    pub sort: (&'static str, KeyType),
    pub projection: Projection,
}

/// A table: its keys, its indexes and its TTL attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableDef {
    /// The logical name used in the SAM template (`MessageLogTable`, `ConsentTable`, …).
    pub logical_id: &'static str,
    pub partition: (&'static str, KeyType),
    /// The sort key, for a table that has one (Inbox).
    pub sort: Option<(&'static str, KeyType)>,
    pub indexes: &'static [IndexDef],
    pub ttl_attribute: Option<&'static str>,
}

/// Index name: items in flight, by shard and due time (the sweep).
pub const RETRY_DUE_INDEX: &str = "retry-due";
/// Index name: a campaign's items (report, failures).
pub const BY_CAMPAIGN_INDEX: &str = "by-campaign";
/// Index name: a phone's items (forget, reconcile, history).
pub const BY_RECIPIENT_INDEX: &str = "by-recipient";

pub use crate::domain::item::RETRY_SHARDS;

pub const MESSAGE_LOG: TableDef = TableDef {
    logical_id: "MessageLogTable",
    partition: ("message_id", KeyType::String),
    sort: None,
    indexes: &[
        IndexDef {
            name: RETRY_DUE_INDEX,
            partition: ("retry_shard", KeyType::Number),
            sort: ("retry_due_at", KeyType::Number),
            projection: Projection::All,
        },
        IndexDef {
            name: BY_CAMPAIGN_INDEX,
            partition: ("campaign", KeyType::String),
            sort: ("message_id", KeyType::String),
            projection: Projection::Include(&[
                "status",
                "twilio_status",
                "attempts",
                "last_error",
                "last_error_code",
                "updated_at",
            ]),
        },
        IndexDef {
            name: BY_RECIPIENT_INDEX,
            partition: ("phone", KeyType::String),
            sort: ("created_at", KeyType::Number),
            projection: Projection::Include(&["twilio_sid", "status"]),
        },
    ],
    ttl_attribute: Some("expires_at"),
};

pub const CONSENT: TableDef = TableDef {
    logical_id: "ConsentTable",
    partition: ("phone", KeyType::String),
    sort: None,
    indexes: &[],
    ttl_attribute: None,
};

/// The campaigns, and the daily budget's hourly items (`#budget:…`, which expire).
pub const CAMPAIGNS: TableDef = TableDef {
    logical_id: "CampaignTable",
    partition: ("campaign", KeyType::String),
    sort: None,
    indexes: &[],
    ttl_attribute: Some("expires_at"),
};

/// Index name of the Inbox: a campaign's replies.
pub const INBOX_BY_CAMPAIGN_INDEX: &str = "by-campaign";

/// The parents' replies.
pub const INBOX: TableDef = TableDef {
    logical_id: "InboxTable",
    partition: ("phone", KeyType::String),
    sort: Some(("received_at_sid", KeyType::String)),
    indexes: &[IndexDef {
        name: INBOX_BY_CAMPAIGN_INDEX,
        partition: ("campaign", KeyType::String),
        sort: ("received_at_sid", KeyType::String),
        projection: Projection::All,
    }],
    ttl_attribute: Some("expires_at"),
};

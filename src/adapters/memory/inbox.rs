//! The Inbox table in memory: the same put-once, the same orders, the same erasure as
//! DynamoDB's.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::faults::Faults;
use crate::domain::inbox::InboxItem;
use crate::ports::{Inbox, StoreError};

/// The Inbox table in memory, keyed as DynamoDB keys it (`phone`, `received_at_sid`).
/// `Clone` shares the table.
#[derive(Debug, Clone, Default)]
pub struct MemoryInbox {
    items: Arc<Mutex<BTreeMap<(String, String), InboxItem>>>,
    pub faults: Arc<Faults>,
}

impl MemoryInbox {
    pub fn new() -> Self {
        MemoryInbox::default()
    }

    /// Every item, in key order (a test's read).
    pub fn all(&self) -> Vec<InboxItem> {
        self.items.lock().expect("inbox lock").values().cloned().collect()
    }
}

#[async_trait]
impl Inbox for MemoryInbox {
    async fn put_once(&self, item: &InboxItem) -> Result<bool, StoreError> {
        self.faults.before("put_once", &item.phone).await?;
        let mut items = self.items.lock().expect("inbox lock");
        let key = (item.phone.clone(), item.received_at_sid.clone());
        if items.contains_key(&key) {
            return Ok(false);
        }
        items.insert(key, item.clone());
        Ok(true)
    }

    async fn for_phone(&self, phone: &str) -> Result<Vec<InboxItem>, StoreError> {
        self.faults.before("for_phone", phone).await?;
        let items = self.items.lock().expect("inbox lock");
        Ok(items.values().filter(|item| item.phone == phone).cloned().collect())
    }

    async fn for_campaign(&self, campaign: &str) -> Result<Vec<InboxItem>, StoreError> {
        self.faults.before("for_campaign", campaign).await?;
        let items = self.items.lock().expect("inbox lock");
        let mut found: Vec<InboxItem> =
            items.values().filter(|item| item.campaign.as_deref() == Some(campaign)).cloned().collect();
        // The index's order: its sort key, whatever the phone.
        found.sort_by(|a, b| a.received_at_sid.cmp(&b.received_at_sid));
        Ok(found)
    }

    async fn forget_phone(&self, phone: &str) -> Result<usize, StoreError> {
        self.faults.before("forget_phone", phone).await?;
        let mut items = self.items.lock().expect("inbox lock");
        let before = items.len();
        items.retain(|(item_phone, _), _| item_phone != phone);
        Ok(before - items.len())
    }
}

//! The Consent table in memory: the same read and conditional replace as DynamoDB's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::faults::Faults;
use crate::domain::consent::ConsentItem;
use crate::domain::phone::PhoneNumber;
use crate::ports::{ConsentStore, StoreError};

/// The Consent table in memory. `Clone` shares the table.
#[derive(Debug, Clone, Default)]
pub struct MemoryConsent {
    items: Arc<Mutex<HashMap<String, ConsentItem>>>,
    pub faults: Arc<Faults>,
}

impl MemoryConsent {
    pub fn new() -> Self {
        MemoryConsent::default()
    }

    /// Puts an item as it is (a test's set-up).
    pub fn insert(&self, item: ConsentItem) {
        self.items.lock().expect("consent lock").insert(item.phone.clone(), item);
    }
}

#[async_trait]
impl ConsentStore for MemoryConsent {
    async fn item(&self, phone: &PhoneNumber) -> Result<Option<ConsentItem>, StoreError> {
        self.faults.before("item", phone.as_str()).await?;
        Ok(self.items.lock().expect("consent lock").get(phone.as_str()).cloned())
    }

    async fn replace(&self, new: &ConsentItem, read: Option<&ConsentItem>) -> Result<bool, StoreError> {
        self.faults.before("replace", &new.phone).await?;
        let mut items = self.items.lock().expect("consent lock");
        let current = items.get(&new.phone);
        // DynamoDB's condition compares the attributes read (state, updated_at, source,
        // evidence, last_inbound_at), not the history: the same here.
        let unchanged = match (current, read) {
            (None, None) => true,
            (Some(current), Some(read)) => {
                current.state == read.state
                    && current.updated_at == read.updated_at
                    && current.source == read.source
                    && current.evidence == read.evidence
                    && current.last_inbound_at == read.last_inbound_at
            }
            _ => false,
        };
        if unchanged {
            items.insert(new.phone.clone(), new.clone());
        }
        Ok(unchanged)
    }

    async fn record_inbound(&self, phone: &PhoneNumber, at: i64) -> Result<bool, StoreError> {
        self.faults.before("record_inbound", phone.as_str()).await?;
        let mut items = self.items.lock().expect("consent lock");
        let item = items.entry(phone.as_str().to_owned()).or_insert_with(|| ConsentItem {
            phone: phone.as_str().to_owned(),
            state: None,
            updated_at: None,
            source: None,
            evidence: None,
            history: Vec::new(),
            last_inbound_at: None,
        });
        if item.last_inbound_at.is_some_and(|last| last >= at) {
            return Ok(false);
        }
        item.last_inbound_at = Some(at);
        Ok(true)
    }
}

//! The Campaigns table in memory: the campaign items and the daily budget's hourly items,
//! with the DynamoDB adapter's conditions (a cancel names an existing campaign; the first
//! enqueue creates it).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::faults::Faults;
use crate::domain::campaign::{push_event, CampaignAction, CampaignEvent, CampaignItem, CampaignState};
use crate::ports::{CampaignStore, RecipientBudget, StoreError};

/// A budget item: its phones and `expires_at`.
type BudgetItem = (BTreeSet<String>, i64);

/// The Campaigns table in memory. `Clone` shares it.
#[derive(Debug, Clone, Default)]
pub struct MemoryCampaigns {
    items: Arc<Mutex<HashMap<String, CampaignItem>>>,
    budget: Arc<Mutex<HashMap<String, BudgetItem>>>,
    pub faults: Arc<Faults>,
}

impl MemoryCampaigns {
    pub fn new() -> Self {
        MemoryCampaigns::default()
    }

    /// Puts a campaign as it is (a test's set-up).
    pub fn insert(&self, item: CampaignItem) {
        self.items.lock().expect("campaigns lock").insert(item.campaign.clone(), item);
    }

    /// A budget item's phones and `expires_at`.
    pub fn budget_item(&self, key: &str) -> Option<(Vec<String>, i64)> {
        let budget = self.budget.lock().expect("budget lock");
        budget.get(key).map(|(phones, expires_at)| (phones.iter().cloned().collect(), *expires_at))
    }
}

#[async_trait]
impl CampaignStore for MemoryCampaigns {
    async fn get_many(&self, names: &[String]) -> Result<HashMap<String, CampaignItem>, StoreError> {
        self.faults.before("get_many", &names.join(",")).await?;
        let items = self.items.lock().expect("campaigns lock");
        Ok(names.iter().filter_map(|name| Some((name.clone(), items.get(name)?.clone()))).collect())
    }

    async fn get(&self, name: &str) -> Result<Option<CampaignItem>, StoreError> {
        self.faults.before("get", name).await?;
        Ok(self.items.lock().expect("campaigns lock").get(name).cloned())
    }

    async fn record_enqueued(
        &self,
        name: &str,
        by: &str,
        description: Option<&str>,
        count: u64,
        now: i64,
    ) -> Result<CampaignItem, StoreError> {
        self.faults.before("record_enqueued", name).await?;
        let mut items = self.items.lock().expect("campaigns lock");
        let detail = format!("{count} message(s) enqueued");
        let item = match items.get_mut(name) {
            Some(item) => {
                item.enqueued += count;
                if let Some(description) = description {
                    item.description = Some(description.to_owned());
                }
                let event = CampaignEvent { action: CampaignAction::Enqueued, at: now, by: by.into(), detail };
                push_event(&mut item.history, event);
                item.clone()
            }
            None => {
                let mut item = CampaignItem {
                    campaign: name.to_owned(),
                    state: CampaignState::Active,
                    created_at: now,
                    created_by: by.to_owned(),
                    description: description.map(str::to_owned),
                    enqueued: count,
                    cancelled_at: None,
                    cancelled_by: None,
                    cancel_reason: None,
                    history: Vec::new(),
                };
                let event = CampaignEvent { action: CampaignAction::Created, at: now, by: by.into(), detail };
                push_event(&mut item.history, event);
                items.insert(name.to_owned(), item.clone());
                item
            }
        };
        Ok(item)
    }

    async fn set_cancelled(
        &self,
        name: &str,
        cancelled: bool,
        by: &str,
        reason: &str,
        now: i64,
    ) -> Result<Option<CampaignItem>, StoreError> {
        self.faults.before("set_cancelled", name).await?;
        let mut items = self.items.lock().expect("campaigns lock");
        let Some(item) = items.get_mut(name) else { return Ok(None) };
        if cancelled {
            item.state = CampaignState::Cancelled;
            item.cancelled_at = Some(now);
            item.cancelled_by = Some(by.to_owned());
            item.cancel_reason = Some(reason.to_owned());
        } else {
            item.state = CampaignState::Active;
            item.cancelled_at = None;
            item.cancelled_by = None;
            item.cancel_reason = None;
        }
        let action = if cancelled { CampaignAction::Cancelled } else { CampaignAction::Resumed };
        push_event(&mut item.history, CampaignEvent { action, at: now, by: by.into(), detail: reason.into() });
        Ok(Some(item.clone()))
    }

    async fn add_event(&self, name: &str, event: CampaignEvent) -> Result<bool, StoreError> {
        self.faults.before("add_event", name).await?;
        let mut items = self.items.lock().expect("campaigns lock");
        let Some(item) = items.get_mut(name) else { return Ok(false) };
        push_event(&mut item.history, event);
        Ok(true)
    }

    async fn list(&self) -> Result<Vec<CampaignItem>, StoreError> {
        self.faults.before("list", "").await?;
        let mut campaigns: Vec<CampaignItem> = self.items.lock().expect("campaigns lock").values().cloned().collect();
        campaigns.sort_by_key(|c| std::cmp::Reverse(c.created_at));
        Ok(campaigns)
    }
}

#[async_trait]
impl RecipientBudget for MemoryCampaigns {
    async fn phones(&self, keys: &[String]) -> Result<HashMap<String, Vec<String>>, StoreError> {
        self.faults.before("phones", &keys.len().to_string()).await?;
        let budget = self.budget.lock().expect("budget lock");
        Ok(keys.iter().filter_map(|key| Some((key.clone(), budget.get(key)?.0.iter().cloned().collect()))).collect())
    }

    async fn add(&self, key: &str, phone: &str, expires_at: i64) -> Result<(), StoreError> {
        self.faults.before("add", key).await?;
        let mut budget = self.budget.lock().expect("budget lock");
        let entry = budget.entry(key.to_owned()).or_insert_with(|| (BTreeSet::new(), expires_at));
        entry.0.insert(phone.to_owned());
        entry.1 = expires_at;
        Ok(())
    }
}

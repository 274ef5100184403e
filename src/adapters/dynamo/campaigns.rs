//! The DynamoDB adapter of the Campaigns table: the campaign items (`send` reads a batch's
//! with one `BatchGetItem`; the CLI creates, cancels and lists them) and the daily budget's
//! hourly items, in the same table under keys that begin with `#budget:`.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, ReturnValue};
use aws_sdk_dynamodb::Client;

use super::update::{n, s};
use crate::adapters::describe;
use crate::domain::budget::BUDGET_KEY_PREFIX;
use crate::domain::campaign::{push_event, CampaignAction, CampaignEvent, CampaignItem, CampaignState, HISTORY_LIMIT};
use crate::ports::{CampaignStore, RecipientBudget, StoreError};

/// `BatchGetItem` takes at most 100 keys.
const BATCH_GET_KEYS: usize = 100;
/// Unprocessed keys are asked for again this many times.
const BATCH_GET_ATTEMPTS: usize = 5;

/// The Campaigns table.
#[derive(Clone)]
pub struct DynamoCampaigns {
    client: Client,
    table: String,
}

fn item_from(attributes: HashMap<String, AttributeValue>) -> Result<CampaignItem, StoreError> {
    serde_dynamo::aws_sdk_dynamodb_1::from_item(attributes).map_err(|e| StoreError::new("decode Campaigns item", e))
}

fn event_value(event: &CampaignEvent) -> Result<AttributeValue, StoreError> {
    let value = serde_dynamo::aws_sdk_dynamodb_1::to_attribute_value(event)
        .map_err(|e| StoreError::new("encode Campaigns history", e))?;
    Ok(AttributeValue::L(vec![value]))
}

impl DynamoCampaigns {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoCampaigns { client, table: table.into() }
    }

    /// Every item of `keys`, 100 keys per `BatchGetItem`, unprocessed keys asked again.
    async fn batch_get(&self, keys: &[String]) -> Result<Vec<HashMap<String, AttributeValue>>, StoreError> {
        let mut items = Vec::new();
        for chunk in keys.chunks(BATCH_GET_KEYS) {
            let mut pending: Vec<HashMap<String, AttributeValue>> =
                chunk.iter().map(|key| HashMap::from([("campaign".to_owned(), s(key))])).collect();
            for _ in 0..BATCH_GET_ATTEMPTS {
                if pending.is_empty() {
                    break;
                }
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(std::mem::take(&mut pending)))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| StoreError::new("BatchGetItem Campaigns", e))?;
                let output = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(|e| StoreError::new("BatchGetItem Campaigns", describe(&e)))?;
                items.extend(output.responses.and_then(|mut r| r.remove(&self.table)).unwrap_or_default());
                pending =
                    output.unprocessed_keys.and_then(|mut u| u.remove(&self.table)).map(|k| k.keys).unwrap_or_default();
            }
            if !pending.is_empty() {
                return Err(StoreError::new("BatchGetItem Campaigns", "keys left unprocessed after five attempts"));
            }
        }
        Ok(items)
    }

    /// Appends `event` to the history of an existing campaign, with the `SET` clauses given,
    /// then drops the oldest events past [`HISTORY_LIMIT`]. `None`: no such campaign.
    async fn update_with_event(
        &self,
        name: &str,
        set: &str,
        values: HashMap<String, AttributeValue>,
        remove: &str,
        event: &CampaignEvent,
    ) -> Result<Option<CampaignItem>, StoreError> {
        let mut expression = format!("SET #history = list_append(if_not_exists(#history, :empty), :event){set}");
        if !remove.is_empty() {
            expression.push_str(&format!(" REMOVE {remove}"));
        }
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("campaign", s(name))
            .update_expression(expression)
            .condition_expression("attribute_exists(#campaign)")
            .expression_attribute_names("#campaign", "campaign")
            .expression_attribute_names("#history", "history")
            .expression_attribute_values(":empty", AttributeValue::L(Vec::new()))
            .expression_attribute_values(":event", event_value(event)?)
            .return_values(ReturnValue::AllNew);
        for (placeholder, value) in values {
            request = request.expression_attribute_values(placeholder, value);
        }
        // Every other `#name` of the clauses names the attribute of that name.
        for token in format!("{set} {remove}").split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '#')) {
            if let Some(attr) = token.strip_prefix('#').filter(|attr| !matches!(*attr, "campaign" | "history")) {
                request = request.expression_attribute_names(token, attr);
            }
        }
        let item = match request.send().await {
            Ok(output) => item_from(output.attributes.unwrap_or_default())?,
            Err(err) if err.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                return Ok(None)
            }
            Err(err) => return Err(StoreError::new("UpdateItem Campaigns", describe(&err))),
        };
        if item.history.len() > HISTORY_LIMIT {
            self.trim_history(name, item.history.len()).await?;
            return self.get(name).await;
        }
        Ok(Some(item))
    }

    /// Drops the oldest events of a history read at `len` events (a concurrent append makes
    /// the condition fail; the next append trims again).
    async fn trim_history(&self, name: &str, len: usize) -> Result<(), StoreError> {
        let drop: Vec<String> = (0..len - HISTORY_LIMIT).map(|i| format!("#history[{i}]")).collect();
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("campaign", s(name))
            .update_expression(format!("REMOVE {}", drop.join(", ")))
            .condition_expression("size(#history) = :len")
            .expression_attribute_names("#history", "history")
            .expression_attribute_values(":len", n(len))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(()),
            Err(err) => Err(StoreError::new("UpdateItem Campaigns", describe(&err))),
        }
    }
}

#[async_trait]
impl CampaignStore for DynamoCampaigns {
    async fn get_many(&self, names: &[String]) -> Result<HashMap<String, CampaignItem>, StoreError> {
        let items = self.batch_get(names).await?;
        items.into_iter().map(|attributes| item_from(attributes).map(|item| (item.campaign.clone(), item))).collect()
    }

    async fn get(&self, name: &str) -> Result<Option<CampaignItem>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("campaign", s(name))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::new("GetItem Campaigns", describe(&e)))?;
        output.item.map(item_from).transpose()
    }

    async fn record_enqueued(
        &self,
        name: &str,
        by: &str,
        description: Option<&str>,
        count: u64,
        now: i64,
    ) -> Result<CampaignItem, StoreError> {
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
        let detail = format!("{count} message(s) enqueued");
        push_event(
            &mut item.history,
            CampaignEvent { action: CampaignAction::Created, at: now, by: by.into(), detail },
        );
        let attributes = serde_dynamo::aws_sdk_dynamodb_1::to_item(&item)
            .map_err(|e| StoreError::new("encode Campaigns item", e))?;
        let created = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(attributes))
            .condition_expression("attribute_not_exists(#campaign)")
            .expression_attribute_names("#campaign", "campaign")
            .send()
            .await;
        match created {
            Ok(_) => return Ok(item),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {}
            Err(err) => return Err(StoreError::new("PutItem Campaigns", describe(&err))),
        }
        // An existing campaign: more messages, and the operator's new description if any.
        let event = CampaignEvent {
            action: CampaignAction::Enqueued,
            at: now,
            by: by.into(),
            detail: format!("{count} message(s) enqueued"),
        };
        let mut values = HashMap::from([(":count".to_owned(), n(count)), (":zero".to_owned(), n(0))]);
        let mut set = ", #enqueued = if_not_exists(#enqueued, :zero) + :count".to_owned();
        if let Some(description) = description {
            set.push_str(", #description = :description");
            values.insert(":description".into(), s(description));
        }
        self.update_with_event(name, &set, values, "", &event)
            .await?
            .ok_or_else(|| StoreError::new("UpdateItem Campaigns", "the campaign vanished while it was enqueued to"))
    }

    async fn set_cancelled(
        &self,
        name: &str,
        cancelled: bool,
        by: &str,
        reason: &str,
        now: i64,
    ) -> Result<Option<CampaignItem>, StoreError> {
        let action = if cancelled { CampaignAction::Cancelled } else { CampaignAction::Resumed };
        let event = CampaignEvent { action, at: now, by: by.into(), detail: reason.into() };
        if cancelled {
            let values = HashMap::from([
                (":state".to_owned(), s("cancelled")),
                (":at".to_owned(), n(now)),
                (":by".to_owned(), s(by)),
                (":reason".to_owned(), s(reason)),
            ]);
            let set = ", #state = :state, #cancelled_at = :at, #cancelled_by = :by, #cancel_reason = :reason";
            self.update_with_event(name, set, values, "", &event).await
        } else {
            let values = HashMap::from([(":state".to_owned(), s("active"))]);
            self.update_with_event(
                name,
                ", #state = :state",
                values,
                "#cancelled_at, #cancelled_by, #cancel_reason",
                &event,
            )
            .await
        }
    }

    async fn add_event(&self, name: &str, event: CampaignEvent) -> Result<bool, StoreError> {
        Ok(self.update_with_event(name, "", HashMap::new(), "", &event).await?.is_some())
    }

    async fn list(&self) -> Result<Vec<CampaignItem>, StoreError> {
        let mut pages = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression("NOT begins_with(#campaign, :budget)")
            .expression_attribute_names("#campaign", "campaign")
            .expression_attribute_values(":budget", s(BUDGET_KEY_PREFIX))
            .into_paginator()
            .items()
            .send();
        let mut campaigns = Vec::new();
        while let Some(item) = pages.next().await {
            campaigns.push(item_from(item.map_err(|e| StoreError::new("Scan Campaigns", describe(&e)))?)?);
        }
        campaigns.sort_by_key(|c| std::cmp::Reverse(c.created_at));
        Ok(campaigns)
    }
}

#[async_trait]
impl RecipientBudget for DynamoCampaigns {
    async fn phones(&self, keys: &[String]) -> Result<HashMap<String, Vec<String>>, StoreError> {
        let items = self.batch_get(keys).await?;
        Ok(items
            .into_iter()
            .filter_map(|item| {
                let key = item.get("campaign")?.as_s().ok()?.clone();
                let phones = match item.get("phones") {
                    Some(AttributeValue::Ss(phones)) => phones.clone(),
                    _ => Vec::new(),
                };
                Some((key, phones))
            })
            .collect())
    }

    async fn add(&self, key: &str, phone: &str, expires_at: i64) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("campaign", s(key))
            .update_expression("ADD #phones :phone SET #expires_at = :expires_at")
            .expression_attribute_names("#phones", "phones")
            .expression_attribute_names("#expires_at", "expires_at")
            .expression_attribute_values(":phone", AttributeValue::Ss(vec![phone.to_owned()]))
            .expression_attribute_values(":expires_at", n(expires_at))
            .send()
            .await
            .map_err(|e| StoreError::new("UpdateItem Campaigns budget", describe(&e)))?;
        Ok(())
    }
}

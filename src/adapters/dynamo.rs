//! DynamoDB adapters of the MessageLog and Consent ports, with the conditions of DESIGN.md.
//!
//! `status` is a reserved word: every expression names it through `#status`. Items come back
//! through `serde_dynamo`; writes are explicit update expressions, because each one carries a
//! condition that is the whole point of the write.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use aws_sdk_dynamodb::Client;

use crate::domain::consent::{may_apply, repeats_history, ConsentChange, ConsentSource, ConsentState, CurrentConsent};
use crate::domain::message::MessageId;
use crate::domain::phone::PhoneNumber;
use crate::domain::status::{twilio_rank, Status};
use crate::ports::{
    Conditional, ConsentStore, EarlyFinal, GiveBack, ItemIdentity, LogItem, MessageLog, Outcome, StoreError, Take,
};
use crate::schema::{BY_RECIPIENT_INDEX, RETRY_SHARDS};

/// Attributes present only while an item is in flight (the sparse `retry-due` index).
pub const IN_FLIGHT_ATTRIBUTES: &[&str] =
    &["lease_owner", "lease_until", "retry_shard", "retry_due_at", "next_attempt_at"];

/// The most changes a Consent item's `history` keeps.
pub const CONSENT_HISTORY_LIMIT: usize = 20;

pub fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub fn n(value: impl std::fmt::Display) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// The `retry-due` shard of a message: a stable hash (FNV-1a) of its id, so that a message
/// always lands in the same shard whatever process computes it.
pub fn retry_shard(message_id: &str) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in message_id.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash % RETRY_SHARDS
}

/// An update expression under construction.
#[derive(Default)]
pub struct Update {
    set: Vec<String>,
    remove: Vec<String>,
    add: Vec<String>,
    values: HashMap<String, AttributeValue>,
    names: HashMap<String, String>,
}

impl Update {
    pub fn new() -> Self {
        Update::default()
    }

    /// `SET attr = :attr`
    pub fn set(mut self, attr: &str, value: AttributeValue) -> Self {
        let placeholder = format!(":{attr}");
        let name = self.name(attr);
        self.set.push(format!("{name} = {placeholder}"));
        self.values.insert(placeholder, value);
        self
    }

    /// `SET attr = if_not_exists(attr, :attr)`
    pub fn set_if_absent(mut self, attr: &str, value: AttributeValue) -> Self {
        let placeholder = format!(":{attr}");
        let name = self.name(attr);
        self.set.push(format!("{name} = if_not_exists({name}, {placeholder})"));
        self.values.insert(placeholder, value);
        self
    }

    /// A raw `SET` clause whose placeholders are given with [`Update::value`].
    pub fn set_raw(mut self, clause: &str) -> Self {
        self.set.push(clause.into());
        self
    }

    /// A raw `ADD` clause (set union, counter).
    pub fn add_clause(mut self, clause: &str) -> Self {
        self.add.push(clause.into());
        self
    }

    pub fn remove(mut self, attrs: &[&str]) -> Self {
        for attr in attrs {
            let name = self.name(attr);
            self.remove.push(name);
        }
        self
    }

    pub fn value(mut self, placeholder: &str, value: AttributeValue) -> Self {
        self.values.insert(placeholder.into(), value);
        self
    }

    /// Every attribute is named through a placeholder: DynamoDB reserves hundreds of words
    /// (`status`, `request`, …), and moto does not refuse them all as AWS does.
    fn name(&mut self, attr: &str) -> String {
        let placeholder = format!("#{attr}");
        self.names.insert(placeholder.clone(), attr.to_owned());
        placeholder
    }

    pub fn expression(&self) -> String {
        let mut parts = Vec::new();
        if !self.set.is_empty() {
            parts.push(format!("SET {}", self.set.join(", ")));
        }
        if !self.remove.is_empty() {
            parts.push(format!("REMOVE {}", self.remove.join(", ")));
        }
        if !self.add.is_empty() {
            parts.push(format!("ADD {}", self.add.join(", ")));
        }
        parts.join(" ")
    }

    /// Runs the update with `condition`; `ALL_NEW` on success, `ALL_OLD` when refused.
    pub async fn run(
        self,
        client: &Client,
        table: &str,
        message_id: &str,
        condition: &str,
    ) -> Result<Conditional, StoreError> {
        self.run_returning(client, table, message_id, condition, ReturnValue::AllNew).await
    }

    /// Runs the update with `condition`; on success the item as `returning` says (`ALL_OLD`:
    /// as it was before), `ALL_OLD` when refused. Every `#name` of a raw clause or of the
    /// condition is declared.
    pub async fn run_returning(
        self,
        client: &Client,
        table: &str,
        message_id: &str,
        condition: &str,
        returning: ReturnValue,
    ) -> Result<Conditional, StoreError> {
        let expression = self.expression();
        let mut names = self.names;
        let raw = format!("{expression} {condition}");
        for token in raw.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '#')) {
            if let Some(attr) = token.strip_prefix('#') {
                names.insert(token.to_owned(), attr.to_owned());
            }
        }
        let names = (!names.is_empty()).then_some(names);
        let result = client
            .update_item()
            .table_name(table)
            .key("message_id", s(message_id))
            .update_expression(expression)
            .condition_expression(condition)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(Some(self.values))
            .return_values(returning)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(output) => Ok(Conditional::Applied(item_from(output.attributes)?)),
            Err(SdkError::ServiceError(err)) => match err.into_err() {
                UpdateItemError::ConditionalCheckFailedException(failed) => {
                    Ok(Conditional::Refused(failed.item.map(|item| item_from(Some(item))).transpose()?))
                }
                other => Err(StoreError::new("UpdateItem", describe(&other))),
            },
            Err(other) => Err(StoreError::new("UpdateItem", describe(&other))),
        }
    }
}

/// The error and its sources on one line (the SDK's `Display` alone says only "service error").
pub fn describe(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn item_from(attributes: Option<HashMap<String, AttributeValue>>) -> Result<LogItem, StoreError> {
    let attributes = attributes.unwrap_or_default();
    serde_dynamo::aws_sdk_dynamodb_1::from_item(attributes).map_err(|e| StoreError::new("decode MessageLog item", e))
}

/// The MessageLog table.
#[derive(Clone)]
pub struct DynamoMessageLog {
    client: Client,
    table: String,
}

impl DynamoMessageLog {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoMessageLog { client, table: table.into() }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    fn with_identity(update: Update, identity: &ItemIdentity, now: i64, retention_days: i64) -> Update {
        let mut update = update
            .set_if_absent("created_at", n(now))
            .set_if_absent("expires_at", n(now + retention_days * 86_400))
            .set_if_absent("max_attempts", n(identity.max_attempts));
        if let Some(phone) = &identity.phone {
            update = update.set_if_absent("phone", s(phone.as_str()));
        }
        if let Some(campaign) = &identity.campaign {
            update = update.set_if_absent("campaign", s(campaign));
        }
        if let Some(recipient_id) = &identity.recipient_id {
            update = update.set_if_absent("recipient_id", s(recipient_id));
        }
        if let Some(request) = &identity.request {
            update = update.set_if_absent("request", s(request));
        }
        update
    }
}

#[async_trait]
impl MessageLog for DynamoMessageLog {
    async fn get(&self, message_id: &str) -> Result<Option<LogItem>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("message_id", s(message_id))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::new("GetItem", describe(&e)))?;
        output.item.map(|item| item_from(Some(item))).transpose()
    }

    async fn record_early_final(
        &self,
        identity: &ItemIdentity,
        kind: EarlyFinal,
        reason: &str,
        now: i64,
        retention_days: i64,
    ) -> Result<Conditional, StoreError> {
        let update = Update::new()
            .set("status", s(kind.status().as_str()))
            .set("last_error", s(reason))
            .set("updated_at", n(now))
            .set_if_absent("attempts", n(0))
            .remove(IN_FLIGHT_ATTRIBUTES);
        let mut update = Self::with_identity(update, identity, now, retention_days);
        let condition = match kind {
            EarlyFinal::Rejected => "attribute_not_exists(message_id)",
            EarlyFinal::Skipped | EarlyFinal::Expired => {
                update = update.value(":retrying", s(Status::Retrying.as_str()));
                "attribute_not_exists(message_id) OR #status = :retrying"
            }
        };
        update.run(&self.client, &self.table, identity.message_id.as_str(), condition).await
    }

    async fn claim(
        &self,
        identity: &ItemIdentity,
        take: &Take,
        retention_days: i64,
    ) -> Result<Conditional, StoreError> {
        let update = Update::new()
            .set("status", s(Status::Sending.as_str()))
            .set("lease_owner", s(&take.owner))
            .set("lease_until", n(take.lease_until))
            .set("retry_shard", n(retry_shard(identity.message_id.as_str())))
            .set("retry_due_at", n(take.lease_until))
            .set("attempt_started_at", n(take.now))
            .set("updated_at", n(take.now))
            .set_raw("attempts = if_not_exists(attempts, :zero) + :one")
            .value(":zero", n(0))
            .value(":one", n(1))
            .value(":retrying", s(Status::Retrying.as_str()))
            .value(":due", n(take.due))
            .remove(&["next_attempt_at"]);
        Self::with_identity(update, identity, take.now, retention_days)
            .run(
                &self.client,
                &self.table,
                identity.message_id.as_str(),
                "attribute_not_exists(message_id) OR (#status = :retrying AND next_attempt_at <= :due)",
            )
            .await
    }

    async fn reconcile_claim(&self, message_id: &MessageId, take: &Take) -> Result<Conditional, StoreError> {
        Update::new()
            .set("status", s(Status::Sending.as_str()))
            .set("lease_owner", s(&take.owner))
            .set("lease_until", n(take.lease_until))
            .set("retry_shard", n(retry_shard(message_id.as_str())))
            .set("retry_due_at", n(take.lease_until))
            .set("updated_at", n(take.now))
            .value(":in_doubt", s(Status::InDoubt.as_str()))
            .value(":sending", s(Status::Sending.as_str()))
            .value(":due", n(take.due))
            .value(":now", n(take.now))
            .remove(&["next_attempt_at"])
            .run(
                &self.client,
                &self.table,
                message_id.as_str(),
                "(#status = :in_doubt AND next_attempt_at <= :due) OR (#status = :sending AND lease_until < :now)",
            )
            .await
    }

    async fn record_new_attempt(
        &self,
        message_id: &MessageId,
        take: &Take,
        seen_attempts: u32,
    ) -> Result<Conditional, StoreError> {
        Update::new()
            .set("attempts", n(seen_attempts + 1))
            .set("attempt_started_at", n(take.now))
            .set("updated_at", n(take.now))
            .value(":me", s(&take.owner))
            .value(":seen", n(seen_attempts))
            .run(&self.client, &self.table, message_id.as_str(), "lease_owner = :me AND attempts = :seen")
            .await
    }

    async fn record_outcome(
        &self,
        message_id: &MessageId,
        owner: &str,
        outcome: &Outcome,
        now: i64,
    ) -> Result<Conditional, StoreError> {
        let update =
            Update::new().set("status", s(outcome.status().as_str())).set("updated_at", n(now)).value(":me", s(owner));
        let update = match outcome {
            Outcome::Accepted { sid, twilio_status } => {
                let rank = twilio_rank(twilio_status).unwrap_or(1);
                let mut update = update
                    .set("twilio_sid", s(sid))
                    .set("twilio_status", s(twilio_status))
                    .set("twilio_rank", n(rank))
                    .set_if_absent("sent_at", n(now))
                    .remove(IN_FLIGHT_ATTRIBUTES);
                if matches!(twilio_status.as_str(), "delivered" | "read") {
                    update = update.set_if_absent("delivered_at", n(now));
                }
                if twilio_status == "read" {
                    update = update.set_if_absent("read_at", n(now));
                }
                update
            }
            Outcome::Retrying { last_error, last_error_code, next_attempt_at, retry_due_at, give_back } => {
                let mut update = update
                    .set("last_error", s(last_error))
                    .set("next_attempt_at", n(next_attempt_at))
                    .set("retry_due_at", n(retry_due_at))
                    .remove(&["lease_owner", "lease_until"]);
                update = match last_error_code {
                    Some(code) => update.set("last_error_code", n(code)),
                    None => update.remove(&["last_error_code"]),
                };
                match give_back {
                    GiveBack::No => update,
                    GiveBack::Answered => update
                        .set_raw("attempts = attempts - :one")
                        .set_raw("throttled = if_not_exists(throttled, :zero) + :one")
                        .value(":one", n(1))
                        .value(":zero", n(0)),
                    GiveBack::NotStarted => update.set_raw("attempts = attempts - :one").value(":one", n(1)),
                }
            }
            Outcome::InDoubt { last_error, next_attempt_at, retry_due_at } => update
                .set("last_error", s(last_error))
                .set("next_attempt_at", n(next_attempt_at))
                .set("retry_due_at", n(retry_due_at))
                .remove(&["lease_owner", "lease_until", "last_error_code"]),
            Outcome::Final { last_error, last_error_code, .. } => {
                let update = update.set("last_error", s(last_error)).remove(IN_FLIGHT_ATTRIBUTES);
                match last_error_code {
                    Some(code) => update.set("last_error_code", n(code)),
                    None => update.remove(&["last_error_code"]),
                }
            }
            Outcome::DryRun => update.remove(IN_FLIGHT_ATTRIBUTES),
        };
        update.run(&self.client, &self.table, message_id.as_str(), "lease_owner = :me").await
    }

    async fn record_orphan_sid(&self, message_id: &MessageId, sid: &str, now: i64) -> Result<bool, StoreError> {
        let first = Update::new()
            .set("twilio_sid", s(sid))
            .set("updated_at", n(now))
            .run(
                &self.client,
                &self.table,
                message_id.as_str(),
                "attribute_exists(message_id) AND attribute_not_exists(twilio_sid)",
            )
            .await?;
        if let Conditional::Refused(Some(old)) = first {
            if old.twilio_sid.as_deref() != Some(sid) {
                Update::new()
                    .add_clause("extra_sids :sid")
                    .value(":sid", AttributeValue::Ss(vec![sid.to_owned()]))
                    .run(&self.client, &self.table, message_id.as_str(), "attribute_exists(message_id)")
                    .await?;
                return Ok(true);
            }
        }
        Ok(false)
    }

    async fn sids_for_phone(&self, phone: &PhoneNumber) -> Result<Vec<(String, String)>, StoreError> {
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(BY_RECIPIENT_INDEX)
            .key_condition_expression("phone = :phone")
            .expression_attribute_values(":phone", s(phone.as_str()))
            .into_paginator()
            .items()
            .send();
        let mut sids = Vec::new();
        while let Some(item) = pages.next().await {
            let item = item.map_err(|e| StoreError::new("Query by-recipient", describe(&e)))?;
            if let (Some(AttributeValue::S(id)), Some(AttributeValue::S(sid))) =
                (item.get("message_id"), item.get("twilio_sid"))
            {
                sids.push((id.clone(), sid.clone()));
            }
        }
        Ok(sids)
    }
}

/// A Consent item as read back.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct ConsentItem {
    pub phone: String,
    pub state: String,
    pub updated_at: i64,
    pub source: Option<String>,
    pub evidence: Option<String>,
    #[serde(default)]
    pub history: Vec<ConsentHistoryEntry>,
}

/// One change in a Consent item's `history`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ConsentHistoryEntry {
    pub state: String,
    pub updated_at: i64,
    pub source: String,
    pub evidence: String,
}

impl ConsentItem {
    pub fn current(&self) -> Option<CurrentConsent> {
        Some(CurrentConsent {
            state: ConsentState::parse(&self.state)?,
            source: self.source.as_deref().and_then(ConsentSource::parse),
        })
    }
}

/// The Consent table.
#[derive(Clone)]
pub struct DynamoConsent {
    client: Client,
    table: String,
}

impl DynamoConsent {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoConsent { client, table: table.into() }
    }

    /// The whole item, with its history.
    pub async fn item(&self, phone: &PhoneNumber) -> Result<Option<ConsentItem>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("phone", s(phone.as_str()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::new("GetItem Consent", describe(&e)))?;
        output
            .item
            .map(serde_dynamo::aws_sdk_dynamodb_1::from_item)
            .transpose()
            .map_err(|e| StoreError::new("decode Consent item", e))
    }

    /// Replaces the item with a bare suppression record (erasure): `opted_out`, no history.
    pub async fn suppress(&self, phone: &PhoneNumber, now: i64) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("phone", s(phone.as_str()))
            .item("state", s(ConsentState::OptedOut.as_str()))
            .item("updated_at", n(now))
            .item("source", s(ConsentSource::Erasure.as_str()))
            .item("evidence", s("erasure request"))
            .send()
            .await
            .map_err(|e| StoreError::new("PutItem Consent", describe(&e)))?;
        Ok(())
    }
}

#[async_trait]
impl ConsentStore for DynamoConsent {
    async fn current(&self, phone: &PhoneNumber) -> Result<Option<CurrentConsent>, StoreError> {
        Ok(self.item(phone).await?.and_then(|item| item.current()))
    }

    async fn change(
        &self,
        phone: &PhoneNumber,
        change: ConsentChange,
        evidence: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        // A read, then a write conditioned on what was read; a concurrent change makes the
        // condition fail and the loop read again.
        for _ in 0..5 {
            let existing = self.item(phone).await?;
            if !may_apply(existing.as_ref().and_then(ConsentItem::current), change) {
                return Ok(false);
            }
            // A replayed 21610 must not undo the START the parent sent since.
            let recorded = existing.iter().flat_map(|item| item.history.iter().map(|entry| entry.evidence.as_str()));
            if repeats_history(change, evidence, recorded) {
                return Ok(false);
            }
            let mut history = existing.as_ref().map(|item| item.history.clone()).unwrap_or_default();
            history.push(ConsentHistoryEntry {
                state: change.state.as_str().into(),
                updated_at: now,
                source: change.source.as_str().into(),
                evidence: evidence.into(),
            });
            let overflow = history.len().saturating_sub(CONSENT_HISTORY_LIMIT);
            history.drain(..overflow);
            let history = serde_dynamo::aws_sdk_dynamodb_1::to_attribute_value(history)
                .map_err(|e| StoreError::new("encode Consent history", e))?;
            let request = self
                .client
                .put_item()
                .table_name(&self.table)
                .item("phone", s(phone.as_str()))
                .item("state", s(change.state.as_str()))
                .item("updated_at", n(now))
                .item("source", s(change.source.as_str()))
                .item("evidence", s(evidence))
                .item("history", history);
            let request = match &existing {
                None => request.condition_expression("attribute_not_exists(phone)"),
                Some(item) => unchanged_since_read(request, item),
            };
            match request.send().await {
                Ok(_) => return Ok(true),
                Err(err) if err.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                    continue
                }
                Err(err) => return Err(StoreError::new("PutItem Consent", describe(&err))),
            }
        }
        Err(StoreError::new("PutItem Consent", "the item kept changing under five attempts"))
    }
}

/// The condition of a Consent write: the item is still the one read. `updated_at` alone is
/// not enough, being in seconds: two changes made in the second of the previous one would both
/// pass. `state`, `source` and `evidence` tell them apart (`state` and `source` are reserved
/// words: placeholders).
fn unchanged_since_read(
    request: aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder,
    read: &ConsentItem,
) -> aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder {
    let mut clauses = vec!["updated_at = :read_updated_at".to_owned(), "#state = :read_state".to_owned()];
    let mut request = request
        .expression_attribute_names("#state", "state")
        .expression_attribute_values(":read_updated_at", n(read.updated_at))
        .expression_attribute_values(":read_state", s(&read.state));
    for (name, value) in [("source", &read.source), ("evidence", &read.evidence)] {
        request = request.expression_attribute_names(format!("#{name}"), name);
        match value {
            Some(value) => {
                clauses.push(format!("#{name} = :read_{name}"));
                request = request.expression_attribute_values(format!(":read_{name}"), s(value));
            }
            None => clauses.push(format!("attribute_not_exists(#{name})")),
        }
    }
    request.condition_expression(clauses.join(" AND "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_shard_is_stable_and_in_range() {
        assert_eq!(retry_shard("trip:p-1"), retry_shard("trip:p-1"));
        let shards: std::collections::HashSet<u32> = (0..1000).map(|i| retry_shard(&format!("m{i}"))).collect();
        assert_eq!(shards.len(), RETRY_SHARDS as usize);
        assert!(shards.iter().all(|s| *s < RETRY_SHARDS));
    }

    #[test]
    fn update_expressions_use_placeholders_for_status() {
        let update = Update::new().set("status", s("sent")).set_if_absent("created_at", n(1)).remove(&["lease_owner"]);
        assert_eq!(
            update.expression(),
            "SET #status = :status, #created_at = if_not_exists(#created_at, :created_at) REMOVE #lease_owner"
        );
    }
}

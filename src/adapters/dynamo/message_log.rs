//! The DynamoDB adapter of the MessageLog port, with the conditions of DESIGN.md ("The send
//! path"). Items come back through `serde_dynamo`; writes are explicit update expressions,
//! because each one carries a condition that is the whole point of the write. The domain
//! states the same conditions (`domain::claim`, `domain::outcome`) for the in-memory adapter;
//! the adapter contract suite holds the two together.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;

use super::update::{item_from, n, s, Update};
use crate::adapters::describe;
use crate::domain::claim::Take;
use crate::domain::item::{retry_shard, ContentKind, ItemIdentity, LogItem};
use crate::domain::message::MessageId;
use crate::domain::outcome::{EarlyFinal, GiveBack, Outcome};
use crate::domain::phone::PhoneNumber;
use crate::domain::schedule::Hold;
use crate::domain::status::{twilio_rank, Status};
use crate::ports::{Conditional, MessageLog, StoreError};
use crate::schema::BY_RECIPIENT_INDEX;

/// Attributes present only while an item is in flight (the sparse `retry-due` index).
pub const IN_FLIGHT_ATTRIBUTES: &[&str] =
    &["lease_owner", "lease_until", "retry_shard", "retry_due_at", "next_attempt_at"];

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
        if let Some(requested_by) = &identity.requested_by {
            update = update.set_if_absent("requested_by", s(requested_by));
        }
        update
    }
}

/// The condition of the writes that may end or hold a message waiting for its next take:
/// no item, or a `retrying` or `scheduled` one (no create is under either).
const NEW_OR_WAITING: &str = "attribute_not_exists(message_id) OR #status = :retrying OR #status = :scheduled";

fn new_or_waiting(update: Update) -> Update {
    update.value(":retrying", s(Status::Retrying.as_str())).value(":scheduled", s(Status::Scheduled.as_str()))
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
        let update = Self::with_identity(update, identity, now, retention_days);
        let (update, condition) = match kind {
            EarlyFinal::Rejected => (update, "attribute_not_exists(message_id)"),
            EarlyFinal::Skipped | EarlyFinal::Expired | EarlyFinal::Cancelled => {
                (new_or_waiting(update), NEW_OR_WAITING)
            }
        };
        update.run(&self.client, &self.table, identity.message_id.as_str(), condition).await
    }

    async fn hold(
        &self,
        identity: &ItemIdentity,
        hold: &Hold,
        now: i64,
        retention_days: i64,
    ) -> Result<Conditional, StoreError> {
        let update = Update::new()
            .set("status", s(Status::Scheduled.as_str()))
            .set("next_attempt_at", n(hold.until))
            .set("retry_shard", n(retry_shard(identity.message_id.as_str())))
            .set("retry_due_at", n(hold.until))
            .set("released_at", n(hold.until))
            .set("updated_at", n(now))
            .set_if_absent("attempts", n(0))
            .remove(&["lease_owner", "lease_until"]);
        new_or_waiting(Self::with_identity(update, identity, now, retention_days))
            .run(&self.client, &self.table, identity.message_id.as_str(), NEW_OR_WAITING)
            .await
    }

    async fn claim(
        &self,
        identity: &ItemIdentity,
        take: &Take,
        content_kind: ContentKind,
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
            .set("content_kind", s(content_kind.as_str()))
            .set_raw("attempts = if_not_exists(attempts, :zero) + :one")
            .value(":zero", n(0))
            .value(":one", n(1))
            .value(":retrying", s(Status::Retrying.as_str()))
            .value(":scheduled", s(Status::Scheduled.as_str()))
            .value(":due", n(take.due))
            .remove(&["next_attempt_at"]);
        Self::with_identity(update, identity, take.now, retention_days)
            .run(
                &self.client,
                &self.table,
                identity.message_id.as_str(),
                "attribute_not_exists(message_id) OR ((#status = :retrying OR #status = :scheduled) AND next_attempt_at <= :due)",
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
        content_kind: ContentKind,
    ) -> Result<Conditional, StoreError> {
        Update::new()
            .set("attempts", n(seen_attempts + 1))
            .set("content_kind", s(content_kind.as_str()))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_expressions_use_placeholders_for_status() {
        let update = Update::new().set("status", s("sent")).set_if_absent("created_at", n(1)).remove(&["lease_owner"]);
        assert_eq!(
            update.expression(),
            "SET #status = :status, #created_at = if_not_exists(#created_at, :created_at) REMOVE #lease_owner"
        );
    }
}

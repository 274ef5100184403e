//! The status callback's write on MessageLog (DESIGN.md, "Webhook", "Status callback"): one
//! conditional `UpdateItem`, `ALL_OLD` both when it applies (the previous status tells a heal
//! from a reconcile that missed) and when it is refused (why it was refused).

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

use super::message_log::{DynamoMessageLog, IN_FLIGHT_ATTRIBUTES};
use super::update::{n, s, Update};
use crate::adapters::describe;
use crate::domain::inbox::RecentItem;
use crate::domain::item::LogItem;
use crate::domain::status::Status;
use crate::ports::{CallbackWrite, Conditional, StatusCallbackLog, StatusReport, StoreError};
use crate::schema::BY_RECIPIENT_INDEX;

/// The condition of a status callback's write: the item exists, holds no SID or this one,
/// its rank is below the report's, and it reached Twilio's side at all (not `rejected`,
/// `dry_run` or `cancelled`).
pub const STATUS_CALLBACK_CONDITION: &str = "attribute_exists(#message_id) \
     AND (attribute_not_exists(#twilio_sid) OR #twilio_sid = :twilio_sid) \
     AND (attribute_not_exists(#twilio_rank) OR #twilio_rank < :twilio_rank) \
     AND #status <> :rejected AND #status <> :dry_run AND #status <> :cancelled";

fn report_update(report: &StatusReport) -> Update {
    let mut update = Update::new()
        .set("twilio_sid", s(&report.sid))
        .set("twilio_status", s(&report.twilio_status))
        .set("twilio_rank", n(report.rank))
        .set("status", s(report.status.as_str()))
        .set("updated_at", n(report.now))
        .set_if_absent("sent_at", n(report.now));
    if matches!(report.twilio_status.as_str(), "delivered" | "read") {
        update = update.set_if_absent("delivered_at", n(report.now));
    }
    if report.twilio_status == "read" {
        update = update.set_if_absent("read_at", n(report.now));
    }
    if report.status == Status::Undelivered {
        if let Some(code) = report.error_code {
            update = update.set("last_error_code", n(code));
        }
        if let Some(last_error) = &report.last_error {
            update = update.set("last_error", s(last_error));
        }
    }
    update
        .remove(IN_FLIGHT_ATTRIBUTES)
        .value(":rejected", s(Status::Rejected.as_str()))
        .value(":dry_run", s(Status::DryRun.as_str()))
        .value(":cancelled", s(Status::Cancelled.as_str()))
}

#[async_trait]
impl StatusCallbackLog for DynamoMessageLog {
    async fn apply_status(&self, message_id: &str, report: &StatusReport) -> Result<CallbackWrite, StoreError> {
        let written = report_update(report)
            .run_returning(self.client(), self.table(), message_id, STATUS_CALLBACK_CONDITION, ReturnValue::AllOld)
            .await?;
        Ok(match written {
            Conditional::Applied(before) => CallbackWrite::Applied(before),
            Conditional::Refused(old) => CallbackWrite::Refused(old),
        })
    }

    async fn add_extra_sid(&self, message_id: &str, sid: &str, now: i64) -> Result<bool, StoreError> {
        let written = Update::new()
            .set("updated_at", n(now))
            .add_clause("#extra_sids :sid")
            .value(":sid", AttributeValue::Ss(vec![sid.to_owned()]))
            .run(self.client(), self.table(), message_id, "attribute_exists(#message_id)")
            .await?;
        Ok(matches!(written, Conditional::Applied(_)))
    }

    async fn recent_for_phone(&self, phone: &str, limit: i32) -> Result<Vec<RecentItem>, StoreError> {
        let output = self
            .client()
            .query()
            .table_name(self.table())
            .index_name(BY_RECIPIENT_INDEX)
            .key_condition_expression("#phone = :phone")
            .expression_attribute_names("#phone", "phone")
            .expression_attribute_values(":phone", s(phone))
            .scan_index_forward(false)
            .limit(limit.max(1))
            .send()
            .await
            .map_err(|e| StoreError::new("Query by-recipient", describe(&e)))?;
        let items: Vec<LogItem> = serde_dynamo::aws_sdk_dynamodb_1::from_items(output.items.unwrap_or_default())
            .map_err(|e| StoreError::new("decode MessageLog item", e))?;
        Ok(items
            .into_iter()
            .map(|item| RecentItem {
                message_id: item.message_id,
                created_at: item.created_at.unwrap_or_default(),
                twilio_sid: item.twilio_sid,
                status: item.status,
            })
            .collect())
    }

    async fn campaign_of(&self, message_id: &str) -> Result<Option<String>, StoreError> {
        let output = self
            .client()
            .get_item()
            .table_name(self.table())
            .key("message_id", s(message_id))
            .projection_expression("#campaign")
            .expression_attribute_names("#campaign", "campaign")
            .send()
            .await
            .map_err(|e| StoreError::new("GetItem", describe(&e)))?;
        Ok(output.item.and_then(|item| match item.get("campaign") {
            Some(AttributeValue::S(campaign)) => Some(campaign.clone()),
            _ => None,
        }))
    }

    async fn record_ack(&self, message_id: &str, word: &str, at: i64) -> Result<bool, StoreError> {
        let written = Update::new()
            .set("ack", s(word))
            .set("ack_at", n(at))
            .run(
                self.client(),
                self.table(),
                message_id,
                "attribute_exists(#message_id) AND (attribute_not_exists(#ack_at) OR #ack_at < :ack_at)",
            )
            .await?;
        Ok(matches!(written, Conditional::Applied(_)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(twilio_status: &str, status: Status) -> StatusReport {
        StatusReport {
            sid: "SM1".into(),
            twilio_status: twilio_status.into(),
            rank: crate::domain::status::twilio_rank(twilio_status).unwrap(),
            status,
            error_code: Some(63016),
            last_error: Some("63016: outside the window".into()),
            now: 100,
        }
    }

    #[test]
    fn a_read_sets_delivered_at_and_read_at_if_absent_and_removes_in_flight_attributes() {
        let update = report_update(&report("read", Status::Read));
        let text = update.expression();
        assert!(text.contains("#read_at = if_not_exists(#read_at, :read_at)"), "{text}");
        assert!(text.contains("#delivered_at = if_not_exists(#delivered_at, :delivered_at)"), "{text}");
        assert!(!text.contains("last_error"), "an error code is recorded only for undelivered: {text}");
        for attr in IN_FLIGHT_ATTRIBUTES {
            assert!(text.contains(&format!("#{attr}")), "{attr} removed: {text}");
        }
    }

    #[test]
    fn an_undelivered_report_records_the_error() {
        let text = report_update(&report("undelivered", Status::Undelivered)).expression();
        assert!(text.contains("#last_error_code = :last_error_code") && text.contains("#last_error = :last_error"));
        assert!(!text.contains("delivered_at"), "{text}");
    }
}

//! The status callback's write on MessageLog (DESIGN.md, "Webhook", "Status callback"): one
//! conditional `UpdateItem`, `ALL_OLD` both when it applies (the previous status tells a heal
//! from a reconcile that missed) and when it is refused (why it was refused).

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};

use super::dynamo::{describe, n, s, DynamoMessageLog, IN_FLIGHT_ATTRIBUTES};
use crate::domain::status::Status;
use crate::ports::{CallbackWrite, LogItem, StatusCallbackLog, StatusReport, StoreError};

/// The condition of a status callback's write: the item exists, holds no SID or this one,
/// its rank is below the report's, and it reached Twilio's side at all (not `rejected`,
/// not `dry_run`).
pub const STATUS_CALLBACK_CONDITION: &str = "attribute_exists(#message_id) \
     AND (attribute_not_exists(#twilio_sid) OR #twilio_sid = :twilio_sid) \
     AND (attribute_not_exists(#twilio_rank) OR #twilio_rank < :twilio_rank) \
     AND #status <> :rejected AND #status <> :dry_run";

/// An update expression whose every attribute is named through a placeholder.
#[derive(Default)]
struct Expression {
    set: Vec<String>,
    remove: Vec<String>,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Expression {
    fn name(&mut self, attr: &str) -> String {
        let placeholder = format!("#{attr}");
        self.names.insert(placeholder.clone(), attr.to_owned());
        placeholder
    }

    fn set(&mut self, attr: &str, value: AttributeValue) {
        let name = self.name(attr);
        self.set.push(format!("{name} = :{attr}"));
        self.values.insert(format!(":{attr}"), value);
    }

    fn set_if_absent(&mut self, attr: &str, value: AttributeValue) {
        let name = self.name(attr);
        self.set.push(format!("{name} = if_not_exists({name}, :{attr})"));
        self.values.insert(format!(":{attr}"), value);
    }

    fn remove(&mut self, attrs: &[&str]) {
        for attr in attrs {
            let name = self.name(attr);
            self.remove.push(name);
        }
    }

    fn text(&self) -> String {
        let mut text = format!("SET {}", self.set.join(", "));
        if !self.remove.is_empty() {
            text.push_str(" REMOVE ");
            text.push_str(&self.remove.join(", "));
        }
        text
    }
}

fn decode(item: HashMap<String, AttributeValue>) -> Result<LogItem, StoreError> {
    serde_dynamo::aws_sdk_dynamodb_1::from_item(item).map_err(|e| StoreError::new("decode MessageLog item", e))
}

/// The update a report makes (without its condition's own values).
fn report_update(report: &StatusReport) -> Expression {
    let mut update = Expression::default();
    update.set("twilio_sid", s(&report.sid));
    update.set("twilio_status", s(&report.twilio_status));
    update.set("twilio_rank", n(report.rank));
    update.set("status", s(report.status.as_str()));
    update.set("updated_at", n(report.now));
    // Twilio has the message: an item healed from `sending` or `in_doubt` never got its
    // `sent_at` from the send function.
    update.set_if_absent("sent_at", n(report.now));
    if matches!(report.twilio_status.as_str(), "delivered" | "read") {
        update.set_if_absent("delivered_at", n(report.now));
    }
    if report.twilio_status == "read" {
        update.set_if_absent("read_at", n(report.now));
    }
    if report.status == Status::Undelivered {
        if let Some(code) = report.error_code {
            update.set("last_error_code", n(code));
        }
        if let Some(last_error) = &report.last_error {
            update.set("last_error", s(last_error));
        }
    }
    update.remove(IN_FLIGHT_ATTRIBUTES);
    update
}

#[async_trait]
impl StatusCallbackLog for DynamoMessageLog {
    async fn apply_status(&self, message_id: &str, report: &StatusReport) -> Result<CallbackWrite, StoreError> {
        let mut update = report_update(report);
        update.name("message_id");
        update.values.insert(":rejected".into(), s(Status::Rejected.as_str()));
        update.values.insert(":dry_run".into(), s(Status::DryRun.as_str()));
        let result = self
            .client()
            .update_item()
            .table_name(self.table())
            .key("message_id", s(message_id))
            .update_expression(update.text())
            .condition_expression(STATUS_CALLBACK_CONDITION)
            .set_expression_attribute_names(Some(update.names))
            .set_expression_attribute_values(Some(update.values))
            .return_values(ReturnValue::AllOld)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(output) => Ok(CallbackWrite::Applied(decode(output.attributes.unwrap_or_default())?)),
            Err(SdkError::ServiceError(err)) => match err.into_err() {
                UpdateItemError::ConditionalCheckFailedException(failed) => {
                    Ok(CallbackWrite::Refused(failed.item.map(decode).transpose()?))
                }
                other => Err(StoreError::new("UpdateItem", describe(&other))),
            },
            Err(other) => Err(StoreError::new("UpdateItem", describe(&other))),
        }
    }

    async fn add_extra_sid(&self, message_id: &str, sid: &str, now: i64) -> Result<bool, StoreError> {
        let result = self
            .client()
            .update_item()
            .table_name(self.table())
            .key("message_id", s(message_id))
            .update_expression("SET #updated_at = :updated_at ADD #extra_sids :sid")
            .condition_expression("attribute_exists(#message_id)")
            .expression_attribute_names("#updated_at", "updated_at")
            .expression_attribute_names("#extra_sids", "extra_sids")
            .expression_attribute_names("#message_id", "message_id")
            .expression_attribute_values(":updated_at", n(now))
            .expression_attribute_values(":sid", AttributeValue::Ss(vec![sid.to_owned()]))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(false),
            Err(err) => Err(StoreError::new("UpdateItem extra_sids", describe(&err))),
        }
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
        let text = update.text();
        assert!(text.contains("#read_at = if_not_exists(#read_at, :read_at)"), "{text}");
        assert!(text.contains("#delivered_at = if_not_exists(#delivered_at, :delivered_at)"), "{text}");
        assert!(!text.contains("last_error"), "an error code is recorded only for undelivered: {text}");
        for attr in IN_FLIGHT_ATTRIBUTES {
            assert!(text.contains(&format!("#{attr}")), "{attr} removed: {text}");
        }
    }

    #[test]
    fn an_undelivered_report_records_the_error() {
        let text = report_update(&report("undelivered", Status::Undelivered)).text();
        assert!(text.contains("#last_error_code = :last_error_code") && text.contains("#last_error = :last_error"));
        assert!(!text.contains("delivered_at"), "{text}");
    }

    #[test]
    fn every_name_and_value_of_the_condition_is_defined() {
        let mut update = report_update(&report("sent", Status::Sent));
        update.name("message_id");
        for token in STATUS_CALLBACK_CONDITION.split(|c: char| !(c.is_alphanumeric() || "#:_".contains(c))) {
            if let Some(name) = token.strip_prefix('#') {
                assert!(update.names.contains_key(token) || name == "status", "{token}");
            }
            if token.starts_with(':') && token != ":rejected" && token != ":dry_run" {
                assert!(update.values.contains_key(token), "{token}");
            }
        }
    }
}

//! An `UpdateItem` under construction, with its condition: every attribute named through a
//! placeholder (DynamoDB reserves hundreds of words, `status` among them, and moto does not
//! refuse them all as AWS does), run with `ReturnValuesOnConditionCheckFailure = ALL_OLD` so
//! that a refusal says why without another read.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use aws_sdk_dynamodb::Client;

use crate::adapters::describe;
use crate::domain::item::LogItem;
use crate::ports::{Conditional, StoreError};

pub fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub fn n(value: impl std::fmt::Display) -> AttributeValue {
    AttributeValue::N(value.to_string())
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

/// A MessageLog item from DynamoDB's attributes.
pub(crate) fn item_from(attributes: Option<HashMap<String, AttributeValue>>) -> Result<LogItem, StoreError> {
    let attributes = attributes.unwrap_or_default();
    serde_dynamo::aws_sdk_dynamodb_1::from_item(attributes).map_err(|e| StoreError::new("decode MessageLog item", e))
}

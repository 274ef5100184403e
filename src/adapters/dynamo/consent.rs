//! The DynamoDB adapter of the Consent port: a strongly consistent read, and a put
//! conditioned on the item being the one read. What a change writes (precedence, history) is
//! decided by the domain (`domain::consent::plan_change`), in the port's `change`.

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder;
use aws_sdk_dynamodb::Client;

use super::update::{n, s};
use crate::adapters::describe;
use crate::domain::consent::{ConsentItem, ConsentSource, ConsentState};
use crate::domain::phone::PhoneNumber;
use crate::ports::{ConsentStore, StoreError};

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
    async fn item(&self, phone: &PhoneNumber) -> Result<Option<ConsentItem>, StoreError> {
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

    async fn replace(&self, new: &ConsentItem, read: Option<&ConsentItem>) -> Result<bool, StoreError> {
        let item =
            serde_dynamo::aws_sdk_dynamodb_1::to_item(new).map_err(|e| StoreError::new("encode Consent item", e))?;
        let request = self.client.put_item().table_name(&self.table).set_item(Some(item));
        let request = match read {
            None => request.condition_expression("attribute_not_exists(phone)"),
            Some(read) => unchanged_since_read(request, read),
        };
        match request.send().await {
            Ok(_) => Ok(true),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(false),
            Err(err) => Err(StoreError::new("PutItem Consent", describe(&err))),
        }
    }

    async fn record_inbound(&self, phone: &PhoneNumber, at: i64) -> Result<bool, StoreError> {
        let written = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("phone", s(phone.as_str()))
            .update_expression("SET #last = :at")
            .condition_expression("attribute_not_exists(#last) OR #last < :at")
            .expression_attribute_names("#last", "last_inbound_at")
            .expression_attribute_values(":at", n(at))
            .send()
            .await;
        match written {
            Ok(_) => Ok(true),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(false),
            Err(err) => Err(StoreError::new("UpdateItem Consent", describe(&err))),
        }
    }
}

/// The condition of a Consent write: the item is still the one read. `updated_at` alone is
/// not enough, being in seconds: two changes made in the second of the previous one would both
/// pass. `state`, `source` and `evidence` tell them apart (`state` and `source` are reserved
/// words: placeholders everywhere).
fn unchanged_since_read(request: PutItemFluentBuilder, read: &ConsentItem) -> PutItemFluentBuilder {
    let read_values = [
        ("state", read.state.as_deref().map(s)),
        ("updated_at", read.updated_at.map(n)),
        ("source", read.source.as_deref().map(s)),
        ("evidence", read.evidence.as_deref().map(s)),
        // The webhook moves it without a consent change: a put over an older value would
        // turn the parent's window back.
        ("last_inbound_at", read.last_inbound_at.map(n)),
    ];
    let mut clauses = vec!["attribute_exists(#phone)".to_owned()];
    let mut request = request.expression_attribute_names("#phone", "phone");
    for (name, value) in read_values {
        request = request.expression_attribute_names(format!("#{name}"), name);
        match value {
            Some(value) => {
                clauses.push(format!("#{name} = :read_{name}"));
                request = request.expression_attribute_values(format!(":read_{name}"), value);
            }
            None => clauses.push(format!("attribute_not_exists(#{name})")),
        }
    }
    request.condition_expression(clauses.join(" AND "))
}

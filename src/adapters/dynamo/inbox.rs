//! The DynamoDB adapter of the Inbox table (DESIGN.md, "Conversations"): the parents'
//! replies, put once, read by phone or through `by-campaign`, erased by `missive forget`.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, WriteRequest};
use aws_sdk_dynamodb::Client;

use super::update::s;
use crate::adapters::describe;
use crate::domain::inbox::InboxItem;
use crate::ports::{Inbox, StoreError};
use crate::schema::INBOX_BY_CAMPAIGN_INDEX;

/// `BatchWriteItem` takes at most 25 requests.
const BATCH_WRITE_ITEMS: usize = 25;
/// Unprocessed deletes are sent again this many times.
const BATCH_WRITE_ATTEMPTS: usize = 5;

/// The Inbox table.
#[derive(Clone)]
pub struct DynamoInbox {
    client: Client,
    table: String,
}

impl DynamoInbox {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoInbox { client, table: table.into() }
    }

    /// Every item of a Query (`#k = :k` on the table or on `index`), page after page, in
    /// sort-key order.
    async fn query_all(&self, index: Option<&str>, key: &str, value: &str) -> Result<Vec<InboxItem>, StoreError> {
        let operation = if index.is_some() { "Query Inbox by-campaign" } else { "Query Inbox" };
        let mut items = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .set_index_name(index.map(str::to_owned))
                .key_condition_expression("#k = :k")
                .expression_attribute_names("#k", key)
                .expression_attribute_values(":k", s(value))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| StoreError::new(operation, describe(&e)))?;
            let page: Vec<InboxItem> = serde_dynamo::aws_sdk_dynamodb_1::from_items(output.items.unwrap_or_default())
                .map_err(|e| StoreError::new("decode Inbox item", e))?;
            items.extend(page);
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(items),
            }
        }
    }
}

#[async_trait]
impl Inbox for DynamoInbox {
    async fn put_once(&self, item: &InboxItem) -> Result<bool, StoreError> {
        let mut attributes: HashMap<String, AttributeValue> =
            serde_dynamo::aws_sdk_dynamodb_1::to_item(item).map_err(|e| StoreError::new("encode Inbox item", e))?;
        // An absent attribute, not a NULL: `by-campaign` is sparse on `campaign`.
        attributes.retain(|_, value| !matches!(value, AttributeValue::Null(_)));
        let written = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(attributes))
            .condition_expression("attribute_not_exists(phone)")
            .send()
            .await;
        match written {
            Ok(_) => Ok(true),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(false),
            Err(err) => Err(StoreError::new("PutItem Inbox", describe(&err))),
        }
    }

    async fn for_phone(&self, phone: &str) -> Result<Vec<InboxItem>, StoreError> {
        self.query_all(None, "phone", phone).await
    }

    async fn for_campaign(&self, campaign: &str) -> Result<Vec<InboxItem>, StoreError> {
        self.query_all(Some(INBOX_BY_CAMPAIGN_INDEX), "campaign", campaign).await
    }

    async fn forget_phone(&self, phone: &str) -> Result<usize, StoreError> {
        let items = self.for_phone(phone).await?;
        for chunk in items.chunks(BATCH_WRITE_ITEMS) {
            let mut pending: Vec<WriteRequest> = chunk
                .iter()
                .map(|item| {
                    let key = HashMap::from([
                        ("phone".to_owned(), s(&item.phone)),
                        ("received_at_sid".to_owned(), s(&item.received_at_sid)),
                    ]);
                    let delete = DeleteRequest::builder()
                        .set_key(Some(key))
                        .build()
                        .map_err(|e| StoreError::new("BatchWriteItem Inbox", e))?;
                    Ok(WriteRequest::builder().delete_request(delete).build())
                })
                .collect::<Result<_, StoreError>>()?;
            for _ in 0..BATCH_WRITE_ATTEMPTS {
                if pending.is_empty() {
                    break;
                }
                let output = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, std::mem::take(&mut pending))
                    .send()
                    .await
                    .map_err(|e| StoreError::new("BatchWriteItem Inbox", describe(&e)))?;
                pending = output.unprocessed_items.and_then(|mut left| left.remove(&self.table)).unwrap_or_default();
            }
            if !pending.is_empty() {
                return Err(StoreError::new("BatchWriteItem Inbox", "deletes left unprocessed after five attempts"));
            }
        }
        Ok(items.len())
    }
}

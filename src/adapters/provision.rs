//! Creates the tables and queues from the definitions in [`crate::schema`]: for the tests,
//! the local pipeline and the CLI's `setup` (the SAM template creates them on AWS).

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType as DynamoKeyType,
    Projection as DynamoProjection, ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;

use super::describe;
use crate::ports::StoreError;
use crate::schema::{KeyType, Projection, TableDef};

/// How many receives before a message goes to the DLQ.
pub const MAX_RECEIVE_COUNT: u32 = 5;

fn attribute_type(key: KeyType) -> ScalarAttributeType {
    match key {
        KeyType::String => ScalarAttributeType::S,
        KeyType::Number => ScalarAttributeType::N,
    }
}

fn key(name: &str, kind: DynamoKeyType) -> KeySchemaElement {
    KeySchemaElement::builder().attribute_name(name).key_type(kind).build().expect("name and type are set")
}

/// Creates `name` with the keys, indexes and TTL of `def`, on-demand.
pub async fn create_table(client: &aws_sdk_dynamodb::Client, name: &str, def: &TableDef) -> Result<(), StoreError> {
    let mut attributes = vec![def.partition];
    attributes.extend(def.sort);
    for index in def.indexes {
        attributes.push(index.partition);
        attributes.push(index.sort);
    }
    attributes.sort_by_key(|(attr, _)| *attr);
    attributes.dedup_by_key(|(attr, _)| *attr);
    let mut request = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key(def.partition.0, DynamoKeyType::Hash));
    if let Some((sort, _)) = def.sort {
        request = request.key_schema(key(sort, DynamoKeyType::Range));
    }
    for (attr, kind) in attributes {
        request = request.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(attr)
                .attribute_type(attribute_type(kind))
                .build()
                .expect("set"),
        );
    }
    for index in def.indexes {
        let projection = match index.projection {
            Projection::All => DynamoProjection::builder().projection_type(ProjectionType::All).build(),
            Projection::Include(attrs) => DynamoProjection::builder()
                .projection_type(ProjectionType::Include)
                .set_non_key_attributes(Some(attrs.iter().map(|a| a.to_string()).collect()))
                .build(),
        };
        request = request.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(index.name)
                .key_schema(key(index.partition.0, DynamoKeyType::Hash))
                .key_schema(key(index.sort.0, DynamoKeyType::Range))
                .projection(projection)
                .build()
                .expect("name, keys and projection are set"),
        );
    }
    request.send().await.map_err(|e| StoreError::new("CreateTable", describe(&e)))?;
    if let Some(ttl) = def.ttl_attribute {
        client
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder().attribute_name(ttl).enabled(true).build().expect("set"),
            )
            .send()
            .await
            .map_err(|e| StoreError::new("UpdateTimeToLive", describe(&e)))?;
    }
    Ok(())
}

/// The send queue and its dead-letter queue.
#[derive(Debug, Clone)]
pub struct Queues {
    pub queue_url: String,
    pub dlq_url: String,
}

/// Creates `name` and `name-dlq`, with a redrive after [`MAX_RECEIVE_COUNT`] receives.
pub async fn create_queues(
    client: &aws_sdk_sqs::Client,
    name: &str,
    visibility_timeout_seconds: u32,
) -> Result<Queues, StoreError> {
    let dlq_url = client
        .create_queue()
        .queue_name(format!("{name}-dlq"))
        .attributes(QueueAttributeName::MessageRetentionPeriod, "1209600")
        .send()
        .await
        .map_err(|e| StoreError::new("CreateQueue", describe(&e)))?
        .queue_url
        .unwrap_or_default();
    let dlq_arn = client
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| StoreError::new("GetQueueAttributes", describe(&e)))?
        .attributes
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .unwrap_or_default();
    let redrive = serde_json::json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE_COUNT}).to_string();
    let queue_url = client
        .create_queue()
        .queue_name(name)
        .attributes(QueueAttributeName::VisibilityTimeout, visibility_timeout_seconds.to_string())
        .attributes(QueueAttributeName::RedrivePolicy, redrive)
        .send()
        .await
        .map_err(|e| StoreError::new("CreateQueue", describe(&e)))?
        .queue_url
        .unwrap_or_default();
    Ok(Queues { queue_url, dlq_url })
}

//! A campaign's items, through the `by-campaign` index (which projects what `report` and
//! `failures` show, and no phone number).

use aws_sdk_dynamodb::types::AttributeValue;
use missive::schema::BY_CAMPAIGN_INDEX;
use serde::Serialize;

use crate::error::{CliError, CliResult};
use crate::item_attrs::{number, text, Item};

/// One item as the index shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CampaignItem {
    pub message_id: String,
    pub status: String,
    pub twilio_status: Option<String>,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub last_error_code: Option<u32>,
    pub updated_at: Option<i64>,
}

impl CampaignItem {
    fn from_item(item: &Item) -> Self {
        CampaignItem {
            message_id: text(item, "message_id").unwrap_or_default(),
            status: text(item, "status").unwrap_or_else(|| "unknown".into()),
            twilio_status: text(item, "twilio_status"),
            attempts: number(item, "attempts").unwrap_or(0),
            last_error: text(item, "last_error"),
            last_error_code: number(item, "last_error_code"),
            updated_at: number(item, "updated_at"),
        }
    }
}

/// Every item of `campaign` (page after page), only those in `statuses` when given;
/// `page_size` caps each page (DynamoDB's own cap is 1 MB).
pub async fn items(
    dynamo: &aws_sdk_dynamodb::Client,
    table: &str,
    campaign: &str,
    statuses: Option<&[&str]>,
    page_size: Option<i32>,
) -> CliResult<Vec<CampaignItem>> {
    let mut query = dynamo
        .query()
        .table_name(table)
        .index_name(BY_CAMPAIGN_INDEX)
        .set_limit(page_size)
        .key_condition_expression("#campaign = :campaign")
        .expression_attribute_names("#campaign", "campaign")
        .expression_attribute_values(":campaign", AttributeValue::S(campaign.to_owned()));
    if let Some(statuses) = statuses {
        let placeholders: Vec<String> = (0..statuses.len()).map(|i| format!(":s{i}")).collect();
        query = query
            .filter_expression(format!("#status IN ({})", placeholders.join(", ")))
            .expression_attribute_names("#status", "status");
        for (placeholder, status) in placeholders.iter().zip(statuses) {
            query = query.expression_attribute_values(placeholder, AttributeValue::S((*status).to_owned()));
        }
    }
    let mut pages = query.into_paginator().items().send();
    let mut found = Vec::new();
    while let Some(item) = pages.next().await {
        let item = item.map_err(|e| CliError::aws(&format!("Query {table} index {BY_CAMPAIGN_INDEX}"), &e))?;
        found.push(CampaignItem::from_item(&item));
    }
    Ok(found)
}

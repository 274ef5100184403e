//! The DynamoDB adapter of the sweep's port: the sparse `retry-due` index, and the sweep's
//! conditional takes.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;

use super::message_log::DynamoMessageLog;
use super::update::{n, s, Update};
use crate::adapters::describe;
use crate::domain::status::Status;
use crate::ports::{Conditional, DueCursor, LogItem, RetryIndex, StoreError, SweepAction};
use crate::schema::RETRY_DUE_INDEX;

/// Items per `retry-due` Query page (its `Limit`) unless [`RetryDueIndex::with_page_size`]
/// says otherwise.
/// Without a `Limit`, one page holds up to 1 MB of items (thousands after an outage), all read
/// before the sweep can stop; with it, a run that ends at its deadline has read little more
/// than it worked.
pub const DEFAULT_DUE_PAGE_SIZE: u32 = 100;

/// The sweep's port over a MessageLog table: its `retry-due` index, read `page_size` items per
/// Query (a test of the paging chooses a small one), and the conditional takes.
#[derive(Clone)]
pub struct RetryDueIndex {
    log: DynamoMessageLog,
    page_size: u32,
}

impl RetryDueIndex {
    pub fn new(log: DynamoMessageLog) -> Self {
        RetryDueIndex { log, page_size: DEFAULT_DUE_PAGE_SIZE }
    }

    /// At least 1: a Query `Limit` of 0 is refused.
    pub fn with_page_size(mut self, page_size: u32) -> Self {
        self.page_size = page_size.max(1);
        self
    }
}

#[async_trait]
impl RetryIndex for RetryDueIndex {
    async fn due_page(
        &self,
        shard: u32,
        now: i64,
        after: Option<DueCursor>,
    ) -> Result<(Vec<LogItem>, Option<DueCursor>), StoreError> {
        query_due_page(&self.log, shard, now, after, self.page_size).await
    }

    async fn sweep_take(
        &self,
        item: &LogItem,
        action: SweepAction,
        now: i64,
        reschedule_at: i64,
    ) -> Result<bool, StoreError> {
        take_due_item(&self.log, item, action, now, reschedule_at).await
    }
}

/// One page of shard `shard`'s due items, at most `page_size`, after `after`.
async fn query_due_page(
    log: &DynamoMessageLog,
    shard: u32,
    now: i64,
    after: Option<DueCursor>,
    page_size: u32,
) -> Result<(Vec<LogItem>, Option<DueCursor>), StoreError> {
    let start_key = after.map(|cursor| {
        [
            ("message_id".to_owned(), s(cursor.message_id)),
            ("retry_shard".to_owned(), n(shard)),
            ("retry_due_at".to_owned(), n(cursor.retry_due_at)),
        ]
        .into()
    });
    let output = log
        .client()
        .query()
        .table_name(log.table())
        .index_name(RETRY_DUE_INDEX)
        .key_condition_expression("#shard = :shard AND #due <= :now")
        .expression_attribute_names("#shard", "retry_shard")
        .expression_attribute_names("#due", "retry_due_at")
        .expression_attribute_values(":shard", n(shard))
        .expression_attribute_values(":now", n(now))
        .limit(i32::try_from(page_size).unwrap_or(i32::MAX).max(1))
        .set_exclusive_start_key(start_key)
        .send()
        .await
        .map_err(|e| StoreError::new("Query retry-due", describe(&e)))?;
    let items: Vec<LogItem> = serde_dynamo::aws_sdk_dynamodb_1::from_items(output.items.unwrap_or_default())
        .map_err(|e| StoreError::new("decode MessageLog item", e))?;
    let cursor = output.last_evaluated_key.and_then(|key| match (key.get("message_id"), key.get("retry_due_at")) {
        (Some(AttributeValue::S(id)), Some(AttributeValue::N(due))) => {
            Some(DueCursor { message_id: id.clone(), retry_due_at: due.parse().ok()? })
        }
        _ => None,
    });
    Ok((items, cursor))
}

/// The sweep's conditional write of `action` on `item` as read (DESIGN.md, "Retry sweep",
/// step 2): the condition repeats the values read, so a sweep never takes an item that a
/// `send` or another sweep took meanwhile.
async fn take_due_item(
    log: &DynamoMessageLog,
    item: &LogItem,
    action: SweepAction,
    now: i64,
    reschedule_at: i64,
) -> Result<bool, StoreError> {
    let (Some(status), Some(read_due)) = (item.status, item.retry_due_at) else { return Ok(false) };
    let update = Update::new().value(":read_status", s(status.as_str())).value(":read_due", n(read_due));
    let base = "#status = :read_status AND retry_due_at = :read_due";
    let (update, condition) = match action {
        SweepAction::Reschedule => {
            (update.set("retry_due_at", n(reschedule_at)).set("updated_at", n(now)), base.to_owned())
        }
        SweepAction::MarkInDoubt => {
            let update = update
                .set("status", s(Status::InDoubt.as_str()))
                .set("next_attempt_at", n(now))
                .set("retry_due_at", n(reschedule_at))
                .set("last_error", s("the sending invocation stopped before recording an outcome (in doubt)"))
                .set("updated_at", n(now))
                .remove(&["lease_owner", "lease_until"])
                .value(":read_owner", s(item.lease_owner.clone().unwrap_or_default()))
                .value(":now", n(now));
            (update, format!("{base} AND lease_owner = :read_owner AND lease_until < :now"))
        }
        SweepAction::FollowLease => {
            let Some(lease_until) = item.lease_until else { return Ok(false) };
            let update = update
                .set("retry_due_at", n(lease_until))
                .value(":read_owner", s(item.lease_owner.clone().unwrap_or_default()))
                .value(":now", n(now));
            (update, format!("{base} AND lease_owner = :read_owner AND lease_until >= :now"))
        }
    };
    let written = update.run(log.client(), log.table(), &item.message_id, &condition).await?;
    Ok(matches!(written, Conditional::Applied(_)))
}

//! The sweep's view of MessageLog: the sparse `retry-due` index and the sweep's takes.

use async_trait::async_trait;

use super::StoreError;
use crate::domain::item::LogItem;
use crate::domain::sweep::SweepAction;

/// Where a page of the `retry-due` index ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueCursor {
    pub message_id: String,
    pub retry_due_at: i64,
}

/// The sweep's view of MessageLog: the sparse `retry-due` index.
#[async_trait]
pub trait RetryIndex: Send + Sync {
    /// One page of shard `shard`'s items with `retry_due_at <= now`, in `retry_due_at` order.
    async fn due_page(
        &self,
        shard: u32,
        now: i64,
        after: Option<DueCursor>,
    ) -> Result<(Vec<LogItem>, Option<DueCursor>), StoreError>;

    /// The conditional write of `action` on `item` as read; `false` when another sweep or a
    /// `send` took it meanwhile.
    async fn sweep_take(
        &self,
        item: &LogItem,
        action: SweepAction,
        now: i64,
        reschedule_at: i64,
    ) -> Result<bool, StoreError>;
}

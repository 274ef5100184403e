//! The retry sweep's decision for an item it read as due (DESIGN.md, "Retry sweep", step 2).

use super::item::LogItem;
use super::status::Status;

/// What the sweep does to an item it read as due; the write repeats the values read, so it
/// applies only if nothing took the item meanwhile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SweepAction {
    /// `retrying`, `in_doubt` or `scheduled`: push `retry_due_at` forward, then enqueue.
    Reschedule,
    /// `sending` with an expired lease: its taker died; make it `in_doubt`, then enqueue.
    MarkInDoubt,
    /// `sending` with a live lease: due again when the lease ends; nothing enqueued.
    FollowLease,
}

/// Which write the sweep makes for an item as read; `None` for a final item (one left in the
/// index would be a writer's bug: nothing to re-enqueue).
pub fn action_for(item: &LogItem, now: i64) -> Option<SweepAction> {
    match item.status? {
        Status::Retrying | Status::InDoubt | Status::Scheduled => Some(SweepAction::Reschedule),
        Status::Sending if item.lease_until.is_some_and(|until| until < now) => Some(SweepAction::MarkInDoubt),
        Status::Sending => Some(SweepAction::FollowLease),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(status: Status, lease_until: Option<i64>) -> LogItem {
        LogItem { status: Some(status), lease_until, ..LogItem::default() }
    }

    #[test]
    fn the_action_follows_the_status_and_the_lease() {
        assert_eq!(action_for(&item(Status::Retrying, None), 100), Some(SweepAction::Reschedule));
        assert_eq!(action_for(&item(Status::InDoubt, None), 100), Some(SweepAction::Reschedule));
        assert_eq!(action_for(&item(Status::Scheduled, None), 100), Some(SweepAction::Reschedule));
        assert_eq!(action_for(&item(Status::Sending, Some(99)), 100), Some(SweepAction::MarkInDoubt));
        assert_eq!(action_for(&item(Status::Sending, Some(100)), 100), Some(SweepAction::FollowLease));
        for status in Status::ALL.into_iter().filter(|s| s.is_final()) {
            assert_eq!(action_for(&item(status, None), 100), None, "{status}");
        }
        assert_eq!(action_for(&LogItem::default(), 100), None);
    }
}

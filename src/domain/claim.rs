//! The lease on a MessageLog item (DESIGN.md, "The send path", steps 3 and 3b): when a take
//! may be made, and what a refused claim means.
//!
//! The predicates here state the conditions of the claim writes in the domain's terms; the
//! DynamoDB adapter writes the same conditions as expressions, the in-memory adapter
//! evaluates these, and the adapter contract suite holds the two together.

use super::backoff::{delay_until, MAX_DELAY_SECONDS};
use super::item::{state_of, ItemState, LogItem};
use super::status::Status;

/// A take of an item: who holds the lease, from when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Take {
    /// A random token per take.
    pub owner: String,
    pub now: i64,
    pub lease_until: i64,
    /// "Due" means at most this (`now + CLOCK_SKEW_SECONDS`).
    pub due: i64,
}

/// Step 3's condition: no item yet, or a `retrying` or `scheduled` item that is due.
pub fn may_claim(item: Option<&LogItem>, due: i64) -> bool {
    match state_of(item) {
        ItemState::Absent => true,
        ItemState::Waiting { status: Status::Retrying | Status::Scheduled, next_attempt_at } => {
            next_attempt_at.is_some_and(|at| at <= due)
        }
        _ => false,
    }
}

/// Step 3b's condition: an `in_doubt` item that is due, or a `sending` item whose lease has
/// expired (its taker died).
pub fn may_reconcile_claim(item: Option<&LogItem>, due: i64, now: i64) -> bool {
    let Some(item) = item else { return false };
    match item.status {
        Some(Status::InDoubt) => item.next_attempt_at.is_some_and(|at| at <= due),
        Some(Status::Sending) => item.lease_until.is_some_and(|until| until < now),
        _ => false,
    }
}

/// What a refused claim means, read from the item as it was (`ALL_OLD`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimConflict {
    /// The item vanished between the condition and now (TTL, an erasure): SQS delivers again.
    Vanished,
    /// The message is final: a duplicate delivery, acknowledged.
    Duplicate(Status),
    /// Another taker holds a live lease (the sweep covers its death): acknowledged.
    HeldElsewhere,
    /// This copy came before `next_attempt_at`: send a copy delayed by this many seconds.
    Early { delay_seconds: u32 },
    /// A copy of a `scheduled` message whose time is further than SQS can delay (15 min):
    /// acknowledged; the sweep brings the message back at its time (`retry_due_at`), so that
    /// a message held for days is not a chain of copies every 15 minutes.
    HeldForLater,
    /// `in_doubt` and due, or a lease that expired: reconcile (step 3b).
    Reconcile,
    /// Taken by another invocation meanwhile (a reconcile claim that lost): acknowledged.
    TakenMeanwhile(Status),
}

/// Why a claim was refused, and what to do. `may_reconcile` is false after a reconcile
/// claim was itself refused: a second reconcile is never chained.
pub fn claim_conflict(old: Option<&LogItem>, now: i64, due: i64, may_reconcile: bool) -> ClaimConflict {
    match state_of(old) {
        ItemState::Absent => ClaimConflict::Vanished,
        ItemState::Final(status) => ClaimConflict::Duplicate(status),
        ItemState::Sending { lease_until: Some(until), .. } if until >= now => ClaimConflict::HeldElsewhere,
        ItemState::Waiting { status: Status::Scheduled, next_attempt_at: Some(at) }
            if at > now + MAX_DELAY_SECONDS as i64 =>
        {
            ClaimConflict::HeldForLater
        }
        ItemState::Waiting { next_attempt_at: Some(at), .. } if at > due => {
            ClaimConflict::Early { delay_seconds: delay_until(at, now) }
        }
        ItemState::Waiting { status: Status::InDoubt, .. } | ItemState::Sending { .. } if may_reconcile => {
            ClaimConflict::Reconcile
        }
        ItemState::Waiting { status, .. } => ClaimConflict::TakenMeanwhile(status),
        ItemState::Sending { .. } => ClaimConflict::TakenMeanwhile(Status::Sending),
    }
}

/// Whether a refused claim or reconcile claim shows that our own take already applied (the
/// SDK retried a write whose first try had applied).
pub fn shows_own_take(old: Option<&LogItem>, take: &Take) -> bool {
    old.is_some_and(|old| old.lease_owner.as_deref() == Some(take.owner.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;
    const DUE: i64 = NOW + 5;

    fn item(status: Status) -> LogItem {
        LogItem { message_id: "m".into(), status: Some(status), ..LogItem::default() }
    }

    fn waiting(status: Status, next_attempt_at: i64) -> LogItem {
        LogItem { next_attempt_at: Some(next_attempt_at), ..item(status) }
    }

    fn sending(lease_until: i64) -> LogItem {
        LogItem { lease_owner: Some("other".into()), lease_until: Some(lease_until), ..item(Status::Sending) }
    }

    #[test]
    fn the_claim_conflict_table() {
        let cases: Vec<(Option<LogItem>, bool, ClaimConflict)> = vec![
            (None, true, ClaimConflict::Vanished),
            (Some(item(Status::Sent)), true, ClaimConflict::Duplicate(Status::Sent)),
            (Some(item(Status::Failed)), true, ClaimConflict::Duplicate(Status::Failed)),
            (Some(item(Status::Rejected)), true, ClaimConflict::Duplicate(Status::Rejected)),
            (Some(sending(NOW)), true, ClaimConflict::HeldElsewhere),
            (Some(sending(NOW + 60)), true, ClaimConflict::HeldElsewhere),
            (Some(sending(NOW - 1)), true, ClaimConflict::Reconcile),
            (Some(sending(NOW - 1)), false, ClaimConflict::TakenMeanwhile(Status::Sending)),
            (Some(waiting(Status::Retrying, NOW + 100)), true, ClaimConflict::Early { delay_seconds: 100 }),
            (Some(waiting(Status::Scheduled, NOW + 900)), true, ClaimConflict::Early { delay_seconds: 900 }),
            (Some(waiting(Status::Scheduled, NOW + 901)), true, ClaimConflict::HeldForLater),
            (Some(waiting(Status::Scheduled, NOW)), true, ClaimConflict::TakenMeanwhile(Status::Scheduled)),
            (Some(item(Status::Cancelled)), true, ClaimConflict::Duplicate(Status::Cancelled)),
            (Some(waiting(Status::InDoubt, NOW + 5000)), true, ClaimConflict::Early { delay_seconds: 900 }),
            (Some(waiting(Status::InDoubt, DUE)), true, ClaimConflict::Reconcile),
            (Some(waiting(Status::InDoubt, NOW - 10)), false, ClaimConflict::TakenMeanwhile(Status::InDoubt)),
            // A due retrying item refused the claim: another invocation took it meanwhile.
            (Some(waiting(Status::Retrying, NOW)), true, ClaimConflict::TakenMeanwhile(Status::Retrying)),
        ];
        for (old, may_reconcile, expected) in cases {
            assert_eq!(claim_conflict(old.as_ref(), NOW, DUE, may_reconcile), expected, "{old:?} {may_reconcile}");
        }
    }

    #[test]
    fn the_claim_conditions() {
        assert!(may_claim(None, DUE));
        assert!(may_claim(Some(&waiting(Status::Retrying, DUE)), DUE));
        assert!(!may_claim(Some(&waiting(Status::Retrying, DUE + 1)), DUE));
        assert!(may_claim(Some(&waiting(Status::Scheduled, DUE)), DUE));
        assert!(!may_claim(Some(&waiting(Status::Scheduled, DUE + 1)), DUE));
        assert!(!may_claim(Some(&waiting(Status::InDoubt, NOW)), DUE));
        assert!(!may_claim(Some(&item(Status::Sent)), DUE));
        assert!(!may_claim(Some(&sending(NOW - 1)), DUE));

        assert!(!may_reconcile_claim(None, DUE, NOW));
        assert!(may_reconcile_claim(Some(&waiting(Status::InDoubt, DUE)), DUE, NOW));
        assert!(!may_reconcile_claim(Some(&waiting(Status::InDoubt, DUE + 1)), DUE, NOW));
        assert!(may_reconcile_claim(Some(&sending(NOW - 1)), DUE, NOW));
        assert!(!may_reconcile_claim(Some(&sending(NOW)), DUE, NOW));
        assert!(!may_reconcile_claim(Some(&waiting(Status::Retrying, NOW)), DUE, NOW));
    }

    #[test]
    fn an_own_take_is_recognised_by_its_owner_token() {
        let take = Take { owner: "me".into(), now: NOW, lease_until: NOW + 120, due: DUE };
        let mine = LogItem { lease_owner: Some("me".into()), ..item(Status::Sending) };
        assert!(shows_own_take(Some(&mine), &take));
        assert!(!shows_own_take(Some(&sending(NOW + 60)), &take));
        assert!(!shows_own_take(None, &take));
    }
}

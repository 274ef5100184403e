//! The MessageLog table in memory: the send path's writes, the `retry-due` index and the
//! status callback's write, each under the same condition as its DynamoDB expression (stated
//! once in the domain where it is a decision: `domain::claim`, `EarlyFinal::may_replace`,
//! `StatusReport::applies_to`), all of one write under one lock as DynamoDB makes it atomic.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::faults::Faults;
use crate::domain::claim::{may_claim, may_reconcile_claim, Take};
use crate::domain::inbox::RecentItem;
use crate::domain::item::{retry_shard, ContentKind, ItemIdentity, LogItem};
use crate::domain::message::MessageId;
use crate::domain::outcome::{EarlyFinal, GiveBack, Outcome};
use crate::domain::phone::PhoneNumber;
use crate::domain::schedule::Hold;
use crate::domain::status::{twilio_rank, Status};
use crate::domain::sweep::SweepAction;
use crate::ports::{
    CallbackWrite, Conditional, DueCursor, MessageLog, RetryIndex, StatusCallbackLog, StatusReport, StoreError,
};

/// The text the sweep writes on an item whose taker died.
const TAKER_DIED: &str = "the sending invocation stopped before recording an outcome (in doubt)";

/// The MessageLog table in memory. `Clone` shares the table.
#[derive(Debug, Clone)]
pub struct MemoryMessageLog {
    items: Arc<Mutex<BTreeMap<String, LogItem>>>,
    page_size: usize,
    pub faults: Arc<Faults>,
}

impl Default for MemoryMessageLog {
    fn default() -> Self {
        MemoryMessageLog { items: Arc::default(), page_size: 100, faults: Arc::default() }
    }
}

/// Removes the attributes present only while an item is in flight.
fn leave_flight(item: &mut LogItem) {
    item.lease_owner = None;
    item.lease_until = None;
    item.retry_shard = None;
    item.retry_due_at = None;
    item.next_attempt_at = None;
}

/// `if_not_exists` on the fields every first write sets.
fn with_identity(item: &mut LogItem, identity: &ItemIdentity, now: i64, retention_days: i64) {
    item.created_at.get_or_insert(now);
    item.expires_at.get_or_insert(now + retention_days * 86_400);
    item.max_attempts.get_or_insert(identity.max_attempts);
    if let Some(phone) = &identity.phone {
        item.phone.get_or_insert_with(|| phone.as_str().to_owned());
    }
    if let Some(campaign) = &identity.campaign {
        item.campaign.get_or_insert_with(|| campaign.clone());
    }
    if let Some(recipient_id) = &identity.recipient_id {
        item.recipient_id.get_or_insert_with(|| recipient_id.clone());
    }
    if let Some(request) = &identity.request {
        item.request.get_or_insert_with(|| request.clone());
    }
    if let Some(requested_by) = &identity.requested_by {
        item.requested_by.get_or_insert_with(|| requested_by.clone());
    }
}

/// No item, or one waiting for its next take (`retrying`, `scheduled`): what a hold or a
/// cancel, skip or expiry may replace.
fn new_or_waiting(item: Option<&LogItem>) -> bool {
    item.is_none_or(|item| matches!(item.status, Some(Status::Retrying | Status::Scheduled)))
}

fn add_sid(item: &mut LogItem, sid: &str) {
    let sids = item.extra_sids.get_or_insert_with(Vec::new);
    if !sids.iter().any(|held| held == sid) {
        sids.push(sid.to_owned());
        sids.sort();
    }
}

impl MemoryMessageLog {
    pub fn new() -> Self {
        MemoryMessageLog::default()
    }

    /// `retry-due` pages of at most `page_size` items.
    pub fn with_page_size(mut self, page_size: usize) -> Self {
        self.page_size = page_size.max(1);
        self
    }

    /// Puts an item as it is (a test's set-up).
    pub fn insert(&self, item: LogItem) {
        self.items.lock().expect("log lock").insert(item.message_id.clone(), item);
    }

    /// Every item, in `message_id` order.
    pub fn items(&self) -> Vec<LogItem> {
        self.items.lock().expect("log lock").values().cloned().collect()
    }

    /// The conditional write at the heart of every operation: `apply` runs on the item (a new
    /// one, keyed `message_id`, when absent and `create` is true) only if `condition` holds of
    /// it as it is.
    fn write(
        &self,
        message_id: &str,
        condition: impl FnOnce(Option<&LogItem>) -> bool,
        create: bool,
        apply: impl FnOnce(&mut LogItem),
    ) -> Conditional {
        let mut items = self.items.lock().expect("log lock");
        let old = items.get(message_id).cloned();
        if !condition(old.as_ref()) || (old.is_none() && !create) {
            return Conditional::Refused(old);
        }
        let item = items
            .entry(message_id.to_owned())
            .or_insert_with(|| LogItem { message_id: message_id.to_owned(), ..LogItem::default() });
        apply(item);
        Conditional::Applied(item.clone())
    }
}

#[async_trait]
impl MessageLog for MemoryMessageLog {
    async fn get(&self, message_id: &str) -> Result<Option<LogItem>, StoreError> {
        self.faults.before("get", message_id).await?;
        Ok(self.items.lock().expect("log lock").get(message_id).cloned())
    }

    async fn record_early_final(
        &self,
        identity: &ItemIdentity,
        kind: EarlyFinal,
        reason: &str,
        now: i64,
        retention_days: i64,
    ) -> Result<Conditional, StoreError> {
        self.faults.before("record_early_final", identity.message_id.as_str()).await?;
        let condition =
            |item: Option<&LogItem>| item.is_none_or(|item| item.status.is_some_and(|s| kind.may_replace(s)));
        Ok(self.write(identity.message_id.as_str(), condition, true, |item| {
            item.status = Some(kind.status());
            item.last_error = Some(reason.to_owned());
            item.updated_at = Some(now);
            leave_flight(item);
            with_identity(item, identity, now, retention_days);
        }))
    }

    async fn hold(
        &self,
        identity: &ItemIdentity,
        hold: &Hold,
        now: i64,
        retention_days: i64,
    ) -> Result<Conditional, StoreError> {
        self.faults.before("hold", identity.message_id.as_str()).await?;
        let id = identity.message_id.as_str();
        Ok(self.write(id, new_or_waiting, true, |item| {
            item.status = Some(Status::Scheduled);
            item.next_attempt_at = Some(hold.until);
            item.retry_shard = Some(retry_shard(id));
            item.retry_due_at = Some(hold.until);
            item.released_at = Some(hold.until);
            item.updated_at = Some(now);
            item.lease_owner = None;
            item.lease_until = None;
            with_identity(item, identity, now, retention_days);
        }))
    }

    async fn claim(
        &self,
        identity: &ItemIdentity,
        take: &Take,
        content_kind: ContentKind,
        retention_days: i64,
    ) -> Result<Conditional, StoreError> {
        self.faults.before("claim", identity.message_id.as_str()).await?;
        let id = identity.message_id.as_str();
        Ok(self.write(
            id,
            |item| may_claim(item, take.due),
            true,
            |item| {
                item.content_kind = Some(content_kind);
                item.status = Some(Status::Sending);
                item.lease_owner = Some(take.owner.clone());
                item.lease_until = Some(take.lease_until);
                item.retry_shard = Some(retry_shard(id));
                item.retry_due_at = Some(take.lease_until);
                item.attempt_started_at = Some(take.now);
                item.updated_at = Some(take.now);
                item.attempts += 1;
                item.next_attempt_at = None;
                with_identity(item, identity, take.now, retention_days);
            },
        ))
    }

    async fn reconcile_claim(&self, message_id: &MessageId, take: &Take) -> Result<Conditional, StoreError> {
        self.faults.before("reconcile_claim", message_id.as_str()).await?;
        let id = message_id.as_str();
        Ok(self.write(
            id,
            |item| may_reconcile_claim(item, take.due, take.now),
            false,
            |item| {
                item.status = Some(Status::Sending);
                item.lease_owner = Some(take.owner.clone());
                item.lease_until = Some(take.lease_until);
                item.retry_shard = Some(retry_shard(id));
                item.retry_due_at = Some(take.lease_until);
                item.updated_at = Some(take.now);
                item.next_attempt_at = None;
            },
        ))
    }

    async fn record_new_attempt(
        &self,
        message_id: &MessageId,
        take: &Take,
        seen_attempts: u32,
        content_kind: ContentKind,
    ) -> Result<Conditional, StoreError> {
        self.faults.before("record_new_attempt", message_id.as_str()).await?;
        let condition = |item: Option<&LogItem>| {
            item.is_some_and(|i| i.lease_owner.as_deref() == Some(take.owner.as_str()) && i.attempts == seen_attempts)
        };
        Ok(self.write(message_id.as_str(), condition, false, |item| {
            item.attempts = seen_attempts + 1;
            item.content_kind = Some(content_kind);
            item.attempt_started_at = Some(take.now);
            item.updated_at = Some(take.now);
        }))
    }

    async fn record_outcome(
        &self,
        message_id: &MessageId,
        owner: &str,
        outcome: &Outcome,
        now: i64,
    ) -> Result<Conditional, StoreError> {
        self.faults.before("record_outcome", message_id.as_str()).await?;
        let condition = |item: Option<&LogItem>| item.is_some_and(|i| i.lease_owner.as_deref() == Some(owner));
        Ok(self.write(message_id.as_str(), condition, false, |item| {
            item.status = Some(outcome.status());
            item.updated_at = Some(now);
            match outcome {
                Outcome::Accepted { sid, twilio_status } => {
                    item.twilio_sid = Some(sid.clone());
                    item.twilio_status = Some(twilio_status.clone());
                    item.twilio_rank = Some(twilio_rank(twilio_status).unwrap_or(1));
                    item.sent_at.get_or_insert(now);
                    if matches!(twilio_status.as_str(), "delivered" | "read") {
                        item.delivered_at.get_or_insert(now);
                    }
                    if twilio_status == "read" {
                        item.read_at.get_or_insert(now);
                    }
                    leave_flight(item);
                }
                Outcome::Retrying { last_error, last_error_code, next_attempt_at, retry_due_at, give_back } => {
                    item.last_error = Some(last_error.clone());
                    item.last_error_code = *last_error_code;
                    item.next_attempt_at = Some(*next_attempt_at);
                    item.retry_due_at = Some(*retry_due_at);
                    item.lease_owner = None;
                    item.lease_until = None;
                    match give_back {
                        GiveBack::No => {}
                        GiveBack::Answered => {
                            item.attempts = item.attempts.saturating_sub(1);
                            item.throttled += 1;
                        }
                        GiveBack::NotStarted => item.attempts = item.attempts.saturating_sub(1),
                    }
                }
                Outcome::InDoubt { last_error, next_attempt_at, retry_due_at } => {
                    item.last_error = Some(last_error.clone());
                    item.next_attempt_at = Some(*next_attempt_at);
                    item.retry_due_at = Some(*retry_due_at);
                    item.lease_owner = None;
                    item.lease_until = None;
                    item.last_error_code = None;
                }
                Outcome::Final { last_error, last_error_code, .. } => {
                    item.last_error = Some(last_error.clone());
                    item.last_error_code = *last_error_code;
                    leave_flight(item);
                }
                Outcome::DryRun => leave_flight(item),
            }
        }))
    }

    async fn record_orphan_sid(&self, message_id: &MessageId, sid: &str, now: i64) -> Result<bool, StoreError> {
        self.faults.before("record_orphan_sid", message_id.as_str()).await?;
        let first = self.write(
            message_id.as_str(),
            |item| item.is_some_and(|i| i.twilio_sid.is_none()),
            false,
            |item| {
                item.twilio_sid = Some(sid.to_owned());
                item.updated_at = Some(now);
            },
        );
        if let Conditional::Refused(Some(old)) = first {
            if old.twilio_sid.as_deref() != Some(sid) {
                self.write(message_id.as_str(), |item| item.is_some(), false, |item| add_sid(item, sid));
                return Ok(true);
            }
        }
        Ok(false)
    }

    async fn sids_for_phone(&self, phone: &PhoneNumber) -> Result<Vec<(String, String)>, StoreError> {
        self.faults.before("sids_for_phone", phone.as_str()).await?;
        let items = self.items.lock().expect("log lock");
        Ok(items
            .values()
            .filter(|item| item.phone.as_deref() == Some(phone.as_str()))
            .filter_map(|item| Some((item.message_id.clone(), item.twilio_sid.clone()?)))
            .collect())
    }
}

#[async_trait]
impl RetryIndex for MemoryMessageLog {
    async fn due_page(
        &self,
        shard: u32,
        now: i64,
        after: Option<DueCursor>,
    ) -> Result<(Vec<LogItem>, Option<DueCursor>), StoreError> {
        self.faults.before("due_page", &shard.to_string()).await?;
        let items = self.items.lock().expect("log lock");
        let mut due: Vec<&LogItem> = items
            .values()
            .filter(|item| item.retry_shard == Some(shard) && item.retry_due_at.is_some_and(|at| at <= now))
            .collect();
        due.sort_by(|a, b| (a.retry_due_at, &a.message_id).cmp(&(b.retry_due_at, &b.message_id)));
        let start = after.map_or(0, |cursor| {
            due.iter()
                .position(|item| {
                    (item.retry_due_at, &item.message_id) > (Some(cursor.retry_due_at), &cursor.message_id)
                })
                .unwrap_or(due.len())
        });
        let page: Vec<LogItem> = due[start..].iter().take(self.page_size).map(|item| (*item).clone()).collect();
        let next = (start + page.len() < due.len()).then(|| {
            let last = page.last().expect("a page before more items is not empty");
            DueCursor { message_id: last.message_id.clone(), retry_due_at: last.retry_due_at.unwrap_or_default() }
        });
        Ok((page, next))
    }

    async fn sweep_take(
        &self,
        item: &LogItem,
        action: SweepAction,
        now: i64,
        reschedule_at: i64,
    ) -> Result<bool, StoreError> {
        self.faults.before("sweep_take", &item.message_id).await?;
        let (Some(read_status), Some(read_due)) = (item.status, item.retry_due_at) else { return Ok(false) };
        let read_owner = item.lease_owner.clone().unwrap_or_default();
        let as_read = |stored: &LogItem| stored.status == Some(read_status) && stored.retry_due_at == Some(read_due);
        let same_owner = |stored: &LogItem| stored.lease_owner.as_deref().unwrap_or_default() == read_owner;
        let written = match action {
            SweepAction::Reschedule => self.write(
                &item.message_id,
                |s| s.is_some_and(as_read),
                false,
                |stored| {
                    stored.retry_due_at = Some(reschedule_at);
                    stored.updated_at = Some(now);
                },
            ),
            SweepAction::MarkInDoubt => {
                let condition = |s: Option<&LogItem>| {
                    s.is_some_and(|s| as_read(s) && same_owner(s) && s.lease_until.is_some_and(|u| u < now))
                };
                self.write(&item.message_id, condition, false, |stored| {
                    stored.status = Some(Status::InDoubt);
                    stored.next_attempt_at = Some(now);
                    stored.retry_due_at = Some(reschedule_at);
                    stored.last_error = Some(TAKER_DIED.to_owned());
                    stored.updated_at = Some(now);
                    stored.lease_owner = None;
                    stored.lease_until = None;
                })
            }
            SweepAction::FollowLease => {
                let Some(lease_until) = item.lease_until else { return Ok(false) };
                let condition = |s: Option<&LogItem>| {
                    s.is_some_and(|s| as_read(s) && same_owner(s) && s.lease_until.is_some_and(|u| u >= now))
                };
                self.write(&item.message_id, condition, false, |stored| stored.retry_due_at = Some(lease_until))
            }
        };
        Ok(matches!(written, Conditional::Applied(_)))
    }
}

#[async_trait]
impl StatusCallbackLog for MemoryMessageLog {
    async fn apply_status(&self, message_id: &str, report: &StatusReport) -> Result<CallbackWrite, StoreError> {
        self.faults.before("apply_status", message_id).await?;
        let mut before = None;
        let written = self.write(
            message_id,
            |item| report.applies_to(item),
            false,
            |item| {
                before = Some(item.clone());
                item.twilio_sid = Some(report.sid.clone());
                item.twilio_status = Some(report.twilio_status.clone());
                item.twilio_rank = Some(report.rank);
                item.status = Some(report.status);
                item.updated_at = Some(report.now);
                item.sent_at.get_or_insert(report.now);
                if matches!(report.twilio_status.as_str(), "delivered" | "read") {
                    item.delivered_at.get_or_insert(report.now);
                }
                if report.twilio_status == "read" {
                    item.read_at.get_or_insert(report.now);
                }
                if report.status == Status::Undelivered {
                    if let Some(code) = report.error_code {
                        item.last_error_code = Some(code);
                    }
                    if let Some(last_error) = &report.last_error {
                        item.last_error = Some(last_error.clone());
                    }
                }
                leave_flight(item);
            },
        );
        Ok(match written {
            Conditional::Applied(_) => CallbackWrite::Applied(before.expect("applied writes saw the item")),
            Conditional::Refused(old) => CallbackWrite::Refused(old),
        })
    }

    async fn add_extra_sid(&self, message_id: &str, sid: &str, now: i64) -> Result<bool, StoreError> {
        self.faults.before("add_extra_sid", message_id).await?;
        let written = self.write(
            message_id,
            |item| item.is_some(),
            false,
            |item| {
                item.updated_at = Some(now);
                add_sid(item, sid);
            },
        );
        Ok(matches!(written, Conditional::Applied(_)))
    }
    async fn recent_for_phone(&self, phone: &str, limit: i32) -> Result<Vec<RecentItem>, StoreError> {
        self.faults.before("recent_for_phone", phone).await?;
        let items = self.items.lock().expect("log lock");
        // `by-recipient` sorts by `created_at` (items without one are not in the index).
        let mut recent: Vec<RecentItem> = items
            .values()
            .filter(|item| item.phone.as_deref() == Some(phone))
            .filter_map(|item| {
                Some(RecentItem {
                    message_id: item.message_id.clone(),
                    created_at: item.created_at?,
                    twilio_sid: item.twilio_sid.clone(),
                    status: item.status,
                })
            })
            .collect();
        recent.sort_by_key(|item| std::cmp::Reverse(item.created_at));
        recent.truncate(limit.max(1) as usize);
        Ok(recent)
    }

    async fn campaign_of(&self, message_id: &str) -> Result<Option<String>, StoreError> {
        self.faults.before("campaign_of", message_id).await?;
        Ok(self.items.lock().expect("log lock").get(message_id).and_then(|item| item.campaign.clone()))
    }

    async fn record_ack(&self, message_id: &str, word: &str, at: i64) -> Result<bool, StoreError> {
        self.faults.before("record_ack", message_id).await?;
        let condition = |item: Option<&LogItem>| item.is_some_and(|i| i.ack_at.is_none_or(|old| old < at));
        let written = self.write(message_id, condition, false, |item| {
            item.ack = Some(word.to_owned());
            item.ack_at = Some(at);
        });
        Ok(matches!(written, Conditional::Applied(_)))
    }
}

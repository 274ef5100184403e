//! The adapter contract: every case runs twice, against the DynamoDB adapters on moto and
//! against the in-memory adapters, with the same inputs and the same expectations, so that
//! the memory adapters (which the pure handler tests and the benchmark run on) cannot drift
//! from what DynamoDB does with the same conditional writes.

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;
use missive::adapters::dynamo::{DynamoCampaigns, DynamoConsent, DynamoInbox, DynamoMessageLog, RetryDueIndex};
use missive::adapters::memory::{MemoryCampaigns, MemoryConsent, MemoryInbox, MemoryMessageLog};
use missive::adapters::provision::create_table;
use missive::domain::campaign::{CampaignAction, CampaignEvent, CampaignState};
use missive::domain::consent::{ConsentChange, ConsentSource, ConsentState, HISTORY_LIMIT};
use missive::domain::inbox::{sort_key, InboxItem};
use missive::domain::item::{retry_shard, ContentKind, RETRY_SHARDS};
use missive::domain::message::MessageId;
use missive::domain::phone::PhoneNumber;
use missive::domain::schedule::{Hold, HoldReason};
use missive::domain::status::Status;
use missive::ports::Inbox;
use missive::ports::{
    CallbackWrite, CampaignStore, Conditional, ConsentStore, DueCursor, EarlyFinal, GiveBack, ItemIdentity, LogItem,
    MessageLog, Outcome, RecipientBudget, RetryIndex, StatusCallbackLog, StatusReport, SweepAction, Take,
};
use missive::schema::{CAMPAIGNS, CONSENT, INBOX, MESSAGE_LOG};

const NOW: i64 = 1_800_000_000;
const RETENTION_DAYS: i64 = 365;
const PHONE: &str = "+33612345678";

type Seed = Box<dyn Fn(LogItem) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// One set of adapters under test, and a way to put an item as it is.
struct Adapters {
    name: &'static str,
    log: Arc<dyn MessageLog>,
    index: Arc<dyn RetryIndex>,
    callbacks: Arc<dyn StatusCallbackLog>,
    consent: Arc<dyn ConsentStore>,
    campaigns: Arc<dyn CampaignStore>,
    budget: Arc<dyn RecipientBudget>,
    inbox: Arc<dyn Inbox>,
    seed: Seed,
}

/// The DynamoDB adapters on fresh tables of the moto server.
async fn dynamo(page_size: u32) -> Adapters {
    let aws = common::aws().await;
    let client = aws_sdk_dynamodb::Client::new(&aws);
    let log_table = common::unique("ContractLog");
    let consent_table = common::unique("ContractConsent");
    let campaign_table = common::unique("ContractCampaigns");
    create_table(&client, &log_table, &MESSAGE_LOG).await.expect("create MessageLog");
    create_table(&client, &consent_table, &CONSENT).await.expect("create Consent");
    create_table(&client, &campaign_table, &CAMPAIGNS).await.expect("create Campaigns");
    let inbox_table = common::unique("ContractInbox");
    create_table(&client, &inbox_table, &INBOX).await.expect("create Inbox");
    let campaigns = Arc::new(DynamoCampaigns::new(client.clone(), campaign_table));
    let log = DynamoMessageLog::new(client.clone(), &log_table);
    let seed_client = client.clone();
    let seed: Seed = Box::new(move |item: LogItem| {
        let client = seed_client.clone();
        let table = log_table.clone();
        Box::pin(async move {
            // serde_dynamo writes `None` as NULL: an absent attribute is what DynamoDB's
            // conditions test, so NULLs are left out.
            let mut attributes: std::collections::HashMap<String, AttributeValue> =
                serde_dynamo::aws_sdk_dynamodb_1::to_item(&item).expect("encode item");
            attributes.retain(|_, value| !matches!(value, AttributeValue::Null(_)));
            client.put_item().table_name(table).set_item(Some(attributes)).send().await.expect("PutItem");
        })
    });
    Adapters {
        name: "dynamo",
        index: Arc::new(RetryDueIndex::new(log.clone()).with_page_size(page_size)),
        callbacks: Arc::new(log.clone()),
        log: Arc::new(log),
        inbox: Arc::new(DynamoInbox::new(client.clone(), inbox_table)),
        consent: Arc::new(DynamoConsent::new(client, consent_table)),
        campaigns: campaigns.clone(),
        budget: campaigns,
        seed,
    }
}

/// The in-memory adapters.
fn memory(page_size: u32) -> Adapters {
    let log = MemoryMessageLog::new().with_page_size(page_size as usize);
    let seeded = log.clone();
    Adapters {
        name: "memory",
        index: Arc::new(log.clone()),
        callbacks: Arc::new(log.clone()),
        log: Arc::new(log),
        consent: Arc::new(MemoryConsent::new()),
        campaigns: Arc::new(MemoryCampaigns::new()),
        budget: Arc::new(MemoryCampaigns::new()),
        inbox: Arc::new(MemoryInbox::new()),
        seed: Box::new(move |item| {
            seeded.insert(item);
            Box::pin(async {})
        }),
    }
}

/// Runs a case against both sets of adapters.
macro_rules! contract {
    ($($case:ident),* $(,)?) => {
        $(
            mod $case {
                #[tokio::test]
                async fn dynamo() {
                    super::$case(super::dynamo(3).await).await;
                }

                #[tokio::test]
                async fn memory() {
                    super::$case(super::memory(3)).await;
                }
            }
        )*
    };
}

contract!(
    a_claim_creates_the_item_once,
    a_due_retrying_item_is_claimed_again_and_nothing_else_is,
    early_finals_never_overwrite_a_good_message,
    the_reconcile_claim_takes_due_doubts_and_dead_leases,
    a_new_attempt_needs_the_lease_and_the_count_read,
    each_outcome_writes_its_attributes_under_the_lease,
    an_orphan_sid_is_recorded_or_kept_apart,
    the_sids_of_a_phone,
    the_retry_index_pages_what_is_due_shard_by_shard,
    the_sweep_takes_only_what_it_read,
    status_callbacks_move_forward_only,
    consent_changes_are_decided_once_and_written_if_unchanged,
    a_hold_schedules_and_a_due_scheduled_item_is_claimed,
    the_parents_window_only_moves_forward_and_survives_consent_changes,
    a_reply_finds_the_phones_recent_items_and_the_last_answer_wins,
    campaigns_are_created_enqueued_cancelled_and_resumed,
    the_budget_keeps_a_set_of_phones_per_hour,
    a_reply_is_kept_once_read_by_phone_and_campaign_and_forgotten,
);

fn id(raw: &str) -> MessageId {
    MessageId::parse(raw).expect("a valid id")
}

fn identity(message_id: &str) -> ItemIdentity {
    ItemIdentity {
        message_id: id(message_id),
        phone: Some(PhoneNumber::parse(PHONE).unwrap()),
        campaign: Some("trip".into()),
        recipient_id: Some("p-1".into()),
        request: Some(format!("{{\"message_id\":\"{message_id}\"}}")),
        max_attempts: 3,
        requested_by: Some("secretary".into()),
    }
}

fn take(owner: &str, now: i64) -> Take {
    Take { owner: owner.into(), now, lease_until: now + 120, due: now + 5 }
}

fn applied(written: Conditional) -> LogItem {
    match written {
        Conditional::Applied(item) => item,
        Conditional::Refused(old) => panic!("expected the write to apply; refused over {old:?}"),
    }
}

fn refused(written: Conditional) -> Option<LogItem> {
    match written {
        Conditional::Refused(old) => old,
        Conditional::Applied(item) => panic!("expected the write to be refused; applied: {item:?}"),
    }
}

/// An item in `status` as a writer of Missive leaves it, for the cases to start from.
fn item_in(message_id: &str, status: Status) -> LogItem {
    let mut item = LogItem {
        message_id: message_id.into(),
        status: Some(status),
        phone: Some(PHONE.into()),
        campaign: Some("trip".into()),
        request: Some(format!("{{\"message_id\":\"{message_id}\"}}")),
        attempts: 1,
        max_attempts: Some(3),
        created_at: Some(NOW - 600),
        updated_at: Some(NOW - 60),
        expires_at: Some(NOW + RETENTION_DAYS * 86_400),
        ..LogItem::default()
    };
    if status.is_in_flight() {
        item.retry_shard = Some(retry_shard(message_id));
        item.retry_due_at = Some(NOW - 10);
    }
    item
}

async fn a_claim_creates_the_item_once(a: Adapters) {
    let first =
        applied(a.log.claim(&identity("m1"), &take("owner-1", NOW), ContentKind::Body, RETENTION_DAYS).await.unwrap());
    assert_eq!((first.content_kind, first.requested_by.as_deref()), (Some(ContentKind::Body), Some("secretary")));
    assert_eq!(first.status, Some(Status::Sending), "{}", a.name);
    assert_eq!(first.attempts, 1);
    assert_eq!(first.lease_owner.as_deref(), Some("owner-1"));
    assert_eq!((first.lease_until, first.retry_due_at), (Some(NOW + 120), Some(NOW + 120)));
    assert_eq!(first.retry_shard, Some(retry_shard("m1")));
    assert_eq!((first.created_at, first.attempt_started_at, first.updated_at), (Some(NOW), Some(NOW), Some(NOW)));
    assert_eq!(first.expires_at, Some(NOW + RETENTION_DAYS * 86_400));
    assert_eq!((first.phone.as_deref(), first.campaign.as_deref()), (Some(PHONE), Some("trip")));
    assert_eq!((first.recipient_id.as_deref(), first.max_attempts), (Some("p-1"), Some(3)));
    assert!(first.request.is_some() && first.next_attempt_at.is_none());

    let old = refused(
        a.log.claim(&identity("m1"), &take("owner-2", NOW + 1), ContentKind::Body, RETENTION_DAYS).await.unwrap(),
    );
    assert_eq!(old, Some(first.clone()), "{}: the refusal returns the item as it was", a.name);
    assert_eq!(a.log.get("m1").await.unwrap(), Some(first));
    assert_eq!(a.log.get("nothing").await.unwrap(), None);
}

async fn a_due_retrying_item_is_claimed_again_and_nothing_else_is(a: Adapters) {
    let retrying = |id: &str, next: i64| LogItem { next_attempt_at: Some(next), ..item_in(id, Status::Retrying) };
    (a.seed)(retrying("due", NOW + 5)).await;
    (a.seed)(retrying("early", NOW + 6)).await;
    (a.seed)(LogItem { next_attempt_at: Some(NOW - 1), ..item_in("doubt", Status::InDoubt) }).await;
    (a.seed)(item_in("sent", Status::Sent)).await;

    let claimed =
        applied(a.log.claim(&identity("due"), &take("me", NOW), ContentKind::Body, RETENTION_DAYS).await.unwrap());
    assert_eq!((claimed.attempts, claimed.status), (2, Some(Status::Sending)), "{}", a.name);
    assert_eq!(claimed.created_at, Some(NOW - 600), "the first take's fields stay");
    assert_eq!(claimed.next_attempt_at, None);
    for (name, status) in [("early", Status::Retrying), ("doubt", Status::InDoubt), ("sent", Status::Sent)] {
        let old =
            refused(a.log.claim(&identity(name), &take("me", NOW), ContentKind::Body, RETENTION_DAYS).await.unwrap());
        assert_eq!(old.and_then(|o| o.status), Some(status), "{}: {name}", a.name);
    }
}

async fn early_finals_never_overwrite_a_good_message(a: Adapters) {
    let rejected = applied(
        a.log.record_early_final(&identity("r"), EarlyFinal::Rejected, "to: bad", NOW, RETENTION_DAYS).await.unwrap(),
    );
    assert_eq!((rejected.status, rejected.attempts), (Some(Status::Rejected), 0), "{}", a.name);
    assert_eq!(rejected.last_error.as_deref(), Some("to: bad"));
    assert_eq!((rejected.created_at, rejected.expires_at), (Some(NOW), Some(NOW + RETENTION_DAYS * 86_400)));
    assert_eq!(rejected.phone.as_deref(), Some(PHONE));

    (a.seed)(LogItem { next_attempt_at: Some(NOW + 60), ..item_in("retrying", Status::Retrying) }).await;
    (a.seed)(item_in("sent", Status::Sent)).await;
    let old = refused(
        a.log.record_early_final(&identity("retrying"), EarlyFinal::Rejected, "x", NOW, RETENTION_DAYS).await.unwrap(),
    );
    assert_eq!(old.and_then(|o| o.status), Some(Status::Retrying), "{}: a rejection writes only a new item", a.name);
    let skipped = applied(
        a.log
            .record_early_final(&identity("retrying"), EarlyFinal::Skipped, "opted out", NOW, RETENTION_DAYS)
            .await
            .unwrap(),
    );
    assert_eq!(skipped.status, Some(Status::Skipped));
    assert_eq!((skipped.attempts, skipped.created_at), (1, Some(NOW - 600)), "{}: kept", a.name);
    assert!(
        skipped.retry_shard.is_none() && skipped.retry_due_at.is_none() && skipped.next_attempt_at.is_none(),
        "{}: a final item leaves the retry index: {skipped:?}",
        a.name
    );
    for kind in [EarlyFinal::Skipped, EarlyFinal::Expired] {
        let old = refused(a.log.record_early_final(&identity("sent"), kind, "x", NOW, RETENTION_DAYS).await.unwrap());
        assert_eq!(old.and_then(|o| o.status), Some(Status::Sent), "{}", a.name);
    }
}

async fn the_reconcile_claim_takes_due_doubts_and_dead_leases(a: Adapters) {
    let doubt = |id: &str, next: i64| LogItem { next_attempt_at: Some(next), ..item_in(id, Status::InDoubt) };
    let sending = |id: &str, until: i64| LogItem {
        lease_owner: Some("dead".into()),
        lease_until: Some(until),
        ..item_in(id, Status::Sending)
    };
    (a.seed)(doubt("due", NOW + 5)).await;
    (a.seed)(doubt("early", NOW + 6)).await;
    (a.seed)(sending("dead", NOW - 1)).await;
    (a.seed)(sending("live", NOW)).await;
    (a.seed)(LogItem { next_attempt_at: Some(NOW), ..item_in("retrying", Status::Retrying) }).await;

    for name in ["due", "dead"] {
        let item = applied(a.log.reconcile_claim(&id(name), &take("me", NOW)).await.unwrap());
        assert_eq!(
            (item.status, item.lease_owner.as_deref()),
            (Some(Status::Sending), Some("me")),
            "{}: {name}",
            a.name
        );
        assert_eq!((item.attempts, item.retry_due_at), (1, Some(NOW + 120)), "{}: attempts untouched", a.name);
        assert_eq!(item.next_attempt_at, None);
    }
    for name in ["early", "live", "retrying"] {
        let old = refused(a.log.reconcile_claim(&id(name), &take("me", NOW)).await.unwrap());
        assert!(old.is_some_and(|o| o.lease_owner.as_deref() != Some("me")), "{}: {name}", a.name);
    }
    assert_eq!(refused(a.log.reconcile_claim(&id("absent"), &take("me", NOW)).await.unwrap()), None, "{}", a.name);
}

async fn a_new_attempt_needs_the_lease_and_the_count_read(a: Adapters) {
    (a.seed)(LogItem { lease_owner: Some("me".into()), lease_until: Some(NOW + 100), ..item_in("m", Status::Sending) })
        .await;
    refused(a.log.record_new_attempt(&id("m"), &take("other", NOW), 1, ContentKind::Template).await.unwrap());
    refused(a.log.record_new_attempt(&id("m"), &take("me", NOW), 2, ContentKind::Template).await.unwrap());
    let item = applied(a.log.record_new_attempt(&id("m"), &take("me", NOW), 1, ContentKind::Template).await.unwrap());
    assert_eq!((item.attempts, item.attempt_started_at, item.updated_at), (2, Some(NOW), Some(NOW)), "{}", a.name);
    assert_eq!(item.content_kind, Some(ContentKind::Template), "{}: what the new attempt sends", a.name);
    assert_eq!(
        refused(a.log.record_new_attempt(&id("absent"), &take("me", NOW), 0, ContentKind::Template).await.unwrap()),
        None
    );
}

async fn each_outcome_writes_its_attributes_under_the_lease(a: Adapters) {
    let leased = |id: &str| LogItem {
        lease_owner: Some("me".into()),
        lease_until: Some(NOW + 100),
        attempts: 2,
        throttled: 1,
        last_error_code: Some(20503),
        ..item_in(id, Status::Sending)
    };
    for name in ["accepted", "read", "retry", "throttled", "unstarted", "doubt", "failed", "dry"] {
        (a.seed)(leased(name)).await;
    }
    let accepted = Outcome::Accepted { sid: "SM1".into(), twilio_status: "queued".into() };
    let old = refused(a.log.record_outcome(&id("accepted"), "other", &accepted, NOW).await.unwrap());
    assert_eq!(old.and_then(|o| o.lease_owner), Some("me".into()), "{}: another owner is refused", a.name);

    let item = applied(a.log.record_outcome(&id("accepted"), "me", &accepted, NOW).await.unwrap());
    assert_eq!((item.status, item.twilio_sid.as_deref()), (Some(Status::Sent), Some("SM1")), "{}", a.name);
    assert_eq!((item.twilio_status.as_deref(), item.twilio_rank, item.sent_at), (Some("queued"), Some(1), Some(NOW)));
    assert!(item.lease_owner.is_none() && item.lease_until.is_none() && item.retry_shard.is_none());
    assert!(item.retry_due_at.is_none() && item.delivered_at.is_none());

    let read = Outcome::Accepted { sid: "SM2".into(), twilio_status: "read".into() };
    let item = applied(a.log.record_outcome(&id("read"), "me", &read, NOW).await.unwrap());
    assert_eq!((item.status, item.twilio_rank), (Some(Status::Read), Some(5)), "{}", a.name);
    assert_eq!((item.delivered_at, item.read_at), (Some(NOW), Some(NOW)));

    let retrying = |give_back, code| Outcome::Retrying {
        last_error: "http 503".into(),
        last_error_code: code,
        next_attempt_at: NOW + 30,
        retry_due_at: NOW + 150,
        give_back,
    };
    let item = applied(a.log.record_outcome(&id("retry"), "me", &retrying(GiveBack::No, None), NOW).await.unwrap());
    assert_eq!((item.status, item.attempts, item.throttled), (Some(Status::Retrying), 2, 1), "{}", a.name);
    assert_eq!(
        (item.next_attempt_at, item.retry_due_at, item.last_error_code),
        (Some(NOW + 30), Some(NOW + 150), None)
    );
    assert_eq!(item.retry_shard, Some(retry_shard("retry")), "{}: still in the index", a.name);
    assert!(item.lease_owner.is_none() && item.lease_until.is_none());
    let throttled = retrying(GiveBack::Answered, Some(20429));
    let item = applied(a.log.record_outcome(&id("throttled"), "me", &throttled, NOW).await.unwrap());
    assert_eq!((item.attempts, item.throttled, item.last_error_code), (1, 2, Some(20429)), "{}", a.name);
    let unstarted = retrying(GiveBack::NotStarted, None);
    let item = applied(a.log.record_outcome(&id("unstarted"), "me", &unstarted, NOW).await.unwrap());
    assert_eq!((item.attempts, item.throttled), (1, 1), "{}", a.name);

    let doubt = Outcome::InDoubt {
        last_error: "timeout (in doubt)".into(),
        next_attempt_at: NOW + 30,
        retry_due_at: NOW + 150,
    };
    let item = applied(a.log.record_outcome(&id("doubt"), "me", &doubt, NOW).await.unwrap());
    assert_eq!(
        (item.status, item.last_error_code, item.next_attempt_at),
        (Some(Status::InDoubt), None, Some(NOW + 30))
    );

    let failed =
        Outcome::Final { status: Status::Failed, last_error: "21211: bad".into(), last_error_code: Some(21211) };
    let item = applied(a.log.record_outcome(&id("failed"), "me", &failed, NOW).await.unwrap());
    assert_eq!((item.status, item.last_error_code), (Some(Status::Failed), Some(21211)), "{}", a.name);
    assert!(item.retry_shard.is_none() && item.next_attempt_at.is_none() && item.lease_owner.is_none());

    let item = applied(a.log.record_outcome(&id("dry"), "me", &Outcome::DryRun, NOW).await.unwrap());
    assert_eq!(item.status, Some(Status::DryRun));
    assert!(item.retry_shard.is_none() && item.lease_owner.is_none(), "{}", a.name);
    assert_eq!(refused(a.log.record_outcome(&id("absent"), "me", &Outcome::DryRun, NOW).await.unwrap()), None);
}

async fn an_orphan_sid_is_recorded_or_kept_apart(a: Adapters) {
    (a.seed)(item_in("none", Status::Retrying)).await;
    (a.seed)(LogItem { twilio_sid: Some("SM1".into()), ..item_in("held", Status::Sent) }).await;
    assert!(!a.log.record_orphan_sid(&id("none"), "SM9", NOW).await.unwrap(), "{}", a.name);
    assert_eq!(a.log.get("none").await.unwrap().unwrap().twilio_sid.as_deref(), Some("SM9"));
    assert!(!a.log.record_orphan_sid(&id("held"), "SM1", NOW).await.unwrap(), "{}: the same SID", a.name);
    assert!(a.log.record_orphan_sid(&id("held"), "SM2", NOW).await.unwrap(), "{}: another SID", a.name);
    assert!(a.log.record_orphan_sid(&id("held"), "SM2", NOW).await.unwrap());
    let held = a.log.get("held").await.unwrap().unwrap();
    assert_eq!(
        (held.twilio_sid.as_deref(), held.extra_sids),
        (Some("SM1"), Some(vec!["SM2".to_owned()])),
        "{}",
        a.name
    );
}

async fn the_sids_of_a_phone(a: Adapters) {
    (a.seed)(LogItem { twilio_sid: Some("SM1".into()), ..item_in("a", Status::Sent) }).await;
    (a.seed)(LogItem { twilio_sid: Some("SM2".into()), ..item_in("b", Status::Delivered) }).await;
    (a.seed)(item_in("c", Status::Failed)).await;
    (a.seed)(LogItem {
        phone: Some("+33612345679".into()),
        twilio_sid: Some("SM3".into()),
        ..item_in("d", Status::Sent)
    })
    .await;
    let mut sids = a.log.sids_for_phone(&PhoneNumber::parse(PHONE).unwrap()).await.unwrap();
    sids.sort();
    assert_eq!(sids, [("a".to_owned(), "SM1".to_owned()), ("b".to_owned(), "SM2".to_owned())], "{}", a.name);
}

async fn the_retry_index_pages_what_is_due_shard_by_shard(a: Adapters) {
    // Seven items of one shard due at different times, one not yet due, one final.
    let shard = retry_shard("idx-0");
    let ids: Vec<String> = (0..).map(|i| format!("idx-{i}")).filter(|id| retry_shard(id) == shard).take(9).collect();
    for (i, id) in ids.iter().enumerate().take(7) {
        (a.seed)(LogItem { retry_due_at: Some(NOW - 100 + i as i64), ..item_in(id, Status::Retrying) }).await;
    }
    (a.seed)(LogItem { retry_due_at: Some(NOW + 1), ..item_in(&ids[7], Status::InDoubt) }).await;
    (a.seed)(item_in(&ids[8], Status::Sent)).await;

    let mut seen = Vec::new();
    let mut cursor: Option<DueCursor> = None;
    for _ in 0..10 {
        let (page, next) = a.index.due_page(shard, NOW, cursor.clone()).await.unwrap();
        assert!(page.len() <= 3, "{}: pages of at most 3", a.name);
        seen.extend(page.into_iter().map(|item| item.message_id));
        match next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, ids[..7], "{}: every due item once, in retry_due_at order", a.name);
    let other = (shard + 1) % RETRY_SHARDS;
    assert!(a.index.due_page(other, NOW, None).await.unwrap().0.is_empty(), "{}", a.name);
}

async fn the_sweep_takes_only_what_it_read(a: Adapters) {
    let retrying = item_in("resched", Status::Retrying);
    let dead =
        LogItem { lease_owner: Some("dead".into()), lease_until: Some(NOW - 1), ..item_in("dead", Status::Sending) };
    let live =
        LogItem { lease_owner: Some("live".into()), lease_until: Some(NOW + 50), ..item_in("live", Status::Sending) };
    for item in [&retrying, &dead, &live] {
        (a.seed)(item.clone()).await;
    }
    assert!(a.index.sweep_take(&retrying, SweepAction::Reschedule, NOW, NOW + 300).await.unwrap(), "{}", a.name);
    let item = a.log.get("resched").await.unwrap().unwrap();
    assert_eq!((item.retry_due_at, item.updated_at), (Some(NOW + 300), Some(NOW)), "{}", a.name);
    // Read before that take: the values no longer match.
    assert!(!a.index.sweep_take(&retrying, SweepAction::Reschedule, NOW, NOW + 300).await.unwrap(), "{}", a.name);

    assert!(!a.index.sweep_take(&live, SweepAction::MarkInDoubt, NOW, NOW + 300).await.unwrap(), "{}", a.name);
    assert!(a.index.sweep_take(&dead, SweepAction::MarkInDoubt, NOW, NOW + 300).await.unwrap(), "{}", a.name);
    let item = a.log.get("dead").await.unwrap().unwrap();
    assert_eq!(
        (item.status, item.next_attempt_at, item.retry_due_at),
        (Some(Status::InDoubt), Some(NOW), Some(NOW + 300))
    );
    assert!(item.lease_owner.is_none() && item.lease_until.is_none(), "{}", a.name);

    assert!(!a.index.sweep_take(&dead, SweepAction::FollowLease, NOW, NOW + 300).await.unwrap(), "{}", a.name);
    assert!(a.index.sweep_take(&live, SweepAction::FollowLease, NOW, NOW + 300).await.unwrap(), "{}", a.name);
    assert_eq!(a.log.get("live").await.unwrap().unwrap().retry_due_at, Some(NOW + 50), "{}", a.name);
}

fn report(sid: &str, twilio_status: &str, status: Status, rank: u8) -> StatusReport {
    StatusReport {
        sid: sid.into(),
        twilio_status: twilio_status.into(),
        rank,
        status,
        error_code: (status == Status::Undelivered).then_some(63016),
        last_error: (status == Status::Undelivered).then(|| "63016: outside the window".into()),
        now: NOW,
    }
}

async fn status_callbacks_move_forward_only(a: Adapters) {
    (a.seed)(LogItem {
        lease_owner: Some("x".into()),
        lease_until: Some(NOW + 10),
        ..item_in("healed", Status::Sending)
    })
    .await;
    (a.seed)(LogItem { twilio_sid: Some("SM1".into()), twilio_rank: Some(3), ..item_in("sent", Status::Sent) }).await;
    (a.seed)(item_in("rejected", Status::Rejected)).await;
    (a.seed)(item_in("dry", Status::DryRun)).await;

    let CallbackWrite::Applied(before) =
        a.callbacks.apply_status("healed", &report("SM9", "delivered", Status::Delivered, 4)).await.unwrap()
    else {
        panic!("{}: a callback heals an item in flight", a.name)
    };
    assert_eq!(before.status, Some(Status::Sending), "{}: the item as it was", a.name);
    let item = a.log.get("healed").await.unwrap().unwrap();
    assert_eq!(
        (item.status, item.twilio_sid.as_deref(), item.twilio_rank),
        (Some(Status::Delivered), Some("SM9"), Some(4))
    );
    assert_eq!((item.sent_at, item.delivered_at), (Some(NOW), Some(NOW)));
    assert!(item.lease_owner.is_none() && item.retry_shard.is_none(), "{}", a.name);

    let late = a.callbacks.apply_status("sent", &report("SM1", "sent", Status::Sent, 3)).await.unwrap();
    assert!(matches!(late, CallbackWrite::Refused(Some(ref old)) if old.twilio_rank == Some(3)), "{}", a.name);
    let other = a.callbacks.apply_status("sent", &report("SM2", "delivered", Status::Delivered, 4)).await.unwrap();
    assert!(matches!(other, CallbackWrite::Refused(Some(ref old)) if old.twilio_sid.as_deref() == Some("SM1")));
    let undelivered = report("SM1", "undelivered", Status::Undelivered, 4);
    assert!(matches!(a.callbacks.apply_status("sent", &undelivered).await.unwrap(), CallbackWrite::Applied(_)));
    let item = a.log.get("sent").await.unwrap().unwrap();
    assert_eq!((item.status, item.last_error_code), (Some(Status::Undelivered), Some(63016)), "{}", a.name);
    assert_eq!(item.last_error.as_deref(), Some("63016: outside the window"));
    for name in ["rejected", "dry"] {
        let written = a.callbacks.apply_status(name, &report("SM5", "sent", Status::Sent, 3)).await.unwrap();
        assert!(matches!(written, CallbackWrite::Refused(Some(_))), "{}: {name}", a.name);
    }
    let absent = a.callbacks.apply_status("absent", &report("SM5", "sent", Status::Sent, 3)).await.unwrap();
    assert_eq!(absent, CallbackWrite::Refused(None), "{}", a.name);

    assert!(a.callbacks.add_extra_sid("sent", "SM2", NOW).await.unwrap(), "{}", a.name);
    assert_eq!(a.log.get("sent").await.unwrap().unwrap().extra_sids, Some(vec!["SM2".to_owned()]));
    assert!(!a.callbacks.add_extra_sid("absent", "SM2", NOW).await.unwrap(), "{}", a.name);
}

async fn consent_changes_are_decided_once_and_written_if_unchanged(a: Adapters) {
    let phone = PhoneNumber::parse(PHONE).unwrap();
    let change = |state, source| ConsentChange { state, source, has_evidence: true };
    assert_eq!(a.consent.item(&phone).await.unwrap(), None, "{}", a.name);
    assert_eq!(a.consent.current(&phone).await.unwrap(), None);
    assert!(a
        .consent
        .change(&phone, change(ConsentState::OptedIn, ConsentSource::CsvImport), "f.csv:2", NOW)
        .await
        .unwrap());
    let first = a.consent.item(&phone).await.unwrap().expect("written");
    assert_eq!(
        (first.state.as_deref().unwrap_or_default(), first.updated_at, first.history.len()),
        ("opted_in", Some(NOW), 1),
        "{}",
        a.name
    );

    // A parent's STOP; then a CSV import may not undo it.
    assert!(a
        .consent
        .change(&phone, change(ConsentState::OptedOut, ConsentSource::WhatsappReply), "SMstop", NOW)
        .await
        .unwrap());
    assert!(!a
        .consent
        .change(&phone, change(ConsentState::OptedIn, ConsentSource::CsvImport), "f.csv:3", NOW)
        .await
        .unwrap());
    let current = a.consent.current(&phone).await.unwrap().unwrap();
    assert_eq!(current.state, ConsentState::OptedOut, "{}", a.name);

    // A write over a stale read is refused (the same second, another change in between).
    let stale = a.consent.item(&phone).await.unwrap().unwrap();
    assert!(a
        .consent
        .change(&phone, change(ConsentState::OptedIn, ConsentSource::WhatsappReply), "SMstart", NOW)
        .await
        .unwrap());
    let over_stale = missive::domain::consent::plan_change(
        PHONE,
        Some(&stale),
        change(ConsentState::OptedOut, ConsentSource::Cli),
        "operator",
        NOW,
    )
    .unwrap();
    assert!(!a.consent.replace(&over_stale, Some(&stale)).await.unwrap(), "{}: stale read refused", a.name);
    assert!(!a.consent.replace(&over_stale, None).await.unwrap(), "{}: 'no item' is stale too", a.name);

    for i in 0..HISTORY_LIMIT {
        let state = if i % 2 == 0 { ConsentState::OptedOut } else { ConsentState::OptedIn };
        assert!(a
            .consent
            .change(&phone, change(state, ConsentSource::Cli), &format!("e{i}"), NOW + 1 + i as i64)
            .await
            .unwrap());
    }
    let item = a.consent.item(&phone).await.unwrap().unwrap();
    assert_eq!(item.history.len(), HISTORY_LIMIT, "{}", a.name);
    assert_eq!(item.history.last().map(|e| e.evidence.as_str()), Some(format!("e{}", HISTORY_LIMIT - 1).as_str()));
}

async fn a_hold_schedules_and_a_due_scheduled_item_is_claimed(a: Adapters) {
    let hold = Hold { until: NOW + 3600, reason: HoldReason::QuietHours };
    let item = applied(a.log.hold(&identity("h"), &hold, NOW, RETENTION_DAYS).await.unwrap());
    assert_eq!((item.status, item.attempts), (Some(Status::Scheduled), 0), "{}", a.name);
    assert_eq!(
        (item.next_attempt_at, item.retry_due_at, item.released_at),
        (Some(NOW + 3600), Some(NOW + 3600), Some(NOW + 3600))
    );
    assert_eq!(
        (item.retry_shard, item.created_at),
        (Some(retry_shard("h")), Some(NOW)),
        "{}: in the retry index",
        a.name
    );
    // Held again (a later copy, the budget): the same item, a new time.
    let later = Hold { until: NOW + 7200, reason: HoldReason::Budget };
    let item = applied(a.log.hold(&identity("h"), &later, NOW + 10, RETENTION_DAYS).await.unwrap());
    assert_eq!((item.next_attempt_at, item.created_at), (Some(NOW + 7200), Some(NOW)), "{}", a.name);
    // Not claimable before its time; claimable once due, released_at kept.
    refused(a.log.claim(&identity("h"), &take("me", NOW + 7000), ContentKind::Body, RETENTION_DAYS).await.unwrap());
    let claimed =
        applied(a.log.claim(&identity("h"), &take("me", NOW + 7200), ContentKind::Body, RETENTION_DAYS).await.unwrap());
    assert_eq!((claimed.status, claimed.attempts, claimed.released_at), (Some(Status::Sending), 1, Some(NOW + 7200)));
    // A hold never replaces an item in flight or final; a cancel ends a scheduled one.
    refused(a.log.hold(&identity("h"), &later, NOW, RETENTION_DAYS).await.unwrap());
    applied(a.log.hold(&identity("c"), &hold, NOW, RETENTION_DAYS).await.unwrap());
    let cancelled = applied(
        a.log
            .record_early_final(&identity("c"), EarlyFinal::Cancelled, "campaign trip cancelled", NOW, RETENTION_DAYS)
            .await
            .unwrap(),
    );
    assert_eq!(cancelled.status, Some(Status::Cancelled), "{}", a.name);
    assert!(cancelled.retry_shard.is_none() && cancelled.next_attempt_at.is_none(), "{}: out of the index", a.name);
    refused(
        a.log.record_early_final(&identity("c"), EarlyFinal::Cancelled, "again", NOW, RETENTION_DAYS).await.unwrap(),
    );
    // A status callback never names a cancelled message.
    let written = a.callbacks.apply_status("c", &report("SM1", "sent", Status::Sent, 3)).await.unwrap();
    assert!(matches!(written, CallbackWrite::Refused(Some(_))), "{}", a.name);
}

async fn the_parents_window_only_moves_forward_and_survives_consent_changes(a: Adapters) {
    let phone = PhoneNumber::parse(PHONE).unwrap();
    assert!(a.consent.record_inbound(&phone, NOW).await.unwrap(), "{}", a.name);
    let bare = a.consent.item(&phone).await.unwrap().expect("an item without state");
    assert_eq!((bare.state, bare.last_inbound_at, bare.history.len()), (None, Some(NOW), 0), "{}", a.name);
    assert_eq!(a.consent.current(&phone).await.unwrap(), None, "{}: no state reads as missing", a.name);
    assert!(!a.consent.record_inbound(&phone, NOW - 5).await.unwrap(), "{}: an older message", a.name);
    assert!(!a.consent.record_inbound(&phone, NOW).await.unwrap(), "{}: the same message again", a.name);
    let change =
        ConsentChange { state: ConsentState::OptedIn, source: ConsentSource::WhatsappReply, has_evidence: true };
    assert!(a.consent.change(&phone, change, "SMstart", NOW + 1).await.unwrap(), "{}", a.name);
    let item = a.consent.item(&phone).await.unwrap().unwrap();
    assert_eq!((item.state.as_deref(), item.last_inbound_at), (Some("opted_in"), Some(NOW)), "{}", a.name);
    assert!(a.consent.record_inbound(&phone, NOW + 60).await.unwrap());
    assert_eq!(a.consent.item(&phone).await.unwrap().unwrap().last_inbound_at, Some(NOW + 60));
    // A consent write over a read made before the window moved is refused, then decided again.
    let stale = item;
    let over = missive::domain::consent::plan_change(PHONE, Some(&stale), change, "x", NOW + 61).unwrap();
    assert!(!a.consent.replace(&over, Some(&stale)).await.unwrap(), "{}: the window moved since the read", a.name);
}

async fn a_reply_finds_the_phones_recent_items_and_the_last_answer_wins(a: Adapters) {
    for (i, id) in ["r-old", "r-mid", "r-new"].iter().enumerate() {
        (a.seed)(LogItem {
            created_at: Some(NOW - 300 + i as i64 * 100),
            twilio_sid: Some(format!("SM{i}")),
            ..item_in(id, Status::Sent)
        })
        .await;
    }
    (a.seed)(LogItem { phone: Some("+33612345679".into()), ..item_in("other", Status::Sent) }).await;
    let recent = a.callbacks.recent_for_phone(PHONE, 2).await.unwrap();
    let ids: Vec<&str> = recent.iter().map(|r| r.message_id.as_str()).collect();
    assert_eq!(ids, ["r-new", "r-mid"], "{}: newest first, at most the limit", a.name);
    assert_eq!(recent[0].twilio_sid.as_deref(), Some("SM2"));
    assert_eq!(recent[0].status, Some(Status::Sent));
    assert_eq!(a.callbacks.campaign_of("r-new").await.unwrap().as_deref(), Some("trip"), "{}", a.name);
    assert_eq!(a.callbacks.campaign_of("absent").await.unwrap(), None);

    assert!(a.callbacks.record_ack("r-new", "yes", NOW).await.unwrap(), "{}", a.name);
    assert!(a.callbacks.record_ack("r-new", "no", NOW + 5).await.unwrap(), "{}: a later answer wins", a.name);
    assert!(!a.callbacks.record_ack("r-new", "yes", NOW + 1).await.unwrap(), "{}: an older one does not", a.name);
    let item = a.log.get("r-new").await.unwrap().unwrap();
    assert_eq!((item.ack.as_deref(), item.ack_at), (Some("no"), Some(NOW + 5)), "{}", a.name);
    assert!(!a.callbacks.record_ack("absent", "yes", NOW).await.unwrap(), "{}", a.name);
}

async fn campaigns_are_created_enqueued_cancelled_and_resumed(a: Adapters) {
    let created = a.campaigns.record_enqueued("trip", "secretary", Some("Museum trip"), 30, NOW).await.unwrap();
    assert_eq!(
        (created.state, created.enqueued, created.created_by.as_str()),
        (CampaignState::Active, 30, "secretary")
    );
    assert_eq!(created.history.len(), 1, "{}", a.name);
    assert_eq!(created.history[0].action, CampaignAction::Created);
    let more = a.campaigns.record_enqueued("trip", "head", None, 2, NOW + 10).await.unwrap();
    assert_eq!((more.enqueued, more.created_by.as_str(), more.created_at), (32, "secretary", NOW), "{}", a.name);
    assert_eq!(more.description.as_deref(), Some("Museum trip"), "{}: kept", a.name);
    assert_eq!(more.history.last().map(|e| e.action), Some(CampaignAction::Enqueued));

    assert_eq!(a.campaigns.set_cancelled("nothing", true, "head", "x", NOW).await.unwrap(), None, "{}", a.name);
    let cancelled = a.campaigns.set_cancelled("trip", true, "head", "wrong date", NOW + 20).await.unwrap().unwrap();
    assert!(cancelled.is_cancelled(), "{}", a.name);
    assert_eq!(cancelled.cancel_note(), "campaign trip cancelled by head: wrong date");
    let resumed = a.campaigns.set_cancelled("trip", false, "head", "date fixed", NOW + 30).await.unwrap().unwrap();
    assert_eq!((resumed.state, resumed.cancelled_by), (CampaignState::Active, None), "{}", a.name);
    let actions: Vec<CampaignAction> = resumed.history.iter().map(|e| e.action).collect();
    assert_eq!(
        actions,
        [CampaignAction::Created, CampaignAction::Enqueued, CampaignAction::Cancelled, CampaignAction::Resumed]
    );

    for i in 0..55 {
        let event = CampaignEvent {
            action: CampaignAction::Requeued,
            at: NOW + 100 + i,
            by: "head".into(),
            detail: format!("round {i}"),
        };
        assert!(a.campaigns.add_event("trip", event).await.unwrap());
    }
    let trip = a.campaigns.get("trip").await.unwrap().unwrap();
    assert_eq!(trip.history.len(), 50, "{}: the last 50 kept", a.name);
    assert_eq!(trip.history.last().map(|e| e.detail.as_str()), Some("round 54"));
    assert!(!a.campaigns.add_event("nothing", trip.history[0].clone()).await.unwrap());

    a.campaigns.record_enqueued("closure", "secretary", None, 5, NOW + 1000).await.unwrap();
    let many = a.campaigns.get_many(&["trip".into(), "closure".into(), "nothing".into()]).await.unwrap();
    assert_eq!(many.len(), 2, "{}: absent ones left out", a.name);
    let listed: Vec<String> = a.campaigns.list().await.unwrap().into_iter().map(|c| c.campaign).collect();
    assert_eq!(listed, ["closure", "trip"], "{}: newest first", a.name);
}

async fn the_budget_keeps_a_set_of_phones_per_hour(a: Adapters) {
    a.budget.add("#budget:2026-12-04T07", "+33612345678", NOW + 90_000).await.unwrap();
    a.budget.add("#budget:2026-12-04T07", "+33612345679", NOW + 90_000).await.unwrap();
    a.budget.add("#budget:2026-12-04T07", "+33612345678", NOW + 90_000).await.unwrap();
    a.budget.add("#budget:2026-12-04T08", "+33612345670", NOW + 93_600).await.unwrap();
    let keys =
        ["#budget:2026-12-04T07".to_owned(), "#budget:2026-12-04T08".to_owned(), "#budget:2026-12-04T09".to_owned()];
    let mut phones = a.budget.phones(&keys).await.unwrap();
    assert_eq!(phones.len(), 2, "{}: absent hours left out", a.name);
    let mut seven = phones.remove("#budget:2026-12-04T07").unwrap();
    seven.sort();
    assert_eq!(seven, ["+33612345678", "+33612345679"], "{}: a set", a.name);
    // Budget items are not campaigns.
    assert!(a.campaigns.list().await.unwrap().is_empty(), "{}", a.name);
}

fn reply(phone: &str, at: i64, sid: &str, campaign: Option<&str>) -> InboxItem {
    InboxItem {
        phone: phone.into(),
        received_at_sid: sort_key(at, sid),
        received_at: at,
        body: Some(format!("reply {sid}")),
        profile_name: Some("Parent".into()),
        num_media: 1,
        media_urls: vec![format!("https://api.twilio.com/media/{sid}")],
        button_payload: None,
        button_text: None,
        replied_to_sid: None,
        message_id: campaign.map(|c| format!("{c}:r1")),
        campaign: campaign.map(str::to_owned),
        ack: None,
        expires_at: at + RETENTION_DAYS * 86_400,
    }
}

async fn a_reply_is_kept_once_read_by_phone_and_campaign_and_forgotten(a: Adapters) {
    let other = "+33612345679";
    // 30 replies of one phone: more than one BatchWriteItem (25) to forget.
    for i in 0..30 {
        let campaign = if i % 2 == 0 { Some("trip") } else { None };
        assert!(
            a.inbox.put_once(&reply(PHONE, NOW + 30 - i, &format!("SM{i:02}"), campaign)).await.unwrap(),
            "{}",
            a.name
        );
    }
    let first = reply(PHONE, NOW + 30, "SM00", Some("trip"));
    let mut replayed = first.clone();
    replayed.body = Some("changed".into());
    assert!(!a.inbox.put_once(&replayed).await.unwrap(), "{}: a replayed reply is not written again", a.name);
    assert!(a.inbox.put_once(&reply(other, NOW, "SMother", Some("trip"))).await.unwrap());

    let mine = a.inbox.for_phone(PHONE).await.unwrap();
    assert_eq!(mine.len(), 30, "{}", a.name);
    assert!(mine.windows(2).all(|w| w[0].received_at_sid < w[1].received_at_sid), "{}: oldest first", a.name);
    assert_eq!(mine.last(), Some(&first), "{}: the first write kept, every field read back", a.name);
    let trip = a.inbox.for_campaign("trip").await.unwrap();
    assert_eq!(trip.len(), 16, "{}: 15 of the phone and the other's", a.name);
    assert!(trip.windows(2).all(|w| w[0].received_at_sid <= w[1].received_at_sid), "{}", a.name);
    assert!(a.inbox.for_campaign("absent").await.unwrap().is_empty());

    assert_eq!(a.inbox.forget_phone(PHONE).await.unwrap(), 30, "{}", a.name);
    assert!(a.inbox.for_phone(PHONE).await.unwrap().is_empty(), "{}", a.name);
    assert_eq!(a.inbox.for_campaign("trip").await.unwrap().len(), 1, "{}: the other parent's reply stays", a.name);
    assert_eq!(a.inbox.forget_phone(PHONE).await.unwrap(), 0, "{}", a.name);
}

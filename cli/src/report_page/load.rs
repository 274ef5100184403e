//! Fills the [`StaffReport`] of a campaign from what exists today: MessageLog (its items
//! through the `by-campaign` index, then their whole items with `BatchGetItem`, 100 keys a
//! call, for what the index does not project: the phone, the parent's id, who asked, the
//! answer) and the Consent records of the families that were skipped (who decided).
//!
//! The campaign's own item and history come from the Campaigns table ([`campaign_item`]);
//! the replies from the Inbox table ([`replies`]). [`build`] turns what was read into the model,
//! without I/O, so that it is tested without a table.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use futures::{StreamExt, TryStreamExt};
use serde::Deserialize;

use missive::adapters::dynamo::DynamoCampaigns;
use missive::ports::CampaignStore;

use super::model::{
    AckCount, CampaignFacts, Cancellation, ErrorText, Funnel, HistoryEntry, Phone, RecordedFacts, Reply, StaffReport,
    UnreachedFamily,
};
use super::reasons::{classify, is_unreached, ConsentNow};
use crate::campaign::{self, CampaignItem};
use crate::error::{CliError, CliResult};

/// DynamoDB's cap on the keys of one `BatchGetItem`.
const BATCH_GET_KEYS: usize = 100;
/// `BatchGetItem` calls in flight at once.
const BATCH_GET_CONCURRENCY: usize = 4;
/// Tries for keys DynamoDB leaves unprocessed (throttling), with a doubling pause.
const UNPROCESSED_TRIES: u32 = 8;

/// The tables the report reads.
#[derive(Debug, Clone, Copy)]
pub struct Tables<'a> {
    pub message_log: &'a str,
    pub consent: &'a str,
    pub campaigns: &'a str,
    pub inbox: &'a str,
}

/// What the page needs of one message: its MessageLog item, whole when it could be read,
/// else what the `by-campaign` index shows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct MessageFacts {
    pub message_id: String,
    #[serde(default)]
    pub status: String,
    pub phone: Option<Phone>,
    pub recipient_id: Option<String>,
    pub created_at: Option<i64>,
    pub updated_at: Option<i64>,
    /// Who asked for it (issue 12 writes it).
    pub requested_by: Option<String>,
    /// The parent's quick-reply answer (issue 13 writes it).
    pub ack: Option<String>,
    pub last_error: Option<ErrorText>,
    pub last_error_code: Option<u32>,
}

/// The attributes read from each whole item (`MessageFacts`' fields).
const ITEM_ATTRIBUTES: [&str; 10] = [
    "message_id",
    "status",
    "phone",
    "recipient_id",
    "created_at",
    "updated_at",
    "requested_by",
    "ack",
    "last_error",
    "last_error_code",
];

impl MessageFacts {
    fn from_index(item: &CampaignItem) -> Self {
        MessageFacts {
            message_id: item.message_id.clone(),
            status: item.status.clone(),
            updated_at: item.updated_at,
            last_error: item.last_error.clone().map(ErrorText::new),
            last_error_code: item.last_error_code,
            ..MessageFacts::default()
        }
    }
}

/// Reads everything the page shows about `campaign`, as of `now` (Unix seconds).
pub async fn load(
    dynamo: &aws_sdk_dynamodb::Client,
    tables: Tables<'_>,
    campaign: &str,
    now: i64,
    page_size: Option<i32>,
) -> CliResult<StaffReport> {
    let indexed = campaign::items(dynamo, tables.message_log, campaign, None, page_size).await?;
    let ids: Vec<String> = indexed.iter().map(|item| item.message_id.clone()).collect();
    let mut whole: HashMap<String, MessageFacts> = HashMap::new();
    for item in batch_get(dynamo, tables.message_log, "message_id", &ids, &ITEM_ATTRIBUTES).await? {
        let facts: MessageFacts = serde_dynamo::aws_sdk_dynamodb_1::from_item(item)
            .map_err(|e| CliError::Runtime(format!("decode a MessageLog item of campaign {campaign}: {e}")))?;
        whole.insert(facts.message_id.clone(), facts);
    }
    // The base table is read after the index (which lags a little): its item wins; one erased
    // meanwhile keeps what the index showed.
    let messages: Vec<MessageFacts> = indexed
        .iter()
        .map(|item| whole.remove(&item.message_id).unwrap_or_else(|| MessageFacts::from_index(item)))
        .collect();

    let skipped_phones: BTreeSet<&str> =
        messages.iter().filter(|m| m.status == "skipped").filter_map(|m| m.phone.as_ref().map(Phone::whole)).collect();
    let skipped_phones: Vec<String> = skipped_phones.into_iter().map(str::to_owned).collect();
    let mut consent: HashMap<Phone, ConsentNow> = HashMap::new();
    for item in batch_get(dynamo, tables.consent, "phone", &skipped_phones, &["phone", "state", "source"]).await? {
        if let Some(AttributeValue::S(phone)) = item.get("phone") {
            let text = |name: &str| match item.get(name) {
                Some(AttributeValue::S(value)) => Some(value.clone()),
                _ => None,
            };
            consent.insert(Phone::new(phone.as_str()), ConsentNow { state: text("state"), source: text("source") });
        }
    }

    let campaign_item = campaign_item(dynamo, tables.campaigns, campaign).await?;
    let replies = replies(dynamo, tables.inbox, campaign).await?;
    Ok(build(campaign, now, &messages, &consent, campaign_item, replies))
}

/// The Campaigns table's item of `campaign` and its `history`, oldest first (DESIGN.md,
/// "Campaigns"): one `GetItem`. `None` when the campaign has no item (messages enqueued by
/// hand, or before that table existed): the page then shows what MessageLog tells.
async fn campaign_item(
    dynamo: &aws_sdk_dynamodb::Client,
    table: &str,
    campaign: &str,
) -> CliResult<Option<(CampaignFacts, Vec<HistoryEntry>)>> {
    let store = DynamoCampaigns::new(dynamo.clone(), table);
    let item = store.get(campaign).await.map_err(|e| CliError::Runtime(format!("{e}")))?;
    Ok(item.map(campaign_facts))
}

/// The page's view of a Campaigns item.
fn campaign_facts(item: missive::domain::campaign::CampaignItem) -> (CampaignFacts, Vec<HistoryEntry>) {
    let cancelled = item.is_cancelled().then(|| Cancellation {
        at: item.cancelled_at,
        by: item.cancelled_by.clone(),
        reason: item.cancel_reason.clone(),
    });
    let facts = CampaignFacts {
        description: item.description.clone(),
        created_at: Some(item.created_at),
        created_by: Some(item.created_by.clone()),
        enqueued: Some(item.enqueued),
        cancelled,
    };
    let history = item
        .history
        .into_iter()
        .map(|event| HistoryEntry {
            action: event.action.as_str().to_owned(),
            at: Some(event.at),
            by: Some(event.by),
            detail: (!event.detail.is_empty()).then_some(event.detail),
        })
        .collect();
    (facts, history)
}

/// The parents' replies to `campaign`, oldest first (DESIGN.md, "Conversations"): the
/// Inbox's `by-campaign` index; the parent's id from the answered `<campaign>:<recipient_id>`.
async fn replies(dynamo: &aws_sdk_dynamodb::Client, inbox: &str, campaign: &str) -> CliResult<Vec<Reply>> {
    use missive::ports::Inbox as _;
    let items = missive::adapters::dynamo::DynamoInbox::new(dynamo.clone(), inbox).for_campaign(campaign).await?;
    let prefix = format!("{campaign}:");
    Ok(items
        .into_iter()
        .map(|item| Reply {
            received_at: item.received_at,
            recipient_id: item.message_id.as_deref().and_then(|id| id.strip_prefix(&prefix)).map(str::to_owned),
            phone: Some(Phone::new(item.phone.as_str())),
            profile_name: item.profile_name,
            body: item.body,
            button_text: item.button_text,
            media_count: item.num_media,
        })
        .collect())
}

/// The model, from what was read.
pub fn build(
    campaign: &str,
    now: i64,
    messages: &[MessageFacts],
    consent: &HashMap<Phone, ConsentNow>,
    campaign_item: Option<(CampaignFacts, Vec<HistoryEntry>)>,
    replies: Vec<Reply>,
) -> StaffReport {
    let mut by_status: BTreeMap<String, u64> = BTreeMap::new();
    let mut acks: BTreeMap<&str, u64> = BTreeMap::new();
    for message in messages {
        *by_status.entry(message.status.clone()).or_default() += 1;
        if let Some(ack) = message.ack.as_deref() {
            *acks.entry(ack).or_default() += 1;
        }
    }
    let count = |names: &[&str]| names.iter().map(|name| by_status.get(*name).copied().unwrap_or(0)).sum::<u64>();
    let acknowledged: u64 = acks.values().sum();
    let (facts, history) = campaign_item.map_or((None, Vec::new()), |(facts, history)| (Some(facts), history));
    let funnel = Funnel {
        enqueued: facts.as_ref().and_then(|f| f.enqueued),
        recorded: messages.len() as u64,
        sent: count(&["sent", "delivered", "read", "undelivered"]),
        delivered: count(&["delivered", "read"]),
        read: count(&["read"]),
        acknowledged: (acknowledged > 0).then_some(acknowledged),
    };

    let mut unreached: Vec<UnreachedFamily> = messages
        .iter()
        .filter(|m| is_unreached(&m.status))
        .map(|m| UnreachedFamily {
            message_id: m.message_id.clone(),
            recipient_id: m.recipient_id.clone(),
            phone: m.phone.clone(),
            status: m.status.clone(),
            reason: classify(
                &m.status,
                m.last_error_code,
                m.last_error.as_ref().map(ErrorText::whole),
                m.phone.as_ref().and_then(|p| consent.get(p)),
            ),
            code: m.last_error_code,
            error: m.last_error.clone(),
        })
        .collect();
    unreached.sort_by(|a, b| (&a.recipient_id, &a.message_id).cmp(&(&b.recipient_id, &b.message_id)));

    let mut acks: Vec<AckCount> =
        acks.into_iter().map(|(answer, count)| AckCount { answer: answer.to_owned(), count }).collect();
    acks.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.answer.cmp(&b.answer)));

    let requested_by: BTreeSet<&str> = messages.iter().filter_map(|m| m.requested_by.as_deref()).collect();
    let recorded = RecordedFacts {
        items: messages.len() as u64,
        first_at: messages.iter().filter_map(|m| m.created_at).min(),
        last_at: messages.iter().filter_map(|m| m.updated_at).max(),
        requested_by: requested_by.into_iter().map(str::to_owned).collect(),
    };
    // Without the campaign's own history, MessageLog still tells when it went out, and who
    // asked (once items record it).
    let history = if facts.is_none() && history.is_empty() && recorded.items > 0 {
        vec![HistoryEntry {
            action: "created".into(),
            at: recorded.first_at,
            by: (!recorded.requested_by.is_empty()).then(|| recorded.requested_by.join(", ")),
            detail: None,
        }]
    } else {
        history
    };

    StaffReport {
        campaign: campaign.to_owned(),
        generated_at: now,
        facts,
        recorded,
        history,
        funnel,
        by_status,
        unreached,
        acks,
        replies,
        by_language: Vec::new(),
    }
}

/// The items of `table` whose key `key_name` (a string) is in `keys`, with only
/// `attributes`: `BatchGetItem`s of 100 keys, a few at once, unprocessed keys asked again
/// after a pause. Keys without an item are absent from the result.
pub(crate) async fn batch_get(
    dynamo: &aws_sdk_dynamodb::Client,
    table: &str,
    key_name: &str,
    keys: &[String],
    attributes: &[&str],
) -> CliResult<Vec<HashMap<String, AttributeValue>>> {
    let names: HashMap<String, String> =
        attributes.iter().enumerate().map(|(i, name)| (format!("#a{i}"), (*name).to_owned())).collect();
    let projection = (0..attributes.len()).map(|i| format!("#a{i}")).collect::<Vec<_>>().join(", ");
    let chunks: Vec<&[String]> = keys.chunks(BATCH_GET_KEYS).collect();
    let pages: Vec<Vec<HashMap<String, AttributeValue>>> = futures::stream::iter(chunks)
        .map(|chunk| {
            let request = chunk
                .iter()
                .map(|key| HashMap::from([(key_name.to_owned(), AttributeValue::S(key.clone()))]))
                .collect::<Vec<_>>();
            let (names, projection) = (names.clone(), projection.clone());
            async move {
                let mut request = KeysAndAttributes::builder()
                    .set_keys(Some(request))
                    .projection_expression(projection)
                    .set_expression_attribute_names(Some(names))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| CliError::Runtime(format!("BatchGetItem {table}: {e}")))?;
                let mut found = Vec::new();
                let mut pause = Duration::from_millis(50);
                for attempt in 1..=UNPROCESSED_TRIES {
                    let output = dynamo
                        .batch_get_item()
                        .request_items(table, request)
                        .send()
                        .await
                        .map_err(|e| CliError::aws(&format!("BatchGetItem {table}"), &e))?;
                    found.extend(output.responses.and_then(|mut r| r.remove(table)).unwrap_or_default());
                    match output.unprocessed_keys.and_then(|mut u| u.remove(table)) {
                        Some(left) if !left.keys.is_empty() => {
                            if attempt == UNPROCESSED_TRIES {
                                return Err(CliError::Runtime(format!(
                                    "BatchGetItem {table}: {} key(s) still unprocessed after {UNPROCESSED_TRIES} tries \
                                     (the table is throttled): try again later",
                                    left.keys.len()
                                )));
                            }
                            request = left;
                            tokio::time::sleep(pause).await;
                            pause = (pause * 2).min(Duration::from_secs(2));
                        }
                        _ => break,
                    }
                }
                Ok::<_, CliError>(found)
            }
        })
        .buffer_unordered(BATCH_GET_CONCURRENCY)
        .try_collect()
        .await?;
    Ok(pages.into_iter().flatten().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report_page::reasons::Reason;

    fn message(id: &str, status: &str) -> MessageFacts {
        MessageFacts {
            message_id: format!("trip:{id}"),
            status: status.into(),
            phone: Some(Phone::new(format!("+336123456{:0>2}", &id[1..]))),
            recipient_id: Some(id.into()),
            created_at: Some(1_000 + id[1..].parse::<i64>().unwrap()),
            updated_at: Some(2_000 + id[1..].parse::<i64>().unwrap()),
            ..MessageFacts::default()
        }
    }

    #[test]
    fn the_funnel_counts_how_far_each_message_got() {
        let messages = [
            message("p1", "read"),
            message("p2", "delivered"),
            message("p3", "sent"),
            message("p4", "undelivered"),
            message("p5", "skipped"),
            message("p6", "retrying"),
        ];
        let report = build("trip", 5_000, &messages, &HashMap::new(), None, Vec::new());
        assert_eq!(
            report.funnel,
            Funnel { enqueued: None, recorded: 6, sent: 4, delivered: 2, read: 1, acknowledged: None }
        );
        assert_eq!(report.funnel.base(), 6);
        assert_eq!(report.by_status.get("retrying"), Some(&1));
        assert_eq!(report.recorded.first_at, Some(1_001));
        assert_eq!(report.recorded.last_at, Some(2_006));
        let unreached: Vec<&str> = report.unreached.iter().map(|u| u.message_id.as_str()).collect();
        assert_eq!(unreached, ["trip:p4", "trip:p5"], "in flight and sent are not unreached");
        assert_eq!(report.history.len(), 1, "the first message stands for the campaign's history");
        assert_eq!((report.history[0].action.as_str(), report.history[0].at), ("created", Some(1_001)));
        assert_eq!(report.history[0].by, None, "no item records who asked yet");
    }

    #[test]
    fn acks_and_who_asked_are_read_when_items_carry_them() {
        let mut messages = vec![message("p1", "read"), message("p2", "delivered"), message("p3", "delivered")];
        messages[0].ack = Some("yes".into());
        messages[1].ack = Some("yes".into());
        messages[2].ack = Some("no".into());
        messages[0].requested_by = Some("secretary".into());
        messages[2].requested_by = Some("head".into());
        let report = build("trip", 5_000, &messages, &HashMap::new(), None, Vec::new());
        assert_eq!(report.funnel.acknowledged, Some(3));
        assert_eq!(
            report.acks,
            [AckCount { answer: "yes".into(), count: 2 }, AckCount { answer: "no".into(), count: 1 }]
        );
        assert_eq!(report.recorded.requested_by, ["head", "secretary"]);
        assert_eq!(report.history[0].by.as_deref(), Some("head, secretary"));
    }

    #[test]
    fn the_campaign_item_gives_the_first_step_and_the_history() {
        let facts = CampaignFacts { enqueued: Some(10), ..CampaignFacts::default() };
        let history = vec![HistoryEntry { action: "cancelled".into(), at: Some(3), by: None, detail: None }];
        let report =
            build("trip", 5_000, &[message("p1", "sent")], &HashMap::new(), Some((facts, history)), Vec::new());
        assert_eq!((report.funnel.enqueued, report.funnel.base()), (Some(10), 10));
        assert_eq!(report.history[0].action, "cancelled", "the table's history, not a derived one");
    }

    #[test]
    fn skipped_families_get_the_reason_from_their_consent_record() {
        let messages = [message("p1", "skipped"), message("p2", "skipped")];
        let consent = HashMap::from([(
            Phone::new("+33612345601"),
            ConsentNow { state: Some("opted_out".into()), source: Some("whatsapp-reply".into()) },
        )]);
        let report = build("trip", 5_000, &messages, &consent, None, Vec::new());
        assert_eq!(report.unreached[0].reason, Reason::AskedToStop);
        assert_eq!(report.unreached[1].reason, Reason::NoConsent, "no record and no error text");
    }

    #[test]
    fn an_empty_campaign_has_no_history_and_a_zero_funnel() {
        let report = build("nothing", 5_000, &[], &HashMap::new(), None, Vec::new());
        assert!(report.history.is_empty() && report.unreached.is_empty() && report.by_status.is_empty());
        assert_eq!(report.funnel.base(), 0);
    }
}

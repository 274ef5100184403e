//! `missive replies`: the parents' replies (DESIGN.md, "Conversations").
//!
//! - `--campaign NAME`: the campaign's replies (the Inbox's `by-campaign`), the answers its
//!   messages got (`ack`), and with `--unacknowledged` only who has not answered (the
//!   campaign's sent messages without `ack`);
//! - `--phone P`: one parent's conversation, our messages (`by-recipient`) and theirs (the
//!   Inbox), in time order.

use std::collections::BTreeMap;

use clap::Args;
use missive::adapters::dynamo::DynamoInbox;
use missive::domain::inbox::InboxItem;
use missive::ports::Inbox as _;
use serde::Serialize;
use serde_json::json;

use crate::campaign;
use crate::commands::forget::items_of_phone;
use crate::context::Context;
use crate::error::{CliError, CliResult};
use crate::item_attrs::{number, text};
use crate::output::{print_json, shorten, time};
use crate::phone_input::parse_phone_flag;
use crate::report_page::load::batch_get;

/// Statuses of a message that reached the parent's phone, or may have: one that can be answered.
const ANSWERABLE: [&str; 4] = ["sent", "delivered", "read", "undelivered"];

#[derive(Debug, Args)]
pub struct RepliesArgs {
    /// A campaign's replies and answers.
    #[arg(long, value_name = "NAME", conflicts_with = "phone", required_unless_present = "phone")]
    pub campaign: Option<String>,
    /// One parent's conversation.
    #[arg(long, value_name = "PHONE")]
    pub phone: Option<String>,
    /// With --campaign: only the parents who have not answered (sent messages without `ack`).
    #[arg(long)]
    pub unacknowledged: bool,
}

/// One of the campaign's messages and its answer.
#[derive(Debug, Clone, Serialize)]
struct Answer {
    message_id: String,
    phone: Option<String>,
    recipient_id: Option<String>,
    status: String,
    ack: Option<String>,
    ack_at: Option<i64>,
}

pub async fn run(ctx: &Context, args: RepliesArgs) -> CliResult<()> {
    if args.unacknowledged && args.campaign.is_none() {
        return Err(CliError::Usage("replies: --unacknowledged goes with --campaign NAME".into()));
    }
    match (&args.campaign, &args.phone) {
        (Some(campaign), _) => by_campaign(ctx, campaign, args.unacknowledged).await,
        (None, Some(phone)) => conversation(ctx, phone).await,
        (None, None) => Err(CliError::Usage("replies: give --campaign NAME or --phone PHONE".into())),
    }
}

async fn answers(ctx: &Context, campaign: &str) -> CliResult<Vec<Answer>> {
    let dynamo = ctx.dynamo().await;
    let table = &ctx.global.message_log_table;
    let indexed = campaign::items(&dynamo, table, campaign, None, None).await?;
    let ids: Vec<String> = indexed.iter().map(|item| item.message_id.clone()).collect();
    let attributes = ["message_id", "status", "phone", "recipient_id", "ack", "ack_at"];
    let mut answers: Vec<Answer> = batch_get(&dynamo, table, "message_id", &ids, &attributes)
        .await?
        .iter()
        .map(|item| Answer {
            message_id: text(item, "message_id").unwrap_or_default(),
            phone: text(item, "phone"),
            recipient_id: text(item, "recipient_id"),
            status: text(item, "status").unwrap_or_else(|| "unknown".into()),
            ack: text(item, "ack"),
            ack_at: number(item, "ack_at"),
        })
        .collect();
    answers.sort_by(|a, b| a.message_id.cmp(&b.message_id));
    Ok(answers)
}

/// The answers' counts from a campaign's replies (oldest first): each message's last `ack`
/// wins, as on its MessageLog item.
pub fn ack_counts(replies: &[InboxItem]) -> BTreeMap<String, u64> {
    let mut last: BTreeMap<&str, &str> = BTreeMap::new();
    for reply in replies {
        if let (Some(id), Some(ack)) = (reply.message_id.as_deref(), reply.ack.as_deref()) {
            last.insert(id, ack);
        }
    }
    let mut counts = BTreeMap::new();
    for ack in last.values() {
        *counts.entry((*ack).to_owned()).or_default() += 1;
    }
    counts
}

fn reply_text(reply: &InboxItem) -> String {
    let mut text = reply.button_text.clone().or_else(|| reply.body.clone()).unwrap_or_default();
    if reply.num_media > 0 {
        text.push_str(&format!(" [{} attachment(s)]", reply.num_media));
    }
    text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

async fn by_campaign(ctx: &Context, campaign: &str, unacknowledged: bool) -> CliResult<()> {
    let answers = answers(ctx, campaign).await?;
    let waiting: Vec<&Answer> =
        answers.iter().filter(|a| a.ack.is_none() && ANSWERABLE.contains(&a.status.as_str())).collect();
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    for answer in &answers {
        if let Some(ack) = answer.ack.as_deref() {
            *counts.entry(ack).or_default() += 1;
        }
    }
    if unacknowledged {
        if ctx.json() {
            print_json(&json!({"campaign": campaign, "unacknowledged": waiting}));
        } else {
            println!("campaign {campaign}: {} parent(s) have not answered", waiting.len());
            for a in &waiting {
                println!(
                    "  {}  {}  {}",
                    a.phone.as_deref().unwrap_or("-"),
                    a.recipient_id.as_deref().unwrap_or("-"),
                    a.status
                );
            }
        }
        return Ok(());
    }
    let inbox = DynamoInbox::new(ctx.dynamo().await, &ctx.global.inbox_table);
    let replies = inbox.for_campaign(campaign).await?;
    if ctx.json() {
        print_json(&json!({
            "campaign": campaign,
            "replies": replies,
            "acks": counts,
            "answered": answers.iter().filter(|a| a.ack.is_some()).collect::<Vec<_>>(),
            "unacknowledged": waiting,
        }));
        return Ok(());
    }
    println!("campaign {campaign}: {} repl(ies)", replies.len());
    for reply in &replies {
        println!(
            "  {}  {}  {}  {}",
            time(Some(reply.received_at)),
            reply.phone,
            reply.profile_name.as_deref().map(|n| shorten(n, 24)).unwrap_or_else(|| "-".into()),
            shorten(&reply_text(reply), 80)
        );
        for url in &reply.media_urls {
            println!("      media: {url}");
        }
    }
    let answered: u64 = counts.values().sum();
    println!("answers: {answered} of {} message(s)", answers.len());
    for (word, count) in &counts {
        println!("  {word}: {count}");
    }
    println!("not answered: {} (missive replies --campaign {campaign} --unacknowledged)", waiting.len());
    Ok(())
}

/// One line of a conversation.
#[derive(Debug, Serialize)]
struct Line {
    at: Option<i64>,
    direction: &'static str,
    message_id: Option<String>,
    status: Option<String>,
    text: Option<String>,
    media_urls: Vec<String>,
    ack: Option<String>,
}

async fn conversation(ctx: &Context, raw: &str) -> CliResult<()> {
    let phone = parse_phone_flag("--phone", raw, ctx.phone_region())?;
    let dynamo = ctx.dynamo().await;
    let sent = items_of_phone(&dynamo, &ctx.global.message_log_table, phone.as_str()).await?;
    let inbox = DynamoInbox::new(dynamo, &ctx.global.inbox_table);
    let received = inbox.for_phone(phone.as_str()).await?;
    let mut lines: Vec<Line> = sent
        .into_iter()
        .map(|item| Line {
            at: item.created_at,
            direction: "out",
            message_id: Some(item.message_id),
            status: Some(item.status),
            text: None,
            media_urls: Vec::new(),
            ack: None,
        })
        .chain(received.iter().map(|reply| Line {
            at: Some(reply.received_at),
            direction: "in",
            message_id: reply.message_id.clone(),
            status: None,
            text: Some(reply_text(reply)),
            media_urls: reply.media_urls.clone(),
            ack: reply.ack.clone(),
        }))
        .collect();
    // Outbound before inbound in the same second: a reply follows what it answers.
    lines.sort_by_key(|line| (line.at, line.direction == "in"));
    if ctx.json() {
        print_json(&json!({"phone": phone.as_str(), "conversation": lines}));
        return Ok(());
    }
    println!("{}: {} message(s)", phone.as_str(), lines.len());
    for line in &lines {
        match line.direction {
            "out" => println!(
                "  {}  → {}  ({})",
                time(line.at),
                line.message_id.as_deref().unwrap_or("-"),
                line.status.as_deref().unwrap_or("-")
            ),
            _ => {
                let answers = line.message_id.as_deref().map(|id| format!("  [answers {id}]")).unwrap_or_default();
                println!("  {}  ← {}{answers}", time(line.at), shorten(line.text.as_deref().unwrap_or_default(), 100));
                for url in &line.media_urls {
                    println!("      media: {url}");
                }
            }
        }
    }
    Ok(())
}

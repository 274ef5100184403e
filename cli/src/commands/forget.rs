//! `missive forget --phone P`: GDPR erasure (DESIGN.md, "Erasure"). Deletes the phone's
//! MessageLog items found through `by-recipient`, and replaces its Consent item with a bare
//! suppression record, so that the parent is never messaged again; and deletes the phone's
//! replies from the Inbox (DESIGN.md, "Conversations").

use aws_sdk_dynamodb::types::AttributeValue;
use clap::Args;
use missive::adapters::dynamo::DynamoInbox;
use missive::domain::status::Status;
use missive::ports::{ConsentStore as _, Inbox as _};
use missive::schema::BY_RECIPIENT_INDEX;
use serde::Serialize;
use serde_json::json;

use crate::context::Context;
use crate::error::{CliError, CliResult};
use crate::item_attrs::{number, text};
use crate::output::{print_json, time};
use crate::phone_input::parse_phone_flag;

#[derive(Debug, Args)]
pub struct ForgetArgs {
    #[arg(long, value_name = "PHONE")]
    pub phone: String,
    /// Erase even while one of the phone's messages is in flight (sending, retrying,
    /// in_doubt): its `send` may still reach Twilio, and will find the suppression record
    /// only if it has not checked consent yet.
    #[arg(long)]
    pub force: bool,
}

/// One MessageLog item of the phone, as `by-recipient` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Found {
    pub message_id: String,
    pub status: String,
    pub twilio_sid: Option<String>,
    pub created_at: Option<i64>,
}

/// Everything `by-recipient` holds for `phone`, page after page.
pub async fn items_of_phone(dynamo: &aws_sdk_dynamodb::Client, table: &str, phone: &str) -> CliResult<Vec<Found>> {
    let mut pages = dynamo
        .query()
        .table_name(table)
        .index_name(BY_RECIPIENT_INDEX)
        .key_condition_expression("#phone = :phone")
        .expression_attribute_names("#phone", "phone")
        .expression_attribute_values(":phone", AttributeValue::S(phone.to_owned()))
        .into_paginator()
        .items()
        .send();
    let mut found = Vec::new();
    while let Some(item) = pages.next().await {
        let item = item.map_err(|e| CliError::aws(&format!("Query {table} index {BY_RECIPIENT_INDEX}"), &e))?;
        found.push(Found {
            message_id: text(&item, "message_id").unwrap_or_default(),
            status: text(&item, "status").unwrap_or_else(|| "unknown".into()),
            twilio_sid: text(&item, "twilio_sid"),
            created_at: number(&item, "created_at"),
        });
    }
    Ok(found)
}

fn in_flight(status: &str) -> bool {
    status.parse::<Status>().is_ok_and(|s| s.is_in_flight())
}

/// What erasure cannot reach, said every time.
pub fn unreachable_notes(sids: &[String]) -> Vec<String> {
    let mut notes = vec![
        "messages still waiting in the send queue or the dead-letter queue (SQS cannot be searched); one that is \
         processed later finds the suppression record and is recorded `skipped` under this phone: run forget again \
         once the queue is empty"
            .to_owned(),
        "`rejected` messages whose `to` was not a valid number: they have no phone attribute, so by-recipient does \
         not list them, and their stored request may hold the number as written"
            .to_owned(),
        "logs (CloudWatch): phone numbers are masked there, message ids are not; they expire with the log \
         group's retention"
            .to_owned(),
        "backups of the tables (point-in-time recovery), until they age out".to_owned(),
    ];
    if sids.is_empty() {
        notes.push("Twilio's own message logs: no Twilio SID was recorded for this phone".to_owned());
    } else {
        notes.push(format!(
            "Twilio's own message logs ({} message(s)): delete or redact them at Twilio (DELETE …/Messages/{{Sid}}.json): {}",
            sids.len(),
            sids.join(", ")
        ));
    }
    notes
}

pub async fn run(ctx: &Context, args: ForgetArgs) -> CliResult<()> {
    let phone = parse_phone_flag("--phone", &args.phone, ctx.phone_region())?;
    let dynamo = ctx.dynamo().await;
    let table = &ctx.global.message_log_table;
    let found = items_of_phone(&dynamo, table, phone.as_str()).await?;
    let busy: Vec<&Found> = found.iter().filter(|f| in_flight(&f.status)).collect();
    if !busy.is_empty() && !args.force {
        let list: Vec<String> = busy.iter().map(|f| format!("{} ({})", f.message_id, f.status)).collect();
        return Err(CliError::Refused(format!(
            "{} has {} message(s) in flight: {}; nothing was erased. Try again once they are final, or pass --force",
            phone.masked(),
            busy.len(),
            list.join(", ")
        )));
    }
    let mut erased = Vec::new();
    let mut skipped = Vec::new();
    for item in &found {
        let mut delete =
            dynamo.delete_item().table_name(table).key("message_id", AttributeValue::S(item.message_id.clone()));
        if !args.force {
            // An item that went in flight since the query is left alone.
            delete = delete
                .condition_expression(
                    "attribute_not_exists(message_id) OR NOT (#status IN (:sending, :retrying, :in_doubt))",
                )
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":sending", AttributeValue::S(Status::Sending.as_str().into()))
                .expression_attribute_values(":retrying", AttributeValue::S(Status::Retrying.as_str().into()))
                .expression_attribute_values(":in_doubt", AttributeValue::S(Status::InDoubt.as_str().into()));
        }
        match delete.send().await {
            Ok(_) => erased.push(item.clone()),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                skipped.push(item.clone())
            }
            Err(err) => return Err(CliError::aws(&format!("DeleteItem {}", item.message_id), &err)),
        }
    }
    let inbox = DynamoInbox::new(dynamo.clone(), &ctx.global.inbox_table);
    let replies_erased = inbox.forget_phone(phone.as_str()).await?;
    let store = ctx.consent_store().await;
    let previous = store.item(&phone).await?;
    store.suppress(&phone, chrono::Utc::now().timestamp()).await?;
    let sids: Vec<String> = found.iter().filter_map(|f| f.twilio_sid.clone()).collect();
    let notes = unreachable_notes(&sids);
    if ctx.json() {
        print_json(&json!({
            "phone": phone.masked(),
            "erased": erased,
            "left_in_flight": skipped,
            "replies_erased": replies_erased,
            "consent": {
                "previous_state": previous.as_ref().map(|p| p.state.clone()),
                "previous_history_entries": previous.as_ref().map_or(0, |p| p.history.len()),
                "now": {"state": "opted_out", "source": "erasure"},
            },
            "cannot_reach": notes,
        }));
    } else {
        println!("{}: erased {} MessageLog item(s)", phone.masked(), erased.len());
        for item in &erased {
            println!("  {}  {:<12} created {}", item.message_id, item.status, time(item.created_at));
        }
        println!("{}: erased {replies_erased} repl(ies) from the Inbox", phone.masked());
        for item in &skipped {
            println!("  {}  went in flight meanwhile: NOT erased (run forget again)", item.message_id);
        }
        println!(
            "consent: {} replaced by a bare suppression record (opted_out, source erasure, no history)",
            match &previous {
                Some(p) =>
                    format!("{} with {} history entr(ies)", p.state.as_deref().unwrap_or("no state"), p.history.len()),
                None => "no record".into(),
            }
        );
        println!("not reachable from here:");
        for note in &notes {
            println!("  - {note}");
        }
    }
    if !skipped.is_empty() {
        return Err(CliError::Refused(format!(
            "{} item(s) went in flight during the erasure and were left; run forget again",
            skipped.len()
        )));
    }
    Ok(())
}

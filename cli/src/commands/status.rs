//! `missive status ID`: one message's item: status, attempts, errors, Twilio's view.

use clap::Args;
use missive::adapters::dynamo::DynamoMessageLog;
use missive::domain::phone::mask_phone;
use missive::ports::MessageLog;
use serde_json::Value;

use crate::context::Context;
use crate::error::{CliError, CliResult};
use crate::output::{print_json, time};

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The message id (`<campaign>:<parent_id>` for bulk sends).
    #[arg(value_name = "MESSAGE_ID")]
    pub message_id: String,
    /// Show the whole phone number and the original queue message (masked otherwise).
    #[arg(long)]
    pub show_phone: bool,
}

pub async fn run(ctx: &Context, args: StatusArgs) -> CliResult<()> {
    let log = DynamoMessageLog::new(ctx.dynamo().await, &ctx.global.message_log_table);
    let item = log.get(&args.message_id).await?.ok_or_else(|| {
        CliError::NotFound(format!("no message {:?} in {}", args.message_id, ctx.global.message_log_table))
    })?;
    let phone = item.phone.as_deref().map(|p| if args.show_phone { p.to_owned() } else { mask_phone(p) });
    let status = item.status.map(|s| s.as_str()).unwrap_or("unknown");
    let in_flight = item.status.is_some_and(|s| s.is_in_flight());
    if ctx.json() {
        let mut value = serde_json::to_value(&item).map_err(|e| CliError::Runtime(e.to_string()))?;
        value["phone"] = phone.clone().map_or(Value::Null, Value::String);
        value["in_flight"] = Value::Bool(in_flight);
        if !args.show_phone {
            if let Some(object) = value.as_object_mut() {
                object.remove("request");
            }
        }
        print_json(&value);
        return Ok(());
    }
    let line = |label: &str, value: String| println!("{label:<16}{value}");
    let opt = |value: &Option<String>| value.clone().unwrap_or_else(|| "-".into());
    line("message_id", item.message_id.clone());
    line("status", format!("{status}{}", if in_flight { " (in flight)" } else { "" }));
    line("phone", phone.unwrap_or_else(|| "-".into()));
    line("campaign", opt(&item.campaign));
    line("recipient_id", opt(&item.recipient_id));
    line(
        "attempts",
        format!(
            "{} of {}{}",
            item.attempts,
            item.max_attempts.map_or("-".into(), |m| m.to_string()),
            if item.throttled > 0 { format!(" ({} throttled, not counted)", item.throttled) } else { String::new() }
        ),
    );
    line(
        "last_error",
        match (&item.last_error, item.last_error_code) {
            (Some(error), Some(code)) if !error.starts_with(&code.to_string()) => format!("{error} (code {code})"),
            (Some(error), _) => error.clone(),
            (None, Some(code)) => format!("code {code}"),
            (None, None) => "-".into(),
        },
    );
    line("twilio_sid", opt(&item.twilio_sid));
    line("twilio_status", opt(&item.twilio_status));
    if let Some(extra) = &item.extra_sids {
        line("extra_sids", format!("{} (duplicate creates: report this)", extra.join(", ")));
    }
    line("created_at", time(item.created_at));
    line("updated_at", time(item.updated_at));
    for (label, value) in [("sent_at", item.sent_at), ("delivered_at", item.delivered_at), ("read_at", item.read_at)] {
        if value.is_some() {
            line(label, time(value));
        }
    }
    if in_flight {
        line("next_attempt_at", time(item.next_attempt_at));
        line("lease_until", time(item.lease_until));
        line("retry_due_at", time(item.retry_due_at));
    }
    line("expires_at", time(item.expires_at));
    if args.show_phone {
        line("request", opt(&item.request));
    }
    Ok(())
}

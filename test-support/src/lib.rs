//! What every Missive test shares, in one place: names no other test uses, SQS events as
//! Lambda delivers them (typed for in-process handlers, JSON for a function behind the Runtime
//! API), and the emulator: the moto server `make test` started, or, when `AWS_ENDPOINT_URL`
//! is not set, one started here from the project's venv so that a plain `cargo test` works
//! on a machine where `make tools` has run.

mod emulator;

use std::sync::atomic::{AtomicU32, Ordering};

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};

pub use emulator::{ensure_emulator, EmulatorError};

/// The region every test uses (the emulator's).
pub const REGION: &str = "eu-west-3";

/// A name no other test uses (tables, queues): the process, a counter and a random part.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}-{:06x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst),
        rand::random::<u32>() & 0xff_ffff
    )
}

/// An SQS event with one record per body, as Lambda delivers it (record `i` has message id
/// `sqs-i`, the identifier a partial batch response names).
pub fn sqs_event(bodies: &[String]) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| {
            let mut record = SqsMessage::default();
            record.message_id = Some(format!("sqs-{i}"));
            record.receipt_handle = Some(format!("receipt-{i}"));
            record.body = Some(body.clone());
            record.attributes.insert("ApproximateReceiveCount".into(), "1".into());
            record.event_source = Some("aws:sqs".into());
            record.event_source_arn = Some(format!("arn:aws:sqs:{REGION}:000000000000:missive-send"));
            record.aws_region = Some(REGION.into());
            record
        })
        .collect();
    event
}

/// The same event as the JSON a function binary reads from the Runtime API.
pub fn sqs_event_json(bodies: &[String]) -> serde_json::Value {
    serde_json::to_value(sqs_event(bodies)).expect("an SqsEvent serialises")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_differ_and_keep_their_prefix() {
        let (a, b) = (unique("MessageLog"), unique("MessageLog"));
        assert_ne!(a, b);
        assert!(a.starts_with("MessageLog-") && b.starts_with("MessageLog-"));
    }

    #[test]
    fn the_event_reads_back_as_lambda_delivers_it() {
        let json = sqs_event_json(&["{\"v\":1}".into(), "x".into()]);
        let records = json["Records"].as_array().expect("Records");
        assert_eq!(records.len(), 2);
        assert_eq!(records[1]["messageId"], "sqs-1");
        assert_eq!(records[0]["body"], "{\"v\":1}");
        assert_eq!(records[0]["eventSource"], "aws:sqs");
        assert_eq!(records[0]["attributes"]["ApproximateReceiveCount"], "1");
        let back: SqsEvent = serde_json::from_value(json).expect("parses as SqsEvent");
        assert_eq!(back.records[1].body.as_deref(), Some("x"));
    }
}

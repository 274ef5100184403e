//! Enqueueing a bulk file's messages: first what an earlier run already sent is set aside
//! (MessageLog holds it), then the rest goes out 10 per `SendMessageBatch`, `concurrency`
//! calls at a time; the entries a call refused are sent once more, and those refused again
//! are reported by line (running the same file again is safe).

use std::sync::atomic::{AtomicUsize, Ordering};

use futures::StreamExt;
use indicatif::ProgressBar;
use missive::ports::SendQueue;

use super::plan::Planned;
use crate::context::Context;
use crate::error::{CliError, CliResult};
use crate::output::warn;
use crate::recorded;

/// SQS's cap on the entries of one `SendMessageBatch`.
const ENTRIES_PER_BATCH: usize = 10;

/// The rows whose `message_id` MessageLog does not hold yet (`BatchGetItem`, key only). A row
/// DynamoDB left unprocessed after every retry is kept: `send` would acknowledge a duplicate.
pub async fn not_yet_recorded<'a>(
    ctx: &Context,
    planned: &'a [Planned],
    concurrency: usize,
) -> CliResult<Vec<&'a Planned>> {
    let table = &ctx.global.message_log_table;
    let ids: Vec<String> = planned.iter().map(|row| row.message_id.clone()).collect();
    let lookup = recorded::lookup(&ctx.dynamo().await, table, &ids, concurrency).await.map_err(|err| {
        CliError::Runtime(format!("{err}; nothing was recorded or enqueued (running the same file again is safe)"))
    })?;
    if !lookup.unchecked.is_empty() {
        warn(&format!(
            "{} message id(s) could not be looked up in {table} (DynamoDB left them unprocessed after {} attempts): enqueued all the same; send acknowledges any already recorded as a duplicate",
            lookup.unchecked.len(),
            recorded::ATTEMPTS
        ));
    }
    Ok(planned.iter().filter(|row| !lookup.recorded.contains(&row.message_id)).collect())
}

/// What went onto the queue.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Enqueued {
    pub count: usize,
    /// The lines of the messages refused twice, in order.
    pub failed_lines: Vec<u64>,
}

impl Enqueued {
    /// An error listing the lines that could not be enqueued, if any.
    pub fn check(&self) -> CliResult<()> {
        if self.failed_lines.is_empty() {
            return Ok(());
        }
        Err(CliError::Runtime(format!(
            "{} message(s) could not be enqueued (lines {}); run the same file again: what was enqueued is not sent twice",
            self.failed_lines.len(),
            self.failed_lines.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")
        )))
    }
}

/// Sends `rows`' messages to `queue`, ticking `progress` for each.
pub async fn enqueue(queue: &dyn SendQueue, rows: &[&Planned], concurrency: usize, progress: &ProgressBar) -> Enqueued {
    let count = AtomicUsize::new(0);
    let mut failed_lines: Vec<u64> = futures::stream::iter(rows.chunks(ENTRIES_PER_BATCH))
        .map(|chunk| {
            let count = &count;
            async move {
                let bodies: Vec<&str> = chunk.iter().map(|row| row.body.as_str()).collect();
                let failed = send_twice(queue, &bodies).await;
                count.fetch_add(chunk.len() - failed.len(), Ordering::SeqCst);
                progress.inc(chunk.len() as u64);
                failed.into_iter().map(|i| chunk[i].line).collect::<Vec<u64>>()
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .flatten()
        .collect();
    failed_lines.sort_unstable();
    Enqueued { count: count.into_inner(), failed_lines }
}

/// One batch, and its refused entries once more; returns the indexes refused both times.
async fn send_twice(queue: &dyn SendQueue, bodies: &[&str]) -> Vec<usize> {
    let failed = queue.send_batch(bodies).await;
    if failed.is_empty() {
        return failed;
    }
    let retry: Vec<&str> = failed.iter().map(|&i| bodies[i]).collect();
    queue.send_batch(&retry).await.into_iter().map(|i| failed[i]).collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use missive::adapters::memory::{ManualClock, MemoryQueue};

    use super::super::plan::planned_rows;
    use super::*;

    fn planned(rows: usize) -> Vec<Planned> {
        let mut csv = String::from("parent_id,phone,whatsapp_optin\n");
        for n in 0..rows {
            csv.push_str(&format!("p{n:02},+336123456{n:02},true\n"));
        }
        planned_rows(&csv)
    }

    #[tokio::test]
    async fn every_message_goes_out_in_batches_of_ten() {
        let rows = planned(23);
        let refs: Vec<&Planned> = rows.iter().collect();
        let queue = MemoryQueue::new(Arc::new(ManualClock::at(1_000)));
        let enqueued = enqueue(&queue, &refs, 2, &ProgressBar::hidden()).await;
        assert_eq!(enqueued, Enqueued { count: 23, failed_lines: vec![] });
        let mut sizes = queue.batch_sizes();
        sizes.sort_unstable();
        assert_eq!(sizes, [3, 10, 10]);
        let mut bodies: Vec<String> = queue.messages().into_iter().map(|m| m.body).collect();
        bodies.sort();
        let mut expected: Vec<String> = rows.iter().map(|row| row.body.clone()).collect();
        expected.sort();
        assert_eq!(bodies, expected);
        assert!(enqueued.check().is_ok());
    }

    #[tokio::test]
    async fn a_refused_batch_is_sent_once_more_then_reported_by_line() {
        let rows = planned(12);
        let refs: Vec<&Planned> = rows.iter().collect();
        let queue = MemoryQueue::new(Arc::new(ManualClock::at(1_000)));
        queue.faults.fail("send_batch", None);
        let enqueued = enqueue(&queue, &refs, 4, &ProgressBar::hidden()).await;
        assert_eq!(enqueued.count, 0);
        assert_eq!(enqueued.failed_lines, (2..=13).collect::<Vec<u64>>());
        assert_eq!(queue.faults.count("send_batch"), 4, "each of the two batches twice");
        let err = enqueued.check().unwrap_err();
        assert!(err.to_string().starts_with("12 message(s) could not be enqueued (lines 2, 3, 4,"), "{err}");
    }
}

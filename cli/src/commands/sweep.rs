//! `missive sweep`: the retry sweep's handler, run now in this process against the
//! configured table and queue (the same code as the `retry-sweep` function).

use clap::Args;
use missive::config::{Env, SweepConfig};
use missive::handlers::sweep::default_deadline;

use crate::context::Context;
use crate::error::{CliError, CliResult};
use crate::output::print_json;

#[derive(Debug, Args)]
pub struct SweepArgs {}

pub async fn run(ctx: &Context, _args: SweepArgs) -> CliResult<()> {
    let table = ctx.global.message_log_table.clone();
    let queue_url = ctx.queue_url()?.to_owned();
    // The sweep's own variables (SWEEP_RESCHEDULE_SECONDS, …) from the environment; the
    // table and queue as this command resolved them.
    let env = Env::from_fn(move |name| match name {
        "MESSAGE_LOG_TABLE" => Some(table.clone()),
        "SEND_QUEUE_URL" => Some(queue_url.clone()),
        other => std::env::var(other).ok(),
    });
    let config = SweepConfig::from_env(&env).map_err(|e| CliError::Usage(e.to_string()))?;
    let handler = missive::wiring::sweep_handler(config, ctx.aws().await);
    // The handler prints its CloudWatch metrics (EMF) on stdout, as a Lambda must; here
    // stdout carries the report, so the metrics line goes to stderr.
    let report = {
        let _guard = crate::stdio::StdoutToStderr::new();
        handler.run(default_deadline()).await
    };
    if ctx.json() {
        print_json(&report);
    } else {
        println!(
            "sweep: {} due, {} enqueued, {} skipped, {} enqueue failed, {} store errors{}, {} ms",
            report.due,
            report.enqueued,
            report.skipped,
            report.enqueue_failed,
            report.errors,
            if report.left_for_next_run { ", some left for the next run" } else { "" },
            report.duration_ms
        );
    }
    if report.errors > 0 {
        return Err(CliError::Runtime(format!(
            "{} store error(s) during the sweep (see the log above); what they left stays due for the next run",
            report.errors
        )));
    }
    if report.enqueue_failed > 0 {
        return Err(CliError::Runtime(format!(
            "{} due message(s) could not be enqueued; they stay due for the next run",
            report.enqueue_failed
        )));
    }
    Ok(())
}

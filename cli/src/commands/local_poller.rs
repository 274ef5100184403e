//! `missive local-poller` (hidden): the local pipeline of `make demo` — receives from the
//! send queue and invokes `send` under `cargo lambda watch`, and invokes `retry-sweep`
//! every few seconds. See [`crate::local`].

use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use crate::context::Context;
use crate::error::{CliError, CliResult};
use crate::local::{self, LambdaApi, Options};
use crate::output::print_json;

#[derive(Debug, Args)]
pub struct LocalPollerArgs {
    /// The Lambda Invoke API serving `send` (`cargo lambda watch`: http://127.0.0.1:PORT).
    #[arg(long, value_name = "URL")]
    pub send_api: String,
    /// The Lambda Invoke API serving `retry-sweep` (default: --send-api).
    #[arg(long, value_name = "URL")]
    pub sweep_api: Option<String>,
    #[arg(long, default_value = "send", value_name = "NAME")]
    pub send_function: String,
    #[arg(long, default_value = "retry-sweep", value_name = "NAME")]
    pub sweep_function: String,
    /// Seconds between two sweeps (0: never).
    #[arg(long, default_value_t = 10)]
    pub sweep_every: u64,
    /// Stop after this many seconds whatever happens.
    #[arg(long, default_value_t = 1800)]
    pub run_for: u64,
    /// Concurrent pollers.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// Messages per send invocation (1–10).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(i32).range(1..=10))]
    pub batch_size: i32,
    /// ReceiveMessage long poll, in seconds.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(0..=20))]
    pub wait_seconds: i32,
}

pub async fn run(ctx: &Context, args: LocalPollerArgs) -> CliResult<()> {
    let options = Options {
        queue_url: ctx.queue_url()?.to_owned(),
        batch_size: args.batch_size,
        wait_seconds: args.wait_seconds,
        workers: args.workers,
        sweep_every: (args.sweep_every > 0).then(|| Duration::from_secs(args.sweep_every)),
        run_for: Duration::from_secs(args.run_for),
    };
    let sweep_api = args.sweep_api.as_deref().unwrap_or(&args.send_api);
    let functions = Arc::new(LambdaApi::new(&args.send_api, &args.send_function, sweep_api, &args.sweep_function));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("stopping the local pipeline");
        let _ = stop_tx.send(true);
    });
    tracing::info!(queue = %options.queue_url, send_api = %args.send_api, sweep_api, "local pipeline running");
    let stats = local::run(ctx.sqs().await, functions, options, stop_rx).await.map_err(CliError::Runtime)?;
    let summary = stats.summary();
    if ctx.json() {
        print_json(&summary);
    } else {
        println!(
            "local pipeline: {} send invocation(s), {} record(s) received, {} deleted, {} returned, {} sweep(s), {} invocation error(s)",
            summary.invocations, summary.received, summary.deleted, summary.returned, summary.sweeps, summary.invoke_errors
        );
    }
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) else {
            let _ = tokio::signal::ctrl_c().await;
            return;
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

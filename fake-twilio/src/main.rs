//! `fake-twilio`: the Twilio-shaped server as a process, for the demo and the benchmark.
//!
//! Prints `fake-twilio listening on http://127.0.0.1:PORT` on stdout once ready; stops on
//! SIGTERM or Ctrl-C.

use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use fake_twilio::{
    Behaviour, CallbackOptions, FakeTwilio, Options, DEFAULT_SERVICE_SENDER, TEST_ACCOUNT_SID, TEST_AUTH_TOKEN,
};

/// A Twilio-shaped HTTP server (Messages API 2010-04-01) on 127.0.0.1.
#[derive(Debug, Parser)]
#[command(name = "fake-twilio", version)]
struct Args {
    /// Port to listen on (0: any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// The account SID accepted.
    #[arg(long, default_value = TEST_ACCOUNT_SID)]
    account_sid: String,
    /// The account's auth token (Basic auth password, callback signing key).
    #[arg(long, default_value = TEST_AUTH_TOKEN)]
    auth_token: String,
    /// An API key accepted as Basic auth, `SK…:secret` (repeatable).
    #[arg(long = "api-key", value_name = "SID:SECRET")]
    api_keys: Vec<String>,
    /// Latency added before every request, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Creates accepted per second per sender; beyond, 429 with code 20429.
    #[arg(long)]
    rate_per_sender: Option<u32>,
    /// Progress created messages and POST signed status callbacks.
    #[arg(long)]
    callbacks: bool,
    /// Time between status changes, in milliseconds.
    #[arg(long, default_value_t = 100)]
    callback_delay_ms: u64,
    /// Also report `read` after `delivered`.
    #[arg(long)]
    callback_read: bool,
    /// The E.164 number a Messaging Service sends from.
    #[arg(long, default_value = DEFAULT_SERVICE_SENDER)]
    service_sender: String,
    /// A behaviour file: faults and delivery outcomes per recipient (JSON).
    #[arg(long)]
    behaviour: Option<PathBuf>,
}

impl Args {
    fn options(&self) -> anyhow::Result<Options> {
        let api_keys = self
            .api_keys
            .iter()
            .map(|key| {
                key.split_once(':')
                    .map(|(sid, secret)| (sid.to_owned(), secret.to_owned()))
                    .with_context(|| format!("--api-key {key:?}: expected SID:SECRET"))
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Options {
            port: self.port,
            account_sid: self.account_sid.clone(),
            auth_token: self.auth_token.clone(),
            api_keys,
            latency: Duration::from_millis(self.latency_ms),
            rate_per_sender: self.rate_per_sender,
            callbacks: self.callbacks.then(|| CallbackOptions {
                delay: Duration::from_millis(self.callback_delay_ms),
                read: self.callback_read,
            }),
            service_sender: self.service_sender.clone(),
        })
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let behaviour = args.behaviour.as_deref().map(Behaviour::load).transpose()?;
    let twilio = FakeTwilio::start(args.options()?).await?;
    if let Some(behaviour) = &behaviour {
        twilio.apply_behaviour(behaviour);
    }
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "fake-twilio listening on {}", twilio.base_url())?;
    stdout.flush()?;
    drop(stdout);
    stopped().await?;
    tracing::info!("stopping");
    twilio.shutdown().await;
    Ok(())
}

/// Waits for Ctrl-C or SIGTERM.
async fn stopped() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result?,
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await?;
    Ok(())
}

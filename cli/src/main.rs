//! `missive`: parses the command line, runs the command, maps its error to an exit code.
//! anyhow stays out: every error is a `CliError` with its exit code (see `error.rs`).

use std::io::IsTerminal as _;
use std::process::ExitCode;

use clap::Parser;
use missive_cli::{run, Cli};

fn main() -> ExitCode {
    let cli = Cli::parse(); // usage errors exit 2 here, --help and --version 0
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(cli.command.default_log_level())),
        )
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::from(missive_cli::error::exit::RUNTIME);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(err.exit_code())
        }
    }
}

//! `missive`, the operator's tool: it talks to the same queue and tables as the functions
//! (real AWS by default, an emulator with `AWS_ENDPOINT_URL`), configured by the same
//! environment variables, which flags override. See the README, "The operator's tool".
//!
//! The library half holds the commands and the local pipeline ([`local`]), which the demo's
//! `missive local-poller` and the end-to-end test share.

pub mod campaign;
pub mod commands;
pub mod compose;
pub mod consent_column;
pub mod consent_rules;
pub mod context;
pub mod error;
pub mod invalid_rows;
pub mod item_attrs;
pub mod local;
pub mod output;
pub mod phone_input;
pub mod queues;
pub mod recorded;
pub mod report_page;
pub mod sheet;
pub mod stdio;
pub mod window_check;

use clap::{Parser, Subcommand};

use crate::commands::*;
use crate::context::{Context, GlobalArgs};
use crate::error::CliResult;

const AFTER_HELP: &str = "\
Configuration: MESSAGE_LOG_TABLE, CONSENT_TABLE, CAMPAIGN_TABLE, INBOX_TABLE, SEND_QUEUE_URL, DLQ_URL (else read from the send
queue's RedrivePolicy), MISSIVE_PHONE_REGION; AWS_ENDPOINT_URL points every client at an emulator.
Flags override the environment.

Exit codes: 0 ok; 1 runtime or AWS error; 2 usage or validation error; 3 not found;
4 the CSV file has invalid rows (nothing written); 5 report --watch timed out;
6 refused by a rule (forget while in flight, undoing a parent's opt-out without --evidence).";

/// The operator's tool for Missive: WhatsApp messages from the school to parents.
#[derive(Debug, Parser)]
#[command(name = "missive", version, after_help = AFTER_HELP, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Enqueues one message; prints its message_id.
    Send(send::SendArgs),
    /// Enqueues one message per parent of a CSV file (parent_id, phone, whatsapp_optin, …).
    Bulk(bulk::BulkArgs),
    /// Shows one message: status, attempts, errors, Twilio's status.
    Status(status::StatusArgs),
    /// Counts a campaign's messages by status, with the queues' depth; --watch until settled.
    Report(report::ReportArgs),
    /// Lists a campaign's failed, undelivered, rejected and expired messages with reasons.
    Failures(failures::FailuresArgs),
    /// Campaigns: show one (state, who, history), list them.
    #[command(subcommand)]
    Campaign(commands::campaign::CampaignCommand),
    /// Cancels a campaign: messages not yet taken are recorded `cancelled`; --undo resumes.
    Cancel(cancel::CancelArgs),
    /// Gives a campaign's failed messages that Twilio never accepted a new round.
    Requeue(requeue::RequeueArgs),
    /// A parent's messages (campaign, status, reason, who asked) and consent changes.
    History(history::HistoryArgs),
    /// The parents' replies: a campaign's (and who has not answered), or one parent's conversation.
    Replies(replies::RepliesArgs),
    /// Consent: import a CSV, set one phone, show one phone.
    #[command(subcommand)]
    Consent(consent::ConsentCommand),
    /// Erases a phone (GDPR): its MessageLog items, and its consent replaced by a suppression record.
    Forget(forget::ForgetArgs),
    /// The dead-letter queue: list, redrive.
    #[command(subcommand)]
    Dlq(dlq::DlqCommand),
    /// Runs the retry sweep now, in this process; prints its report.
    Sweep(sweep::SweepArgs),
    /// Creates the tables and queues on an emulator (local use); prints the variables to export.
    Setup(setup::SetupArgs),
    /// The local pipeline of `make demo`: polls the send queue and invokes the functions.
    #[command(hide = true)]
    LocalPoller(local_poller::LocalPollerArgs),
}

impl Command {
    /// The level of the CLI's own logs on stderr when RUST_LOG does not say.
    pub fn default_log_level(&self) -> &'static str {
        match self {
            Command::LocalPoller(_) => "info",
            _ => "warn",
        }
    }
}

/// Runs one parsed command line.
pub async fn run(cli: Cli) -> CliResult<()> {
    let ctx = Context::new(cli.global)?;
    match cli.command {
        Command::Send(args) => send::run(&ctx, args).await,
        Command::Bulk(args) => bulk::run(&ctx, args).await,
        Command::Status(args) => status::run(&ctx, args).await,
        Command::Report(args) => report::run(&ctx, args).await,
        Command::Failures(args) => failures::run(&ctx, args).await,
        Command::Campaign(command) => commands::campaign::run(&ctx, command).await,
        Command::Cancel(args) => cancel::run(&ctx, args).await,
        Command::Requeue(args) => requeue::run(&ctx, args).await,
        Command::History(args) => history::run(&ctx, args).await,
        Command::Replies(args) => replies::run(&ctx, args).await,
        Command::Consent(command) => consent::run(&ctx, command).await,
        Command::Forget(args) => forget::run(&ctx, args).await,
        Command::Dlq(command) => dlq::run(&ctx, command).await,
        Command::Sweep(args) => sweep::run(&ctx, args).await,
        Command::Setup(args) => setup::run(&ctx, args).await,
        Command::LocalPoller(args) => local_poller::run(&ctx, args).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn content_flags_are_exclusive_and_required() {
        let parse = |args: &[&str]| Cli::try_parse_from([&["missive", "send", "--to", "+33612345678"], args].concat());
        assert!(parse(&["--body", "x"]).is_ok());
        assert!(parse(&["--template", "HX1", "--var", "1=Jean"]).is_ok());
        for bad in
            [&[][..], &["--body", "x", "--template", "HX1"], &["--var", "1=x"], &["--template", "HX1", "--var", "x"]]
        {
            let err = parse(bad).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad:?}: {err}");
        }
    }
}

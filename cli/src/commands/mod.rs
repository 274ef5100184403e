//! One module per command.

pub mod bulk;
pub mod campaign;
pub mod cancel;
pub mod consent;
pub mod dlq;
pub mod failures;
pub mod forget;
pub mod history;
pub mod local_poller;
pub mod replies;
pub mod report;
pub mod requeue;
pub mod send;
pub mod setup;
pub mod status;
pub mod sweep;

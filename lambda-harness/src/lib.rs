//! Runs Lambda function binaries on loopback as Lambda runs them, for Missive's fault
//! campaigns and benchmark.
//!
//! - [`RuntimeApi`]: the Lambda Runtime API (`/2018-06-01/runtime/invocation/next`,
//!   `…/{id}/response`, `…/{id}/error`, `…/init/error`), one per execution environment.
//! - [`Instance`]: a function process started against it with the Lambda environment
//!   variables; killed with SIGKILL; its peak RSS read from `/proc`.
//! - [`SqsEventSource`]: an SQS event source mapping with `ReportBatchItemFailures`
//!   (receive, invoke, delete what succeeded).
//! - [`TcpProxy`]: a proxy in front of an emulator that counts requests by `X-Amz-Target`
//!   and makes outages (connections reset or black-holed).
//! - [`workspace_bin`]: the path of a workspace binary from a test of another package.

mod bins;
mod event_source;
mod instance;
mod proxy;
mod runtime_api;

pub use bins::{profile_dir, workspace_bin};
pub use event_source::{Round, SqsEventSource};
pub use instance::{cpu_time, FunctionSpec, Instance};
pub use proxy::{Mode, TcpProxy};
pub use runtime_api::{Invocation, InvokeError, PendingInvocation, RuntimeApi};

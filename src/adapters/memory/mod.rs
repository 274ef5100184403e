//! In-memory adapters of every port, with the DynamoDB adapters' conditional semantics (a
//! condition that fails returns the item as it was). They serve the pure tests of the
//! handlers and the benchmark's measure of `send` itself (DESIGN.md, "The function's own
//! ceiling"); the adapter contract suite (`tests/adapter_contract.rs`) runs the same cases
//! against them and against the DynamoDB adapters on moto, so that they cannot drift.
//!
//! Each adapter is a cheap handle (`Clone` shares the state) with a [`Faults`] switchboard:
//! a test makes an operation fail or wait, and reads back which operations ran.

mod campaigns;
mod clock;
mod consent;
mod faults;
mod inbox;
mod message_log;
mod messenger;
mod notifier;
mod queue;
mod world;

pub use campaigns::MemoryCampaigns;
pub use clock::ManualClock;
pub use consent::MemoryConsent;
pub use faults::{Faults, Operation};
pub use inbox::MemoryInbox;
pub use message_log::MemoryMessageLog;
pub use messenger::{MemoryMessenger, Scripted};
pub use notifier::{MemoryNotifier, Notice};
pub use queue::{MemoryQueue, Queued};
pub use world::{MemoryWorld, WORLD_SENDER};

//! The pure domain: no AWS, no HTTP, no clock or randomness of its own. Every decision of the
//! send path, the sweep and the webhook is a function here, tested without I/O; the handlers
//! only sequence the ports' calls around them.

pub mod admission;
pub mod backoff;
pub mod budget;
pub mod campaign;
pub mod claim;
pub mod classify;
pub mod consent;
pub mod inbox;
pub mod item;
pub mod message;
pub mod outcome;
pub mod phone;
pub mod policy;
pub mod reconcile;
pub mod schedule;
pub mod signature;
pub mod status;
pub mod sweep;
pub mod twilio;
pub mod window;

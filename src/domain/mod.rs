//! The pure domain: no AWS, no HTTP, no clock or randomness of its own.

pub mod backoff;
pub mod classify;
pub mod consent;
pub mod message;
pub mod phone;
pub mod signature;
pub mod status;

//! Missive: WhatsApp messages from a school to parents through Twilio, on AWS, with a trace of
//! every message.
//!
//! The library holds everything the three functions and the CLI share: the pure domain
//! (`domain`), the ports the handlers depend on (`ports`), their AWS and HTTP adapters
//! (`adapters`), the handlers themselves (`handlers`) and the typed configuration (`config`).

pub mod adapters;
pub mod config;
pub mod domain;
pub mod handlers;
pub mod metrics;
pub mod ports;
pub mod schema;
pub mod secret;
pub mod telemetry;
pub mod wiring;

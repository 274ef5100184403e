//! The logic of each function, over the ports.

pub mod send;
pub mod sweep;
pub mod webhook;

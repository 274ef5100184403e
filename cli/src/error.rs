//! The CLI's errors and the exit codes scripts can rely on.
//!
//! | code | meaning |
//! | --- | --- |
//! | 0 | success |
//! | 1 | runtime error: AWS, the network, an emulator that is down, a write that failed |
//! | 2 | usage or validation error: a bad flag or value (clap's own errors too), a message `send` would reject, a missing setting |
//! | 3 | not found: no such message, no consent record, no dead-letter queue |
//! | 4 | the CSV file has invalid rows (nothing was written) |
//! | 5 | `report --watch` timed out before the campaign settled |
//! | 6 | refused: `forget` while a message is in flight (without `--force`), `consent set` that would undo a parent's opt-out without `--evidence` |

use missive::adapters::describe;
use missive::ports::StoreError;

/// Exit codes (see the module documentation).
pub mod exit {
    pub const OK: u8 = 0;
    pub const RUNTIME: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const NOT_FOUND: u8 = 3;
    pub const INVALID_ROWS: u8 = 4;
    pub const TIMEOUT: u8 = 5;
    pub const REFUSED: u8 = 6;
}

/// What went wrong, by exit code. The message names the field, the flag or the line.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// AWS, the network, an emulator: exit 1.
    #[error("{0}")]
    Runtime(String),
    /// A bad flag or value, a message that would be rejected: exit 2.
    #[error("{0}")]
    Usage(String),
    /// No such message, consent record or queue: exit 3.
    #[error("{0}")]
    NotFound(String),
    /// The CSV file has invalid rows (already printed): exit 4.
    #[error("{0}")]
    InvalidRows(String),
    /// `report --watch` timed out: exit 5.
    #[error("{0}")]
    Timeout(String),
    /// A rule refused the operation: exit 6.
    #[error("{0}")]
    Refused(String),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Runtime(_) => exit::RUNTIME,
            CliError::Usage(_) => exit::USAGE,
            CliError::NotFound(_) => exit::NOT_FOUND,
            CliError::InvalidRows(_) => exit::INVALID_ROWS,
            CliError::Timeout(_) => exit::TIMEOUT,
            CliError::Refused(_) => exit::REFUSED,
        }
    }

    /// An AWS SDK error, with its sources on one line.
    pub fn aws(operation: &str, err: &dyn std::error::Error) -> Self {
        CliError::Runtime(format!("{operation}: {}", describe(err)))
    }
}

impl From<StoreError> for CliError {
    fn from(err: StoreError) -> Self {
        CliError::Runtime(err.to_string())
    }
}

pub type CliResult<T> = Result<T, CliError>;

//! The staff's notifier in memory: the notices it was given, for a test to read.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::faults::Faults;
use crate::ports::{Notifier, StoreError};

/// One notice: its subject and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub subject: String,
    pub message: String,
}

/// Records notices. `Clone` shares them.
#[derive(Debug, Clone, Default)]
pub struct MemoryNotifier {
    notices: Arc<Mutex<Vec<Notice>>>,
    pub faults: Arc<Faults>,
}

impl MemoryNotifier {
    pub fn new() -> Self {
        MemoryNotifier::default()
    }

    /// The notices so far, in order.
    pub fn notices(&self) -> Vec<Notice> {
        self.notices.lock().expect("notifier lock").clone()
    }
}

#[async_trait]
impl Notifier for MemoryNotifier {
    async fn notify(&self, subject: &str, message: &str) -> Result<(), StoreError> {
        self.faults.before("notify", subject).await?;
        self.notices.lock().expect("notifier lock").push(Notice { subject: subject.into(), message: message.into() });
        Ok(())
    }
}

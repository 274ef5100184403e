//! The send queue in memory: what was sent, with its delay, ready to be received again by a
//! test's or the benchmark's event source.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::faults::Faults;
use crate::ports::{Clock, SendQueue, StoreError};

/// A body on the queue and when it becomes visible (Unix ms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    pub body: String,
    pub delay_seconds: u32,
    pub visible_at_ms: i64,
}

/// The send queue in memory. `Clone` shares the queue.
#[derive(Clone)]
pub struct MemoryQueue {
    messages: Arc<Mutex<Vec<Queued>>>,
    batch_sizes: Arc<Mutex<Vec<usize>>>,
    clock: Arc<dyn Clock>,
    pub faults: Arc<Faults>,
}

impl MemoryQueue {
    /// A queue whose delays count on `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        MemoryQueue { messages: Arc::default(), batch_sizes: Arc::default(), clock, faults: Arc::default() }
    }

    /// Everything on the queue, visible or not.
    pub fn messages(&self) -> Vec<Queued> {
        self.messages.lock().expect("queue lock").clone()
    }

    /// The number of bodies each `send_batch` call carried.
    pub fn batch_sizes(&self) -> Vec<usize> {
        self.batch_sizes.lock().expect("queue lock").clone()
    }

    /// Takes up to `max` bodies visible now off the queue, oldest first.
    pub fn receive(&self, max: usize) -> Vec<String> {
        let now = self.clock.now_ms();
        let mut messages = self.messages.lock().expect("queue lock");
        let mut taken = Vec::new();
        let mut i = 0;
        while i < messages.len() && taken.len() < max {
            if messages[i].visible_at_ms <= now {
                taken.push(messages.remove(i).body);
            } else {
                i += 1;
            }
        }
        taken
    }

    /// The earliest time a message on the queue becomes visible (Unix ms).
    pub fn next_visible_at_ms(&self) -> Option<i64> {
        self.messages.lock().expect("queue lock").iter().map(|m| m.visible_at_ms).min()
    }

    fn push(&self, body: &str, delay_seconds: u32) {
        let visible_at_ms = self.clock.now_ms() + i64::from(delay_seconds) * 1000;
        self.messages.lock().expect("queue lock").push(Queued { body: body.to_owned(), delay_seconds, visible_at_ms });
    }
}

#[async_trait]
impl SendQueue for MemoryQueue {
    async fn send(&self, body: &str, delay_seconds: u32) -> Result<(), StoreError> {
        self.faults.before("send", "").await?;
        self.push(body, delay_seconds.min(900));
        Ok(())
    }

    async fn send_batch(&self, bodies: &[&str]) -> Vec<usize> {
        self.batch_sizes.lock().expect("queue lock").push(bodies.len());
        if self.faults.before("send_batch", "").await.is_err() {
            return (0..bodies.len()).collect();
        }
        for body in bodies {
            self.push(body, 0);
        }
        Vec::new()
    }
}

//! Faults a test puts on an in-memory adapter (an operation that fails, or waits), and the
//! log of the operations it ran.

use std::sync::Mutex;
use std::time::Duration;

use crate::ports::StoreError;

/// One operation an adapter ran: its name (the port method's) and its key (a `message_id`,
/// a phone, a shard).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    pub name: &'static str,
    pub key: String,
}

#[derive(Debug, Clone)]
enum Effect {
    Fail,
    Delay(Duration),
}

#[derive(Debug, Clone)]
struct Rule {
    name: &'static str,
    key: Option<String>,
    effect: Effect,
}

/// The faults of one adapter, and what it ran.
#[derive(Debug, Default)]
pub struct Faults {
    rules: Mutex<Vec<Rule>>,
    log: Mutex<Vec<Operation>>,
}

impl Faults {
    /// Every call of `name` (on `key` only, when given) fails with a store error.
    pub fn fail(&self, name: &'static str, key: Option<&str>) {
        self.rules.lock().expect("faults lock").push(Rule { name, key: key.map(str::to_owned), effect: Effect::Fail });
    }

    /// Every call of `name` (on `key` only, when given) waits `delay` first.
    pub fn delay(&self, name: &'static str, key: Option<&str>, delay: Duration) {
        self.rules.lock().expect("faults lock").push(Rule {
            name,
            key: key.map(str::to_owned),
            effect: Effect::Delay(delay),
        });
    }

    /// Removes every fault (the log is kept).
    pub fn clear(&self) {
        self.rules.lock().expect("faults lock").clear();
    }

    /// The operations run so far, in order (failed ones included).
    pub fn operations(&self) -> Vec<Operation> {
        self.log.lock().expect("faults lock").clone()
    }

    /// How many calls of `name` ran.
    pub fn count(&self, name: &str) -> usize {
        self.log.lock().expect("faults lock").iter().filter(|op| op.name == name).count()
    }

    /// Logs the call, then applies its faults: waits, or fails.
    pub(crate) async fn before(&self, name: &'static str, key: &str) -> Result<(), StoreError> {
        self.log.lock().expect("faults lock").push(Operation { name, key: key.to_owned() });
        let effects: Vec<Effect> = self
            .rules
            .lock()
            .expect("faults lock")
            .iter()
            .filter(|rule| rule.name == name && rule.key.as_deref().is_none_or(|k| k == key))
            .map(|rule| rule.effect.clone())
            .collect();
        for effect in effects {
            match effect {
                Effect::Delay(delay) => tokio::time::sleep(delay).await,
                Effect::Fail => return Err(StoreError::new(name, "injected fault")),
            }
        }
        Ok(())
    }
}

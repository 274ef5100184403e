//! Every in-memory adapter together, sharing one manual clock, and the handlers built on
//! them as the functions build theirs on AWS: what the pure handler tests and the benchmark's
//! in-process runs start from.

use std::sync::Arc;

use super::{ManualClock, MemoryCampaigns, MemoryConsent, MemoryMessageLog, MemoryMessenger, MemoryQueue};
use crate::config::{SendConfig, SweepConfig};
use crate::domain::consent::{ConsentChange, ConsentSource, ConsentState};
use crate::domain::phone::PhoneNumber;
use crate::domain::twilio::Sender;
use crate::handlers::send::SendHandler;
use crate::handlers::sweep::SweepHandler;
use crate::handlers::webhook::WebhookHandler;
use crate::ports::{ConsentStore, Messenger};
use crate::secret::Secret;

/// The sender the world's Twilio sends from.
pub const WORLD_SENDER: &str = "whatsapp:+14155238886";

/// The in-memory adapters of one test or benchmark run. `Clone` shares them.
#[derive(Clone)]
pub struct MemoryWorld {
    pub clock: ManualClock,
    pub log: MemoryMessageLog,
    pub consent: MemoryConsent,
    pub queue: MemoryQueue,
    pub twilio: MemoryMessenger,
    /// The Campaigns table (campaigns and the daily budget's items).
    pub campaigns: MemoryCampaigns,
}

impl MemoryWorld {
    /// A world whose clock stands at `seconds`.
    pub fn at(seconds: i64) -> Self {
        let clock = ManualClock::at(seconds);
        MemoryWorld {
            log: MemoryMessageLog::new(),
            consent: MemoryConsent::new(),
            queue: MemoryQueue::new(Arc::new(clock.clone())),
            twilio: MemoryMessenger::new(Sender::From(WORLD_SENDER.into()), Arc::new(clock.clone())),
            campaigns: MemoryCampaigns::new(),
            clock,
        }
    }

    /// The `send` handler over this world; `messenger` `None`: Twilio not configured (dry run).
    pub fn send_handler(&self, config: SendConfig, messenger: Option<Arc<dyn Messenger>>) -> SendHandler {
        SendHandler {
            config,
            log: Arc::new(self.log.clone()),
            consent: Arc::new(self.consent.clone()),
            queue: Arc::new(self.queue.clone()),
            campaigns: Arc::new(self.campaigns.clone()),
            budget: Arc::new(self.campaigns.clone()),
            messenger,
            clock: Arc::new(self.clock.clone()),
        }
    }

    /// The `send` handler with this world's Twilio.
    pub fn sender(&self, config: SendConfig) -> SendHandler {
        self.send_handler(config, Some(Arc::new(self.twilio.clone())))
    }

    /// The `retry-sweep` handler over this world.
    pub fn sweep_handler(&self, config: SweepConfig) -> SweepHandler {
        SweepHandler {
            config,
            index: Arc::new(self.log.clone()),
            queue: Arc::new(self.queue.clone()),
            clock: Arc::new(self.clock.clone()),
        }
    }

    /// The `twilio-webhook` handler over this world, checking signatures with `token`.
    pub fn webhook_handler(&self, token: &str, base_url: Option<String>) -> WebhookHandler {
        WebhookHandler::new(
            Arc::new(self.log.clone()),
            Arc::new(self.consent.clone()),
            Arc::new(self.clock.clone()),
            vec![Secret::new(token)],
            base_url,
        )
    }

    /// Records the parents' opt-in (as the CLI would, with evidence).
    pub async fn opt_in(&self, phones: &[&str]) {
        for phone in phones {
            let phone = PhoneNumber::parse(phone).expect("a valid phone");
            let change = ConsentChange { state: ConsentState::OptedIn, source: ConsentSource::Cli, has_evidence: true };
            self.consent.change(&phone, change, "test", self.clock.now_seconds()).await.expect("memory consent");
        }
    }
}

impl ManualClock {
    /// The clock's time in seconds (without naming the `Clock` trait).
    pub fn now_seconds(&self) -> i64 {
        crate::ports::Clock::now(self)
    }
}

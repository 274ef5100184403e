//! The DynamoDB adapters: MessageLog (the send path's writes, the sweep's index, the status
//! callback's write), Consent, Campaigns and the Inbox, over the `Update` builder.

mod campaigns;
mod consent;
mod inbox;
mod message_log;
mod retry_index;
mod status_callback;
mod update;

pub use campaigns::DynamoCampaigns;
pub use consent::DynamoConsent;
pub use inbox::DynamoInbox;
pub use message_log::{DynamoMessageLog, IN_FLIGHT_ATTRIBUTES};
pub use retry_index::{RetryDueIndex, DEFAULT_DUE_PAGE_SIZE};
pub use status_callback::STATUS_CALLBACK_CONDITION;
pub use update::{n, s, Update};

//! The sides of the ports: DynamoDB, SQS, SNS, Twilio, Secrets Manager, and the in-memory
//! adapters that the pure tests and the benchmark run on.

pub mod dynamo;
mod error;
pub mod memory;
pub mod provision;
pub mod secrets;
pub mod sns;
pub mod sqs;
pub mod twilio;

pub use error::describe;

//! The AWS and HTTP sides of the ports: DynamoDB, SQS, Twilio, Secrets Manager.

pub mod dynamo;
pub mod provision;
pub mod retry_index;
pub mod secrets;
pub mod sqs;
pub mod status_callback;
pub mod twilio;

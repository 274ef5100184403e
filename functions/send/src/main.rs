//! The `send` Lambda: SQS batches in, partial batch responses out.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use missive::config::{Env, SendConfig};

#[tokio::main]
async fn main() -> Result<(), Error> {
    missive::telemetry::init();
    let config = SendConfig::from_env(&Env::process())?;
    let aws = missive::wiring::aws_config().await;
    let handler = missive::wiring::send_handler(config, &aws).await?;
    let handler = &handler;
    run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let deadline = missive::wiring::invocation_deadline(event.context.deadline);
        Ok::<SqsBatchResponse, Error>(handler.handle(event.payload, deadline).await)
    }))
    .await
}

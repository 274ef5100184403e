//! The `send` Lambda: SQS batches in, partial batch responses out.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use missive::config::{Env, SendConfig};

#[tokio::main]
async fn main() -> Result<(), Error> {
    missive::telemetry::init();
    // phonenumber's metadata (~65–100 ms of CPU) loads on its own thread while the configuration,
    // the SDK and the handler are set up, and is joined before the first event is asked for:
    // paid in Lambda's INIT phase, not inside the first invocation (docs/sizes.md).
    let phone_metadata = std::thread::spawn(missive::domain::phone::PhoneNumber::load_metadata);
    let config = SendConfig::from_env(&Env::process())?;
    let aws = missive::wiring::aws_config().await;
    let handler = missive::wiring::send_handler(config, &aws).await?;
    phone_metadata.join().map_err(|_| "phonenumber's metadata failed to load")?;
    let handler = &handler;
    run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let deadline = missive::wiring::invocation_deadline(event.context.deadline);
        Ok::<SqsBatchResponse, Error>(handler.handle(event.payload, deadline).await)
    }))
    .await
}

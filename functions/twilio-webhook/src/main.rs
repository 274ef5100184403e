//! The `twilio-webhook` Lambda, behind a Function URL: Twilio's status callbacks and the
//! parents' replies, every request checked against Twilio's signature.

use lambda_http::{run, service_fn, Error, Request};
use missive::config::{Env, WebhookConfig};

#[tokio::main]
async fn main() -> Result<(), Error> {
    missive::telemetry::init();
    let config = WebhookConfig::from_env(&Env::process())?;
    let aws = missive::wiring::aws_config().await;
    let handler = missive::wiring::webhook_handler(config, &aws).await?;
    let handler = &handler;
    run(service_fn(move |request: Request| async move { Ok::<_, Error>(handler.handle_lambda(request).await) })).await
}

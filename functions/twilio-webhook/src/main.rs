//! The `twilio-webhook` Lambda, behind a Function URL: Twilio's status callbacks and the
//! parents' replies, every request checked against Twilio's signature.

use lambda_http::{run, service_fn, Error, Request};
use missive::config::{Env, WebhookConfig};

#[tokio::main]
async fn main() -> Result<(), Error> {
    missive::telemetry::init();
    // phonenumber's metadata (~65–100 ms of CPU) loads on its own thread while the configuration,
    // the SDK and the handler are set up, and is joined before the first event is asked for:
    // paid in Lambda's INIT phase, not inside the first invocation (docs/sizes.md).
    let phone_metadata = std::thread::spawn(missive::domain::phone::PhoneNumber::load_metadata);
    let config = WebhookConfig::from_env(&Env::process())?;
    let aws = missive::wiring::aws_config().await;
    let handler = missive::wiring::webhook_handler(config, &aws).await?;
    phone_metadata.join().map_err(|_| "phonenumber's metadata failed to load")?;
    let handler = &handler;
    run(service_fn(move |request: Request| async move { Ok::<_, Error>(handler.handle_lambda(request).await) })).await
}

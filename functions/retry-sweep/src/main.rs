//! The `retry-sweep` Lambda: fired by EventBridge every 10 minutes, whatever the payload.

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use missive::config::{Env, SweepConfig};

#[tokio::main]
async fn main() -> Result<(), Error> {
    missive::telemetry::init();
    let config = SweepConfig::from_env(&Env::process())?;
    let aws = missive::wiring::aws_config().await;
    let handler = missive::wiring::sweep_handler(config, &aws);
    let handler = &handler;
    // A scheduled-rule event, a Scheduler target input or `{}`: none of it is read.
    run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        let deadline = missive::wiring::invocation_deadline(event.context.deadline);
        // A run with store errors fails the invocation, so that the errors alarm sees it; its
        // report and metrics are already logged (SweepReport::into_result).
        handler.run(deadline).await.into_result().map_err(Error::from)
    }))
    .await
}

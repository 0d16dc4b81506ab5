//! The sweeper function: on a schedule, re-enqueues stuck events and
//! returns what it did.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let sweeper = payhooks::config::lambda_sweeper().await?;
    run(service_fn(|_: LambdaEvent<serde_json::Value>| async { Ok::<_, Error>(sweeper.sweep().await?) })).await
}

//! The reconciliation function: on a schedule, checks every balance against
//! its ledger and returns what it found.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    payhooks::telemetry::init_lambda();
    let reconciler = payhooks::config::lambda_reconciler().await?;
    run(service_fn(|_: LambdaEvent<serde_json::Value>| async {
        Ok::<_, Error>(reconciler.reconcile().await?)
    }))
    .await
}

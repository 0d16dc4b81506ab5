//! The reconciliation function: on a schedule, checks balances against their
//! ledgers until the invocation's time is nearly up, going on from where the
//! last run stopped, and returns what it found.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let reconciler = payhooks::config::lambda_reconciler().await?;
    run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let budget = payhooks::reconcile::budget_before(event.context.deadline);
        let reconciler = &reconciler;
        async move { Ok::<_, Error>(reconciler.reconcile(Some(budget)).await?) }
    }))
    .await
}

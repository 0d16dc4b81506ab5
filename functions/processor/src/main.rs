//! The processor function: SQS batches in, partial batch responses out.

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let processor = payhooks::config::lambda_processor().await?;
    run(service_fn(|event: LambdaEvent<SqsEvent>| async {
        Ok::<_, Error>(payhooks::edge::sqs::lambda(&processor, event).await)
    }))
    .await
}

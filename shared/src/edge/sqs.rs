//! The processor's Lambda edge: an SQS batch in, a partial batch response
//! out (the trigger must enable `ReportBatchItemFailures`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};

use crate::ports::Delivery;
use crate::process::Processor;

pub fn delivery(message: &SqsMessage) -> Delivery {
    Delivery {
        message_id: message.message_id.clone().unwrap_or_default(),
        receipt: message.receipt_handle.clone().unwrap_or_default(),
        body: message.body.clone().unwrap_or_default(),
        receive_count: message.attributes.get("ApproximateReceiveCount").and_then(|v| v.parse().ok()).unwrap_or(1),
    }
}

/// The processor's Lambda handler: the batch within the invocation's deadline.
pub async fn lambda(processor: &Processor, event: lambda_runtime::LambdaEvent<SqsEvent>) -> SqsBatchResponse {
    let deadline = UNIX_EPOCH + Duration::from_millis(event.context.deadline);
    let left = deadline.duration_since(SystemTime::now()).unwrap_or_default();
    handle(processor, event.payload, Some(tokio::time::Instant::now() + left)).await
}

pub async fn handle(
    processor: &Processor,
    event: SqsEvent,
    deadline: Option<tokio::time::Instant>,
) -> SqsBatchResponse {
    let deliveries: Vec<Delivery> = event.records.iter().map(delivery).collect();
    let report = processor.process_batch_before(&deliveries, deadline).await;
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = report
        .retry_message_ids
        .into_iter()
        .map(|id| {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            failure
        })
        .collect();
    response
}

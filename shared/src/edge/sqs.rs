//! The processor's Lambda edge: an SQS batch in, a partial batch response
//! out (the trigger must enable `ReportBatchItemFailures`).

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};

use crate::ports::Delivery;
use crate::process::Processor;

pub fn delivery(message: &SqsMessage) -> Delivery {
    Delivery {
        message_id: message.message_id.clone().unwrap_or_default(),
        receipt: message.receipt_handle.clone().unwrap_or_default(),
        body: message.body.clone().unwrap_or_default(),
        receive_count: message
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|v| v.parse().ok())
            .unwrap_or(1),
    }
}

pub async fn handle(processor: &Processor, event: SqsEvent) -> SqsBatchResponse {
    let deliveries: Vec<Delivery> = event.records.iter().map(delivery).collect();
    let report = processor.process_batch(&deliveries).await;
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

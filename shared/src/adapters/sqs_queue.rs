//! The queue on SQS.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};

use crate::ports::queue::{Delivery, Queue, QueueDepth, QueueError};

#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: Client,
    url: String,
}

impl SqsQueue {
    pub fn new(client: Client, url: impl Into<String>) -> Self {
        Self { client, url: url.into() }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Creates a queue (and optionally wires its redrive to a dead-letter
    /// queue), for tests and local setups; deployed queues come from
    /// `template.yaml`. Returns the queue's URL.
    pub async fn create(
        client: &Client,
        name: &str,
        visibility_timeout: Duration,
        dead_letters: Option<(&str, u32)>,
    ) -> Result<String, QueueError> {
        let mut request = client
            .create_queue()
            .queue_name(name)
            .attributes(QueueAttributeName::VisibilityTimeout, visibility_timeout.as_secs().to_string());
        if let Some((dlq_url, max_receive_count)) = dead_letters {
            let arn = client
                .get_queue_attributes()
                .queue_url(dlq_url)
                .attribute_names(QueueAttributeName::QueueArn)
                .send()
                .await
                .map_err(QueueError::unavailable)?
                .attributes
                .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
                .ok_or_else(|| QueueError::Unavailable("the dead-letter queue has no ARN".into()))?;
            let policy = serde_json::json!({
                "deadLetterTargetArn": arn,
                "maxReceiveCount": max_receive_count.to_string(),
            });
            request = request.attributes(QueueAttributeName::RedrivePolicy, policy.to_string());
        }
        let output = request.send().await.map_err(QueueError::unavailable)?;
        output.queue_url.ok_or_else(|| QueueError::Unavailable("CreateQueue returned no URL".into()))
    }
}

#[async_trait]
impl Queue for SqsQueue {
    async fn send(&self, body: &str) -> Result<String, QueueError> {
        let output = self
            .client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .send()
            .await
            .map_err(QueueError::unavailable)?;
        Ok(output.message_id.unwrap_or_default())
    }

    async fn receive(&self, max: u32, wait: Duration) -> Result<Vec<Delivery>, QueueError> {
        let output = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(max.clamp(1, 10) as i32)
            .wait_time_seconds(wait.as_secs().min(20) as i32)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(QueueError::unavailable)?;
        Ok(output
            .messages
            .unwrap_or_default()
            .into_iter()
            .map(|message| {
                let receive_count = message
                    .attributes
                    .as_ref()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(1);
                Delivery {
                    message_id: message.message_id.unwrap_or_default(),
                    receipt: message.receipt_handle.unwrap_or_default(),
                    body: message.body.unwrap_or_default(),
                    receive_count,
                }
            })
            .collect())
    }

    async fn delete(&self, receipt: &str) -> Result<(), QueueError> {
        self.client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .send()
            .await
            .map_err(QueueError::unavailable)?;
        Ok(())
    }

    async fn counts(&self) -> Result<QueueDepth, QueueError> {
        let output = self
            .client
            .get_queue_attributes()
            .queue_url(&self.url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
            .send()
            .await
            .map_err(QueueError::unavailable)?;
        let attributes = output.attributes.unwrap_or_default();
        let count =
            |name: QueueAttributeName| -> u64 { attributes.get(&name).and_then(|v| v.parse().ok()).unwrap_or(0) };
        Ok(QueueDepth {
            visible: count(QueueAttributeName::ApproximateNumberOfMessages),
            in_flight: count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
                + count(QueueAttributeName::ApproximateNumberOfMessagesDelayed),
        })
    }

    async fn change_visibility(&self, receipt: &str, hide_for: Duration) -> Result<(), QueueError> {
        // SQS caps a message's visibility at 12 hours.
        let seconds = hide_for.as_secs().min(43_200) as i32;
        self.client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .visibility_timeout(seconds)
            .send()
            .await
            .map_err(QueueError::unavailable)?;
        Ok(())
    }
}

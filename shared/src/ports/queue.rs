//! The work queue between ingest and the processor, with SQS's semantics:
//! at-least-once delivery, a visibility timeout, a receive count and a
//! dead-letter queue after too many receives.

use std::time::Duration;

use async_trait::async_trait;

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("the queue is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The receipt no longer refers to an in-flight message (deleted, or
    /// its visibility ended and someone else received it).
    #[error("the receipt handle is no longer valid")]
    StaleReceipt,
}

impl QueueError {
    pub fn unavailable(source: impl std::error::Error + Send + Sync + 'static) -> Self {
        QueueError::Unavailable(Box::new(source))
    }
}

/// One received message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub message_id: String,
    pub receipt: String,
    pub body: String,
    /// How many times the message has been received, this time included.
    pub receive_count: u32,
}

/// How many messages a queue holds, as SQS approximates it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct QueueDepth {
    /// Waiting to be received.
    pub visible: u64,
    /// Received and not yet deleted, or hidden for a retry delay.
    pub in_flight: u64,
}

#[async_trait]
pub trait Queue: Send + Sync + std::fmt::Debug {
    /// Sends a message; returns its id.
    async fn send(&self, body: &str) -> Result<String, QueueError>;

    /// Receives up to `max` messages, waiting up to `wait` for the first.
    async fn receive(&self, max: u32, wait: Duration) -> Result<Vec<Delivery>, QueueError>;

    async fn delete(&self, receipt: &str) -> Result<(), QueueError>;

    /// Hides an in-flight message for `hide_for` from now: the retry delay.
    async fn change_visibility(&self, receipt: &str, hide_for: Duration) -> Result<(), QueueError>;

    /// The queue's depth, for health checks.
    async fn counts(&self) -> Result<QueueDepth, QueueError>;
}

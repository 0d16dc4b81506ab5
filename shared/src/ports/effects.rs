//! What processing an event does to the business: the port the processor
//! hands each leased event to.

use async_trait::async_trait;

use crate::event::EventRecord;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The event's effects are in place (or were already).
    Done,
    /// No handler exists for this kind of event: recorded as ignored (I8).
    NoHandler,
}

#[derive(Debug, thiserror::Error)]
pub enum EffectError {
    /// Worth retrying with backoff (throttling, a downstream outage).
    #[error("transient failure: {0}")]
    Transient(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Can never succeed; the event goes to the dead-letter queue.
    #[error("permanent failure: {0}")]
    Permanent(String),
}

#[async_trait]
pub trait Effects: Send + Sync + std::fmt::Debug {
    async fn apply(&self, record: &EventRecord) -> Result<Applied, EffectError>;
}

//! What processing an event does to the business: the port the processor
//! hands each leased event to.

use async_trait::async_trait;

use crate::event::EventRecord;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Nothing to change for this event: the processor completes it.
    Done,
    /// The effect and the event's completion were committed together.
    Committed,
    /// The effect's business key was already taken (another delivery, or
    /// another event meaning the same fact): nothing changed; the processor
    /// completes the event.
    DuplicateEffect,
    /// The effect was already in (another event meaning the same fact),
    /// and what this event adds to it (the payment it names) was committed
    /// together with the event's completion: the event is finished.
    DuplicateCompleted,
    /// The lease passed to another worker before the commit: nothing
    /// changed, and that worker finishes the event.
    LeaseLost,
    /// Older than the state already applied: nothing changed; recorded as
    /// stale (I6).
    Stale,
    /// No handler exists for this kind of event: recorded as ignored (I8).
    NoHandler,
    /// What the effect was based on changed before its commit: nothing
    /// changed; the effects retry it at once, and the processor treats a
    /// leftover as transient.
    Raced,
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
    /// Applies `record`'s effects; an effect is committed together with the
    /// event's completion, under `owner`'s lease.
    async fn apply(&self, record: &EventRecord, owner: &str) -> Result<Applied, EffectError>;
}

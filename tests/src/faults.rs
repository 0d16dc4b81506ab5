//! Adapters that fail on purpose, wrapping real ones: to show that a failed
//! put or send answers 5xx and strands nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use payhooks::event::{EventKey, EventRecord, NewEvent};
use payhooks::ports::{
    Applied, Claim, Delivery, EffectError, Effects, EventStore, Finish, FinishOutcome, LeaseOutcome, Queue,
    QueueError, StoreError,
};
use time::OffsetDateTime;

#[derive(Debug, thiserror::Error)]
#[error("injected failure")]
pub struct Injected;

/// A queue whose next `failing_sends` sends fail before reaching the queue.
#[derive(Debug)]
pub struct FailingSends {
    pub inner: Arc<dyn Queue>,
    pub failing_sends: AtomicU32,
}

impl FailingSends {
    pub fn new(inner: Arc<dyn Queue>, failing_sends: u32) -> Self {
        Self {
            inner,
            failing_sends: AtomicU32::new(failing_sends),
        }
    }
}

#[async_trait]
impl Queue for FailingSends {
    async fn send(&self, body: &str) -> Result<String, QueueError> {
        if self
            .failing_sends
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(QueueError::unavailable(Injected));
        }
        self.inner.send(body).await
    }
    async fn receive(&self, max: u32, wait: Duration) -> Result<Vec<Delivery>, QueueError> {
        self.inner.receive(max, wait).await
    }
    async fn delete(&self, receipt: &str) -> Result<(), QueueError> {
        self.inner.delete(receipt).await
    }
    async fn change_visibility(&self, receipt: &str, hide_for: Duration) -> Result<(), QueueError> {
        self.inner.change_visibility(receipt, hide_for).await
    }
}

/// A store whose claims fail (the put never lands).
#[derive(Debug)]
pub struct FailingClaims(pub Arc<dyn EventStore>);

#[async_trait]
impl EventStore for FailingClaims {
    async fn claim(&self, _event: &NewEvent) -> Result<Claim, StoreError> {
        Err(StoreError::unavailable(Injected))
    }
    async fn mark_enqueued(&self, key: &EventKey, at: OffsetDateTime) -> Result<(), StoreError> {
        self.0.mark_enqueued(key, at).await
    }
    async fn take_over_enqueue(&self, key: &EventKey, seen: OffsetDateTime, now: OffsetDateTime) -> Result<bool, StoreError> {
        self.0.take_over_enqueue(key, seen, now).await
    }
    async fn record_conflict(&self, key: &EventKey, at: OffsetDateTime) -> Result<(), StoreError> {
        self.0.record_conflict(key, at).await
    }
    async fn get(&self, key: &EventKey) -> Result<Option<EventRecord>, StoreError> {
        self.0.get(key).await
    }
    async fn lease(&self, key: &EventKey, owner: &str, now: OffsetDateTime, until: OffsetDateTime) -> Result<LeaseOutcome, StoreError> {
        self.0.lease(key, owner, now, until).await
    }
    async fn release(&self, key: &EventKey, owner: &str, now: OffsetDateTime, error: &str) -> Result<(), StoreError> {
        self.0.release(key, owner, now, error).await
    }
    async fn finish(&self, key: &EventKey, owner: &str, finish: &Finish, now: OffsetDateTime) -> Result<FinishOutcome, StoreError> {
        self.0.finish(key, owner, finish, now).await
    }
}

/// Effects that fail transiently a number of times, then succeed; or
/// always fail permanently for events of one type.
#[derive(Debug, Default)]
pub struct ScriptedEffects {
    pub transient_failures: AtomicU32,
    pub permanent_for_type: Option<String>,
    pub calls: AtomicU32,
}

#[async_trait]
impl Effects for ScriptedEffects {
    async fn apply(&self, record: &EventRecord) -> Result<Applied, EffectError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.permanent_for_type.as_deref() == Some(record.event_type.as_str()) {
            return Err(EffectError::Permanent("no plan configured for this event".into()));
        }
        if self
            .transient_failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(EffectError::Transient(Box::new(Injected)));
        }
        Ok(Applied::Done)
    }
}

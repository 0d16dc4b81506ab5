//! The ingest pipeline: verify → normalize → claim (conditional put) →
//! enqueue → answer. It answers 2xx only once the event is durably recorded
//! and in the queue, or already was (I3).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::clock::Clock;
use crate::event::{EventKey, EventRecord, EventStatus, NewEvent, Provider};
use crate::ports::{Claim, Intake, Metrics, Queue, QueueError, StoreError};
use crate::providers::{Inbound, Rejection, Verifier};

#[derive(Debug, Clone)]
pub struct IngestSettings {
    /// Larger bodies are refused with 413 before any verification.
    pub max_body_bytes: usize,
    /// A record still `received` this long after its last write was
    /// abandoned between put and send: a later delivery enqueues it. Longer
    /// than the ingest function's timeout, so a live delivery is never
    /// overtaken.
    pub abandoned_after: Duration,
    /// How long a concurrent duplicate waits for the first delivery to
    /// finish enqueueing before it answers.
    pub concurrent_wait: Duration,
}

impl Default for IngestSettings {
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
            abandoned_after: Duration::from_secs(30),
            concurrent_wait: Duration::from_secs(2),
        }
    }
}

/// A 2xx answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IngestOutcome {
    /// Recorded and enqueued now.
    Accepted,
    /// Already recorded and enqueued earlier.
    Duplicate,
    /// The id was seen with different content: recorded, not processed (I10).
    Conflict,
}

impl IngestOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            IngestOutcome::Accepted => "accepted",
            IngestOutcome::Duplicate => "duplicate",
            IngestOutcome::Conflict => "conflict",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Rejected(#[from] Rejection),
    #[error("the body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("no route for this provider")]
    UnknownProvider,
    /// Another delivery of the same event is being recorded right now.
    #[error("another delivery of this event is in progress; retry later")]
    InProgress,
    #[error("the event could not be recorded")]
    Store(#[from] StoreError),
    #[error("the event could not be enqueued")]
    Queue(#[from] QueueError),
}

impl IngestError {
    /// Failures the provider should retry (5xx) rather than give up on (4xx).
    pub fn is_retryable(&self) -> bool {
        matches!(self, IngestError::InProgress | IngestError::Store(_) | IngestError::Queue(_))
    }
}

#[derive(Debug)]
pub struct Ingest {
    verifiers: BTreeMap<Provider, Arc<dyn Verifier>>,
    store: Arc<dyn Intake>,
    queue: Arc<dyn Queue>,
    metrics: Arc<dyn Metrics>,
    clock: Arc<dyn Clock>,
    settings: IngestSettings,
}

impl Ingest {
    pub fn new(
        verifiers: Vec<Arc<dyn Verifier>>,
        store: Arc<dyn Intake>,
        queue: Arc<dyn Queue>,
        metrics: Arc<dyn Metrics>,
        clock: Arc<dyn Clock>,
        settings: IngestSettings,
    ) -> Self {
        Self {
            verifiers: verifiers.into_iter().map(|v| (v.provider(), v)).collect(),
            store,
            queue,
            metrics,
            clock,
            settings,
        }
    }

    pub fn providers(&self) -> impl Iterator<Item = Provider> + '_ {
        self.verifiers.keys().copied()
    }

    pub fn settings(&self) -> &IngestSettings {
        &self.settings
    }

    pub async fn ingest(&self, provider: Provider, inbound: &Inbound<'_>) -> Result<IngestOutcome, IngestError> {
        let label = provider.as_str();
        let started = std::time::Instant::now();
        self.metrics.count(label, "received");
        let result = self.ingest_verified(provider, inbound).await;
        self.metrics.duration(label, "ingest_latency", started.elapsed());
        match &result {
            Ok(outcome) => self.metrics.count(label, outcome.as_str()),
            Err(IngestError::Rejected(rejection)) => {
                warn!(provider = label, reason = rejection.code(), "webhook rejected: {rejection}");
                self.metrics.count_reason(label, "rejected", rejection.code());
            }
            Err(IngestError::PayloadTooLarge { limit }) => {
                warn!(provider = label, size = inbound.body.len(), limit, "webhook rejected: body too large");
                self.metrics.count_reason(label, "rejected", "payload_too_large");
            }
            Err(error @ (IngestError::Store(_) | IngestError::Queue(_))) => {
                tracing::error!(
                    provider = label,
                    error = %error,
                    cause = %source_chain(error),
                    "webhook not recorded; answering 5xx so the provider retries"
                );
                self.metrics.count(label, "ingest_error");
            }
            Err(IngestError::UnknownProvider | IngestError::InProgress) => {}
        }
        result
    }

    async fn ingest_verified(&self, provider: Provider, inbound: &Inbound<'_>) -> Result<IngestOutcome, IngestError> {
        if inbound.body.len() > self.settings.max_body_bytes {
            return Err(IngestError::PayloadTooLarge { limit: self.settings.max_body_bytes });
        }
        let verifier = self.verifiers.get(&provider).ok_or(IngestError::UnknownProvider)?;
        let now = self.clock.now();
        let verified = verifier.verify(inbound, now).await?;
        let new = NewEvent {
            key: EventKey::new(provider, verified.event_id),
            fingerprint: verified.fingerprint,
            event: verified.event,
            received_at: now,
        };
        let key = &new.key;
        match self.store.claim(&new).await? {
            Claim::Created => {
                info!(provider = %key.provider, event_id = %key.event_id, event_type = %new.event.event_type, status = "received", "event recorded");
                self.enqueue(key).await?;
                Ok(IngestOutcome::Accepted)
            }
            Claim::Existing(existing) => self.repeat(&new, *existing).await,
        }
    }

    /// A delivery of an id already recorded.
    async fn repeat(&self, new: &NewEvent, mut existing: EventRecord) -> Result<IngestOutcome, IngestError> {
        let key = &new.key;
        if existing.fingerprint != new.fingerprint {
            self.store.record_conflict(key, self.clock.now()).await?;
            warn!(provider = %key.provider, event_id = %key.event_id, event_type = %new.event.event_type, status = %existing.status,
                "same event id with different content: recorded as a conflict, not processed");
            return Ok(IngestOutcome::Conflict);
        }
        // Give a delivery that is between its put and its send (a concurrent
        // duplicate) the chance to finish, rather than sending twice.
        let deadline = tokio::time::Instant::now() + self.settings.concurrent_wait;
        while existing.status == EventStatus::Received
            && self.clock.now() - existing.updated_at < self.settings.abandoned_after
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(25)).await;
            existing = self.store.get(key).await?.unwrap_or(existing);
        }
        if existing.status != EventStatus::Received {
            info!(provider = %key.provider, event_id = %key.event_id, status = %existing.status, "duplicate delivery");
            return Ok(IngestOutcome::Duplicate);
        }
        let now = self.clock.now();
        if now - existing.updated_at < self.settings.abandoned_after {
            return Err(IngestError::InProgress);
        }
        if !self.store.requeue(key, EventStatus::Received, existing.updated_at, now).await? {
            // Another delivery took it over a moment ago.
            return Err(IngestError::InProgress);
        }
        warn!(provider = %key.provider, event_id = %key.event_id,
            "event was recorded but never enqueued (an earlier delivery failed between put and send); enqueueing now");
        self.metrics.count(key.provider.as_str(), "reenqueued");
        self.enqueue(key).await?;
        Ok(IngestOutcome::Accepted)
    }

    async fn enqueue(&self, key: &EventKey) -> Result<(), IngestError> {
        // On a failed send the record stays `received`: the provider's retry
        // then finds it unenqueued and enqueues it, rather than calling it a
        // duplicate.
        self.queue.send(&key.message_body()).await?;
        self.metrics.count(key.provider.as_str(), "enqueued");
        info!(provider = %key.provider, event_id = %key.event_id, status = "enqueued", "event enqueued");
        if let Err(error) = self.store.mark_enqueued(key, self.clock.now()).await {
            // The message is in the queue, so the answer is still 2xx. At
            // worst a later delivery enqueues it again and the processor
            // finds it already done.
            warn!(provider = %key.provider, event_id = %key.event_id, error = %error,
                "event enqueued but its record could not be marked enqueued");
        }
        Ok(())
    }
}

/// The causes of an error, for the log line that explains a 5xx.
pub fn source_chain(error: &dyn std::error::Error) -> String {
    let mut chain = Vec::new();
    let mut source = error.source();
    while let Some(cause) = source {
        chain.push(cause.to_string());
        source = cause.source();
    }
    chain.join(": ")
}

//! The processor: lease the event, apply its effects, finish it, and tell
//! the queue what to do with each message. One bad message never fails its
//! batch (I7): each message gets its own disposition.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;
use tracing::{error, info, warn};

use crate::clock::Clock;
use crate::event::Provider;
use crate::event::{EventKey, EventKind, EventRecord, EventStatus};
use crate::ingest::source_chain;
use crate::ports::event_store::StoreError;
use crate::ports::{
    Applied, Confirmation, Confirmer, Delivery, EffectError, Effects, Finish, FinishOutcome, LeaseOutcome, Leases,
    Metrics, Queue, QueueError,
};

#[derive(Debug, Clone)]
pub struct ProcessorSettings {
    /// How long a lease keeps other workers off an event: the queue's
    /// visibility timeout, so a lease ends when the message reappears.
    pub lease: Duration,
    /// First retry delay; doubles with each receive.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// The queue's `maxReceiveCount`: a transient failure on the last
    /// receive fails the event (with its reason) and dead-letters it, rather
    /// than leaving its record pending while SQS's redrive moves the message.
    pub max_receive_count: u32,
    /// Kept back at the end of an invocation to stop the work in hand,
    /// release its leases and answer.
    pub deadline_reserve: Duration,
    /// Less time than this left in the invocation: an event is not started.
    pub min_time_to_start: Duration,
}

impl Default for ProcessorSettings {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(180),
            backoff_base: Duration::from_secs(10),
            backoff_max: Duration::from_secs(900),
            max_receive_count: crate::sweep::DEFAULT_MAX_RECEIVE_COUNT,
            deadline_reserve: Duration::from_secs(2),
            min_time_to_start: Duration::from_secs(5),
        }
    }
}

/// How soon an event that ran out of invocation time is tried again.
const OUT_OF_TIME_RETRY: Duration = Duration::from_secs(1);

impl ProcessorSettings {
    /// The delay before the next attempt of a message received `receive_count` times.
    pub fn backoff(&self, receive_count: u32) -> Duration {
        let exponent = receive_count.saturating_sub(1).min(20);
        self.backoff_base.saturating_mul(1 << exponent).min(self.backoff_max)
    }
}

/// What becomes of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// Processed (or nothing left to do): delete the message.
    Done,
    /// Try again after this delay: the message stays, hidden until then.
    Retry(Duration),
    /// Can never succeed: sent to the dead-letter queue; delete it here.
    DeadLettered,
}

/// The outcome of a batch: the messages that must stay in the queue.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchReport {
    pub processed: usize,
    pub retry_message_ids: Vec<String>,
}

/// The effects when no plans are configured: events are recorded and
/// completed with no change to any account; kinds with no handler are
/// recorded as ignored (I8).
#[derive(Debug, Default, Clone, Copy)]
pub struct RecordOnlyEffects;

#[async_trait]
impl Effects for RecordOnlyEffects {
    async fn apply(&self, record: &EventRecord, _owner: &str) -> Result<Applied, EffectError> {
        Ok(match record.event.kind {
            EventKind::Other => Applied::NoHandler,
            _ => Applied::Done,
        })
    }
}

#[derive(Debug)]
pub struct Processor {
    store: Arc<dyn Leases>,
    queue: Arc<dyn Queue>,
    dead_letters: Arc<dyn Queue>,
    effects: Arc<dyn Effects>,
    metrics: Arc<dyn Metrics>,
    clock: Arc<dyn Clock>,
    settings: ProcessorSettings,
    worker: String,
    confirmers: std::collections::BTreeMap<Provider, Arc<dyn Confirmer>>,
    /// When this worker last noted a success per provider (at most once a
    /// minute, so health's "last success" costs nearly nothing).
    noted: std::sync::Mutex<std::collections::HashMap<Provider, std::time::Instant>>,
}

/// What the processor works with besides its effects: the records it
/// leases, the queue it reads (and retries through), the dead-letter queue,
/// metrics and time.
#[derive(Debug)]
pub struct ProcessorPorts {
    pub store: Arc<dyn Leases>,
    pub queue: Arc<dyn Queue>,
    pub dead_letters: Arc<dyn Queue>,
    pub metrics: Arc<dyn Metrics>,
    pub clock: Arc<dyn Clock>,
}

impl Processor {
    pub fn new(ports: ProcessorPorts, effects: Arc<dyn Effects>, settings: ProcessorSettings) -> Self {
        let ProcessorPorts { store, queue, dead_letters, metrics, clock } = ports;
        Self {
            store,
            queue,
            dead_letters,
            effects,
            metrics,
            clock,
            settings,
            // Identifies this worker's leases; unique per process.
            worker: uuid::Uuid::new_v4().to_string(),
            confirmers: Default::default(),
            noted: Default::default(),
        }
    }

    /// Asks `confirmer` about every event of `provider` (but those with no
    /// handler) before its effects are applied.
    pub fn with_confirmer(mut self, provider: Provider, confirmer: Arc<dyn Confirmer>) -> Self {
        self.confirmers.insert(provider, confirmer);
        self
    }

    /// Confirms the event with its provider where a confirmer is set, then
    /// applies its effects to the confirmed event.
    async fn apply(&self, record: &EventRecord) -> Result<Applied, EffectError> {
        let confirmer = self.confirmers.get(&record.provider).filter(|_| record.event.kind != EventKind::Other);
        let Some(confirmer) = confirmer else {
            return self.effects.apply(record, &self.worker).await;
        };
        match confirmer.confirm(record).await? {
            Confirmation::Confirmed(event) => {
                let confirmed = EventRecord { event: *event, ..record.clone() };
                self.effects.apply(&confirmed, &self.worker).await
            }
            Confirmation::Contradicted { reason } => {
                self.metrics.count(record.provider.as_str(), "contradicted");
                Err(EffectError::Permanent(format!("the {} API contradicts the webhook: {reason}", record.provider)))
            }
        }
    }

    pub fn worker_id(&self) -> &str {
        &self.worker
    }

    /// Processes a batch concurrently, hides each message to retry for its
    /// backoff, and reports which messages must stay in the queue.
    pub async fn process_batch(&self, deliveries: &[Delivery]) -> BatchReport {
        self.process_batch_before(deliveries, None).await
    }

    /// [`Self::process_batch`] within an invocation that ends at `deadline`:
    /// no event is started with too little time left, and work still in
    /// hand when the time is nearly up is stopped, its lease given back, so
    /// the answer goes out before Lambda ends the invocation.
    pub async fn process_batch_before(&self, deliveries: &[Delivery], deadline: Option<Instant>) -> BatchReport {
        let dispositions = futures::future::join_all(deliveries.iter().map(|d| self.process_before(d, deadline))).await;
        let mut report = BatchReport::default();
        for (delivery, disposition) in deliveries.iter().zip(dispositions) {
            match disposition {
                Disposition::Done | Disposition::DeadLettered => report.processed += 1,
                Disposition::Retry(delay) => {
                    if let Err(error) = self.queue.change_visibility(&delivery.receipt, delay).await {
                        // The message then reappears after the queue's own
                        // visibility timeout: later, not lost.
                        warn!(message_id = %delivery.message_id, error = %error, "could not set the retry delay");
                    }
                    report.retry_message_ids.push(delivery.message_id.clone());
                }
            }
        }
        report
    }

    /// Receives one batch from the queue, processes it and deletes what is
    /// done: what Lambda's SQS trigger does, for the local server and tests.
    pub async fn poll_once(&self, wait: Duration) -> Result<BatchReport, QueueError> {
        let deliveries = self.queue.receive(10, wait).await?;
        let report = self.process_batch(&deliveries).await;
        for delivery in &deliveries {
            if !report.retry_message_ids.contains(&delivery.message_id) {
                self.queue.delete(&delivery.receipt).await?;
            }
        }
        Ok(report)
    }

    pub async fn process(&self, delivery: &Delivery) -> Disposition {
        self.process_before(delivery, None).await
    }

    async fn process_before(&self, delivery: &Delivery, deadline: Option<Instant>) -> Disposition {
        let Some(key) = EventKey::from_message(&delivery.body) else {
            error!(message_id = %delivery.message_id, "message is not an event key; sending it to the dead-letter queue");
            self.metrics.count("unknown", "failed");
            return self.dead_letter(delivery, "unknown").await;
        };
        let Some(deadline) = deadline else {
            return self.process_key(&key, delivery).await;
        };
        if deadline.saturating_duration_since(Instant::now()) < self.settings.min_time_to_start {
            info!(provider = %key.provider, event_id = %key.event_id, "too little of the invocation left to start the event; it comes back in a moment");
            return Disposition::Retry(OUT_OF_TIME_RETRY);
        }
        let stop_at = deadline.checked_sub(self.settings.deadline_reserve).unwrap_or(deadline);
        match tokio::time::timeout_at(stop_at, self.process_key(&key, delivery)).await {
            Ok(disposition) => disposition,
            Err(_) => {
                // Whatever was in flight either landed (then the release finds
                // the event finished and changes nothing) or did not (then the
                // lease is given back and the event's completion can no longer
                // commit under it).
                let reason = "the invocation ran out of time";
                if let Err(error) = self.store.release(&key, &self.worker, self.clock.now(), reason).await {
                    warn!(provider = %key.provider, event_id = %key.event_id, error = %error, "could not give the lease back; it ends by itself");
                }
                warn!(provider = %key.provider, event_id = %key.event_id, "the invocation ran out of time; the event comes back in a moment");
                self.metrics.count(key.provider.as_str(), "retried");
                Disposition::Retry(OUT_OF_TIME_RETRY)
            }
        }
    }

    async fn process_key(&self, key: &EventKey, delivery: &Delivery) -> Disposition {
        let started = std::time::Instant::now();
        let outcome = self.lease_and_apply(key, delivery).await;
        self.metrics.duration(key.provider.as_str(), "processing_latency", started.elapsed());
        match outcome {
            Ok(disposition) => disposition,
            Err(error) => {
                let delay = self.settings.backoff(delivery.receive_count);
                warn!(provider = %key.provider, event_id = %key.event_id, error = %error, cause = %source_chain(&error),
                    retry_in_secs = delay.as_secs(), "event store unavailable; will retry");
                self.metrics.count(key.provider.as_str(), "retried");
                Disposition::Retry(delay)
            }
        }
    }

    async fn lease_and_apply(&self, key: &EventKey, delivery: &Delivery) -> Result<Disposition, StoreError> {
        let provider = key.provider.as_str();
        let now = self.clock.now();
        let until = now + self.settings.lease;
        let record = match self.store.lease(key, &self.worker, now, until).await? {
            LeaseOutcome::Acquired(record) => record,
            LeaseOutcome::Finished(EventStatus::Failed) => {
                // Failed before, but the dead-letter send may not have
                // happened: send it (again) rather than risk losing it.
                return Ok(self.dead_letter(delivery, provider).await);
            }
            LeaseOutcome::Finished(status) => {
                info!(provider, event_id = %key.event_id, %status, "message for an event already finished; deleting it");
                self.metrics.count(provider, "duplicate_message");
                return Ok(Disposition::Done);
            }
            LeaseOutcome::Held { until } => {
                let wait: Duration = (until - now).try_into().unwrap_or_default();
                info!(provider, event_id = %key.event_id, "event leased by another worker; will look again after its lease");
                return Ok(Disposition::Retry(wait + Duration::from_secs(1)));
            }
            LeaseOutcome::Missing => {
                error!(provider, event_id = %key.event_id, "no record for this event; sending the message to the dead-letter queue");
                self.metrics.count(provider, "failed");
                return Ok(self.dead_letter(delivery, provider).await);
            }
        };
        info!(provider, event_id = %key.event_id, event_type = %record.event_type, attempt = record.attempts, status = "processing", "event leased");

        let finish = match self.apply(&record).await {
            Ok(Applied::Committed) => {
                self.metrics.count(provider, "effect_applied");
                self.metrics.count(provider, "processed");
                // What the failed-payments alarm counts: once per failure.
                if record.event.kind == EventKind::PaymentFailed {
                    self.metrics.count(provider, "payment_failed");
                }
                info!(provider, event_id = %key.event_id, event_type = %record.event_type, status = "completed", "effect applied; event finished");
                self.note_success(key.provider).await;
                return Ok(Disposition::Done);
            }
            Ok(Applied::DuplicateCompleted) => {
                self.metrics.count(provider, "effect_duplicate");
                self.metrics.count(provider, "processed");
                info!(provider, event_id = %key.event_id, event_type = %record.event_type, status = "completed",
                    "effect already applied by another event of the same fact; this event's payment recorded; event finished");
                self.note_success(key.provider).await;
                return Ok(Disposition::Done);
            }
            Ok(Applied::LeaseLost) => {
                warn!(provider, event_id = %key.event_id, "lease expired and was taken over; the other worker finishes the event");
                return Ok(Disposition::Done);
            }
            Ok(Applied::DuplicateEffect) => {
                info!(provider, event_id = %key.event_id, event_type = %record.event_type, "effect already applied (another delivery or event for the same fact)");
                self.metrics.count(provider, "effect_duplicate");
                Finish::Completed
            }
            Ok(Applied::Stale) => {
                info!(provider, event_id = %key.event_id, event_type = %record.event_type, "older than the account's state; recorded as stale");
                Finish::Stale
            }
            Ok(Applied::Done) => Finish::Completed,
            Ok(Applied::NoHandler) => Finish::Ignored,
            Err(EffectError::Permanent(reason)) => Finish::Failed { reason },
            raced_or_transient @ (Ok(Applied::Raced) | Err(EffectError::Transient(_))) => {
                let error = match raced_or_transient {
                    Err(error) => error,
                    _ => EffectError::Transient("what the effect was based on kept changing".into()),
                };
                let message = format!("{error}: {}", source_chain(&error));
                if delivery.receive_count >= self.settings.max_receive_count {
                    warn!(provider, event_id = %key.event_id, error = %message, attempts = delivery.receive_count,
                        "effects failed on the last attempt; failing the event");
                    Finish::Failed { reason: format!("gave up after {} attempts: {message}", delivery.receive_count) }
                } else {
                    let delay = self.settings.backoff(delivery.receive_count);
                    warn!(provider, event_id = %key.event_id, error = %message, retry_in_secs = delay.as_secs(), "effects failed; will retry");
                    self.metrics.count(provider, "retried");
                    self.store.release(key, &self.worker, self.clock.now(), &message).await?;
                    return Ok(Disposition::Retry(delay));
                }
            }
        };
        let status = finish.status();
        match self.store.finish(key, &self.worker, &finish, self.clock.now()).await? {
            FinishOutcome::LeaseLost => {
                warn!(provider, event_id = %key.event_id, "lease expired and was taken over; the other worker finishes the event");
                Ok(Disposition::Done)
            }
            FinishOutcome::Finished => {
                self.metrics.count(provider, status_metric(status));
                match &finish {
                    Finish::Failed { reason } => {
                        error!(provider, event_id = %key.event_id, %status, reason = %reason, "event failed permanently; sending it to the dead-letter queue");
                        Ok(self.dead_letter(delivery, provider).await)
                    }
                    _ => {
                        info!(provider, event_id = %key.event_id, event_type = %record.event_type, %status, "event finished");
                        self.note_success(key.provider).await;
                        Ok(Disposition::Done)
                    }
                }
            }
        }
    }

    /// Notes a success for health, at most once a minute per provider;
    /// a failure to note it changes nothing for the event.
    async fn note_success(&self, provider: Provider) {
        let due = {
            let mut noted = self.noted.lock().unwrap_or_else(|e| e.into_inner());
            let last = noted.get(&provider);
            if last.is_some_and(|at| at.elapsed() < Duration::from_secs(60)) {
                false
            } else {
                noted.insert(provider, std::time::Instant::now());
                true
            }
        };
        if due && let Err(error) = self.store.note_success(provider, self.clock.now()).await {
            tracing::debug!(provider = provider.as_str(), error = %error, "could not note the last success");
        }
    }

    async fn dead_letter(&self, delivery: &Delivery, provider: &str) -> Disposition {
        match self.dead_letters.send(&delivery.body).await {
            Ok(_) => {
                self.metrics.count(provider, "dead_lettered");
                Disposition::DeadLettered
            }
            Err(error) => {
                // Keep the message: the queue's redrive moves it to the
                // dead-letter queue after its last receive.
                warn!(message_id = %delivery.message_id, error = %error, "could not send to the dead-letter queue; will retry");
                Disposition::Retry(self.settings.backoff(delivery.receive_count))
            }
        }
    }
}

fn status_metric(status: EventStatus) -> &'static str {
    match status {
        EventStatus::Completed => "processed",
        EventStatus::Ignored => "ignored",
        EventStatus::Stale => "stale",
        EventStatus::Failed => "failed",
        _ => "unexpected_status",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_per_receive_up_to_the_cap() {
        let settings = ProcessorSettings {
            backoff_base: Duration::from_secs(10),
            backoff_max: Duration::from_secs(60),
            ..ProcessorSettings::default()
        };
        let delays: Vec<u64> = (1..=5).map(|n| settings.backoff(n).as_secs()).collect();
        assert_eq!(delays, [10, 20, 40, 60, 60]);
        assert_eq!(settings.backoff(0).as_secs(), 10);
        assert_eq!(settings.backoff(u32::MAX).as_secs(), 60);
    }

    /// A provider's API down for an hour (an outage, a maintenance window)
    /// must not exhaust an event's receives: with the defaults (which the
    /// template's MaxReceiveCount matches) retries span well over an hour.
    #[test]
    fn the_default_retries_outlast_an_hour_long_outage() {
        let settings = ProcessorSettings::default();
        let waited: Duration = (1..settings.max_receive_count).map(|n| settings.backoff(n)).sum();
        assert!(waited >= Duration::from_secs(3600), "{waited:?}");
        assert_eq!(settings.backoff(settings.max_receive_count - 1), settings.backoff_max, "the cap is reached");
    }
}

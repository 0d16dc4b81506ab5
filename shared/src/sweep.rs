//! The sweeper: re-enqueues events no delivery and no message will bring
//! back (I3). A record left `received` (the function died between the put
//! and the send, and the provider never retried) or `enqueued`/`processing`
//! with no message left to carry it (a message lost, a lease that expired
//! with the worker) is sent to the queue again once it is older than the
//! threshold. Sending is safe however often it happens: the processor leases
//! and finishes each event once.
//!
//! An event whose attempts reached the queue's `maxReceiveCount` is in the
//! dead-letter queue (or about to be): the sweeper leaves it there for a
//! person to replay, so it never undoes the DLQ.

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tracing::{info, warn};

use crate::clock::Clock;
use crate::event::{EventRecord, EventStatus, Provider};
use crate::ingest::message_body;
use crate::ports::{EventStore, Metrics, Queue, QueueError, StoreError};

#[derive(Debug, Clone)]
pub struct SweepSettings {
    /// How long an event may sit in a non-final state before it counts as
    /// stuck; longer than the visibility timeout plus the longest backoff.
    pub older_than: Duration,
    /// The main queue's `maxReceiveCount`.
    pub max_receive_count: u32,
    /// At most this many events per provider per run.
    pub limit: usize,
}

impl Default for SweepSettings {
    fn default() -> Self {
        Self {
            older_than: Duration::from_secs(15 * 60),
            max_receive_count: 5,
            limit: 500,
        }
    }
}

/// What one run did, for its metrics and log line.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SweepReport {
    /// Recorded but never enqueued: now enqueued.
    pub requeued_unsent: u32,
    /// Enqueued or processing with no progress: sent again.
    pub requeued_stalled: u32,
    /// Out of attempts: left in the dead-letter queue.
    pub left_in_dlq: u32,
    /// Changed by someone else between the query and the re-enqueue.
    pub skipped: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error("the event store is unavailable: {0}")]
    Store(#[from] StoreError),
    #[error("the queue is unavailable: {0}")]
    Queue(#[from] QueueError),
}

#[derive(Debug)]
pub struct Sweeper {
    store: Arc<dyn EventStore>,
    queue: Arc<dyn Queue>,
    metrics: Arc<dyn Metrics>,
    clock: Arc<dyn Clock>,
    settings: SweepSettings,
}

impl Sweeper {
    pub fn new(
        store: Arc<dyn EventStore>,
        queue: Arc<dyn Queue>,
        metrics: Arc<dyn Metrics>,
        clock: Arc<dyn Clock>,
        settings: SweepSettings,
    ) -> Self {
        Self {
            store,
            queue,
            metrics,
            clock,
            settings,
        }
    }

    pub async fn sweep(&self) -> Result<SweepReport, SweepError> {
        let mut report = SweepReport::default();
        for &provider in Provider::ALL {
            self.sweep_provider(provider, &mut report).await?;
        }
        info!(
            requeued_unsent = report.requeued_unsent,
            requeued_stalled = report.requeued_stalled,
            left_in_dlq = report.left_in_dlq,
            skipped = report.skipped,
            "sweep finished"
        );
        Ok(report)
    }

    async fn sweep_provider(&self, provider: Provider, report: &mut SweepReport) -> Result<(), SweepError> {
        let now: OffsetDateTime = self.clock.now();
        let older_than = now - self.settings.older_than;
        let name = provider.as_str();
        for record in self.store.stuck(provider, older_than, self.settings.limit).await? {
            if record.attempts >= self.settings.max_receive_count {
                report.left_in_dlq += 1;
                self.metrics.count(name, "sweep_left_in_dlq");
                continue;
            }
            let key = record.key();
            if !self.store.requeue(&key, record.status, record.updated_at, now).await? {
                report.skipped += 1;
                continue;
            }
            self.queue.send(&message_body(&key)).await?;
            if record.status == EventStatus::Received {
                self.store.mark_enqueued(&key, now).await?;
                report.requeued_unsent += 1;
                self.metrics.count(name, "swept_unsent");
            } else {
                report.requeued_stalled += 1;
                self.metrics.count(name, "swept_stalled");
            }
            log_requeued(&record);
        }
        Ok(())
    }
}

fn log_requeued(record: &EventRecord) {
    warn!(
        provider = record.provider.as_str(),
        event_id = %record.event_id,
        event_type = %record.event_type,
        status = %record.status,
        attempts = record.attempts,
        "stuck event re-enqueued"
    );
}

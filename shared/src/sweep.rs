//! The sweeper: re-enqueues events no delivery and no message will bring
//! back (I3). A record left `received` (the function died between the put
//! and the send, and the provider never retried) or `enqueued`/`processing`
//! with no message left to carry it (a message lost, a lease that expired
//! with the worker) is sent to the queue again once it is older than the
//! threshold. Sending is safe however often it happens: the processor leases
//! and finishes each event once.
//!
//! An event whose attempts reached the queue's `maxReceiveCount` is in the
//! dead-letter queue (or about to be): the sweeper marks its record failed,
//! with the reason, so it never undoes the DLQ, a replay finds it among the
//! failed records even after its dead letter expired, and it leaves the
//! pending events the sweeper reads (where enough of them would otherwise
//! hide a record that was never enqueued).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tracing::{info, warn};

use crate::clock::Clock;
use crate::event::{EventRecord, EventStatus, Provider};
use crate::ports::{Metrics, Queue, QueueError, Repairs, StoreError};

#[derive(Debug, Clone)]
pub struct SweepSettings {
    /// How long an event may sit in a non-final state before it counts as
    /// stuck; longer than the visibility timeout plus the longest backoff.
    pub older_than: Duration,
    /// The main queue's `maxReceiveCount`.
    pub max_receive_count: u32,
    /// Events read per query; a run reads page after page while each
    /// brings progress.
    pub limit: usize,
    /// A run starts no new page after this long (the function's timeout is
    /// 120 s); the next run goes on.
    pub budget: Duration,
}

impl Default for SweepSettings {
    fn default() -> Self {
        Self {
            older_than: Duration::from_secs(20 * 60),
            max_receive_count: DEFAULT_MAX_RECEIVE_COUNT,
            limit: 500,
            budget: Duration::from_secs(90),
        }
    }
}

/// The events queue's `maxReceiveCount` unless configured (as in the template).
pub const DEFAULT_MAX_RECEIVE_COUNT: u32 = 12;

/// What one run did, for its metrics and log line.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SweepReport {
    /// Recorded but never enqueued: now enqueued.
    pub requeued_unsent: u32,
    /// Enqueued or processing with no progress: sent again.
    pub requeued_stalled: u32,
    /// Out of attempts: marked failed, their messages left in the
    /// dead-letter queue.
    pub gave_up: u32,
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
    store: Arc<dyn Repairs>,
    queue: Arc<dyn Queue>,
    metrics: Arc<dyn Metrics>,
    clock: Arc<dyn Clock>,
    settings: SweepSettings,
}

impl Sweeper {
    pub fn new(
        store: Arc<dyn Repairs>,
        queue: Arc<dyn Queue>,
        metrics: Arc<dyn Metrics>,
        clock: Arc<dyn Clock>,
        settings: SweepSettings,
    ) -> Self {
        Self { store, queue, metrics, clock, settings }
    }

    pub async fn sweep(&self) -> Result<SweepReport, SweepError> {
        let mut report = SweepReport::default();
        let started = std::time::Instant::now();
        for &provider in Provider::ALL {
            self.sweep_provider(provider, started, &mut report).await?;
        }
        info!(
            requeued_unsent = report.requeued_unsent,
            requeued_stalled = report.requeued_stalled,
            gave_up = report.gave_up,
            skipped = report.skipped,
            "sweep finished"
        );
        Ok(report)
    }

    /// Pages through the provider's stuck events, oldest change first, each
    /// page starting where the last one ended. An event handled leaves the
    /// window (re-enqueued ones are younger now, failed ones no longer
    /// pending); one seen before in this run (the index can lag) is not
    /// handled twice, and a page with nothing new ends the walk.
    async fn sweep_provider(
        &self,
        provider: Provider,
        started: std::time::Instant,
        report: &mut SweepReport,
    ) -> Result<(), SweepError> {
        let now: OffsetDateTime = self.clock.now();
        let older_than = now - self.settings.older_than;
        let mut since = None;
        let mut seen = HashSet::new();
        loop {
            let page = self.store.stuck(provider, since, older_than, self.settings.limit).await?;
            let fresh: Vec<&EventRecord> = page.iter().filter(|r| seen.insert(r.key())).collect();
            if fresh.is_empty() {
                return Ok(());
            }
            for record in fresh {
                self.sweep_one(record, now, report).await?;
            }
            since = page.last().map(|r| r.updated_at);
            if page.len() < self.settings.limit || started.elapsed() >= self.settings.budget {
                return Ok(());
            }
        }
    }

    async fn sweep_one(
        &self,
        record: &EventRecord,
        now: OffsetDateTime,
        report: &mut SweepReport,
    ) -> Result<(), SweepError> {
        let key = record.key();
        let name = record.provider.as_str();
        if record.attempts >= self.settings.max_receive_count {
            let reason = format!(
                "gave up after {} attempts; its message went to the dead-letter queue (last error: {})",
                record.attempts,
                record.last_error.as_deref().unwrap_or("none recorded")
            );
            if !self.store.give_up(&key, record.status, record.updated_at, now, &reason).await? {
                report.skipped += 1;
                return Ok(());
            }
            report.gave_up += 1;
            self.metrics.count(name, "failed");
            warn!(provider = name, event_id = %record.event_id, event_type = %record.event_type,
                attempts = record.attempts, status = "failed", "out of attempts: recorded as failed, to be replayed");
            return Ok(());
        }
        if !self.store.requeue(&key, record.status, record.updated_at, now).await? {
            report.skipped += 1;
            return Ok(());
        }
        self.queue.send(&key.message_body()).await?;
        if record.status == EventStatus::Received {
            self.store.mark_enqueued(&key, now).await?;
            report.requeued_unsent += 1;
            self.metrics.count(name, "swept_unsent");
        } else {
            report.requeued_stalled += 1;
            self.metrics.count(name, "swept_stalled");
        }
        log_requeued(record);
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

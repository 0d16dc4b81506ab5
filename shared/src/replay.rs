//! Replay from the dead-letter queue: moves messages back to the main queue,
//! all of them, one provider's, or one event's, with a dry run that only
//! lists what would move. It receives, sends and deletes (SQS's own redrive,
//! `StartMessageMoveTask`, moves everything and cannot filter). Nothing can
//! double: a completed event's message is deleted by the processor unread,
//! and a failed event is reopened only from `failed`.
//!
//! Then the failed records the dead letters did not cover: a dead letter
//! expires after 14 days, or was never sent (the event gave up when its
//! message had gone to the DLQ by redrive), but a failed record never
//! expires (I14), so each is reopened and enqueued from the record.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tracing::{info, warn};

use crate::clock::Clock;
use crate::event::{EventKey, EventStatus, Provider};
use crate::ports::{Metrics, Queue, QueueError, Repairs, StoreError};

/// Which dead letters to move.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplayFilter {
    All,
    Provider(Provider),
    Event(EventKey),
}

impl ReplayFilter {
    fn matches(&self, key: &EventKey) -> bool {
        match self {
            ReplayFilter::All => true,
            ReplayFilter::Provider(provider) => key.provider == *provider,
            ReplayFilter::Event(wanted) => key == wanted,
        }
    }
}

/// One dead letter that matched.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeadLetter {
    pub provider: Provider,
    pub event_id: String,
    /// The record's state when seen; `None` if there is no record.
    pub status: Option<EventStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReplayReport {
    pub dry_run: bool,
    /// What matched: moved, or with a dry run, what would move.
    pub matched: Vec<DeadLetter>,
    pub moved: u32,
    /// Failed events opened to processing again.
    pub reopened: u32,
    /// Of those, the ones enqueued from their records, with no dead letter.
    pub from_records: u32,
    /// Left in the dead-letter queue: not matching, or not a payhooks message.
    pub kept: u32,
    /// The run stopped at its limit: run it again for the rest.
    pub more: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("the event store is unavailable: {0}")]
    Store(#[from] StoreError),
    #[error("a queue is unavailable: {0}")]
    Queue(#[from] QueueError),
}

/// One replay's progress. Messages received and not moved are held
/// (invisible) until the run ends, so each is looked at once; then they are
/// released at once.
struct Run {
    report: ReplayReport,
    seen: HashSet<String>,
    held: Vec<String>,
    limit: usize,
}

#[derive(Debug)]
pub struct Replayer {
    store: Arc<dyn Repairs>,
    queue: Arc<dyn Queue>,
    dead_letters: Arc<dyn Queue>,
    metrics: Arc<dyn Metrics>,
    clock: Arc<dyn Clock>,
}

impl Replayer {
    pub fn new(
        store: Arc<dyn Repairs>,
        queue: Arc<dyn Queue>,
        dead_letters: Arc<dyn Queue>,
        metrics: Arc<dyn Metrics>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self { store, queue, dead_letters, metrics, clock }
    }

    /// Moves (or, with `dry_run`, lists) the dead letters `filter` matches,
    /// at most `limit` of them. `progress` is called after each batch with
    /// the report so far.
    pub async fn replay(
        &self,
        filter: &ReplayFilter,
        dry_run: bool,
        limit: Option<usize>,
        progress: &(dyn Fn(&ReplayReport) + Sync),
    ) -> Result<ReplayReport, ReplayError> {
        let mut run = Run {
            report: ReplayReport { dry_run, ..ReplayReport::default() },
            seen: HashSet::new(),
            held: Vec::new(),
            limit: limit.unwrap_or(usize::MAX),
        };
        let mut outcome = self.run(filter, &mut run, progress).await;
        if outcome.is_ok() {
            outcome = self.reopen_failed_records(filter, &mut run.report, run.limit).await;
            progress(&run.report);
        }
        let Run { report, held, .. } = run;
        for receipt in &held {
            if let Err(error) = self.dead_letters.change_visibility(receipt, Duration::ZERO).await {
                warn!(error = %error, "a dead letter stays hidden until its visibility timeout ends");
            }
        }
        outcome?;
        info!(
            dry_run,
            moved = report.moved,
            reopened = report.reopened,
            from_records = report.from_records,
            kept = report.kept,
            "replay finished"
        );
        Ok(report)
    }

    /// Reopens and enqueues the failed events `filter` matches that the
    /// dead letters did not (`report.matched` names those), up to `limit`.
    async fn reopen_failed_records(
        &self,
        filter: &ReplayFilter,
        report: &mut ReplayReport,
        limit: usize,
    ) -> Result<(), ReplayError> {
        let seen: HashSet<(Provider, String)> =
            report.matched.iter().map(|m| (m.provider, m.event_id.clone())).collect();
        let candidates = match filter {
            ReplayFilter::Event(key) => self.store.get(key).await?.into_iter().collect(),
            ReplayFilter::Provider(provider) => self.store.failed(*provider, limit.saturating_add(seen.len())).await?,
            ReplayFilter::All => {
                let mut all = Vec::new();
                for &provider in Provider::ALL {
                    all.extend(self.store.failed(provider, limit.saturating_add(seen.len())).await?);
                }
                all
            }
        };
        for record in candidates {
            if record.status != EventStatus::Failed || seen.contains(&(record.provider, record.event_id.to_string())) {
                continue;
            }
            if report.matched.len() >= limit {
                report.more = true;
                break;
            }
            let key = record.key();
            report.matched.push(DeadLetter {
                provider: key.provider,
                event_id: key.event_id.to_string(),
                status: Some(record.status),
                last_error: record.last_error.clone(),
            });
            // The index may lag: only an event still failed is reopened,
            // and only a reopened one is sent.
            if report.dry_run || !self.store.reopen(&key, self.clock.now()).await? {
                continue;
            }
            self.queue.send(&key.message_body()).await?;
            report.reopened += 1;
            report.from_records += 1;
            self.metrics.count(key.provider.as_str(), "replayed");
            info!(provider = %key.provider, event_id = %key.event_id, "failed event reopened from its record and enqueued");
        }
        Ok(())
    }

    async fn run(
        &self,
        filter: &ReplayFilter,
        run: &mut Run,
        progress: &(dyn Fn(&ReplayReport) + Sync),
    ) -> Result<(), ReplayError> {
        let Run { report, seen, held, limit } = run;
        let (dry_run, limit) = (report.dry_run, *limit);
        loop {
            let batch = self.dead_letters.receive(10, Duration::ZERO).await?;
            let mut new = false;
            for delivery in batch {
                if report.matched.len() >= limit {
                    report.more = true;
                    held.push(delivery.receipt);
                    continue;
                }
                if !seen.insert(delivery.message_id.clone()) {
                    held.push(delivery.receipt);
                    continue;
                }
                new = true;
                let Some(key) = EventKey::from_message(&delivery.body).filter(|key| filter.matches(key)) else {
                    report.kept += 1;
                    held.push(delivery.receipt);
                    continue;
                };
                let record = self.store.get(&key).await?;
                report.matched.push(DeadLetter {
                    provider: key.provider,
                    event_id: key.event_id.to_string(),
                    status: record.as_ref().map(|r| r.status),
                    last_error: record.as_ref().and_then(|r| r.last_error.clone()),
                });
                if dry_run {
                    held.push(delivery.receipt);
                    continue;
                }
                if record.is_some_and(|r| r.status == EventStatus::Failed)
                    && self.store.reopen(&key, self.clock.now()).await?
                {
                    report.reopened += 1;
                }
                // Sent before the delete: a crash between the two leaves a
                // copy in each queue, which the processor's lease makes one.
                self.queue.send(&key.message_body()).await?;
                self.dead_letters.delete(&delivery.receipt).await?;
                report.moved += 1;
                self.metrics.count(key.provider.as_str(), "replayed");
            }
            progress(report);
            if !new || report.more {
                return Ok(());
            }
        }
    }
}

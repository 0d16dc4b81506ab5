//! The record of every event: claimed once on arrival, leased by one worker
//! at a time, finished once.

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::event::{EventKey, EventRecord, EventStatus, NewEvent, Provider};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store was throttled or unreachable: worth retrying.
    #[error("the event store is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The store answered with something the adapter cannot read.
    #[error("the event store returned a corrupt record: {0}")]
    Corrupt(String),
}

impl StoreError {
    pub fn unavailable(source: impl std::error::Error + Send + Sync + 'static) -> Self {
        StoreError::Unavailable(Box::new(source))
    }
}

/// The result of the conditional put made on arrival.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// First sight: the record was created.
    Created,
    /// The key was already there; this is what it held.
    Existing(Box<EventRecord>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseOutcome {
    /// This worker holds the event until the lease ends.
    Acquired(Box<EventRecord>),
    /// Another worker holds an unexpired lease.
    Held { until: OffsetDateTime },
    /// Already in a final state: nothing left to do.
    Finished(EventStatus),
    /// No record under this key.
    Missing,
}

/// How a leased event ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finish {
    Completed,
    Ignored,
    Stale,
    Failed { reason: String },
}

impl Finish {
    pub fn status(&self) -> EventStatus {
        match self {
            Finish::Completed => EventStatus::Completed,
            Finish::Ignored => EventStatus::Ignored,
            Finish::Stale => EventStatus::Stale,
            Finish::Failed { .. } => EventStatus::Failed,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishOutcome {
    Finished,
    /// The lease had passed to another worker; this worker's result is void.
    LeaseLost,
}

#[async_trait]
pub trait EventStore: Send + Sync + std::fmt::Debug {
    /// Writes the record only if the key is absent (a conditional put).
    async fn claim(&self, event: &NewEvent) -> Result<Claim, StoreError>;

    /// Notes that the event's message was sent. Leaves a record alone that a
    /// worker already moved on (the queue can be faster than this call).
    async fn mark_enqueued(&self, key: &EventKey, at: OffsetDateTime) -> Result<(), StoreError>;

    /// Events of `provider` still in a non-final state whose last change is
    /// older than `older_than`, oldest first, at most `limit`: what the
    /// sweeper looks at.
    async fn stuck(
        &self,
        provider: Provider,
        older_than: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<EventRecord>, StoreError>;

    /// Lets exactly one caller re-enqueue an event it found abandoned (a
    /// later delivery of one recorded but never sent, or the sweeper): true
    /// if the event is still in `seen_status` as of `seen_updated_at` (and,
    /// if processing, its lease has expired); its `updated_at` becomes `now`.
    async fn requeue(
        &self,
        key: &EventKey,
        seen_status: EventStatus,
        seen_updated_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError>;

    /// Opens a failed event to processing again (a replay from the DLQ,
    /// once its cause is fixed): true if it was failed; any other state is
    /// left alone, so a completed event can never be processed twice.
    async fn reopen(&self, key: &EventKey, now: OffsetDateTime) -> Result<bool, StoreError>;

    /// Notes that an event of `provider` finished successfully at `at` (the
    /// health check's "last success"); never moves it back in time. Not in
    /// the correctness path: callers write it at most once a minute.
    async fn note_success(&self, provider: Provider, at: OffsetDateTime) -> Result<(), StoreError>;

    /// The last success noted for each provider that has one.
    async fn last_successes(&self) -> Result<std::collections::BTreeMap<Provider, OffsetDateTime>, StoreError>;

    /// Counts a delivery that reused the key with different content (I10).
    async fn record_conflict(&self, key: &EventKey, at: OffsetDateTime) -> Result<(), StoreError>;

    async fn get(&self, key: &EventKey) -> Result<Option<EventRecord>, StoreError>;

    /// Takes the event for `owner` until `until`, if nobody holds an
    /// unexpired lease and it is not final. Counts an attempt.
    async fn lease(
        &self,
        key: &EventKey,
        owner: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<LeaseOutcome, StoreError>;

    /// Gives a lease back after a transient failure so the retry can take it
    /// at once; a no-op if `owner` no longer holds it.
    async fn release(
        &self,
        key: &EventKey,
        owner: &str,
        now: OffsetDateTime,
        error: &str,
    ) -> Result<(), StoreError>;

    /// Moves a leased event to its final state, only while `owner` holds it.
    async fn finish(
        &self,
        key: &EventKey,
        owner: &str,
        finish: &Finish,
        now: OffsetDateTime,
    ) -> Result<FinishOutcome, StoreError>;
}

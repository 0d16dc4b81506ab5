//! The record of every event: claimed once on arrival, leased by one worker
//! at a time, finished once.

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::event::{EventKey, EventRecord, EventStatus, NewEvent, Provider};

/// How long a record is kept once it may expire, unless configured.
pub const DEFAULT_RETENTION: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);

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

/// Everything an event store does; each pipeline takes only its role.
pub trait EventStore: Intake + Leases + Repairs {}

impl<T: Intake + Leases + Repairs + ?Sized> EventStore for T {}

/// Reading one event's record: every role does.
#[async_trait]
pub trait EventRecords: Send + Sync + std::fmt::Debug {
    async fn get(&self, key: &EventKey) -> Result<Option<EventRecord>, StoreError>;
}

/// Noting that an event's message went out, and letting exactly one caller
/// send again the message of an event left behind: ingest and the sweeper.
#[async_trait]
pub trait Enqueueing: EventRecords {
    /// Notes that the event's message was sent. Leaves a record alone that a
    /// worker already moved on (the queue can be faster than this call).
    async fn mark_enqueued(&self, key: &EventKey, at: OffsetDateTime) -> Result<(), StoreError>;

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
}

/// What ingest writes: the record of each event as it arrives.
#[async_trait]
pub trait Intake: Enqueueing {
    /// Writes the record only if the key is absent (a conditional put).
    async fn claim(&self, event: &NewEvent) -> Result<Claim, StoreError>;

    /// Counts a delivery that reused the key with different content (I10).
    async fn record_conflict(&self, key: &EventKey, at: OffsetDateTime) -> Result<(), StoreError>;
}

/// What the processor does: one worker at a time per event, until final.
#[async_trait]
pub trait Leases: EventRecords {
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
    async fn release(&self, key: &EventKey, owner: &str, now: OffsetDateTime, error: &str) -> Result<(), StoreError>;

    /// Moves a leased event to its final state, only while `owner` holds it.
    /// A record that may expire ([`EventStatus::may_expire`]) gets its
    /// expiry then, the store's retention from `now`; no other does.
    async fn finish(
        &self,
        key: &EventKey,
        owner: &str,
        finish: &Finish,
        now: OffsetDateTime,
    ) -> Result<FinishOutcome, StoreError>;

    /// Notes that an event of `provider` finished successfully at `at` (the
    /// health check's "last success"); never moves it back in time. Not in
    /// the correctness path: callers write it at most once a minute.
    async fn note_success(&self, provider: Provider, at: OffsetDateTime) -> Result<(), StoreError>;
}

/// What the sweeper, a replay and the health check find and repair.
#[async_trait]
pub trait Repairs: Enqueueing {
    /// Events of `provider` still in a non-final state whose last change is
    /// older than `older_than` (and not older than `since`, when given: where
    /// the previous page ended), oldest first, at most `limit`: what the
    /// sweeper looks at.
    async fn stuck(
        &self,
        provider: Provider,
        since: Option<OffsetDateTime>,
        older_than: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<EventRecord>, StoreError>;

    /// Failed events of `provider`, oldest change first, at most `limit`:
    /// what a replay reopens from the records when their dead letters are
    /// gone.
    async fn failed(&self, provider: Provider, limit: usize) -> Result<Vec<EventRecord>, StoreError>;

    /// Marks an event failed that ran out of attempts while its record was
    /// left behind (its message went to the dead-letter queue by redrive):
    /// true if it was still in `seen_status` as of `seen_updated_at` (and
    /// not leased). It leaves the sweeper's pending events for the failed
    /// ones, where a replay finds it.
    async fn give_up(
        &self,
        key: &EventKey,
        seen_status: EventStatus,
        seen_updated_at: OffsetDateTime,
        now: OffsetDateTime,
        reason: &str,
    ) -> Result<bool, StoreError>;

    /// Opens a failed event to processing again (a replay from the DLQ,
    /// once its cause is fixed): true if it was failed; any other state is
    /// left alone, so a completed event can never be processed twice.
    async fn reopen(&self, key: &EventKey, now: OffsetDateTime) -> Result<bool, StoreError>;

    /// The last success noted for each provider that has one.
    async fn last_successes(&self) -> Result<std::collections::BTreeMap<Provider, OffsetDateTime>, StoreError>;
}

//! The event store in a map behind a mutex. Each method holds the lock for
//! its whole check-and-write, which gives it DynamoDB's per-item atomicity.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::event::{EventKey, EventRecord, EventStatus, NewEvent};
use crate::ports::event_store::{Claim, EventStore, Finish, FinishOutcome, LeaseOutcome, StoreError};

#[derive(Debug, Default)]
pub struct MemoryEventStore {
    records: Mutex<HashMap<EventKey, EventRecord>>,
}

impl MemoryEventStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn records(&self) -> std::sync::MutexGuard<'_, HashMap<EventKey, EventRecord>> {
        // A panic elsewhere while holding the lock leaves each record whole
        // (every write replaces fields of one record), so keep serving.
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every record, for the local server's listings and for tests.
    pub fn all(&self) -> Vec<EventRecord> {
        let mut all: Vec<_> = self.records().values().cloned().collect();
        all.sort_by_key(|r| r.received_at);
        all
    }
}

#[async_trait]
impl EventStore for MemoryEventStore {
    async fn claim(&self, event: &NewEvent) -> Result<Claim, StoreError> {
        let mut records = self.records();
        if let Some(existing) = records.get(&event.key) {
            return Ok(Claim::Existing(Box::new(existing.clone())));
        }
        records.insert(event.key.clone(), EventRecord::from_new(event));
        Ok(Claim::Created)
    }

    async fn mark_enqueued(&self, key: &EventKey, at: OffsetDateTime) -> Result<(), StoreError> {
        if let Some(record) = self.records().get_mut(key)
            && record.status == EventStatus::Received
        {
            record.status = EventStatus::Enqueued;
            record.enqueued_at = Some(at);
            record.updated_at = at;
        }
        Ok(())
    }

    async fn take_over_enqueue(
        &self,
        key: &EventKey,
        seen_updated_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut records = self.records();
        match records.get_mut(key) {
            Some(record)
                if record.status == EventStatus::Received && record.updated_at == seen_updated_at =>
            {
                record.updated_at = now;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn record_conflict(&self, key: &EventKey, at: OffsetDateTime) -> Result<(), StoreError> {
        if let Some(record) = self.records().get_mut(key) {
            record.conflicts += 1;
            record.updated_at = at;
        }
        Ok(())
    }

    async fn get(&self, key: &EventKey) -> Result<Option<EventRecord>, StoreError> {
        Ok(self.records().get(key).cloned())
    }

    async fn lease(
        &self,
        key: &EventKey,
        owner: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<LeaseOutcome, StoreError> {
        let mut records = self.records();
        let Some(record) = records.get_mut(key) else {
            return Ok(LeaseOutcome::Missing);
        };
        match record.status {
            status if status.is_final() => return Ok(LeaseOutcome::Finished(status)),
            EventStatus::Processing => match record.lease_until {
                Some(lease_until) if lease_until >= now => {
                    return Ok(LeaseOutcome::Held { until: lease_until });
                }
                _ => {}
            },
            _ => {}
        }
        record.status = EventStatus::Processing;
        record.lease_owner = Some(owner.to_owned());
        record.lease_until = Some(until);
        record.attempts += 1;
        record.enqueued_at.get_or_insert(now);
        record.updated_at = now;
        Ok(LeaseOutcome::Acquired(Box::new(record.clone())))
    }

    async fn release(
        &self,
        key: &EventKey,
        owner: &str,
        now: OffsetDateTime,
        error: &str,
    ) -> Result<(), StoreError> {
        if let Some(record) = self.records().get_mut(key)
            && record.status == EventStatus::Processing
            && record.lease_owner.as_deref() == Some(owner)
        {
            record.status = EventStatus::Enqueued;
            record.lease_owner = None;
            record.lease_until = None;
            record.last_error = Some(error.to_owned());
            record.updated_at = now;
        }
        Ok(())
    }

    async fn finish(
        &self,
        key: &EventKey,
        owner: &str,
        finish: &Finish,
        now: OffsetDateTime,
    ) -> Result<FinishOutcome, StoreError> {
        let mut records = self.records();
        let Some(record) = records.get_mut(key) else {
            return Ok(FinishOutcome::LeaseLost);
        };
        if record.status != EventStatus::Processing || record.lease_owner.as_deref() != Some(owner) {
            return Ok(FinishOutcome::LeaseLost);
        }
        record.status = finish.status();
        record.lease_owner = None;
        record.lease_until = None;
        record.finished_at = Some(now);
        record.updated_at = now;
        if let Finish::Failed { reason } = finish {
            record.last_error = Some(reason.clone());
        }
        Ok(FinishOutcome::Finished)
    }
}

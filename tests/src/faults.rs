//! Adapters that wrap real ones, count every call by operation, and fail
//! chosen calls on purpose: to show that a failed put or send answers 5xx and
//! strands nothing, and to count the AWS calls each path makes.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use payhooks::event::{EventKey, EventRecord, EventStatus, NewEvent, Provider};
use payhooks::ports::{
    AccountPage, AccountRef, AccountState, Applied, Audit, Claim, CommitOutcome, Delivery, Effect, EffectError,
    Effects, EventStore, Finish, FinishOutcome, LeaseOutcome, Ledger, LedgerEntry, Payment, PaymentRef, Queue,
    QueueError, StoreError,
};
use time::OffsetDateTime;

#[derive(Debug, thiserror::Error)]
#[error("injected failure")]
pub struct Injected;

/// Calls made, by operation name, and failures still to inject.
#[derive(Debug, Default)]
pub struct Calls {
    made: Mutex<BTreeMap<&'static str, u32>>,
    failures: Mutex<BTreeMap<&'static str, u32>>,
}

impl Calls {
    /// Makes the next `times` calls of `operation` fail before they happen.
    pub fn fail(&self, operation: &'static str, times: u32) {
        self.failures.lock().expect("lock").insert(operation, times);
    }

    pub fn count(&self, operation: &str) -> u32 {
        self.made.lock().expect("lock").get(operation).copied().unwrap_or(0)
    }

    pub fn total(&self) -> u32 {
        self.made.lock().expect("lock").values().sum()
    }

    pub fn reset(&self) {
        self.made.lock().expect("lock").clear();
    }

    /// Counts a call; `Err` if it is one to fail.
    fn call(&self, operation: &'static str) -> Result<(), Injected> {
        *self.made.lock().expect("lock").entry(operation).or_default() += 1;
        let mut failures = self.failures.lock().expect("lock");
        match failures.get_mut(operation) {
            Some(left) if *left > 0 => {
                *left -= 1;
                Err(Injected)
            }
            _ => Ok(()),
        }
    }
}

#[derive(Debug)]
pub struct InstrumentedStore {
    pub inner: Arc<dyn EventStore>,
    pub calls: Arc<Calls>,
}

impl InstrumentedStore {
    pub fn new(inner: Arc<dyn EventStore>) -> Self {
        Self { inner, calls: Arc::default() }
    }

    fn call(&self, operation: &'static str) -> Result<(), StoreError> {
        self.calls.call(operation).map_err(StoreError::unavailable)
    }
}

#[async_trait]
impl EventStore for InstrumentedStore {
    async fn claim(&self, event: &NewEvent) -> Result<Claim, StoreError> {
        self.call("claim")?;
        self.inner.claim(event).await
    }
    async fn mark_enqueued(&self, key: &EventKey, at: OffsetDateTime) -> Result<(), StoreError> {
        self.call("mark_enqueued")?;
        self.inner.mark_enqueued(key, at).await
    }
    async fn record_conflict(&self, key: &EventKey, at: OffsetDateTime) -> Result<(), StoreError> {
        self.call("record_conflict")?;
        self.inner.record_conflict(key, at).await
    }
    async fn stuck(
        &self,
        provider: Provider,
        since: Option<OffsetDateTime>,
        older_than: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<EventRecord>, StoreError> {
        self.call("stuck")?;
        self.inner.stuck(provider, since, older_than, limit).await
    }

    async fn requeue(
        &self,
        key: &EventKey,
        seen: EventStatus,
        seen_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        self.call("requeue")?;
        self.inner.requeue(key, seen, seen_at, now).await
    }

    async fn failed(&self, provider: Provider, limit: usize) -> Result<Vec<EventRecord>, StoreError> {
        self.call("failed")?;
        self.inner.failed(provider, limit).await
    }

    async fn give_up(
        &self,
        key: &EventKey,
        seen: EventStatus,
        seen_at: OffsetDateTime,
        now: OffsetDateTime,
        reason: &str,
    ) -> Result<bool, StoreError> {
        self.call("give_up")?;
        self.inner.give_up(key, seen, seen_at, now, reason).await
    }

    async fn note_success(&self, provider: Provider, at: OffsetDateTime) -> Result<(), StoreError> {
        self.call("note_success")?;
        self.inner.note_success(provider, at).await
    }

    async fn last_successes(&self) -> Result<std::collections::BTreeMap<Provider, OffsetDateTime>, StoreError> {
        self.call("last_successes")?;
        self.inner.last_successes().await
    }

    async fn reopen(&self, key: &EventKey, now: OffsetDateTime) -> Result<bool, StoreError> {
        self.call("reopen")?;
        self.inner.reopen(key, now).await
    }

    async fn get(&self, key: &EventKey) -> Result<Option<EventRecord>, StoreError> {
        self.call("get")?;
        self.inner.get(key).await
    }
    async fn lease(
        &self,
        key: &EventKey,
        owner: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<LeaseOutcome, StoreError> {
        self.call("lease")?;
        self.inner.lease(key, owner, now, until).await
    }
    async fn release(&self, key: &EventKey, owner: &str, now: OffsetDateTime, error: &str) -> Result<(), StoreError> {
        self.call("release")?;
        self.inner.release(key, owner, now, error).await
    }
    async fn finish(
        &self,
        key: &EventKey,
        owner: &str,
        finish: &Finish,
        now: OffsetDateTime,
    ) -> Result<FinishOutcome, StoreError> {
        self.call("finish")?;
        self.inner.finish(key, owner, finish, now).await
    }
}

/// The ledger, counted by the DynamoDB request each call is: `GetItem`
/// for reads, `TransactWriteItems` for a commit, `Query` for entries.
#[derive(Debug)]
pub struct InstrumentedLedger {
    pub inner: Arc<dyn Ledger>,
    pub calls: Arc<Calls>,
}

impl InstrumentedLedger {
    pub fn new(inner: Arc<dyn Ledger>) -> Self {
        Self { inner, calls: Arc::default() }
    }

    fn call(&self, operation: &'static str) -> Result<(), StoreError> {
        self.calls.call(operation).map_err(StoreError::unavailable)
    }
}

#[async_trait]
impl Ledger for InstrumentedLedger {
    async fn commit(&self, effect: &Effect, owner: &str, now: OffsetDateTime) -> Result<CommitOutcome, StoreError> {
        self.call("TransactWriteItems")?;
        self.inner.commit(effect, owner, now).await
    }

    async fn account(&self, account: &AccountRef) -> Result<Option<AccountState>, StoreError> {
        self.call("GetItem")?;
        self.inner.account(account).await
    }

    async fn has_effect(&self, business_key: &str) -> Result<bool, StoreError> {
        self.call("GetItem")?;
        self.inner.has_effect(business_key).await
    }

    async fn payment(&self, reference: &PaymentRef) -> Result<Option<Payment>, StoreError> {
        self.call("GetItem")?;
        self.inner.payment(reference).await
    }

    async fn entries(&self, account: &AccountRef) -> Result<Vec<LedgerEntry>, StoreError> {
        self.call("Query")?;
        self.inner.entries(account).await
    }

    async fn accounts(&self, cursor: Option<String>, limit: usize) -> Result<AccountPage, StoreError> {
        self.call("Scan")?;
        self.inner.accounts(cursor, limit).await
    }

    async fn checkpoint(&self, name: &str) -> Result<Option<String>, StoreError> {
        self.call("GetItem")?;
        self.inner.checkpoint(name).await
    }

    async fn save_checkpoint(&self, name: &str, cursor: Option<&str>) -> Result<(), StoreError> {
        self.call(if cursor.is_some() { "PutItem" } else { "DeleteItem" })?;
        self.inner.save_checkpoint(name, cursor).await
    }

    async fn record_audit(&self, audit: &Audit) -> Result<(), StoreError> {
        self.call("PutItem")?;
        self.inner.record_audit(audit).await
    }

    async fn audits(&self, account: &AccountRef) -> Result<Vec<Audit>, StoreError> {
        self.call("Query")?;
        self.inner.audits(account).await
    }
}

#[derive(Debug)]
pub struct InstrumentedQueue {
    pub inner: Arc<dyn Queue>,
    pub calls: Arc<Calls>,
}

impl InstrumentedQueue {
    pub fn new(inner: Arc<dyn Queue>) -> Self {
        Self { inner, calls: Arc::default() }
    }

    fn call(&self, operation: &'static str) -> Result<(), QueueError> {
        self.calls.call(operation).map_err(QueueError::unavailable)
    }
}

#[async_trait]
impl Queue for InstrumentedQueue {
    async fn send(&self, body: &str) -> Result<String, QueueError> {
        self.call("send")?;
        self.inner.send(body).await
    }
    async fn receive(&self, max: u32, wait: Duration) -> Result<Vec<Delivery>, QueueError> {
        self.call("receive")?;
        self.inner.receive(max, wait).await
    }
    async fn delete(&self, receipt: &str) -> Result<(), QueueError> {
        self.call("delete")?;
        self.inner.delete(receipt).await
    }
    async fn counts(&self) -> Result<payhooks::ports::QueueDepth, QueueError> {
        self.call("counts")?;
        self.inner.counts().await
    }

    async fn change_visibility(&self, receipt: &str, hide_for: Duration) -> Result<(), QueueError> {
        self.call("change_visibility")?;
        self.inner.change_visibility(receipt, hide_for).await
    }
}

/// Effects that fail transiently a number of times, then succeed; or
/// always fail permanently for events of one type.
#[derive(Debug, Default)]
pub struct ScriptedEffects {
    pub transient_failures: AtomicU32,
    pub permanent_for_type: Option<String>,
    pub calls: AtomicU32,
    /// How long each call takes (a slow provider API, say).
    pub delay: std::time::Duration,
}

#[async_trait]
impl Effects for ScriptedEffects {
    async fn apply(&self, record: &EventRecord, _owner: &str) -> Result<Applied, EffectError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        if self.permanent_for_type.as_deref() == Some(record.event_type.as_str()) {
            return Err(EffectError::Permanent("no plan configured for this event".into()));
        }
        if self.transient_failures.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
            return Err(EffectError::Transient(Box::new(Injected)));
        }
        Ok(Applied::Done)
    }
}

/// Effects that keep every event they are handed, to see what the
/// processor acted on (after confirmation, say).
#[derive(Debug, Default)]
pub struct RecordingEffects {
    pub seen: Mutex<Vec<payhooks::event::DomainEvent>>,
}

#[async_trait]
impl Effects for RecordingEffects {
    async fn apply(&self, record: &EventRecord, _owner: &str) -> Result<Applied, EffectError> {
        self.seen.lock().expect("lock").push(record.event.clone());
        Ok(Applied::Done)
    }
}

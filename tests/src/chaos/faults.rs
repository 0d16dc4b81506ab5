//! Ports that fail on purpose, by seeded random choice: a call fails before
//! it happens, fails after it happened (the write landed but the caller sees
//! an error: what breaks naive idempotency, and what a process killed right
//! after a step looks like from outside), is throttled, or is delayed so
//! concurrent work interleaves differently.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use payhooks::event::{EventKey, EventRecord, EventStatus, NewEvent, Provider};
use payhooks::ports::{
    AccountPage, AccountRef, AccountState, Audit, Claim, CommitOutcome, Confirmation, Confirmer, Delivery, Effect,
    EffectError, EventStore, Finish, FinishOutcome, LeaseOutcome, Ledger, LedgerEntry, Payment, PaymentRef,
    ProvisionError, ProvisionRequest, Provisioner, Queue, QueueDepth, QueueError, StoreError,
};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use time::OffsetDateTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    Before,
    After,
    Throttle,
    Delay,
}

impl Fault {
    pub fn name(self) -> &'static str {
        match self {
            Fault::Before => "fail before",
            Fault::After => "fail after (write landed)",
            Fault::Throttle => "throttle",
            Fault::Delay => "delay",
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("injected: {0}")]
pub struct Injected(&'static str);

/// Decides each call's fault, from one seeded generator, and counts them.
#[derive(Debug)]
pub struct Injector {
    rng: Mutex<StdRng>,
    /// Chance that a call gets a failure (before, after or throttle).
    failure_rate: f64,
    /// Chance that a call that does not fail is delayed.
    delay_rate: f64,
    counts: Mutex<BTreeMap<Fault, u64>>,
    calls: Mutex<u64>,
    enabled: Mutex<bool>,
}

impl Injector {
    pub fn new(seed: u64, failure_rate: f64, delay_rate: f64) -> Self {
        Self {
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            failure_rate,
            delay_rate,
            counts: Mutex::default(),
            calls: Mutex::default(),
            enabled: Mutex::new(true),
        }
    }

    /// Turns faults off (for the final checks) or on.
    pub fn set_enabled(&self, enabled: bool) {
        *self.enabled.lock().unwrap_or_else(|e| e.into_inner()) = enabled;
    }

    pub fn counts(&self) -> BTreeMap<Fault, u64> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn calls(&self) -> u64 {
        *self.calls.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn decide(&self) -> Option<Fault> {
        *self.calls.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        if !*self.enabled.lock().unwrap_or_else(|e| e.into_inner()) {
            return None;
        }
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        let fault = if rng.random_bool(self.failure_rate) {
            Some(match rng.random_range(0..3) {
                0 => Fault::Before,
                1 => Fault::After,
                _ => Fault::Throttle,
            })
        } else if rng.random_bool(self.delay_rate) {
            Some(Fault::Delay)
        } else {
            None
        };
        if let Some(fault) = fault {
            *self.counts.lock().unwrap_or_else(|e| e.into_inner()).entry(fault).or_default() += 1;
        }
        fault
    }

    /// Runs `call` under this call's fault.
    async fn around<T, E>(
        &self,
        call: impl Future<Output = Result<T, E>>,
        error: impl Fn(Injected) -> E,
    ) -> Result<T, E> {
        match self.decide() {
            Some(Fault::Before) => Err(error(Injected("failed before the call"))),
            Some(Fault::Throttle) => Err(error(Injected("throttled"))),
            Some(Fault::After) => {
                let _landed = call.await;
                Err(error(Injected("failed after the call landed")))
            }
            Some(Fault::Delay) => {
                // Let other tasks run first: another interleaving.
                for _ in 0..3 {
                    tokio::task::yield_now().await;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
                call.await
            }
            None => call.await,
        }
    }
}

fn store_error(injected: Injected) -> StoreError {
    StoreError::unavailable(injected)
}

fn queue_error(injected: Injected) -> QueueError {
    QueueError::unavailable(injected)
}

#[derive(Debug)]
pub struct ChaosStore {
    pub inner: Arc<dyn EventStore>,
    pub faults: Arc<Injector>,
}

#[async_trait]
impl EventStore for ChaosStore {
    async fn claim(&self, event: &NewEvent) -> Result<Claim, StoreError> {
        self.faults.around(self.inner.claim(event), store_error).await
    }

    async fn mark_enqueued(&self, key: &EventKey, at: OffsetDateTime) -> Result<(), StoreError> {
        self.faults.around(self.inner.mark_enqueued(key, at), store_error).await
    }

    async fn stuck(
        &self,
        provider: Provider,
        since: Option<OffsetDateTime>,
        older_than: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<EventRecord>, StoreError> {
        self.faults.around(self.inner.stuck(provider, since, older_than, limit), store_error).await
    }

    async fn requeue(
        &self,
        key: &EventKey,
        seen: EventStatus,
        seen_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        self.faults.around(self.inner.requeue(key, seen, seen_at, now), store_error).await
    }

    async fn failed(&self, provider: Provider, limit: usize) -> Result<Vec<EventRecord>, StoreError> {
        self.faults.around(self.inner.failed(provider, limit), store_error).await
    }

    async fn give_up(
        &self,
        key: &EventKey,
        seen: EventStatus,
        seen_at: OffsetDateTime,
        now: OffsetDateTime,
        reason: &str,
    ) -> Result<bool, StoreError> {
        self.faults.around(self.inner.give_up(key, seen, seen_at, now, reason), store_error).await
    }

    async fn note_success(&self, provider: Provider, at: OffsetDateTime) -> Result<(), StoreError> {
        self.faults.around(self.inner.note_success(provider, at), store_error).await
    }

    async fn last_successes(&self) -> Result<BTreeMap<Provider, OffsetDateTime>, StoreError> {
        self.faults.around(self.inner.last_successes(), store_error).await
    }

    async fn reopen(&self, key: &EventKey, now: OffsetDateTime) -> Result<bool, StoreError> {
        self.faults.around(self.inner.reopen(key, now), store_error).await
    }

    async fn record_conflict(&self, key: &EventKey, at: OffsetDateTime) -> Result<(), StoreError> {
        self.faults.around(self.inner.record_conflict(key, at), store_error).await
    }

    async fn get(&self, key: &EventKey) -> Result<Option<EventRecord>, StoreError> {
        self.faults.around(self.inner.get(key), store_error).await
    }

    async fn lease(
        &self,
        key: &EventKey,
        owner: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<LeaseOutcome, StoreError> {
        self.faults.around(self.inner.lease(key, owner, now, until), store_error).await
    }

    async fn release(&self, key: &EventKey, owner: &str, now: OffsetDateTime, error: &str) -> Result<(), StoreError> {
        self.faults.around(self.inner.release(key, owner, now, error), store_error).await
    }

    async fn finish(
        &self,
        key: &EventKey,
        owner: &str,
        finish: &Finish,
        now: OffsetDateTime,
    ) -> Result<FinishOutcome, StoreError> {
        self.faults.around(self.inner.finish(key, owner, finish, now), store_error).await
    }
}

#[derive(Debug)]
pub struct ChaosLedger {
    pub inner: Arc<dyn Ledger>,
    pub faults: Arc<Injector>,
}

#[async_trait]
impl Ledger for ChaosLedger {
    async fn commit(&self, effect: &Effect, owner: &str, now: OffsetDateTime) -> Result<CommitOutcome, StoreError> {
        self.faults.around(self.inner.commit(effect, owner, now), store_error).await
    }

    async fn account(&self, account: &AccountRef) -> Result<Option<AccountState>, StoreError> {
        self.faults.around(self.inner.account(account), store_error).await
    }

    async fn has_effect(&self, business_key: &str) -> Result<bool, StoreError> {
        self.faults.around(self.inner.has_effect(business_key), store_error).await
    }

    async fn payment(&self, reference: &PaymentRef) -> Result<Option<Payment>, StoreError> {
        self.faults.around(self.inner.payment(reference), store_error).await
    }

    async fn entries(&self, account: &AccountRef) -> Result<Vec<LedgerEntry>, StoreError> {
        self.faults.around(self.inner.entries(account), store_error).await
    }

    async fn accounts(&self, cursor: Option<String>, limit: usize) -> Result<AccountPage, StoreError> {
        self.faults.around(self.inner.accounts(cursor, limit), store_error).await
    }

    async fn checkpoint(&self, name: &str) -> Result<Option<String>, StoreError> {
        self.faults.around(self.inner.checkpoint(name), store_error).await
    }

    async fn save_checkpoint(&self, name: &str, cursor: Option<&str>) -> Result<(), StoreError> {
        self.faults.around(self.inner.save_checkpoint(name, cursor), store_error).await
    }

    async fn record_audit(&self, audit: &Audit) -> Result<(), StoreError> {
        self.faults.around(self.inner.record_audit(audit), store_error).await
    }

    async fn audits(&self, account: &AccountRef) -> Result<Vec<Audit>, StoreError> {
        self.faults.around(self.inner.audits(account), store_error).await
    }
}

/// A queue that also duplicates some sends, as SQS standard queues do.
#[derive(Debug)]
pub struct ChaosQueue {
    pub inner: Arc<dyn Queue>,
    pub faults: Arc<Injector>,
    duplicate_rate: f64,
    rng: Mutex<StdRng>,
    duplicated: Mutex<u64>,
}

impl ChaosQueue {
    pub fn new(inner: Arc<dyn Queue>, faults: Arc<Injector>, seed: u64, duplicate_rate: f64) -> Self {
        Self {
            inner,
            faults,
            duplicate_rate,
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            duplicated: Mutex::default(),
        }
    }

    pub fn duplicated(&self) -> u64 {
        *self.duplicated.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl Queue for ChaosQueue {
    async fn send(&self, body: &str) -> Result<String, QueueError> {
        let id = self.faults.around(self.inner.send(body), queue_error).await?;
        let duplicate = self.rng.lock().unwrap_or_else(|e| e.into_inner()).random_bool(self.duplicate_rate);
        if duplicate && self.inner.send(body).await.is_ok() {
            *self.duplicated.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        }
        Ok(id)
    }

    async fn receive(&self, max: u32, wait: Duration) -> Result<Vec<Delivery>, QueueError> {
        self.faults.around(self.inner.receive(max, wait), queue_error).await
    }

    async fn delete(&self, receipt: &str) -> Result<(), QueueError> {
        self.faults.around(self.inner.delete(receipt), queue_error).await
    }

    async fn change_visibility(&self, receipt: &str, hide_for: Duration) -> Result<(), QueueError> {
        self.faults.around(self.inner.change_visibility(receipt, hide_for), queue_error).await
    }

    async fn counts(&self) -> Result<QueueDepth, QueueError> {
        self.inner.counts().await
    }
}

/// The downstream provisioner, failing like any port: an `after` fault is a
/// request the receiver got whose answer was lost, so the same idempotency
/// key comes again.
#[derive(Debug)]
pub struct ChaosProvisioner {
    pub inner: Arc<dyn Provisioner>,
    pub faults: Arc<Injector>,
}

#[async_trait]
impl Provisioner for ChaosProvisioner {
    async fn send(&self, request: &ProvisionRequest) -> Result<(), ProvisionError> {
        self.faults.around(self.inner.send(request), |injected| ProvisionError::Unreachable(Box::new(injected))).await
    }
}

/// The provider's API as confirmation reads it, failing like any port.
#[derive(Debug)]
pub struct ChaosConfirmer {
    pub inner: Arc<dyn Confirmer>,
    pub faults: Arc<Injector>,
}

#[async_trait]
impl Confirmer for ChaosConfirmer {
    async fn confirm(&self, record: &EventRecord) -> Result<Confirmation, EffectError> {
        self.faults.around(self.inner.confirm(record), |injected| EffectError::Transient(Box::new(injected))).await
    }
}

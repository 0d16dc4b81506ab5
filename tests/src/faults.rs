//! One wrapper per port that counts every call by operation and fails
//! calls on purpose, driven by one `Faults`:
//!
//! - `Faults::counting()` fails only what a test scripts (`fail`), to show
//!   that a failed put or send answers 5xx and strands nothing, and to count
//!   the AWS calls each path makes;
//! - `Faults::seeded(…)` also fails calls by seeded random choice, as the
//!   fault-injection run does: a call fails before it happens, fails after
//!   it happened (the write landed but the caller sees an error: what breaks
//!   naive idempotency, and what a process killed right after a step looks
//!   like from outside), is throttled, or is delayed so concurrent work
//!   interleaves differently.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use payhooks::event::{EventKey, EventRecord, EventStatus, NewEvent, Provider};
use payhooks::ports::{
    AccountPage, AccountRef, AccountState, Applied, Audit, Audits, Balances, Claim, CommitOutcome, Confirmation,
    Confirmer, Delivery, Effect, EffectError, Effects, Enqueueing, EventRecords, EventStore, Finish, FinishOutcome,
    Intake, LeaseOutcome, Leases, Ledger, LedgerEntry, Payment, PaymentRef, Postings, ProvisionError, ProvisionRequest,
    Provisioner, Queue, QueueDepth, QueueError, Repairs, StoreError,
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
    /// During a delay, the clock the pipelines read moved on (up to a
    /// lease): leases expire in the middle of work.
    ClockJump,
}

impl Fault {
    pub fn name(self) -> &'static str {
        match self {
            Fault::Before => "fail before",
            Fault::After => "fail after (write landed)",
            Fault::Throttle => "throttle",
            Fault::Delay => "delay",
            Fault::ClockJump => "clock moved on mid-call",
        }
    }
}

/// A clock that delayed calls move forward.
#[derive(Debug)]
struct Jumps {
    clock: Arc<payhooks::clock::ManualClock>,
    rate: f64,
    max: Duration,
}

#[derive(Debug, thiserror::Error)]
#[error("injected failure: {0}")]
pub struct Injected(&'static str);

/// Random faults: each call fails with `failure_rate` (before, after or
/// throttled, alike), else is delayed with `delay_rate`.
#[derive(Debug)]
struct Random {
    rng: Mutex<StdRng>,
    failure_rate: f64,
    delay_rate: f64,
}

/// Decides each call's fault and counts calls and faults.
#[derive(Debug)]
pub struct Faults {
    made: Mutex<BTreeMap<&'static str, u32>>,
    scripted: Mutex<BTreeMap<&'static str, u32>>,
    random: Option<Random>,
    injected: Mutex<BTreeMap<Fault, u64>>,
    enabled: AtomicBool,
    jumps: Option<Jumps>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Default for Faults {
    fn default() -> Self {
        Self::counting()
    }
}

impl Faults {
    /// Counts calls; fails only the ones `fail` scripts.
    pub fn counting() -> Self {
        Self {
            made: Mutex::default(),
            scripted: Mutex::default(),
            random: None,
            injected: Mutex::default(),
            enabled: AtomicBool::new(true),
            jumps: None,
        }
    }

    /// A delayed call moves `clock` forward by up to `max` with `rate`.
    pub fn moving(mut self, clock: Arc<payhooks::clock::ManualClock>, rate: f64, max: Duration) -> Self {
        self.jumps = Some(Jumps { clock, rate, max });
        self
    }

    /// Whether a delayed call moves the clock, and by how much.
    fn jump(&self) -> Option<(&Jumps, time::Duration)> {
        let jumps = self.jumps.as_ref()?;
        let random = self.random.as_ref()?;
        let mut rng = lock(&random.rng);
        if !rng.random_bool(jumps.rate) {
            return None;
        }
        let millis = rng.random_range(1..=jumps.max.as_millis().max(1) as i64);
        Some((jumps, time::Duration::milliseconds(millis)))
    }

    /// Also fails and delays calls at random, reproducibly from `seed`.
    pub fn seeded(seed: u64, failure_rate: f64, delay_rate: f64) -> Self {
        let random = Random { rng: Mutex::new(StdRng::seed_from_u64(seed)), failure_rate, delay_rate };
        Self { random: Some(random), ..Self::counting() }
    }

    /// Makes the next `times` calls of `operation` fail before they happen.
    pub fn fail(&self, operation: &'static str, times: u32) {
        lock(&self.scripted).insert(operation, times);
    }

    /// Turns faults off (for the final checks) or on; calls are still counted.
    pub fn set_enabled(&self, enabled: bool) {
        self.enabled.store(enabled, Ordering::SeqCst);
    }

    pub fn count(&self, operation: &str) -> u32 {
        lock(&self.made).get(operation).copied().unwrap_or(0)
    }

    pub fn total(&self) -> u32 {
        lock(&self.made).values().sum()
    }

    pub fn reset(&self) {
        lock(&self.made).clear();
    }

    /// The faults injected so far, by kind.
    pub fn injected(&self) -> BTreeMap<Fault, u64> {
        lock(&self.injected).clone()
    }

    fn decide(&self, operation: &'static str) -> Option<Fault> {
        *lock(&self.made).entry(operation).or_default() += 1;
        if !self.enabled.load(Ordering::SeqCst) {
            return None;
        }
        let scripted = match lock(&self.scripted).get_mut(operation) {
            Some(left) if *left > 0 => {
                *left -= 1;
                true
            }
            _ => false,
        };
        let fault = if scripted { Some(Fault::Before) } else { self.random.as_ref().and_then(Random::decide) };
        if let Some(fault) = fault {
            *lock(&self.injected).entry(fault).or_default() += 1;
        }
        fault
    }

    /// Runs `call`, named `operation`, under its fault.
    async fn around<T, E>(
        &self,
        operation: &'static str,
        call: impl Future<Output = Result<T, E>>,
        error: impl Fn(Injected) -> E,
    ) -> Result<T, E> {
        match self.decide(operation) {
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
                if let Some((jumps, by)) = self.jump() {
                    jumps.clock.advance(by);
                    *lock(&self.injected).entry(Fault::ClockJump).or_default() += 1;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
                call.await
            }
            // Never decided: counted when a delay moves the clock.
            Some(Fault::ClockJump) | None => call.await,
        }
    }
}

impl Random {
    fn decide(&self) -> Option<Fault> {
        let mut rng = lock(&self.rng);
        if rng.random_bool(self.failure_rate) {
            Some(match rng.random_range(0..3) {
                0 => Fault::Before,
                1 => Fault::After,
                _ => Fault::Throttle,
            })
        } else if rng.random_bool(self.delay_rate) {
            Some(Fault::Delay)
        } else {
            None
        }
    }
}

fn store_error(injected: Injected) -> StoreError {
    StoreError::unavailable(injected)
}

fn queue_error(injected: Injected) -> QueueError {
    QueueError::unavailable(injected)
}

/// The event store; each operation counted by its method's name.
#[derive(Debug)]
pub struct FaultyStore {
    pub inner: Arc<dyn EventStore>,
    pub faults: Arc<Faults>,
}

impl FaultyStore {
    /// Counting, with faults only where a test scripts them.
    pub fn new(inner: Arc<dyn EventStore>) -> Self {
        Self::with(inner, Arc::default())
    }

    pub fn with(inner: Arc<dyn EventStore>, faults: Arc<Faults>) -> Self {
        Self { inner, faults }
    }
}

#[async_trait]
impl EventRecords for FaultyStore {
    async fn get(&self, key: &EventKey) -> Result<Option<EventRecord>, StoreError> {
        self.faults.around("get", self.inner.get(key), store_error).await
    }
}

#[async_trait]
impl Enqueueing for FaultyStore {
    async fn mark_enqueued(&self, key: &EventKey, at: OffsetDateTime) -> Result<(), StoreError> {
        self.faults.around("mark_enqueued", self.inner.mark_enqueued(key, at), store_error).await
    }

    async fn requeue(
        &self,
        key: &EventKey,
        seen: EventStatus,
        seen_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        self.faults.around("requeue", self.inner.requeue(key, seen, seen_at, now), store_error).await
    }
}

#[async_trait]
impl Intake for FaultyStore {
    async fn claim(&self, event: &NewEvent) -> Result<Claim, StoreError> {
        self.faults.around("claim", self.inner.claim(event), store_error).await
    }

    async fn record_conflict(&self, key: &EventKey, at: OffsetDateTime) -> Result<(), StoreError> {
        self.faults.around("record_conflict", self.inner.record_conflict(key, at), store_error).await
    }
}

#[async_trait]
impl Leases for FaultyStore {
    async fn lease(
        &self,
        key: &EventKey,
        owner: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<LeaseOutcome, StoreError> {
        self.faults.around("lease", self.inner.lease(key, owner, now, until), store_error).await
    }

    async fn release(&self, key: &EventKey, owner: &str, now: OffsetDateTime, error: &str) -> Result<(), StoreError> {
        self.faults.around("release", self.inner.release(key, owner, now, error), store_error).await
    }

    async fn finish(
        &self,
        key: &EventKey,
        owner: &str,
        finish: &Finish,
        now: OffsetDateTime,
    ) -> Result<FinishOutcome, StoreError> {
        self.faults.around("finish", self.inner.finish(key, owner, finish, now), store_error).await
    }

    async fn note_success(&self, provider: Provider, at: OffsetDateTime) -> Result<(), StoreError> {
        self.faults.around("note_success", self.inner.note_success(provider, at), store_error).await
    }
}

#[async_trait]
impl Repairs for FaultyStore {
    async fn stuck(
        &self,
        provider: Provider,
        since: Option<OffsetDateTime>,
        older_than: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<EventRecord>, StoreError> {
        self.faults.around("stuck", self.inner.stuck(provider, since, older_than, limit), store_error).await
    }

    async fn failed(&self, provider: Provider, limit: usize) -> Result<Vec<EventRecord>, StoreError> {
        self.faults.around("failed", self.inner.failed(provider, limit), store_error).await
    }

    async fn give_up(
        &self,
        key: &EventKey,
        seen: EventStatus,
        seen_at: OffsetDateTime,
        now: OffsetDateTime,
        reason: &str,
    ) -> Result<bool, StoreError> {
        self.faults.around("give_up", self.inner.give_up(key, seen, seen_at, now, reason), store_error).await
    }

    async fn reopen(&self, key: &EventKey, now: OffsetDateTime) -> Result<bool, StoreError> {
        self.faults.around("reopen", self.inner.reopen(key, now), store_error).await
    }

    async fn last_successes(&self) -> Result<BTreeMap<Provider, OffsetDateTime>, StoreError> {
        self.faults.around("last_successes", self.inner.last_successes(), store_error).await
    }
}

/// The ledger, each call counted as the DynamoDB request it is: `GetItem`
/// for reads, `TransactWriteItems` for a commit, `Query` for entries.
#[derive(Debug)]
pub struct FaultyLedger {
    pub inner: Arc<dyn Ledger>,
    pub faults: Arc<Faults>,
}

impl FaultyLedger {
    pub fn new(inner: Arc<dyn Ledger>) -> Self {
        Self::with(inner, Arc::default())
    }

    pub fn with(inner: Arc<dyn Ledger>, faults: Arc<Faults>) -> Self {
        Self { inner, faults }
    }
}

#[async_trait]
impl Balances for FaultyLedger {
    async fn account(&self, account: &AccountRef) -> Result<Option<AccountState>, StoreError> {
        self.faults.around("GetItem", self.inner.account(account), store_error).await
    }

    async fn entries(&self, account: &AccountRef) -> Result<Vec<LedgerEntry>, StoreError> {
        self.faults.around("Query", self.inner.entries(account), store_error).await
    }
}

#[async_trait]
impl Postings for FaultyLedger {
    async fn commit(&self, effect: &Effect, owner: &str, now: OffsetDateTime) -> Result<CommitOutcome, StoreError> {
        self.faults.around("TransactWriteItems", self.inner.commit(effect, owner, now), store_error).await
    }

    async fn has_effect(&self, business_key: &str) -> Result<bool, StoreError> {
        self.faults.around("GetItem", self.inner.has_effect(business_key), store_error).await
    }

    async fn payment(&self, reference: &PaymentRef) -> Result<Option<Payment>, StoreError> {
        self.faults.around("GetItem", self.inner.payment(reference), store_error).await
    }
}

#[async_trait]
impl Audits for FaultyLedger {
    async fn accounts(&self, cursor: Option<String>, limit: usize) -> Result<AccountPage, StoreError> {
        self.faults.around("Scan", self.inner.accounts(cursor, limit), store_error).await
    }

    async fn checkpoint(&self, name: &str) -> Result<Option<String>, StoreError> {
        self.faults.around("GetItem", self.inner.checkpoint(name), store_error).await
    }

    async fn save_checkpoint(&self, name: &str, cursor: Option<&str>) -> Result<(), StoreError> {
        let operation = if cursor.is_some() { "PutItem" } else { "DeleteItem" };
        self.faults.around(operation, self.inner.save_checkpoint(name, cursor), store_error).await
    }

    async fn record_audit(&self, audit: &Audit) -> Result<(), StoreError> {
        self.faults.around("PutItem", self.inner.record_audit(audit), store_error).await
    }

    async fn audits(&self, account: &AccountRef) -> Result<Vec<Audit>, StoreError> {
        self.faults.around("Query", self.inner.audits(account), store_error).await
    }
}

/// A queue; with `duplicating`, it also sends some messages twice, as SQS
/// standard queues do.
#[derive(Debug)]
pub struct FaultyQueue {
    pub inner: Arc<dyn Queue>,
    pub faults: Arc<Faults>,
    duplicates: Option<(Mutex<StdRng>, f64)>,
    duplicated: AtomicU32,
}

impl FaultyQueue {
    pub fn new(inner: Arc<dyn Queue>) -> Self {
        Self::with(inner, Arc::default())
    }

    pub fn with(inner: Arc<dyn Queue>, faults: Arc<Faults>) -> Self {
        Self { inner, faults, duplicates: None, duplicated: AtomicU32::new(0) }
    }

    /// Sends a share `rate` of messages twice, chosen from `seed`.
    pub fn duplicating(mut self, seed: u64, rate: f64) -> Self {
        self.duplicates = Some((Mutex::new(StdRng::seed_from_u64(seed)), rate));
        self
    }

    pub fn duplicated(&self) -> u64 {
        u64::from(self.duplicated.load(Ordering::SeqCst))
    }
}

#[async_trait]
impl Queue for FaultyQueue {
    async fn send(&self, body: &str) -> Result<String, QueueError> {
        let id = self.faults.around("send", self.inner.send(body), queue_error).await?;
        let duplicate = self.duplicates.as_ref().is_some_and(|(rng, rate)| lock(rng).random_bool(*rate));
        if duplicate && self.inner.send(body).await.is_ok() {
            self.duplicated.fetch_add(1, Ordering::SeqCst);
        }
        Ok(id)
    }

    async fn receive(&self, max: u32, wait: Duration) -> Result<Vec<Delivery>, QueueError> {
        self.faults.around("receive", self.inner.receive(max, wait), queue_error).await
    }

    async fn delete(&self, receipt: &str) -> Result<(), QueueError> {
        self.faults.around("delete", self.inner.delete(receipt), queue_error).await
    }

    async fn change_visibility(&self, receipt: &str, hide_for: Duration) -> Result<(), QueueError> {
        self.faults.around("change_visibility", self.inner.change_visibility(receipt, hide_for), queue_error).await
    }

    async fn counts(&self) -> Result<QueueDepth, QueueError> {
        self.faults.around("counts", self.inner.counts(), queue_error).await
    }
}

/// The downstream provisioner: an `after` fault is a request the receiver
/// got whose answer was lost, so the same idempotency key comes again.
#[derive(Debug)]
pub struct FaultyProvisioner {
    pub inner: Arc<dyn Provisioner>,
    pub faults: Arc<Faults>,
}

#[async_trait]
impl Provisioner for FaultyProvisioner {
    async fn send(&self, request: &ProvisionRequest) -> Result<(), ProvisionError> {
        let unreachable = |injected| ProvisionError::Unreachable(Box::new(injected));
        self.faults.around("provision", self.inner.send(request), unreachable).await
    }
}

/// The provider's API as confirmation reads it.
#[derive(Debug)]
pub struct FaultyConfirmer {
    pub inner: Arc<dyn Confirmer>,
    pub faults: Arc<Faults>,
}

#[async_trait]
impl Confirmer for FaultyConfirmer {
    async fn confirm(&self, record: &EventRecord) -> Result<Confirmation, EffectError> {
        let transient = |injected| EffectError::Transient(Box::new(injected));
        self.faults.around("confirm", self.inner.confirm(record), transient).await
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
            return Err(EffectError::Transient(Box::new(Injected("a scripted transient failure"))));
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
        lock(&self.seen).push(record.event.clone());
        Ok(Applied::Done)
    }
}

//! The event store in a map behind a mutex. Each method holds the lock for
//! its whole check-and-write, which gives it DynamoDB's per-item atomicity.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::event::{EventKey, EventRecord, EventStatus, NewEvent, Provider};
use crate::ports::event_store::{
    Claim, DEFAULT_RETENTION, Enqueueing, EventRecords, Finish, FinishOutcome, Intake, LeaseOutcome, Leases, Repairs,
    StoreError,
};
use crate::ports::ledger::{
    AccountPage, AccountRef, AccountState, Audit, Audits, Balances, Change, CommitOutcome, Effect, LedgerEntry,
    Payment, PaymentRef, Postings,
};
use crate::ports::lock::Lock;

/// Events, effects, accounts, ledger entries and locks: one state, so that a
/// ledger commit and the event's completion happen under one lock, as they
/// happen in one transaction in DynamoDB.
#[derive(Debug, Default)]
struct State {
    records: HashMap<EventKey, EventRecord>,
    effects: HashSet<String>,
    accounts: BTreeMap<AccountRef, AccountState>,
    entries: Vec<(AccountRef, LedgerEntry)>,
    payments: HashMap<PaymentRef, Payment>,
    audits: Vec<Audit>,
    last_successes: BTreeMap<Provider, OffsetDateTime>,
    /// Lock name to its holder and the end of the holder's lease.
    locks: HashMap<String, (String, OffsetDateTime)>,
    checkpoints: HashMap<String, String>,
}

#[derive(Debug)]
pub struct MemoryEventStore {
    state: Mutex<State>,
    /// How long a record is kept once it may expire.
    retention: std::time::Duration,
}

impl Default for MemoryEventStore {
    fn default() -> Self {
        Self { state: Mutex::default(), retention: DEFAULT_RETENTION }
    }
}

impl MemoryEventStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps final records this long after they finish (the table's TTL).
    pub fn with_retention(mut self, retention: std::time::Duration) -> Self {
        self.retention = retention;
        self
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves each record whole
        // (every write replaces fields of one record), so keep serving.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every account with its state, for reconciliation checks and tests.
    pub fn accounts(&self) -> Vec<(AccountRef, AccountState)> {
        self.state().accounts.iter().map(|(a, s)| (a.clone(), s.clone())).collect()
    }

    /// Every record, for the local server's listings and for tests.
    /// Changes a balance without a ledger entry, as a bug or a hand edit
    /// would: what reconciliation exists to catch (for its tests).
    pub fn corrupt_balance(&self, account: &AccountRef, delta: i64) {
        self.state().accounts.entry(account.clone()).or_default().balance += delta;
    }

    pub fn all(&self) -> Vec<EventRecord> {
        let mut all: Vec<_> = self.state().records.values().cloned().collect();
        all.sort_by_key(|r| r.received_at);
        all
    }
}

#[async_trait]
impl EventRecords for MemoryEventStore {
    async fn get(&self, key: &EventKey) -> Result<Option<EventRecord>, StoreError> {
        Ok(self.state().records.get(key).cloned())
    }
}

#[async_trait]
impl Enqueueing for MemoryEventStore {
    async fn mark_enqueued(&self, key: &EventKey, at: OffsetDateTime) -> Result<(), StoreError> {
        if let Some(record) = self.state().records.get_mut(key)
            && record.status == EventStatus::Received
        {
            record.status = EventStatus::Enqueued;
            record.enqueued_at = Some(at);
            record.updated_at = at;
        }
        Ok(())
    }

    async fn requeue(
        &self,
        key: &EventKey,
        seen_status: EventStatus,
        seen_updated_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut state = self.state();
        let Some(record) = state.records.get_mut(key) else {
            return Ok(false);
        };
        let lease_expired = record.lease_until.is_none_or(|until| until < now);
        if record.status != seen_status
            || record.status.is_final()
            || record.updated_at != seen_updated_at
            || (record.status == EventStatus::Processing && !lease_expired)
        {
            return Ok(false);
        }
        record.updated_at = now;
        record.expires_at = None;
        Ok(true)
    }
}

#[async_trait]
impl Intake for MemoryEventStore {
    async fn claim(&self, event: &NewEvent) -> Result<Claim, StoreError> {
        let mut state = self.state();
        let records = &mut state.records;
        if let Some(existing) = records.get(&event.key) {
            return Ok(Claim::Existing(Box::new(existing.clone())));
        }
        records.insert(event.key.clone(), EventRecord::from_new(event));
        Ok(Claim::Created)
    }

    async fn record_conflict(&self, key: &EventKey, at: OffsetDateTime) -> Result<(), StoreError> {
        if let Some(record) = self.state().records.get_mut(key) {
            record.conflicts += 1;
            record.updated_at = at;
        }
        Ok(())
    }
}

#[async_trait]
impl Leases for MemoryEventStore {
    async fn lease(
        &self,
        key: &EventKey,
        owner: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<LeaseOutcome, StoreError> {
        let mut state = self.state();
        let records = &mut state.records;
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
        record.expires_at = None;
        Ok(LeaseOutcome::Acquired(Box::new(record.clone())))
    }

    async fn release(&self, key: &EventKey, owner: &str, now: OffsetDateTime, error: &str) -> Result<(), StoreError> {
        if let Some(record) = self.state().records.get_mut(key)
            && record.status == EventStatus::Processing
            && record.lease_owner.as_deref() == Some(owner)
        {
            record.status = EventStatus::Enqueued;
            record.lease_owner = None;
            record.lease_until = None;
            record.last_error = Some(error.to_owned());
            record.updated_at = now;
            record.expires_at = None;
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
        let mut state = self.state();
        let records = &mut state.records;
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
        record.expires_at = finish.status().may_expire().then(|| now + self.retention);
        if let Finish::Failed { reason } = finish {
            record.last_error = Some(reason.clone());
        }
        Ok(FinishOutcome::Finished)
    }

    async fn note_success(&self, provider: Provider, at: OffsetDateTime) -> Result<(), StoreError> {
        let mut state = self.state();
        let last = state.last_successes.entry(provider).or_insert(at);
        *last = (*last).max(at);
        Ok(())
    }
}

#[async_trait]
impl Repairs for MemoryEventStore {
    async fn stuck(
        &self,
        provider: Provider,
        since: Option<OffsetDateTime>,
        older_than: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<EventRecord>, StoreError> {
        let mut stuck: Vec<EventRecord> = self
            .state()
            .records
            .values()
            .filter(|r| r.provider == provider && !r.status.is_final() && r.updated_at < older_than)
            .filter(|r| since.is_none_or(|since| r.updated_at >= since))
            .cloned()
            .collect();
        stuck.sort_by_key(|r| r.updated_at);
        stuck.truncate(limit);
        Ok(stuck)
    }

    async fn failed(&self, provider: Provider, limit: usize) -> Result<Vec<EventRecord>, StoreError> {
        let mut failed: Vec<EventRecord> = self
            .state()
            .records
            .values()
            .filter(|r| r.provider == provider && r.status == EventStatus::Failed)
            .cloned()
            .collect();
        failed.sort_by_key(|r| r.updated_at);
        failed.truncate(limit);
        Ok(failed)
    }

    async fn give_up(
        &self,
        key: &EventKey,
        seen_status: EventStatus,
        seen_updated_at: OffsetDateTime,
        now: OffsetDateTime,
        reason: &str,
    ) -> Result<bool, StoreError> {
        let mut state = self.state();
        let Some(record) = state.records.get_mut(key) else {
            return Ok(false);
        };
        let lease_expired = record.lease_until.is_none_or(|until| until < now);
        if record.status != seen_status
            || record.status.is_final()
            || record.updated_at != seen_updated_at
            || !lease_expired
        {
            return Ok(false);
        }
        record.status = EventStatus::Failed;
        record.lease_owner = None;
        record.lease_until = None;
        record.last_error = Some(reason.to_owned());
        record.finished_at = Some(now);
        record.updated_at = now;
        record.expires_at = None;
        Ok(true)
    }

    async fn reopen(&self, key: &EventKey, now: OffsetDateTime) -> Result<bool, StoreError> {
        let mut state = self.state();
        match state.records.get_mut(key) {
            Some(record) if record.status == EventStatus::Failed => {
                record.status = EventStatus::Enqueued;
                record.finished_at = None;
                record.updated_at = now;
                record.expires_at = None;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn last_successes(&self) -> Result<BTreeMap<Provider, OffsetDateTime>, StoreError> {
        Ok(self.state().last_successes.clone())
    }
}

#[async_trait]
impl Lock for MemoryEventStore {
    async fn acquire(
        &self,
        name: &str,
        owner: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut state = self.state();
        match state.locks.get(name) {
            Some((_, lease_until)) if *lease_until >= now => Ok(false),
            _ => {
                state.locks.insert(name.to_owned(), (owner.to_owned(), until));
                Ok(true)
            }
        }
    }

    async fn release(&self, name: &str, owner: &str) -> Result<(), StoreError> {
        let mut state = self.state();
        if state.locks.get(name).is_some_and(|(holder, _)| holder == owner) {
            state.locks.remove(name);
        }
        Ok(())
    }
}

/// Completes `record` as the ledger commit does.
fn complete(record: &mut EventRecord, now: OffsetDateTime, retention: std::time::Duration) {
    record.status = EventStatus::Completed;
    record.lease_owner = None;
    record.lease_until = None;
    record.finished_at = Some(now);
    record.updated_at = now;
    record.expires_at = Some(now + retention);
}

#[async_trait]
impl Balances for MemoryEventStore {
    async fn account(&self, account: &AccountRef) -> Result<Option<AccountState>, StoreError> {
        Ok(self.state().accounts.get(account).cloned())
    }

    async fn entries(&self, account: &AccountRef) -> Result<Vec<LedgerEntry>, StoreError> {
        let mut entries: Vec<LedgerEntry> =
            self.state().entries.iter().filter(|(a, _)| a == account).map(|(_, e)| e.clone()).collect();
        entries.sort_by(|a, b| (b.at, &b.business_key).cmp(&(a.at, &a.business_key)));
        Ok(entries)
    }
}

#[async_trait]
impl Postings for MemoryEventStore {
    async fn commit(&self, effect: &Effect, owner: &str, now: OffsetDateTime) -> Result<CommitOutcome, StoreError> {
        let retention = self.retention;
        let mut state = self.state();
        let State { records, effects, accounts, entries, payments, .. } = &mut *state;
        let Some(record) = records
            .get_mut(&effect.event)
            .filter(|r| r.status == EventStatus::Processing && r.lease_owner.as_deref() == Some(owner))
        else {
            return Ok(CommitOutcome::LeaseLost);
        };
        if std::iter::once(&effect.business_key).chain(&effect.also_keys).any(|key| effects.contains(key)) {
            return Ok(CommitOutcome::DuplicateEffect);
        }
        let current = effect.account.as_ref().and_then(|a| accounts.get(a));
        if let Change::Entitlement(new) = &effect.change {
            let stored = current.and_then(|a| a.subscriptions.get(new.key()));
            // Changed since read, stale or not: decided again, as on DynamoDB.
            if effect.basis.as_ref().is_some_and(|basis| !basis.holds(stored)) {
                return Ok(CommitOutcome::Raced);
            }
            if stored.is_some_and(|e| !new.supersedes(e)) {
                return Ok(CommitOutcome::Stale);
            }
        }
        let version = |reference: &PaymentRef| payments.get(reference).map_or(0, |p| p.version);
        let balance = current.map_or(0, |a| a.balance);
        if effect.payments.iter().any(|w| version(&w.reference) != w.read_version)
            || effect.guard.is_some_and(|guard| !guard.holds(balance))
        {
            return Ok(CommitOutcome::Raced);
        }
        effects.insert(effect.business_key.clone());
        effects.extend(effect.also_keys.iter().cloned());
        for write in &effect.payments {
            let payment = Payment { version: write.read_version + 1, ..write.payment.clone() };
            payments.insert(write.reference.clone(), payment);
        }
        if let Some(account_ref) = &effect.account {
            let account = accounts.entry(account_ref.clone()).or_default();
            match &effect.change {
                Change::Credit(amount) => account.balance += amount,
                Change::Trial(credits) => {
                    account.balance += credits;
                    account.trial_started_at = Some(now);
                }
                Change::PaymentFailed => account.failed_payments += 1,
                Change::Entitlement(new) => account.entitle(new.clone()),
            }
            account.flags.extend(effect.flags.iter().cloned());
            account.entries += 1;
            entries.push((
                account_ref.clone(),
                LedgerEntry {
                    business_key: effect.business_key.clone(),
                    delta: effect.change.delta(),
                    event: effect.event.clone(),
                    at: now,
                },
            ));
        }
        if effect.completes_event {
            complete(record, now, retention);
        }
        Ok(CommitOutcome::Applied)
    }

    async fn has_effect(&self, business_key: &str) -> Result<bool, StoreError> {
        Ok(self.state().effects.contains(business_key))
    }

    async fn payment(&self, reference: &PaymentRef) -> Result<Option<Payment>, StoreError> {
        Ok(self.state().payments.get(reference).cloned())
    }
}

#[async_trait]
impl Audits for MemoryEventStore {
    async fn accounts(&self, cursor: Option<String>, limit: usize) -> Result<AccountPage, StoreError> {
        // Paged by storage key, as DynamoDB's scan is by its own order.
        let mut keys: Vec<AccountRef> = self.state().accounts.keys().cloned().collect();
        keys.sort_by_key(AccountRef::storage_key);
        keys.retain(|a| cursor.as_deref().is_none_or(|c| a.storage_key().as_str() > c));
        let more = keys.len() > limit;
        keys.truncate(limit);
        let cursor = more.then(|| keys.last().map(AccountRef::storage_key)).flatten();
        Ok(AccountPage { accounts: keys, cursor })
    }

    async fn checkpoint(&self, name: &str) -> Result<Option<String>, StoreError> {
        Ok(self.state().checkpoints.get(name).cloned())
    }

    async fn save_checkpoint(&self, name: &str, cursor: Option<&str>) -> Result<(), StoreError> {
        let checkpoints = &mut self.state().checkpoints;
        match cursor {
            Some(cursor) => checkpoints.insert(name.to_owned(), cursor.to_owned()),
            None => checkpoints.remove(name),
        };
        Ok(())
    }

    async fn record_audit(&self, audit: &Audit) -> Result<(), StoreError> {
        self.state().audits.push(audit.clone());
        Ok(())
    }

    async fn audits(&self, account: &AccountRef) -> Result<Vec<Audit>, StoreError> {
        let mut audits: Vec<Audit> = self.state().audits.iter().filter(|a| &a.account == account).cloned().collect();
        audits.sort_by_key(|a| std::cmp::Reverse(a.at));
        Ok(audits)
    }
}

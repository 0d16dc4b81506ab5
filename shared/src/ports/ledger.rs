//! Accounts, their balances and the ledger of effects. Every effect has a
//! business key (`grant:{provider}:{account}:{period}`, `trial:{provider}:
//! {account}`, …); committing it writes, in one transaction, the key (only
//! if new), the account's change (an atomic ADD, never read-modify-write), a
//! ledger entry, and the event's completion (only while the worker holds its
//! lease). Two deliveries, or two different events meaning one fact, meet at
//! the business key: one effect (I4, I5).

use async_trait::async_trait;
use serde::Serialize;
use time::OffsetDateTime;

use crate::event::{EventKey, Provider};
use crate::ports::StoreError;

/// An account, scoped by provider so two providers' customers never collide.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct AccountRef {
    pub provider: Provider,
    pub account: String,
}

impl AccountRef {
    pub fn new(provider: Provider, account: impl Into<String>) -> Self {
        Self {
            provider,
            account: account.into(),
        }
    }

    pub fn storage_key(&self) -> String {
        format!("account#{}#{}", self.provider, self.account)
    }
}

/// What an effect changes on its account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Credits added (positive) or clawed back (negative).
    Credit(i64),
    /// The account's one trial.
    Trial,
    /// A failed payment, counted on the account; no balance change.
    PaymentFailed,
}

impl Change {
    pub fn delta(self) -> i64 {
        match self {
            Change::Credit(amount) => amount,
            Change::Trial | Change::PaymentFailed => 0,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Effect {
    pub business_key: String,
    pub account: AccountRef,
    pub change: Change,
    /// The event that causes it, completed in the same transaction.
    pub event: EventKey,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommitOutcome {
    /// The effect and the event's completion are in.
    Applied,
    /// The business key was already there: nothing changed; the event is
    /// still to be finished.
    DuplicateEffect,
    /// The worker no longer holds the event's lease: nothing changed.
    LeaseLost,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AccountState {
    pub balance: i64,
    #[serde(with = "time::serde::rfc3339::option")]
    pub trial_started_at: Option<OffsetDateTime>,
    pub failed_payments: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LedgerEntry {
    pub business_key: String,
    pub delta: i64,
    pub event: EventKey,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

#[async_trait]
pub trait Ledger: Send + Sync + std::fmt::Debug {
    /// Commits `effect` and completes its event, atomically, while `owner`
    /// holds the event's lease.
    async fn commit(&self, effect: &Effect, owner: &str, now: OffsetDateTime) -> Result<CommitOutcome, StoreError>;

    async fn account(&self, account: &AccountRef) -> Result<Option<AccountState>, StoreError>;

    /// The account's entries, newest first.
    async fn entries(&self, account: &AccountRef) -> Result<Vec<LedgerEntry>, StoreError>;
}

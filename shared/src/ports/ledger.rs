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
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// Credits added (positive) or clawed back (negative).
    Credit(i64),
    /// The account's one trial.
    Trial,
    /// A failed payment, counted on the account; no balance change.
    PaymentFailed,
    /// The account's entitlement, set only by an event newer than the one
    /// that set it last (I6).
    Entitlement(Entitlement),
}

impl Change {
    pub fn delta(&self) -> i64 {
        match self {
            Change::Credit(amount) => *amount,
            Change::Trial | Change::PaymentFailed | Change::Entitlement(_) => 0,
        }
    }
}

/// What an account is entitled to, and as of which provider time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Entitlement {
    /// `active`, `cancelled`, or the provider's own status (`past_due`, …).
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscription: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer: Option<String>,
    /// The provider's time of the event that set it.
    #[serde(with = "time::serde::rfc3339")]
    pub as_of: OffsetDateTime,
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
    /// The account's state is newer than the event: nothing changed; the
    /// event is still to be finished (as stale).
    Stale,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AccountState {
    pub balance: i64,
    #[serde(with = "time::serde::rfc3339::option")]
    pub trial_started_at: Option<OffsetDateTime>,
    pub failed_payments: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entitlement: Option<Entitlement>,
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

    /// Whether an effect's business key is already taken: to skip a
    /// downstream call whose effect is known to be in.
    async fn has_effect(&self, business_key: &str) -> Result<bool, StoreError>;

    /// The account's entries, newest first.
    async fn entries(&self, account: &AccountRef) -> Result<Vec<LedgerEntry>, StoreError>;
}

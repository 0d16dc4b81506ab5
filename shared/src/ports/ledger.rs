//! Accounts, their balances and the ledger of effects. Every effect has a
//! business key (`grant:{provider}:{account}:{period}`, `trial:{provider}:
//! {account}`, …); committing it writes, in one transaction, the key (only
//! if new), the account's change (an atomic ADD, never read-modify-write), a
//! ledger entry, and the event's completion (only while the worker holds its
//! lease). Two deliveries, or two different events meaning one fact, meet at
//! the business key: one effect (I4, I5).

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use serde::Serialize;
use time::OffsetDateTime;

use crate::event::{EventKey, Period, Provider};
use crate::ports::StoreError;

/// An account, scoped by provider so two providers' customers never collide.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct AccountRef {
    pub provider: Provider,
    pub account: String,
}

impl AccountRef {
    pub fn new(provider: Provider, account: impl Into<String>) -> Self {
        Self { provider, account: account.into() }
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
    /// The account's one trial, with the credits it grants (the plan's
    /// trial credits; 0 where none are configured).
    Trial(i64),
    /// A failed payment, counted on the account; no balance change.
    PaymentFailed,
    /// A subscription's entitlement, set only by an event newer than the
    /// one that set that subscription's last (I6).
    Entitlement(Entitlement),
}

impl Change {
    pub fn delta(&self) -> i64 {
        match self {
            Change::Credit(amount) | Change::Trial(amount) => *amount,
            Change::PaymentFailed | Change::Entitlement(_) => 0,
        }
    }
}

/// What one subscription of an account entitles it to, and as of which
/// provider time.
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
    /// The billing period the event that set it stated, where it stated
    /// one: how long a period of this subscription is, to prorate a plan
    /// change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period: Option<Period>,
    /// The provider's time of the event that set it.
    #[serde(with = "time::serde::rfc3339")]
    pub as_of: OffsetDateTime,
}

/// The entitlement status of a cancellation.
pub const CANCELLED: &str = "cancelled";

/// The statuses, in the providers' own words, in which a subscription gives
/// access: live, in a trial, or being charged again after a failure (past
/// due, Razorpay's `pending`, Paystack's `attention`), or cancelled to end
/// at the period's end (Paystack's `non-renewing`). Every other status
/// (cancelled, paused, suspended, halted, expired, unpaid, incomplete, not
/// yet started) gives none.
pub const ENTITLING: &[&str] = &["active", "trialing", "past_due", "pending", "attention", "non-renewing"];

/// The statuses of a subscription at the first stage of its life.
pub const LIVE: &[&str] = &["active", "trialing"];

/// See [`Entitlement::stage`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    Live,
    Changing,
    Ended,
}

/// Whether a subscription in `status` gives access.
pub fn entitles(status: &str) -> bool {
    ENTITLING.contains(&status)
}

impl Entitlement {
    /// The subscription it belongs to, as the account's subscriptions are
    /// keyed (empty where the provider names none).
    pub fn key(&self) -> &str {
        self.subscription.as_deref().unwrap_or_default()
    }

    pub fn entitles(&self) -> bool {
        entitles(&self.status)
    }

    /// Whether this replaces `current` (I6): set by a newer event, or, at
    /// the same provider time (Paystack's subscription events all carry the
    /// subscription's creation time), one at a later stage of its life.
    pub fn supersedes(&self, current: &Entitlement) -> bool {
        self.as_of > current.as_of || (self.as_of == current.as_of && self.stage() > current.stage())
    }

    /// Where the status stands in a subscription's life, to order two
    /// states stamped with one time: live (`active`, `trialing`), then
    /// anything else (not renewing, past due, paused, …), then cancelled,
    /// which is final.
    pub fn stage(&self) -> Stage {
        match self.status.as_str() {
            CANCELLED => Stage::Ended,
            status if LIVE.contains(&status) => Stage::Live,
            _ => Stage::Changing,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Effect {
    pub business_key: String,
    /// Further keys taken with it, only if all are new: a fact that must
    /// also never happen twice (the one payment a period's grant is
    /// attributed to).
    pub also_keys: Vec<String>,
    /// The account it changes, with a ledger entry; `None` for an effect
    /// that only records what is known of payments.
    pub account: Option<AccountRef>,
    pub change: Change,
    /// The event that causes it, completed in the same transaction.
    pub event: EventKey,
    /// Whether it completes `event`: not when the event has a second effect
    /// still to commit (a payment that also states its subscription); the
    /// lease is still required.
    pub completes_event: bool,
    /// Payments written in the same transaction, each only if unchanged
    /// since it was read.
    pub payments: Vec<PaymentWrite>,
    /// A condition on the account's balance before the change: what the
    /// decision to flag (or to cap a claw-back) was based on.
    pub guard: Option<BalanceGuard>,
    /// Flags added to the account (`negative_balance`, …).
    pub flags: Vec<String>,
    /// For an entitlement: the subscription's state its transition was
    /// decided from (and told downstream), which must still be the one
    /// stored, else the commit is `Raced` and decided again.
    pub basis: Option<Basis>,
}

/// The state of a subscription as an entitlement effect found it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Basis {
    /// The account had no state for the subscription.
    Unknown,
    /// The state stored, named by its provider time and status.
    Stated { as_of: OffsetDateTime, status: String },
}

impl Basis {
    pub fn of(stored: Option<&Entitlement>) -> Self {
        stored.map_or(Basis::Unknown, |e| Basis::Stated { as_of: e.as_of, status: e.status.clone() })
    }

    /// Whether `stored` is still the state found.
    pub fn holds(&self, stored: Option<&Entitlement>) -> bool {
        *self == Basis::of(stored)
    }
}

impl Effect {
    pub fn new(business_key: String, account: AccountRef, change: Change, event: EventKey) -> Self {
        Self {
            business_key,
            also_keys: Vec::new(),
            account: Some(account),
            change,
            event,
            completes_event: true,
            payments: Vec::new(),
            guard: None,
            flags: Vec::new(),
            basis: None,
        }
    }
}

/// A payment under one of the provider's ids for it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct PaymentRef {
    pub provider: Provider,
    pub id: String,
}

impl PaymentRef {
    pub fn new(provider: Provider, id: impl Into<String>) -> Self {
        Self { provider, id: id.into() }
    }

    pub fn storage_key(&self) -> String {
        format!("payment#{}#{}", self.provider, self.id)
    }
}

/// A payment as the ledger knows it: what it paid and granted, and what has
/// been refunded and clawed back of it. Refunds meet their payment here in
/// whatever order the two arrive.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Payment {
    pub account: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paid_minor: Option<i64>,
    /// Credits its renewal granted; `None` until that renewal is in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub granted: Option<i64>,
    pub refunded_minor: i64,
    /// What its refunds call back, in credits: the claw-back due so far.
    pub clawed_back: i64,
    /// The part of `clawed_back` the balance could not give (negative
    /// balances forbidden): what undoing a refund must not give back.
    pub unclawed: i64,
    /// Set when this id is another name for the payment recorded under
    /// `alias_of` (Stripe: an invoice's payment intent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alias_of: Option<String>,
    /// Bumped by every write, so a write based on a stale read fails. The
    /// balance itself still changes by ADD only (I5).
    pub version: u64,
}

/// `payment` written under `reference`, only if its version is still
/// `read_version` (0: only if absent).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentWrite {
    pub reference: PaymentRef,
    pub read_version: u64,
    pub payment: Payment,
}

/// What the account's balance (absent: zero) must be before the change for
/// the commit to go in: the balance a decision was based on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BalanceGuard {
    pub at_least: Option<i64>,
    pub below: Option<i64>,
}

impl BalanceGuard {
    pub fn holds(self, balance: i64) -> bool {
        self.at_least.is_none_or(|floor| balance >= floor) && self.below.is_none_or(|ceiling| balance < ceiling)
    }
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
    /// A payment, the balance or the subscription's state (an effect's
    /// basis) changed since it was read: nothing changed; read again and
    /// retry. With a basis, a stale entitlement may be told as raced too.
    Raced,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AccountState {
    pub balance: i64,
    #[serde(with = "time::serde::rfc3339::option")]
    pub trial_started_at: Option<OffsetDateTime>,
    pub failed_payments: u32,
    /// How many ledger entries the account has, counted in each entry's
    /// transaction: what reconciliation compares its read of the entries to.
    pub entries: u64,
    /// What the account is entitled by: the newest of its subscriptions
    /// that gives access, else the newest of them (see [`Self::summary`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entitlement: Option<Entitlement>,
    /// Each subscription's own state, by subscription id: an account is
    /// entitled while any of them is.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub subscriptions: BTreeMap<String, Entitlement>,
    /// Conditions a person should look at (`negative_balance`,
    /// `clawback_shortfall`, `refund_without_grant`); never cleared by
    /// payhooks.
    pub flags: BTreeSet<String>,
}

impl AccountState {
    /// The account's entitlement given its subscriptions: the newest that
    /// gives access, else the newest of all.
    pub fn summary(subscriptions: &BTreeMap<String, Entitlement>) -> Option<Entitlement> {
        let newest = |entitling: bool| {
            subscriptions.values().filter(|e| !entitling || e.entitles()).max_by_key(|e| (e.as_of, e.key().to_owned()))
        };
        newest(true).or_else(|| newest(false)).cloned()
    }

    /// Records `entitlement` as its subscription's state and refreshes the
    /// summary.
    pub fn entitle(&mut self, entitlement: Entitlement) {
        self.subscriptions.insert(entitlement.key().to_owned(), entitlement);
        self.entitlement = Self::summary(&self.subscriptions);
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LedgerEntry {
    pub business_key: String,
    pub delta: i64,
    pub event: EventKey,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// Everything a ledger does; the effects and reconciliation each take
/// only their role.
pub trait Ledger: Postings + Audits {}

impl<T: Postings + Audits + ?Sized> Ledger for T {}

/// Reading an account and its entries.
#[async_trait]
pub trait Balances: Send + Sync + std::fmt::Debug {
    async fn account(&self, account: &AccountRef) -> Result<Option<AccountState>, StoreError>;

    /// The account's entries, newest first.
    async fn entries(&self, account: &AccountRef) -> Result<Vec<LedgerEntry>, StoreError>;
}

/// What the effects write: each effect once, with what it depends on.
#[async_trait]
pub trait Postings: Balances {
    /// Commits `effect` and completes its event, atomically, while `owner`
    /// holds the event's lease.
    async fn commit(&self, effect: &Effect, owner: &str, now: OffsetDateTime) -> Result<CommitOutcome, StoreError>;

    /// Whether an effect's business key is already taken: to skip a
    /// downstream call whose effect is known to be in.
    async fn has_effect(&self, business_key: &str) -> Result<bool, StoreError>;

    /// The payment recorded under `reference`, as stored (an alias is not
    /// followed).
    async fn payment(&self, reference: &PaymentRef) -> Result<Option<Payment>, StoreError>;
}

/// What reconciliation walks, remembers and reports.
#[async_trait]
pub trait Audits: Balances {
    /// A page of accounts, in no particular order, after `cursor` (from the
    /// previous page; `None` to start); the next cursor, `None` at the end.
    async fn accounts(&self, cursor: Option<String>, limit: usize) -> Result<AccountPage, StoreError>;

    /// Where a walk over every account (reconciliation) stopped, saved
    /// under `name` so the next run goes on from there; `None` when none is.
    async fn checkpoint(&self, name: &str) -> Result<Option<String>, StoreError>;

    /// Saves the checkpoint `name`, or clears it with `None`.
    async fn save_checkpoint(&self, name: &str, cursor: Option<&str>) -> Result<(), StoreError>;

    /// Writes an audit record (a reconciliation mismatch, …): never changes
    /// an account.
    async fn record_audit(&self, audit: &Audit) -> Result<(), StoreError>;

    /// The account's audit records, newest first.
    async fn audits(&self, account: &AccountRef) -> Result<Vec<Audit>, StoreError>;
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccountPage {
    pub accounts: Vec<AccountRef>,
    pub cursor: Option<String>,
}

/// What a check found that a person must look at.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Audit {
    /// `reconcile_mismatch`, …
    pub kind: String,
    pub account: AccountRef,
    pub detail: serde_json::Value,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

//! The pipelines' view of the world: small traits named by role. Adapters in
//! [`crate::adapters`] implement them for AWS and in memory, and one contract
//! suite (in `tests/`) holds every adapter to the same semantics.

pub mod confirmation;
pub mod effects;
pub mod event_store;
pub mod ledger;
pub mod lock;
pub mod metrics;
pub mod provisioner;
pub mod queue;
pub mod secrets;

pub use confirmation::{Confirmation, Confirmer};
pub use effects::{Applied, EffectError, Effects};
pub use event_store::{
    Claim, Enqueueing, EventRecords, EventStore, Finish, FinishOutcome, Intake, LeaseOutcome, Leases, Repairs,
    StoreError,
};
pub use ledger::{
    AccountPage, AccountRef, AccountState, Audit, Audits, BalanceGuard, Balances, Basis, Change, CommitOutcome, Effect,
    Entitlement, Ledger, LedgerEntry, Payment, PaymentRef, PaymentWrite, Postings,
};
pub use lock::Lock;
pub use metrics::Metrics;
pub use provisioner::{Action, ProvisionError, ProvisionRequest, Provisioner};
pub use queue::{Delivery, Queue, QueueDepth, QueueError};
pub use secrets::{SecretStore, SecretsError};

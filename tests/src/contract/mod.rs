//! Contract suites: plain async functions over a port, run unchanged against
//! every adapter, so the memory adapters cannot drift from DynamoDB's and
//! SQS's semantics.

pub mod event_store;
pub mod ledger;
pub mod lock;
pub mod queue;

//! Asking the provider's API whether a webhook tells the truth, before any
//! value is given. For providers whose webhooks prove little (Flutterwave's
//! `verif-hash` is the shared secret itself; Kill Bill signs nothing) the
//! notification is a claim; the API's answer is the fact.

use async_trait::async_trait;

use crate::event::{DomainEvent, EventRecord};
use crate::ports::EffectError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirmation {
    /// The API agrees. The event to act on, with what the API adds (Kill
    /// Bill's billing period and plan, say).
    Confirmed(Box<DomainEvent>),
    /// The API contradicts the webhook: nothing may be given for it.
    Contradicted { reason: String },
}

#[async_trait]
pub trait Confirmer: Send + Sync + std::fmt::Debug {
    /// Transient failures (the API is down or throttling) are retried like
    /// any other; a contradiction is final.
    async fn confirm(&self, record: &EventRecord) -> Result<Confirmation, EffectError>;
}

//! The system downstream that turns an entitlement into access: told each
//! time a subscription starts giving access, stops, or changes plan. Each
//! request carries an idempotency key naming the transition, so a request
//! repeated after a failure is recognised by the receiver.

use async_trait::async_trait;
use serde::Serialize;

use crate::event::Provider;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// The subscription gives access now and did not before.
    Provision,
    /// The subscription gave access and no longer does (cancelled, paused,
    /// suspended, …; the request's status says which).
    Deprovision,
    /// The subscription gives access, now on another plan.
    ChangePlan,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Provision => "provision",
            Action::Deprovision => "deprovision",
            Action::ChangePlan => "change_plan",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProvisionRequest {
    #[serde(skip)]
    pub idempotency_key: String,
    pub action: Action,
    /// The subscription's status as the provider states it.
    pub status: String,
    pub provider: Provider,
    pub account: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscription: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer: Option<String>,
    /// The event that caused it, for the receiver's logs.
    pub event_id: String,
    /// When the provider says the entitlement changed. Requests of two
    /// workers can arrive out of order; a receiver that keeps the newest
    /// by this time ends where the account's entitlement ends.
    #[serde(with = "time::serde::rfc3339")]
    pub as_of: time::OffsetDateTime,
}

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("the provisioner could not be reached")]
    Unreachable(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("the provisioner answered HTTP {0}")]
    Refused(u16),
}

#[async_trait]
pub trait Provisioner: Send + Sync + std::fmt::Debug {
    async fn send(&self, request: &ProvisionRequest) -> Result<(), ProvisionError>;
}

//! One module per provider: how its webhooks are verified and how its event
//! types map onto the domain's events. Adding a provider adds a module here,
//! a variant to [`Provider`], a function crate and a route; nothing else.

pub mod stripe;

use async_trait::async_trait;
use http::HeaderMap;
use time::OffsetDateTime;

use crate::event::{DomainEvent, EventId, InvalidEventId, Provider};

/// An event whose signature checked out, parsed and normalized.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedEvent {
    pub event_id: EventId,
    /// Identifies the event's content, stable across the provider's retries.
    pub fingerprint: String,
    pub event: DomainEvent,
}

/// Ids to fill into a sample event: fresh per call so each sample is a new
/// event, or shared so several samples tell one customer's story.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleIds {
    pub event_id: String,
    pub customer_id: String,
    pub subscription_id: String,
}

impl SampleIds {
    /// Random ids in the provider's shapes; `event_prefix` is e.g. `evt`.
    pub fn random(event_prefix: &str) -> Self {
        let token = || uuid::Uuid::new_v4().simple().to_string()[..24].to_owned();
        Self {
            event_id: format!("{event_prefix}_test_{}", token()),
            customer_id: format!("cus_test_{}", token()),
            subscription_id: format!("sub_test_{}", token()),
        }
    }

    /// With a fresh event id, keeping the customer and subscription.
    pub fn next_event(&self, event_prefix: &str) -> Self {
        Self {
            event_id: Self::random(event_prefix).event_id,
            ..self.clone()
        }
    }

    pub fn fill(&self, template: &str) -> String {
        template
            .replace("{{event_id}}", &self.event_id)
            .replace("{{customer_id}}", &self.customer_id)
            .replace("{{subscription_id}}", &self.subscription_id)
    }
}

/// Why a webhook was refused before anything was written (I1). Messages name
/// the reason and never quote the secret or the payload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("the {header} header is missing")]
    MissingSignature { header: &'static str },
    #[error("the {header} header is malformed: {reason}")]
    MalformedSignature {
        header: &'static str,
        reason: &'static str,
    },
    #[error("no signature matches an active signing secret")]
    SignatureMismatch,
    #[error("the signature timestamp is outside the tolerance of {tolerance_secs} seconds")]
    TimestampOutOfTolerance { tolerance_secs: u64 },
    #[error("the body is not a valid event: {reason}")]
    InvalidPayload { reason: &'static str },
    #[error("the event has no usable id: {0}")]
    InvalidEventId(#[from] InvalidEventId),
}

impl Rejection {
    /// The HTTP status the edge answers with.
    pub fn status(&self) -> u16 {
        match self {
            Rejection::MissingSignature { .. }
            | Rejection::MalformedSignature { .. }
            | Rejection::InvalidPayload { .. }
            | Rejection::InvalidEventId(_) => 400,
            Rejection::SignatureMismatch | Rejection::TimestampOutOfTolerance { .. } => 401,
        }
    }

    /// A stable machine-readable code for the JSON error body and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::MissingSignature { .. } => "missing_signature",
            Rejection::MalformedSignature { .. } => "malformed_signature",
            Rejection::SignatureMismatch => "invalid_signature",
            Rejection::TimestampOutOfTolerance { .. } => "timestamp_out_of_tolerance",
            Rejection::InvalidPayload { .. } => "invalid_payload",
            Rejection::InvalidEventId(_) => "invalid_event_id",
        }
    }
}

/// A provider's verification and normalization, behind one call so ingest
/// treats every provider alike.
#[async_trait]
pub trait Verifier: Send + Sync + std::fmt::Debug {
    fn provider(&self) -> Provider;

    /// Checks the request's signature over exactly `body` (I2), then parses
    /// and normalizes the event.
    async fn verify(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: OffsetDateTime,
    ) -> Result<VerifiedEvent, Rejection>;
}

/// The verifier of `provider`, over its active secrets.
pub fn verifier(
    provider: Provider,
    secrets: crate::secret::SecretSet,
    tolerance: std::time::Duration,
) -> std::sync::Arc<dyn Verifier> {
    match provider {
        Provider::Stripe => std::sync::Arc::new(stripe::StripeVerifier::new(secrets, tolerance)),
    }
}

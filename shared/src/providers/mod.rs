//! One folder per provider, each exporting one value that implements
//! [`Integration`]: how its webhooks are verified and how a deployment
//! configures that, how its event types map onto the domain's events, its
//! samples and signing, and its API read-back and callback registration
//! where it has them. [`integration`] is the one place a provider is
//! chosen. Adding a provider adds a folder here, its arm there, a variant
//! to [`Provider`], a function crate and a template block; nothing else.
//!
//! Shared here: what a verifier sees ([`Inbound`]) and answers
//! ([`VerifiedEvent`], [`Rejection`]), samples and their ids, the JSON and
//! money helpers, and the HTTP client of the providers' APIs ([`api`]).

pub mod api;
pub mod flutterwave;
mod integration;
mod json;
pub mod killbill;
pub mod lago;
pub mod money;
pub mod paddle;
pub mod paypal;
pub mod paystack;
pub mod razorpay;
pub mod stripe;
mod timestamped_hmac;

use std::net::IpAddr;

use async_trait::async_trait;
use http::HeaderMap;
use time::OffsetDateTime;

use crate::event::{DomainEvent, EventId, InvalidEventId, Provider};

pub use integration::{ConfirmerSetup, Integration, LocalSigning, RegistrarSetup, SecretsVerification, VerifierSetup};

/// The variable holding the largest accepted age of a signed timestamp, in
/// seconds (Stripe's `t`, PayPal's transmission time).
pub const TOLERANCE_SECS: &str = "PAYHOOKS_TOLERANCE_SECS";

/// The one place a provider is chosen: its integration.
pub fn integration(provider: Provider) -> &'static dyn Integration {
    match provider {
        Provider::Stripe => &stripe::Stripe,
        Provider::Paystack => &paystack::Paystack,
        Provider::Flutterwave => &flutterwave::Flutterwave,
        Provider::Killbill => &killbill::Killbill,
        Provider::Lago => &lago::Lago,
        Provider::Paypal => &paypal::Paypal,
        Provider::Paddle => &paddle::Paddle,
        Provider::Razorpay => &razorpay::Razorpay,
    }
}

/// The signed timestamp window a provider reads from `env` (default 300 s).
pub fn tolerance(env: &crate::settings::Env) -> Result<std::time::Duration, crate::settings::ConfigError> {
    Ok(std::time::Duration::from_secs(env.number(TOLERANCE_SECS, stripe::DEFAULT_TOLERANCE.as_secs())?))
}

/// A webhook request as a verifier sees it.
#[derive(Clone, Copy)]
pub struct Inbound<'a> {
    pub headers: &'a HeaderMap,
    /// The body exactly as received (base64-decoded when API Gateway encoded it).
    pub body: &'a [u8],
    /// The caller's address as API Gateway saw it.
    pub source_ip: Option<IpAddr>,
    /// The secret last segment of a callback URL (`/webhooks/{provider}/{token}`),
    /// for providers that sign nothing.
    pub path_token: Option<&'a str>,
}

impl<'a> Inbound<'a> {
    /// Just headers and body: what a signed provider needs.
    pub fn new(headers: &'a HeaderMap, body: &'a [u8]) -> Self {
        Self { headers, body, source_ip: None, path_token: None }
    }
}

/// Never prints the body or the token: a stray `{:?}` must not leak them.
impl std::fmt::Debug for Inbound<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbound")
            .field("body_len", &self.body.len())
            .field("source_ip", &self.source_ip)
            .field("path_token", &self.path_token.map(|_| "[redacted]"))
            .finish_non_exhaustive()
    }
}

/// An event whose signature checked out, parsed and normalized.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedEvent {
    pub event_id: EventId,
    /// Identifies the event's content, stable across the provider's retries.
    pub fingerprint: String,
    pub event: DomainEvent,
}

/// The one value of a signature header, refusing a missing, repeated or
/// non-ASCII header.
pub(crate) fn single_header<'h>(headers: &'h HeaderMap, name: &'static str) -> Result<&'h str, Rejection> {
    let mut values = headers.get_all(name).iter();
    let first = values.next().ok_or(Rejection::MissingSignature { header: name })?;
    if values.next().is_some() {
        return Err(Rejection::MalformedSignature { header: name, reason: "the header appears more than once" });
    }
    first
        .to_str()
        .map(str::trim)
        .map_err(|_| Rejection::MalformedSignature { header: name, reason: "the header is not printable ASCII" })
}

/// Identifies an event's content: SHA-256 over its type and the exact bytes
/// of the part the provider snapshots when the event is created (so a retry
/// has the same fingerprint, and a reused id with other content does not).
pub fn fingerprint(event_type: &str, content: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    hasher.update(event_type.as_bytes());
    hasher.update(b"\n");
    hasher.update(content);
    hex::encode(hasher.finalize())
}

/// A stable event id for providers that send none, from the parts that make
/// an occurrence unique (event type, the object's id, its status). The same
/// delivery retried has the same parts, so the same id. Parts that could not
/// form a key (spaces, control characters, too long) are hashed instead.
pub fn derived_event_id(parts: &[&str]) -> EventId {
    let joined = parts.join(":");
    EventId::parse(&joined).unwrap_or_else(|_| {
        use sha2::{Digest, Sha256};
        let digest = hex::encode(Sha256::digest(joined.as_bytes()));
        EventId::parse(&format!("sha256:{digest}")).expect("a hex digest is a valid id")
    })
}

/// A provider's realistic sample events, by name, with `{{event_id}}`,
/// `{{customer_id}}` and `{{subscription_id}}` placeholders: for the
/// `trigger` command and the tests.
#[derive(Debug, Clone, Copy)]
pub struct Samples(pub &'static [(&'static str, &'static str)]);

impl Samples {
    pub fn types(&self) -> impl Iterator<Item = &'static str> {
        self.0.iter().map(|(name, _)| *name)
    }

    /// The sample `name` with `ids` filled in.
    pub fn event(&self, name: &str, ids: &SampleIds) -> Option<String> {
        self.0.iter().find(|(n, _)| *n == name).map(|(_, template)| ids.fill(template))
    }
}

/// Ids to fill into a sample event: fresh per call so each sample is a new
/// event, or shared so several samples tell one customer's story.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleIds {
    pub event_id: String,
    pub customer_id: String,
    pub subscription_id: String,
    /// The payment a renewal is paid by and its refund refunds.
    pub payment_id: String,
    /// A second id of that payment (Stripe: the invoice's payment intent).
    pub payment_alias_id: String,
    pub refund_id: String,
}

impl SampleIds {
    /// Random ids in the provider's shapes; `event_prefix` is e.g. `evt`.
    pub fn random(event_prefix: &str) -> Self {
        let token = || uuid::Uuid::new_v4().simple().to_string()[..24].to_owned();
        Self {
            event_id: format!("{event_prefix}_test_{}", token()),
            customer_id: format!("cus_test_{}", token()),
            subscription_id: format!("sub_test_{}", token()),
            payment_id: format!("in_test_{}", token()),
            payment_alias_id: format!("pi_test_{}", token()),
            refund_id: format!("re_test_{}", token()),
        }
    }

    /// With a fresh event id, keeping the customer and subscription.
    pub fn next_event(&self, event_prefix: &str) -> Self {
        Self { event_id: Self::random(event_prefix).event_id, ..self.clone() }
    }

    pub fn fill(&self, template: &str) -> String {
        template
            .replace("{{event_id}}", &self.event_id)
            .replace("{{customer_id}}", &self.customer_id)
            .replace("{{subscription_id}}", &self.subscription_id)
            .replace("{{payment_id}}", &self.payment_id)
            .replace("{{payment_alias_id}}", &self.payment_alias_id)
            .replace("{{refund_id}}", &self.refund_id)
    }
}

/// Why a webhook was refused before anything was written (I1). Messages name
/// the reason and never quote the secret or the payload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("the {header} header is missing")]
    MissingSignature { header: &'static str },
    #[error("the {header} header is malformed: {reason}")]
    MalformedSignature { header: &'static str, reason: &'static str },
    #[error("no signature matches an active signing secret")]
    SignatureMismatch,
    #[error("the signature timestamp is outside the tolerance of {tolerance_secs} seconds")]
    TimestampOutOfTolerance { tolerance_secs: u64 },
    #[error("the body is not a valid event: {reason}")]
    InvalidPayload { reason: &'static str },
    #[error("the event has no usable id: {0}")]
    InvalidEventId(#[from] InvalidEventId),
    #[error("requests from this address are not accepted for this provider")]
    SourceNotAllowed,
    #[error("the callback URL carries no token")]
    MissingToken,
    #[error("the callback URL's token matches no active token")]
    TokenMismatch,
    #[error("the {header} header names an unsupported algorithm")]
    UnsupportedAlgorithm { header: &'static str },
    #[error("the certificate URL is not one of the provider's")]
    CertificateUrlNotAllowed,
    #[error("the signing certificate is not usable: {reason}")]
    InvalidCertificate { reason: &'static str },
    /// Verification needs something that is down (a certificate host, the
    /// provider's API): answered with a 5xx so the provider retries (I3).
    #[error("the signature cannot be checked right now: {reason}")]
    VerificationUnavailable { reason: &'static str },
}

impl Rejection {
    /// The HTTP status the edge answers with.
    pub fn status(&self) -> u16 {
        match self {
            Rejection::MissingSignature { .. }
            | Rejection::MalformedSignature { .. }
            | Rejection::InvalidPayload { .. }
            | Rejection::InvalidEventId(_)
            | Rejection::UnsupportedAlgorithm { .. }
            | Rejection::CertificateUrlNotAllowed => 400,
            Rejection::SignatureMismatch
            | Rejection::TimestampOutOfTolerance { .. }
            | Rejection::InvalidCertificate { .. }
            | Rejection::MissingToken
            | Rejection::TokenMismatch => 401,
            Rejection::SourceNotAllowed => 403,
            Rejection::VerificationUnavailable { .. } => 503,
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
            Rejection::SourceNotAllowed => "source_not_allowed",
            Rejection::MissingToken => "missing_token",
            Rejection::TokenMismatch => "invalid_token",
            Rejection::UnsupportedAlgorithm { .. } => "unsupported_algorithm",
            Rejection::CertificateUrlNotAllowed => "certificate_url_not_allowed",
            Rejection::InvalidCertificate { .. } => "invalid_certificate",
            Rejection::VerificationUnavailable { .. } => "verification_unavailable",
        }
    }
}

/// A provider's verification and normalization, behind one call so ingest
/// treats every provider alike.
#[async_trait]
pub trait Verifier: Send + Sync + std::fmt::Debug {
    fn provider(&self) -> Provider;

    /// Checks the request's signature over exactly its body (I2), then
    /// parses and normalizes the event.
    async fn verify(&self, inbound: &Inbound<'_>, now: OffsetDateTime) -> Result<VerifiedEvent, Rejection>;
}

/// A sample, signed as its provider would send it.
#[derive(Debug, Clone, Default)]
pub struct SignedRequest {
    pub headers: HeaderMap,
    /// For providers that sign nothing: the secret path segment to append
    /// to `/webhooks/{provider}/`.
    pub path_token: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("no signing secret given")]
    NoSecret,
    #[error("the signing secret is not usable: {0}")]
    Unusable(String),
}

/// The event types `provider` has samples of.
pub fn sample_event_types(provider: Provider) -> Vec<&'static str> {
    integration(provider).samples().types().collect()
}

/// One customer's story in `provider`'s samples, in order: a purchase, a
/// renewal (Stripe: by invoice and by period roll, one fact), a refund and a
/// cancellation. For the `trigger … scenario` command.
pub fn scenario(provider: Provider) -> &'static [&'static str] {
    integration(provider).scenario()
}

/// What `provider`'s API answers about the objects `sample` names (see
/// [`Integration::sample_api_objects`]).
pub fn sample_api_objects(provider: Provider, sample: &str, ids: &SampleIds) -> Vec<(String, serde_json::Value)> {
    integration(provider).sample_api_objects(sample, ids)
}

/// Fresh sample ids in `provider`'s shapes.
pub fn sample_ids(provider: Provider) -> SampleIds {
    integration(provider).sample_ids()
}

/// A sample event of `provider` and `event_type` with `ids` filled in.
pub fn sample_event(provider: Provider, event_type: &str, ids: &SampleIds) -> Option<String> {
    integration(provider).samples().event(event_type, ids)
}

/// Signs `body` as `provider` would with `secret` (comma-separated for
/// several, where the provider sends several signatures) at `now`. `ids` are
/// the ids the body was filled with: a provider that sends its event id in a
/// header (Lago's `X-Lago-Unique-Key`) takes it from there. For PayPal,
/// `secret` is the path of the signing file the local server wrote.
pub fn sign_sample(
    provider: Provider,
    body: &[u8],
    ids: &SampleIds,
    secret: &str,
    now: OffsetDateTime,
) -> Result<SignedRequest, SignError> {
    integration(provider).sign_sample(body, ids, secret, now)
}

/// A request carrying one header, for a provider that signs with one.
pub(crate) fn signed_with(name: &'static str, value: String) -> Result<SignedRequest, SignError> {
    let mut headers = HeaderMap::new();
    headers.insert(name, value.parse().map_err(|_| SignError::Unusable("not printable ASCII".into()))?);
    Ok(SignedRequest { headers, path_token: None })
}

/// The active secrets `secret` lists (comma-separated).
pub(crate) fn signing_secrets(secret: &str) -> Result<crate::secret::SecretSet, SignError> {
    crate::secret::SecretSet::from_comma_separated(secret).map_err(|_| SignError::NoSecret)
}

/// Whether `provider`'s scheme covers the body (see [`Integration::signs_body`]).
pub fn signs_body(provider: Provider) -> bool {
    integration(provider).signs_body()
}

/// What verifiers need besides their secrets.
#[derive(Debug, Clone)]
pub struct VerifierSettings {
    /// Largest distance of a signed timestamp from now, either way.
    pub tolerance: std::time::Duration,
    /// Accept only these source addresses (Paystack publishes its own);
    /// `None` accepts any.
    pub allowed_sources: Option<Vec<IpAddr>>,
    /// Whether an account id the paying customer can choose counts
    /// (Stripe's `client_reference_id`, which Payment Links take from the
    /// URL). Off: only ids the merchant sets (metadata) and the provider's
    /// customer id.
    pub customer_chosen_account: bool,
}

impl Default for VerifierSettings {
    fn default() -> Self {
        Self { tolerance: stripe::DEFAULT_TOLERANCE, allowed_sources: None, customer_chosen_account: false }
    }
}

/// The verifier of `provider` over its active secrets (PayPal: its webhook
/// ids, verified offline with certificates fetched from PayPal over HTTPS;
/// Lago: `hmac` mode; a deployment builds theirs from configuration).
pub fn verifier(
    provider: Provider,
    secrets: crate::secret::SecretSet,
    settings: &VerifierSettings,
) -> std::sync::Arc<dyn Verifier> {
    integration(provider).verifier(secrets, settings)
}

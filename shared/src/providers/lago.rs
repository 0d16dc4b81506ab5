//! Lago: `X-Lago-Signature` in one of two modes, chosen per webhook endpoint
//! and announced in `X-Lago-Signature-Algorithm`, and the mapping of Lago's
//! webhook types onto the domain's events.
//!
//! # Verification
//!
//! - `hmac`: `X-Lago-Signature` is the standard, padded base64 of
//!   HMAC-SHA256 over the raw body, keyed with the organization's HMAC key.
//!   It is compared in constant time against every active key (several
//!   while a key is rotated; Lago itself signs each attempt with its current
//!   key, so there is no overlap on its side).
//! - `jwt`: `X-Lago-Signature` is a compact JWS signed RS256 with Lago's RSA
//!   key, whose claims are `{"data": <the body as a string>, "iss": <Lago's
//!   API URL>}`. The header's `alg` must be exactly `RS256` (no `none`, no
//!   HS256 keyed with the public key, no other RSA digest), the signature
//!   must verify with Lago's public key, `data` must equal the received body
//!   byte for byte (lago-go-client's `ValidateSignature` skips this, which
//!   lets any old token vouch for any body), and `iss` must equal the
//!   configured API URL when one is configured. The public key comes from a
//!   [`PublicKeySource`]: configured text (PEM, or base64 of a PEM as Lago's
//!   endpoint returns it) or Lago's `GET /api/v1/webhooks/public_key`,
//!   fetched once and kept for the life of the process.
//!
//! A deployment accepts only the modes it is configured for: an HMAC key
//! enables `hmac`, a public key source enables `jwt`. Lago signs no
//! timestamp (nor does the JWT carry `exp`/`iat`), so replays are stopped
//! only by dedupe.
//!
//! # Event id
//!
//! The `X-Lago-Unique-Key` header (the UUID of Lago's webhook record, the
//! same across its retries); nothing in the body identifies the delivery.
//! The header is **not** covered by either signature: a replayed body under
//! a new key is a new event to the store, and only the effects' business
//! keys (I4) make it harmless. The fingerprint is SHA-256 over the webhook
//! type and the exact body.
//!
//! # Mapping
//!
//! | `webhook_type` | condition | kind | ids and amounts |
//! |---|---|---|---|
//! | `subscription.started` | `previous_plan_code` set (an up/downgrade: same `external_id`, new Lago subscription) | SubscriptionUpdated | plan = `plan_code` |
//! | `subscription.started` | `plan.trial_period` > 0 | TrialStarted | |
//! | `subscription.started` | otherwise | Purchase | |
//! | `subscription.terminated` | `next_plan_code` set (the old half of an up/downgrade) | SubscriptionUpdated | plan = `next_plan_code` |
//! | `subscription.terminated` | otherwise | Cancellation | |
//! | `subscription.trial_ended`, `subscription.updated` | | SubscriptionUpdated | |
//! | `invoice.created`, `invoice.payment_status_updated` | `invoice_type` = `subscription`, `payment_status` = `succeeded` | Renewal | amount = `total_amount_cents` |
//! | `invoice.payment_status_updated` | `payment_status` = `failed` | PaymentFailed | amount = `total_amount_cents` |
//! | `invoice.payment_failure` | | PaymentFailed | invoice in `lago_invoice_id` only |
//! | `credit_note.created` | `refund_amount_cents` > 0 | Refund | refund id = credit note `lago_id`, amount = `refund_amount_cents` |
//! | anything else | | Other | |
//!
//! Subscription events take the subscription from `subscription.external_id`,
//! the account from `subscription.external_customer_id`, the plan from
//! `plan_code` and the period from `current_billing_period_started_at` /
//! `_ending_at`. Invoices take the account from `invoice.customer.external_id`,
//! the currency from `invoice.currency`, and the subscription and period from
//! the first subscription fee (`fees[].item.type` = `subscription`:
//! `external_subscription_id`, `from_date`, `to_date`), else from
//! `billing_periods[0]` (`subscription_from_datetime` / `_to_datetime`).
//! Both invoice events carry `fees`, only `invoice.created` carries
//! `billing_periods`, so the fee comes first: the two events of one paid
//! invoice then name the same period and grant once.
//!
//! Lago sends `invoice.created` when an invoice is finalized, usually before
//! the payment provider has charged it (`payment_status` = `pending`); such
//! an invoice grants nothing (Other) until `invoice.payment_status_updated`
//! says `succeeded`. A first purchase is provisioned by `subscription.started`
//! (Purchase) and its first paid invoice grants the first period (Renewal),
//! whatever the invoice's `invoicing_reason`. A credit note refunds money only
//! when `refund_amount_cents` > 0; credit-only notes are Other.
//!
//! Every amount is in integer cents (`*_amount_cents`). The provider time is
//! the object's `updated_at`, else its `created_at` (`terminated_at` /
//! `started_at` for those subscription events), else the time of receipt
//! (`invoice.payment_failure` carries no time at all).

use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, KeyInit, Mac};
use http::HeaderMap;
use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::pkcs1v15;
use rsa::pkcs8::DecodePublicKey;
use rsa::signature::Verifier as _;
use serde::Deserialize;
use serde_json::Value;
use sha2::Sha256;
use subtle::{Choice, ConstantTimeEq};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{Inbound, Rejection, SampleIds, Samples, VerifiedEvent, Verifier};
use crate::event::{DomainEvent, EventId, EventKind, Period, Provider};
use crate::secret::{Secret, SecretSet};

pub const SIGNATURE_HEADER: &str = "x-lago-signature";
pub const ALGORITHM_HEADER: &str = "x-lago-signature-algorithm";
pub const UNIQUE_KEY_HEADER: &str = "x-lago-unique-key";

/// Where Lago serves its webhook public key (base64 of a PEM, as text).
pub const PUBLIC_KEY_PATH: &str = "/api/v1/webhooks/public_key";

type HmacSha256 = Hmac<Sha256>;

// ---------------------------------------------------------------------------
// The public key: a small port and its two adapters.

#[derive(Debug, thiserror::Error)]
pub enum PublicKeyError {
    #[error("the Lago public key could not be fetched")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("the Lago public key is not an RSA public key in PEM (or base64 of a PEM)")]
    Unusable,
}

/// Lago's RSA public key, as text: a PEM, or the base64 of one.
#[async_trait]
pub trait PublicKeySource: Send + Sync + std::fmt::Debug {
    async fn public_key_text(&self) -> Result<String, PublicKeyError>;
}

/// A key given in configuration (`LAGO_PUBLIC_KEY`) or by a test.
#[derive(Debug, Clone)]
pub struct StaticPublicKeySource(String);

impl StaticPublicKeySource {
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }
}

#[async_trait]
impl PublicKeySource for StaticPublicKeySource {
    async fn public_key_text(&self) -> Result<String, PublicKeyError> {
        Ok(self.0.clone())
    }
}

/// `GET {api_url}/api/v1/webhooks/public_key` with the API key as bearer.
#[derive(Debug, Clone)]
pub struct HttpPublicKeySource {
    client: reqwest::Client,
    api_url: String,
    api_key: Secret,
}

impl HttpPublicKeySource {
    pub fn new(client: reqwest::Client, api_url: impl Into<String>, api_key: Secret) -> Self {
        Self { client, api_url: api_url.into(), api_key }
    }

    pub fn url(&self) -> String {
        format!("{}{PUBLIC_KEY_PATH}", self.api_url.trim_end_matches('/'))
    }
}

#[async_trait]
impl PublicKeySource for HttpPublicKeySource {
    async fn public_key_text(&self) -> Result<String, PublicKeyError> {
        let api_key =
            std::str::from_utf8(self.api_key.expose()).map_err(|e| PublicKeyError::Unavailable(Box::new(e)))?;
        let response = self
            .client
            .get(self.url())
            .bearer_auth(api_key)
            .timeout(std::time::Duration::from_secs(5))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| PublicKeyError::Unavailable(Box::new(e)))?;
        response.text().await.map_err(|e| PublicKeyError::Unavailable(Box::new(e)))
    }
}

/// Reads an RSA public key from a PEM (`PUBLIC KEY`, as Lago's Ruby
/// `OpenSSL::PKey::RSA#to_s` writes it, or `RSA PUBLIC KEY`), or from the
/// base64 of such a PEM with or without line breaks (Ruby's `encode64`, as
/// the endpoint returns it).
pub fn parse_public_key(text: &str) -> Result<rsa::PublicKey, PublicKeyError> {
    let text = text.trim();
    let pem = if text.starts_with("-----BEGIN") {
        text.to_owned()
    } else {
        let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        let bytes = STANDARD.decode(compact).map_err(|_| PublicKeyError::Unusable)?;
        String::from_utf8(bytes).map_err(|_| PublicKeyError::Unusable)?
    };
    let pem = pem.trim();
    rsa::PublicKey::from_public_key_pem(pem)
        .or_else(|_| rsa::PublicKey::from_pkcs1_pem(pem))
        .map_err(|_| PublicKeyError::Unusable)
}

/// JWT mode: where the key comes from, the expected issuer, and the key once
/// read (kept for the life of the process: one fetch per cold start).
#[derive(Debug)]
pub struct JwtVerification {
    source: Arc<dyn PublicKeySource>,
    issuer: Option<String>,
    key: tokio::sync::OnceCell<pkcs1v15::VerifyingKey<Sha256>>,
}

impl JwtVerification {
    /// `issuer`: Lago's `LAGO_API_URL`, compared exactly with `iss`; `None`
    /// accepts any issuer.
    pub fn new(source: Arc<dyn PublicKeySource>, issuer: Option<String>) -> Self {
        Self { source, issuer, key: tokio::sync::OnceCell::new() }
    }

    /// The verifying key, read on first use. A failed read is not kept, so
    /// the next delivery tries again.
    pub async fn key(&self) -> Result<&pkcs1v15::VerifyingKey<Sha256>, PublicKeyError> {
        self.key
            .get_or_try_init(|| async {
                let text = self.source.public_key_text().await?;
                Ok(pkcs1v15::VerifyingKey::new(parse_public_key(&text)?))
            })
            .await
    }
}

// ---------------------------------------------------------------------------
// The verifier.

#[derive(Debug)]
pub struct LagoVerifier {
    hmac_keys: Option<SecretSet>,
    jwt: Option<JwtVerification>,
}

#[derive(Debug, thiserror::Error)]
#[error("Lago needs an HMAC key or a public key source")]
pub struct NothingToVerifyWith;

impl LagoVerifier {
    pub fn new(hmac_keys: Option<SecretSet>, jwt: Option<JwtVerification>) -> Result<Self, NothingToVerifyWith> {
        if hmac_keys.is_none() && jwt.is_none() {
            return Err(NothingToVerifyWith);
        }
        Ok(Self { hmac_keys, jwt })
    }

    /// `hmac` mode only (what the local server runs).
    pub fn hmac(keys: SecretSet) -> Self {
        Self { hmac_keys: Some(keys), jwt: None }
    }

    /// Reads the public key now (at a cold start) rather than on the first
    /// JWT-signed delivery; a no-op in `hmac`-only mode.
    pub async fn preload(&self) -> Result<(), PublicKeyError> {
        match &self.jwt {
            Some(jwt) => jwt.key().await.map(|_| ()),
            None => Ok(()),
        }
    }
}

#[async_trait]
impl Verifier for LagoVerifier {
    fn provider(&self) -> Provider {
        Provider::Lago
    }

    async fn verify(&self, inbound: &Inbound<'_>, now: OffsetDateTime) -> Result<VerifiedEvent, Rejection> {
        let signature = super::single_header(inbound.headers, SIGNATURE_HEADER)?;
        let algorithm = super::single_header(inbound.headers, ALGORITHM_HEADER)?;
        match algorithm {
            "hmac" => {
                let keys = self.hmac_keys.as_ref().ok_or(Rejection::MalformedSignature {
                    header: ALGORITHM_HEADER,
                    reason: "this endpoint is not configured for hmac signatures",
                })?;
                verify_hmac(signature, inbound.body, keys)?;
            }
            "jwt" => {
                let jwt = self.jwt.as_ref().ok_or(Rejection::MalformedSignature {
                    header: ALGORITHM_HEADER,
                    reason: "this endpoint is not configured for jwt signatures",
                })?;
                let key = jwt.key().await.map_err(|error| {
                    tracing::error!(error = %error, "Lago public key unavailable");
                    Rejection::VerificationUnavailable { reason: "Lago's public key could not be fetched" }
                })?;
                verify_jwt(signature, inbound.body, key, jwt.issuer.as_deref()).map_err(JwtError::rejection)?;
            }
            _ => {
                return Err(Rejection::MalformedSignature { header: ALGORITHM_HEADER, reason: "neither hmac nor jwt" });
            }
        }
        let unique_key = inbound
            .headers
            .get(UNIQUE_KEY_HEADER)
            .ok_or(Rejection::MissingSignature { header: UNIQUE_KEY_HEADER })?
            .to_str()
            .map_err(|_| crate::event::InvalidEventId::BadCharacters)?;
        parse_event(unique_key, inbound.body, now)
    }
}

fn mac(key: &Secret, body: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(key.expose()).expect("HMAC takes any key length");
    mac.update(body);
    mac
}

/// Checks an `hmac`-mode `X-Lago-Signature` against the raw body and every
/// active key, without an early exit.
pub fn verify_hmac(signature: &str, body: &[u8], keys: &SecretSet) -> Result<(), Rejection> {
    let presented = STANDARD
        .decode(signature)
        .map_err(|_| Rejection::MalformedSignature { header: SIGNATURE_HEADER, reason: "not standard base64" })?;
    let mut matched = Choice::from(0);
    for key in keys.iter() {
        matched |= mac(key, body).finalize().into_bytes().as_slice().ct_eq(&presented);
    }
    if bool::from(matched) { Ok(()) } else { Err(Rejection::SignatureMismatch) }
}

/// An `hmac`-mode `X-Lago-Signature` value for `body`.
pub fn hmac_signature(body: &[u8], key: &Secret) -> String {
    STANDARD.encode(mac(key, body).finalize().into_bytes())
}

/// Why a JWT was refused; kept apart so tests can tell the checks apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtError {
    Malformed(&'static str),
    /// `alg` is not `RS256`.
    Algorithm,
    Signature,
    /// `data` is not the received body.
    Body,
    Issuer,
}

impl JwtError {
    fn rejection(self) -> Rejection {
        match self {
            JwtError::Malformed(reason) => Rejection::MalformedSignature { header: SIGNATURE_HEADER, reason },
            // `none`, HS256 keyed with the public key, anything not RS256.
            JwtError::Algorithm => Rejection::UnsupportedAlgorithm { header: SIGNATURE_HEADER },
            JwtError::Signature | JwtError::Body | JwtError::Issuer => Rejection::SignatureMismatch,
        }
    }
}

#[derive(Deserialize)]
struct JoseHeader {
    alg: Option<String>,
    crit: Option<Value>,
}

#[derive(Deserialize)]
struct Claims {
    data: Option<String>,
    iss: Option<String>,
}

/// Checks a `jwt`-mode `X-Lago-Signature`: `alg` exactly RS256, the RSA
/// signature over `header.payload`, then `data` = the body and `iss`.
pub fn verify_jwt(
    token: &str,
    body: &[u8],
    key: &pkcs1v15::VerifyingKey<Sha256>,
    issuer: Option<&str>,
) -> Result<(), JwtError> {
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed("not a compact JWT of three parts"));
    };
    let header: JoseHeader = URL_SAFE_NO_PAD
        .decode(header_b64)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or(JwtError::Malformed("the token's header is not base64url JSON"))?;
    // Decided before any key is used: `none` and HS256 (keyed with the
    // public key's bytes) never reach a verifier.
    if header.alg.as_deref() != Some("RS256") {
        return Err(JwtError::Algorithm);
    }
    if header.crit.is_some() {
        return Err(JwtError::Malformed("the token has critical header parameters"));
    }
    let signature = URL_SAFE_NO_PAD
        .decode(signature_b64)
        .ok()
        .and_then(|bytes| pkcs1v15::Signature::try_from(bytes.as_slice()).ok())
        .ok_or(JwtError::Malformed("the token's signature is not base64url"))?;
    let signed = &token.as_bytes()[..header_b64.len() + 1 + payload_b64.len()];
    key.verify(signed, &signature).map_err(|_| JwtError::Signature)?;

    let claims: Claims = URL_SAFE_NO_PAD
        .decode(payload_b64)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or(JwtError::Malformed("the token's claims are not base64url JSON"))?;
    if claims.data.as_deref().map(str::as_bytes) != Some(body) {
        return Err(JwtError::Body);
    }
    if let Some(expected) = issuer
        && claims.iss.as_deref() != Some(expected)
    {
        return Err(JwtError::Issuer);
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Samples.

/// Events in the shapes of Lago's serializers, with `{{customer_id}}` (the
/// external customer id) and `{{subscription_id}}` (the external
/// subscription id) placeholders. The event id travels in the
/// `X-Lago-Unique-Key` header, so the bodies have no `{{event_id}}`.
pub const SAMPLES: Samples = Samples(&[
    ("subscription.started", include_str!("../../samples/lago/subscription.started.json")),
    ("invoice.created", include_str!("../../samples/lago/invoice.created.json")),
    ("invoice.payment_status_updated", include_str!("../../samples/lago/invoice.payment_status_updated.json")),
    ("invoice.payment_failure", include_str!("../../samples/lago/invoice.payment_failure.json")),
    ("credit_note.created", include_str!("../../samples/lago/credit_note.created.json")),
    ("subscription.terminated", include_str!("../../samples/lago/subscription.terminated.json")),
]);

/// Ids for a sample: the unique key is a UUID, as Lago's.
pub fn sample_ids() -> SampleIds {
    SampleIds {
        event_id: uuid::Uuid::new_v4().to_string(),
        payment_id: uuid::Uuid::new_v4().to_string(),
        refund_id: uuid::Uuid::new_v4().to_string(),
        ..SampleIds::random("evt")
    }
}

/// The headers Lago sends in `hmac` mode.
pub fn hmac_headers(
    body: &[u8],
    key: &Secret,
    unique_key: &str,
) -> Result<HeaderMap, http::header::InvalidHeaderValue> {
    let mut headers = HeaderMap::new();
    headers.insert(SIGNATURE_HEADER, hmac_signature(body, key).parse()?);
    headers.insert(ALGORITHM_HEADER, http::HeaderValue::from_static("hmac"));
    headers.insert(UNIQUE_KEY_HEADER, unique_key.parse()?);
    Ok(headers)
}

// ---------------------------------------------------------------------------
// Parsing and mapping.

#[derive(Deserialize)]
struct Envelope {
    webhook_type: Option<String>,
    object_type: Option<String>,
}

/// Parses a verified body into the domain's event, keyed by the
/// `X-Lago-Unique-Key` value. `received_at` stands in for events that carry
/// no time of their own.
pub fn parse_event(unique_key: &str, body: &[u8], received_at: OffsetDateTime) -> Result<VerifiedEvent, Rejection> {
    let event_id = EventId::parse(unique_key)?;
    let value: Value = serde_json::from_slice(body)
        .map_err(|_| Rejection::InvalidPayload { reason: "not a JSON object with Lago's webhook fields" })?;
    let envelope = Envelope::deserialize(&value)
        .map_err(|_| Rejection::InvalidPayload { reason: "not a JSON object with Lago's webhook fields" })?;
    let webhook_type = envelope
        .webhook_type
        .filter(|t| !t.is_empty())
        .ok_or(Rejection::InvalidPayload { reason: "no webhook_type" })?;
    let object_type = envelope.object_type.ok_or(Rejection::InvalidPayload { reason: "no object_type" })?;
    let object = value
        .get(&object_type)
        .filter(|o| o.is_object())
        .ok_or(Rejection::InvalidPayload { reason: "no object under the object_type key" })?;

    let fingerprint = super::fingerprint(&webhook_type, body);

    Ok(VerifiedEvent { event_id, fingerprint, event: normalize(webhook_type, object, received_at) })
}

fn normalize(event_type: String, o: &Value, received_at: OffsetDateTime) -> DomainEvent {
    let occurred_at = time_at(o, &["updated_at"]).or_else(|| time_at(o, &["created_at"])).unwrap_or(received_at);
    let mut event = DomainEvent {
        currency: str_at(o, &["currency"]),
        object: str_at(o, &["lago_id"]),
        ..DomainEvent::new(event_type, occurred_at)
    };

    match event.event_type.as_str() {
        "subscription.started" | "subscription.terminated" | "subscription.trial_ended" | "subscription.updated" => {
            event.customer = str_at(o, &["external_customer_id"]);
            event.subscription = str_at(o, &["external_id"]);
            event.plan = str_at(o, &["plan_code"]);
            event.status = str_at(o, &["status"]);
            event.currency = str_at(o, &["plan_amount_currency"]);
            event.period = period_at(o, &["current_billing_period_started_at"], &["current_billing_period_ending_at"]);
            let previous_plan = str_at(o, &["previous_plan_code"]);
            let next_plan = str_at(o, &["next_plan_code"]);
            let trial_days = at(o, &["plan", "trial_period"]).and_then(Value::as_f64).unwrap_or(0.0);
            event.kind = match event.event_type.as_str() {
                "subscription.started" => {
                    event.occurred_at = time_at(o, &["started_at"]).unwrap_or(event.occurred_at);
                    if previous_plan.is_some() {
                        EventKind::SubscriptionUpdated
                    } else if trial_days > 0.0 {
                        EventKind::TrialStarted
                    } else {
                        EventKind::Purchase
                    }
                }
                "subscription.terminated" => {
                    event.occurred_at = time_at(o, &["terminated_at"]).unwrap_or(event.occurred_at);
                    if next_plan.is_some() {
                        event.plan = next_plan;
                        EventKind::SubscriptionUpdated
                    } else {
                        EventKind::Cancellation
                    }
                }
                _ => EventKind::SubscriptionUpdated,
            };
        }
        "invoice.created" | "invoice.payment_status_updated" => {
            event.customer = str_at(o, &["customer", "external_id"]);
            let fee = o
                .get("fees")
                .and_then(Value::as_array)
                .and_then(|fees| {
                    fees.iter().find(|fee| str_at(fee, &["item", "type"]).as_deref() == Some("subscription"))
                })
                .unwrap_or(&Value::Null);
            let billing_period = at(o, &["billing_periods", "0"]).unwrap_or(&Value::Null);
            event.subscription = str_at(fee, &["external_subscription_id"])
                .or_else(|| str_at(billing_period, &["external_subscription_id"]));
            event.plan = str_at(fee, &["item", "code"]);
            event.period = period_at(fee, &["from_date"], &["to_date"])
                .or_else(|| period_at(billing_period, &["subscription_from_datetime"], &["subscription_to_datetime"]));
            event.amount_minor = int_at(o, &["total_amount_cents"]);
            let subscription_invoice = str_at(o, &["invoice_type"]).as_deref() == Some("subscription");
            event.kind = match str_at(o, &["payment_status"]).as_deref() {
                Some("succeeded") if subscription_invoice => {
                    event.payment = str_at(o, &["lago_id"]);
                    EventKind::Renewal
                }
                Some("failed") if event.event_type == "invoice.payment_status_updated" => EventKind::PaymentFailed,
                _ => EventKind::Other,
            };
        }
        "invoice.payment_failure" => {
            event.kind = EventKind::PaymentFailed;
            event.customer = str_at(o, &["external_customer_id"]);
        }
        "credit_note.created" => {
            event.customer = str_at(o, &["customer", "external_id"]);
            event.subscription = str_at(o, &["items", "0", "fee", "external_subscription_id"]);
            let refund = int_at(o, &["refund_amount_cents"]).filter(|cents| *cents > 0);
            if refund.is_some() {
                event.kind = EventKind::Refund;
                event.amount_minor = refund;
                event.refund_id = str_at(o, &["lago_id"]);
                event.payment = str_at(o, &["lago_invoice_id"]);
            }
        }
        customer_event if customer_event.starts_with("customer.") => {
            event.customer = str_at(o, &["external_id"]);
        }
        _ => {
            event.customer = str_at(o, &["external_customer_id"]).or_else(|| str_at(o, &["customer", "external_id"]));
        }
    }
    event.account = event.customer.clone();
    event
}

fn at<'v>(value: &'v Value, path: &[&str]) -> Option<&'v Value> {
    path.iter().try_fold(value, |v, key| match v {
        Value::Array(items) => key.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => v.get(key),
    })
}

fn str_at(value: &Value, path: &[&str]) -> Option<String> {
    at(value, path).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned)
}

fn int_at(value: &Value, path: &[&str]) -> Option<i64> {
    at(value, path).and_then(Value::as_i64)
}

fn time_at(value: &Value, path: &[&str]) -> Option<OffsetDateTime> {
    at(value, path).and_then(Value::as_str).and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok())
}

fn period_at(value: &Value, start: &[&str], end: &[&str]) -> Option<Period> {
    Some(Period { start: time_at(value, start)?, end: time_at(value, end)? })
}

#[cfg(test)]
mod tests {
    use rsa::signature::{SignatureEncoding, Signer};

    use super::*;

    /// Two key pairs made once per test run (Lago publishes no test key, and
    /// no private key is kept in the repository): one signs, the other is
    /// the wrong key.
    struct TestKeys {
        private: rsa::PrivateKey,
        public_pem: String,
        other_public_pem: String,
    }

    fn test_keys() -> &'static TestKeys {
        use rsa::Generate as _;
        use rsa::pkcs8::{EncodePublicKey, LineEnding};
        static KEYS: std::sync::OnceLock<TestKeys> = std::sync::OnceLock::new();
        KEYS.get_or_init(|| {
            let pem = |key: &rsa::PrivateKey| key.to_public_key().to_public_key_pem(LineEnding::LF).unwrap();
            let private = rsa::PrivateKey::try_generate().unwrap();
            let other = rsa::PrivateKey::try_generate().unwrap();
            TestKeys { public_pem: pem(&private), other_public_pem: pem(&other), private }
        })
    }
    const ISSUER: &str = "http://lago.test";

    /// Vectors computed independently with
    /// `python3 -c 'import hmac,hashlib,base64; print(base64.b64encode(hmac.new(KEY, BODY, hashlib.sha256).digest()).decode())'`.
    const KAT_BODY: &[u8] =
        br#"{"webhook_type":"customer.created","object_type":"customer","customer":{"external_id":"cus_1"}}"#;
    /// KEY = `lago-test-hmac-key`.
    const KAT_SIGNATURE: &str = "5VtVuK/wNSkUqb5Iwhgb27m4IGVmUuf7AlUFZ0MUSMI=";
    /// KEY = `lago-rotated-key`.
    const KAT_ROTATED_SIGNATURE: &str = "TKf4h6Lo2Yg9YIYcwiz8bqfEx3PowheHZ3d14ikT0Z8=";
    /// KEY = `lago-test-hmac-key`, BODY = empty.
    const KAT_EMPTY_SIGNATURE: &str = "LEZGdi9hfGzP7Z3Poy7vt3ggu6LWZmEjOnTwiB0XnaM=";
    const UNIQUE_KEY: &str = "6f4b2a0e-8a51-4f1e-9a0c-5d2b7c3e1f90";

    fn keys(list: &str) -> SecretSet {
        SecretSet::from_comma_separated(list).unwrap()
    }

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_775_000_000).unwrap()
    }

    fn headers(signature: &str, algorithm: &str, unique_key: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(SIGNATURE_HEADER, signature.parse().unwrap());
        headers.insert(ALGORITHM_HEADER, algorithm.parse().unwrap());
        if let Some(unique_key) = unique_key {
            headers.insert(UNIQUE_KEY_HEADER, unique_key.parse().unwrap());
        }
        headers
    }

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// A compact JWT of `header` and `claims`, signed RS256 with the test key.
    fn rs256_token(header: &Value, claims: &Value) -> String {
        let key = pkcs1v15::SigningKey::<Sha256>::new(test_keys().private.clone());
        let signing_input = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
        let signature = key.sign(signing_input.as_bytes()).to_vec();
        format!("{signing_input}.{}", b64(&signature))
    }

    fn lago_token(body: &[u8]) -> String {
        rs256_token(
            &serde_json::json!({"alg": "RS256"}),
            &serde_json::json!({"data": std::str::from_utf8(body).unwrap(), "iss": ISSUER}),
        )
    }

    fn verifying_key(pem: &str) -> pkcs1v15::VerifyingKey<Sha256> {
        pkcs1v15::VerifyingKey::new(parse_public_key(pem).unwrap())
    }

    fn jwt_verifier(public_key: &str) -> LagoVerifier {
        let jwt = JwtVerification::new(Arc::new(StaticPublicKeySource::new(public_key)), Some(ISSUER.to_owned()));
        LagoVerifier::new(None, Some(jwt)).unwrap()
    }

    #[test]
    fn hmac_signatures_match_independently_computed_vectors() {
        assert_eq!(hmac_signature(KAT_BODY, &Secret::new("lago-test-hmac-key")), KAT_SIGNATURE);
        assert_eq!(hmac_signature(KAT_BODY, &Secret::new("lago-rotated-key")), KAT_ROTATED_SIGNATURE);
        assert_eq!(hmac_signature(b"", &Secret::new("lago-test-hmac-key")), KAT_EMPTY_SIGNATURE);
        assert_eq!(verify_hmac(KAT_SIGNATURE, KAT_BODY, &keys("lago-test-hmac-key")), Ok(()));
    }

    #[test]
    fn during_a_rotation_either_key_verifies() {
        let both = keys("lago-test-hmac-key, lago-rotated-key");
        assert_eq!(verify_hmac(KAT_SIGNATURE, KAT_BODY, &both), Ok(()));
        assert_eq!(verify_hmac(KAT_ROTATED_SIGNATURE, KAT_BODY, &both), Ok(()));
        assert_eq!(
            verify_hmac(KAT_ROTATED_SIGNATURE, KAT_BODY, &keys("lago-test-hmac-key")),
            Err(Rejection::SignatureMismatch)
        );
    }

    #[test]
    fn one_changed_body_byte_fails_hmac_with_401() {
        let mut body = KAT_BODY.to_vec();
        body[30] ^= 1;
        let rejection = verify_hmac(KAT_SIGNATURE, &body, &keys("lago-test-hmac-key")).unwrap_err();
        assert_eq!((rejection.status(), rejection.code()), (401, "invalid_signature"));
    }

    #[test]
    fn an_hmac_signature_that_is_not_base64_is_malformed() {
        let rejection = verify_hmac("not base64!", KAT_BODY, &keys("k")).unwrap_err();
        assert_eq!((rejection.status(), rejection.code()), (400, "malformed_signature"));
    }

    #[tokio::test]
    async fn an_hmac_delivery_verifies_and_is_keyed_by_its_unique_key() {
        let verifier = LagoVerifier::hmac(keys("lago-test-hmac-key"));
        let headers = headers(KAT_SIGNATURE, "hmac", Some(UNIQUE_KEY));
        let verified = verifier.verify(&Inbound::new(&headers, KAT_BODY), now()).await.unwrap();
        assert_eq!(verified.event_id.as_str(), UNIQUE_KEY);
        assert_eq!(verified.event.event_type, "customer.created");
        assert_eq!(verified.event.kind, EventKind::Other);
        assert_eq!(verified.event.account.as_deref(), Some("cus_1"));
    }

    #[tokio::test]
    async fn missing_or_unknown_headers_are_400s_with_codes() {
        let verifier = LagoVerifier::hmac(keys("lago-test-hmac-key"));
        let check = |headers: HeaderMap, code: &'static str| {
            let verifier = &verifier;
            async move {
                let rejection = verifier.verify(&Inbound::new(&headers, KAT_BODY), now()).await.unwrap_err();
                assert_eq!((rejection.status(), rejection.code()), (400, code), "{rejection}");
            }
        };
        check(HeaderMap::new(), "missing_signature").await;
        let mut only_signature = HeaderMap::new();
        only_signature.insert(SIGNATURE_HEADER, KAT_SIGNATURE.parse().unwrap());
        check(only_signature, "missing_signature").await;
        check(headers(KAT_SIGNATURE, "hmac-sha512", Some(UNIQUE_KEY)), "malformed_signature").await;
        check(headers(KAT_SIGNATURE, "jwt", Some(UNIQUE_KEY)), "malformed_signature").await;
        check(headers(KAT_SIGNATURE, "hmac", None), "missing_signature").await;
        check(headers(KAT_SIGNATURE, "hmac", Some("not a key")), "invalid_event_id").await;
    }

    #[tokio::test]
    async fn a_valid_rs256_token_binding_the_body_verifies() {
        let token = lago_token(KAT_BODY);
        assert_eq!(verify_jwt(&token, KAT_BODY, &verifying_key(test_keys().public_pem.as_str()), Some(ISSUER)), Ok(()));
        let headers = headers(&token, "jwt", Some(UNIQUE_KEY));
        let verified = jwt_verifier(test_keys().public_pem.as_str())
            .verify(&Inbound::new(&headers, KAT_BODY), now())
            .await
            .unwrap();
        assert_eq!(verified.event_id.as_str(), UNIQUE_KEY);
    }

    #[tokio::test]
    async fn the_public_key_is_read_as_lagos_endpoint_returns_it() {
        // Ruby's Base64.encode64: base64 of the PEM with a newline every 60 characters.
        let encoded = STANDARD.encode(test_keys().public_pem.as_str());
        let wrapped: String =
            encoded.as_bytes().chunks(60).map(|line| format!("{}\n", std::str::from_utf8(line).unwrap())).collect();
        let token = lago_token(KAT_BODY);
        let headers = headers(&token, "jwt", Some(UNIQUE_KEY));
        assert!(jwt_verifier(&wrapped).verify(&Inbound::new(&headers, KAT_BODY), now()).await.is_ok());
        assert!(matches!(parse_public_key("a2V5"), Err(PublicKeyError::Unusable)));
    }

    #[test]
    fn a_token_with_alg_none_is_refused_before_any_key_is_used() {
        let claims = serde_json::json!({"data": std::str::from_utf8(KAT_BODY).unwrap(), "iss": ISSUER});
        let token = format!("{}.{}.", b64(br#"{"alg":"none"}"#), b64(claims.to_string().as_bytes()));
        let key = verifying_key(test_keys().public_pem.as_str());
        assert_eq!(verify_jwt(&token, KAT_BODY, &key, Some(ISSUER)), Err(JwtError::Algorithm));
        let rejection = JwtError::Algorithm.rejection();
        assert_eq!((rejection.status(), rejection.code()), (400, "unsupported_algorithm"));
    }

    #[test]
    fn an_hs256_token_keyed_with_the_public_key_is_refused() {
        let claims = serde_json::json!({"data": std::str::from_utf8(KAT_BODY).unwrap(), "iss": ISSUER});
        let signing_input =
            format!("{}.{}", b64(br#"{"alg":"HS256","typ":"JWT"}"#), b64(claims.to_string().as_bytes()));
        let mut mac = HmacSha256::new_from_slice(test_keys().public_pem.as_bytes()).unwrap();
        mac.update(signing_input.as_bytes());
        let token = format!("{signing_input}.{}", b64(&mac.finalize().into_bytes()));
        assert_eq!(
            verify_jwt(&token, KAT_BODY, &verifying_key(test_keys().public_pem.as_str()), Some(ISSUER)),
            Err(JwtError::Algorithm)
        );
    }

    #[test]
    fn other_rsa_digests_are_refused_too() {
        let token = rs256_token(
            &serde_json::json!({"alg": "RS512"}),
            &serde_json::json!({"data": std::str::from_utf8(KAT_BODY).unwrap(), "iss": ISSUER}),
        );
        assert_eq!(
            verify_jwt(&token, KAT_BODY, &verifying_key(test_keys().public_pem.as_str()), Some(ISSUER)),
            Err(JwtError::Algorithm)
        );
    }

    #[tokio::test]
    async fn a_token_signed_with_another_key_is_a_401() {
        let token = lago_token(KAT_BODY);
        assert_eq!(
            verify_jwt(&token, KAT_BODY, &verifying_key(test_keys().other_public_pem.as_str()), Some(ISSUER)),
            Err(JwtError::Signature)
        );
        let headers = headers(&token, "jwt", Some(UNIQUE_KEY));
        let rejection = jwt_verifier(test_keys().other_public_pem.as_str())
            .verify(&Inbound::new(&headers, KAT_BODY), now())
            .await
            .unwrap_err();
        assert_eq!((rejection.status(), rejection.code()), (401, "invalid_signature"));
    }

    #[test]
    fn a_valid_token_for_another_body_does_not_vouch_for_this_one() {
        let token = lago_token(br#"{"webhook_type":"customer.created","object_type":"customer","customer":{}}"#);
        let key = verifying_key(test_keys().public_pem.as_str());
        assert_eq!(verify_jwt(&token, KAT_BODY, &key, Some(ISSUER)), Err(JwtError::Body));
        // Nor for the same JSON re-serialized.
        let spaced = String::from_utf8(KAT_BODY.to_vec()).unwrap().replace(',', ", ");
        assert_eq!(verify_jwt(&lago_token(KAT_BODY), spaced.as_bytes(), &key, Some(ISSUER)), Err(JwtError::Body));
    }

    #[test]
    fn a_token_from_another_issuer_is_refused_when_one_is_configured() {
        let token = rs256_token(
            &serde_json::json!({"alg": "RS256"}),
            &serde_json::json!({"data": std::str::from_utf8(KAT_BODY).unwrap(), "iss": "https://evil.test"}),
        );
        let key = verifying_key(test_keys().public_pem.as_str());
        assert_eq!(verify_jwt(&token, KAT_BODY, &key, Some(ISSUER)), Err(JwtError::Issuer));
        assert_eq!(verify_jwt(&token, KAT_BODY, &key, None), Ok(()));
    }

    #[test]
    fn a_tampered_token_payload_breaks_the_signature() {
        let token = lago_token(KAT_BODY);
        let parts: Vec<&str> = token.split('.').collect();
        let forged_claims = serde_json::json!({"data": "{}", "iss": ISSUER});
        let forged = format!("{}.{}.{}", parts[0], b64(forged_claims.to_string().as_bytes()), parts[2]);
        let key = verifying_key(test_keys().public_pem.as_str());
        assert_eq!(verify_jwt(&forged, b"{}", &key, Some(ISSUER)), Err(JwtError::Signature));
        for garbage in ["", "a.b", "a.b.c.d", "!!.!!.!!"] {
            assert!(matches!(verify_jwt(garbage, KAT_BODY, &key, None), Err(JwtError::Malformed(_))), "{garbage:?}");
        }
    }

    #[tokio::test]
    async fn a_public_key_that_cannot_be_read_answers_503_so_lago_retries() {
        let headers = headers(&lago_token(KAT_BODY), "jwt", Some(UNIQUE_KEY));
        let rejection = jwt_verifier("not a key").verify(&Inbound::new(&headers, KAT_BODY), now()).await.unwrap_err();
        assert_eq!(rejection.status(), 503);
    }

    #[tokio::test]
    async fn a_signed_sample_verifies_with_its_ids_unique_key_as_the_event_id() {
        let ids = sample_ids();
        let body = SAMPLES.event("invoice.payment_status_updated", &ids).unwrap();
        let signed =
            crate::providers::sign_sample(Provider::Lago, body.as_bytes(), &ids, "k-new, k-old", now()).unwrap();
        let verifier = crate::providers::verifier(
            Provider::Lago,
            keys("k-old, k-new"),
            &crate::providers::VerifierSettings::default(),
        );
        let verified = verifier.verify(&Inbound::new(&signed.headers, body.as_bytes()), now()).await.unwrap();
        assert_eq!(verified.event_id.as_str(), ids.event_id);
        assert_eq!(verified.event.kind, EventKind::Renewal);
    }

    #[test]
    fn every_sample_parses_into_the_kind_it_illustrates() {
        let ids = sample_ids();
        assert!(uuid::Uuid::parse_str(&ids.event_id).is_ok());
        let expected = [
            ("subscription.started", EventKind::Purchase),
            ("invoice.created", EventKind::Other),
            ("invoice.payment_status_updated", EventKind::Renewal),
            ("invoice.payment_failure", EventKind::PaymentFailed),
            ("credit_note.created", EventKind::Refund),
            ("subscription.terminated", EventKind::Cancellation),
        ];
        assert_eq!(SAMPLES.types().count(), expected.len());
        for (event_type, kind) in expected {
            let body = SAMPLES.event(event_type, &ids).unwrap();
            assert!(!body.contains("{{"), "{event_type} keeps a placeholder");
            let verified = parse_event(&ids.event_id, body.as_bytes(), now()).unwrap();
            assert_eq!(verified.event_id.as_str(), ids.event_id);
            let event = verified.event;
            assert_eq!(event.event_type, event_type);
            assert_eq!(event.kind, kind, "{event_type}");
            assert_eq!(event.account.as_deref(), Some(ids.customer_id.as_str()), "{event_type}");
            if event_type != "invoice.payment_failure" {
                assert_eq!(event.subscription.as_deref(), Some(ids.subscription_id.as_str()), "{event_type}");
                assert_ne!(event.occurred_at, now(), "{event_type} has its own time");
            }
        }
    }

    fn sample(event_type: &str) -> DomainEvent {
        let ids = sample_ids();
        let body = SAMPLES.event(event_type, &ids).unwrap();
        parse_event(&ids.event_id, body.as_bytes(), now()).unwrap().event
    }

    fn datetime(text: &str) -> OffsetDateTime {
        OffsetDateTime::parse(text, &Rfc3339).unwrap()
    }

    #[test]
    fn a_paid_renewal_carries_its_period_amount_and_plan() {
        let event = sample("invoice.payment_status_updated");
        assert_eq!(event.amount_minor, Some(5880));
        assert_eq!(event.currency.as_deref(), Some("EUR"));
        assert_eq!(event.plan.as_deref(), Some("pro_monthly"));
        assert_eq!(
            event.period,
            Some(Period { start: datetime("2026-03-15T00:00:00Z"), end: datetime("2026-04-14T23:59:59Z") })
        );
        assert_eq!(event.occurred_at, datetime("2026-03-15T00:05:40Z"));
    }

    #[test]
    fn both_events_of_one_paid_invoice_name_the_same_period() {
        let ids = sample_ids();
        let created = SAMPLES
            .event("invoice.created", &ids)
            .unwrap()
            .replace(r#""payment_status": "pending""#, r#""payment_status": "succeeded""#);
        let created = parse_event(&ids.event_id, created.as_bytes(), now()).unwrap().event;
        let updated = sample("invoice.payment_status_updated");
        assert_eq!(created.kind, EventKind::Renewal);
        assert_eq!((created.period, created.amount_minor), (updated.period, updated.amount_minor));
    }

    #[test]
    fn a_refund_is_keyed_by_its_credit_note() {
        let event = sample("credit_note.created");
        assert!(event.refund_id.as_deref().is_some_and(|id| uuid::Uuid::parse_str(id).is_ok()));
        assert!(event.payment.as_deref().is_some_and(|id| uuid::Uuid::parse_str(id).is_ok()));
        assert_eq!(event.amount_minor, Some(2940));
        assert_eq!(event.currency.as_deref(), Some("EUR"));
    }

    #[test]
    fn a_credit_only_note_refunds_nothing() {
        let ids = sample_ids();
        let body = SAMPLES
            .event("credit_note.created", &ids)
            .unwrap()
            .replace(r#""refund_amount_cents": 2940"#, r#""refund_amount_cents": 0"#);
        let event = parse_event(&ids.event_id, body.as_bytes(), now()).unwrap().event;
        assert_eq!((event.kind, event.refund_id), (EventKind::Other, None));
    }

    #[test]
    fn a_purchase_and_a_cancellation_carry_plan_period_and_time() {
        let started = sample("subscription.started");
        assert_eq!(started.plan.as_deref(), Some("pro_monthly"));
        assert_eq!(started.occurred_at, datetime("2026-01-15T09:30:00.120Z"));
        assert!(started.period.is_some());
        let terminated = sample("subscription.terminated");
        assert_eq!(terminated.occurred_at, datetime("2026-04-02T17:45:10Z"));
    }

    #[test]
    fn a_plan_change_is_an_update_not_a_cancellation_and_a_purchase() {
        let ids = sample_ids();
        let terminated = SAMPLES
            .event("subscription.terminated", &ids)
            .unwrap()
            .replace(r#""next_plan_code": null"#, r#""next_plan_code": "team_monthly""#);
        let terminated = parse_event(&ids.event_id, terminated.as_bytes(), now()).unwrap().event;
        assert_eq!(terminated.kind, EventKind::SubscriptionUpdated);
        assert_eq!(terminated.plan.as_deref(), Some("team_monthly"));
        let started = SAMPLES
            .event("subscription.started", &ids)
            .unwrap()
            .replace(r#""previous_plan_code": null"#, r#""previous_plan_code": "basic_monthly""#);
        let started = parse_event(&ids.event_id, started.as_bytes(), now()).unwrap().event;
        assert_eq!(started.kind, EventKind::SubscriptionUpdated);
    }

    #[test]
    fn a_plan_with_a_trial_starts_a_trial() {
        let ids = sample_ids();
        let body = SAMPLES
            .event("subscription.started", &ids)
            .unwrap()
            .replace(r#""trial_period": 0.0"#, r#""trial_period": 14.0"#);
        let event = parse_event(&ids.event_id, body.as_bytes(), now()).unwrap().event;
        assert_eq!(event.kind, EventKind::TrialStarted);
    }

    #[test]
    fn a_failed_payment_without_a_time_takes_the_time_of_receipt() {
        let event = sample("invoice.payment_failure");
        assert_eq!(event.occurred_at, now());
    }

    #[test]
    fn the_fingerprint_covers_the_type_and_every_body_byte() {
        let fp = |body: &[u8]| parse_event(UNIQUE_KEY, body, now()).unwrap().fingerprint;
        let other =
            br#"{"webhook_type":"customer.created","object_type":"customer","customer":{"external_id":"cus_2"}}"#;
        assert_eq!(fp(KAT_BODY), fp(KAT_BODY));
        assert_ne!(fp(KAT_BODY), fp(other));
    }

    #[test]
    fn bodies_that_are_not_lago_envelopes_are_refused_without_quoting_them() {
        for body in [
            &b"not json"[..],
            b"[1,2]",
            br#"{"object_type":"customer","customer":{}}"#,
            br#"{"webhook_type":"x","object_type":"customer"}"#,
            br#"{"webhook_type":"x","object_type":"customer","customer":"zzz-payload-zzz"}"#,
        ] {
            let rejection = parse_event(UNIQUE_KEY, body, now()).unwrap_err();
            assert_eq!(rejection.code(), "invalid_payload");
            assert!(!rejection.to_string().contains("zzz-payload-zzz"));
        }
    }
}

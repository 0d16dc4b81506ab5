//! PayPal (REST webhooks): an RSA signature (PKCS#1 v1.5, SHA-256) over
//! `transmission_id|transmission_time|webhook_id|crc32(raw body)`, made with
//! the key of the X.509 certificate that `PAYPAL-CERT-URL` points at, and
//! the mapping of PayPal's event types onto the domain's events.
//!
//! PayPal has no shared secret: the per-endpoint *webhook id* goes into the
//! signed string instead. It is not secret, but it is what ties a delivery
//! to this endpoint, so it travels through the same [`SecretSet`] plumbing
//! as other providers' secrets (several ids may be active).
//!
//! Two ways to check a signature, behind [`SignatureCheck`]:
//!
//! - [`OfflineCheck`] (the default): fetch the certificate through a
//!   [`CertificateSource`] (after the URL passed [`allowed_certificate_url`]),
//!   cache it per URL for the life of the process, refuse it outside its
//!   validity window, verify the RSA signature locally.
//! - [`ApiCheck`]: ask PayPal's `verify-webhook-signature` API, with an
//!   OAuth token from the app's client credentials.
//!
//! Stricter than PayPal's SDKs: the transmission time is checked against a
//! window in both directions (PayPal signs it but nothing checks it), and
//! the certificate URL must be one of PayPal's own before anything is
//! fetched, so a forged header cannot make the function call elsewhere.
//! The certificate chain is not validated against a bundled CA: the
//! certificate is only ever fetched over verified TLS from PayPal's API
//! hosts, which is what vouches for it.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use http::{HeaderMap, HeaderValue};
use rsa::pkcs1v15::{Signature, SigningKey, VerifyingKey};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, LineEnding};
use rsa::signature::{SignatureEncoding, Signer, Verifier as _};
use rsa::{PrivateKey, PublicKey};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
use sha2::Sha256;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use url::{Host, Url};
use x509_cert::Certificate;
use x509_cert::der::{Decode, Encode, EncodePem};

use super::json::{at, str_at};
use super::{Inbound, Rejection, SampleIds, Samples, SignError, SignedRequest, VerifiedEvent, Verifier};
use crate::event::{DomainEvent, EventId, EventKind, Provider};
use crate::secret::{Secret, SecretSet};

pub const TRANSMISSION_ID: &str = "paypal-transmission-id";
pub const TRANSMISSION_TIME: &str = "paypal-transmission-time";
pub const TRANSMISSION_SIG: &str = "paypal-transmission-sig";
pub const CERT_URL: &str = "paypal-cert-url";
pub const AUTH_ALGO: &str = "paypal-auth-algo";
/// The only `PAYPAL-AUTH-ALGO` PayPal sends (and the only one accepted).
pub const SHA256_WITH_RSA: &str = "SHA256withRSA";

/// Hosts PayPal serves its signing certificates from, live and sandbox.
pub const CERTIFICATE_HOSTS: &[&str] =
    &["api.paypal.com", "api.sandbox.paypal.com", "api-m.paypal.com", "api-m.sandbox.paypal.com"];
pub const CERTIFICATE_PATH: &str = "/v1/notifications/certs/";

/// PayPal's API, live; `https://api-m.sandbox.paypal.com` for the sandbox.
pub const LIVE_API_BASE: &str = "https://api-m.paypal.com";

/// Certificates are a few KiB; anything much larger is not one.
const MAX_CERTIFICATE_BYTES: usize = 64 * 1024;
const HTTP_TIMEOUT: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------
// The verifier

#[derive(Debug, Clone)]
pub struct PaypalVerifier {
    webhook_ids: SecretSet,
    tolerance: Duration,
    check: Arc<dyn SignatureCheck>,
}

impl PaypalVerifier {
    pub fn new(webhook_ids: SecretSet, tolerance: Duration, check: Arc<dyn SignatureCheck>) -> Self {
        Self { webhook_ids, tolerance, check }
    }

    /// Offline verification with certificates fetched over HTTPS.
    pub fn offline_over_https(webhook_ids: SecretSet, tolerance: Duration) -> Self {
        Self::new(webhook_ids, tolerance, Arc::new(OfflineCheck::new(Arc::new(HttpCertificateSource::new()))))
    }
}

#[async_trait]
impl Verifier for PaypalVerifier {
    fn provider(&self) -> Provider {
        Provider::Paypal
    }

    async fn verify(&self, inbound: &Inbound<'_>, now: OffsetDateTime) -> Result<VerifiedEvent, Rejection> {
        let transmission = Transmission::from_headers(inbound.headers)?;
        let age = (now - transmission.time).unsigned_abs();
        if age > self.tolerance {
            return Err(Rejection::TimestampOutOfTolerance { tolerance_secs: self.tolerance.as_secs() });
        }
        self.check.check(&transmission, inbound.body, &self.webhook_ids, now).await?;
        parse_event(inbound.body)
    }
}

/// The signature headers of one delivery, checked for shape (not yet for
/// authenticity).
#[derive(Debug, Clone)]
pub struct Transmission<'a> {
    pub id: &'a str,
    /// As sent: it is part of the signed string.
    pub time_text: &'a str,
    pub time: OffsetDateTime,
    pub signature: Vec<u8>,
    pub signature_text: &'a str,
    pub cert_url: Url,
}

impl<'a> Transmission<'a> {
    /// Every header present and well formed, the algorithm the one PayPal
    /// uses, the certificate URL one of PayPal's (I1: nothing fetched yet).
    pub fn from_headers(headers: &'a HeaderMap) -> Result<Self, Rejection> {
        let id = header(headers, TRANSMISSION_ID)?;
        let time_text = header(headers, TRANSMISSION_TIME)?;
        let signature_text = header(headers, TRANSMISSION_SIG)?;
        let cert_url = header(headers, CERT_URL)?;
        let algo = header(headers, AUTH_ALGO)?;
        if algo != SHA256_WITH_RSA {
            return Err(Rejection::UnsupportedAlgorithm { header: AUTH_ALGO });
        }
        let cert_url = allowed_certificate_url(cert_url)?;
        if id.is_empty() || id.contains('|') {
            return Err(malformed(TRANSMISSION_ID, "not a transmission id"));
        }
        let time = OffsetDateTime::parse(time_text, &Rfc3339)
            .map_err(|_| malformed(TRANSMISSION_TIME, "not an ISO-8601 time"))?;
        let signature = BASE64.decode(signature_text).map_err(|_| malformed(TRANSMISSION_SIG, "not base64"))?;
        Ok(Self { id, time_text, time, signature, signature_text, cert_url })
    }

    /// The string PayPal signs for `webhook_id`.
    pub fn signed_string(&self, webhook_id: &str, body: &[u8]) -> String {
        signed_string(self.id, self.time_text, webhook_id, body)
    }
}

fn header<'h>(headers: &'h HeaderMap, name: &'static str) -> Result<&'h str, Rejection> {
    super::single_header(headers, name).map(str::trim)
}

fn malformed(header: &'static str, reason: &'static str) -> Rejection {
    Rejection::MalformedSignature { header, reason }
}

/// `transmission_id|transmission_time|webhook_id|crc32`, the CRC32 (IEEE,
/// as zlib) of the raw body as an unsigned decimal.
pub fn signed_string(transmission_id: &str, transmission_time: &str, webhook_id: &str, body: &[u8]) -> String {
    format!("{transmission_id}|{transmission_time}|{webhook_id}|{}", crc32fast::hash(body))
}

/// Parses `raw` and accepts it only if it is one of PayPal's certificate
/// URLs: `https`, no user info, port 443 if any, a PayPal API host by name
/// (no IP literal), a path under `/v1/notifications/certs/`, no query or
/// fragment.
pub fn allowed_certificate_url(raw: &str) -> Result<Url, Rejection> {
    let url = Url::parse(raw).map_err(|_| Rejection::CertificateUrlNotAllowed)?;
    let host_ok = match url.host() {
        Some(Host::Domain(host)) => CERTIFICATE_HOSTS.contains(&host),
        _ => false,
    };
    let allowed = url.scheme() == "https"
        && url.username().is_empty()
        && url.password().is_none()
        && url.port().is_none_or(|port| port == 443)
        && host_ok
        && url.path().starts_with(CERTIFICATE_PATH)
        && url.path().len() > CERTIFICATE_PATH.len()
        // PayPal's certificate URLs carry neither: nothing to bounce through.
        && url.query().is_none()
        && url.fragment().is_none()
        // The parser resolves `..`; a percent-encoded one must not sneak out.
        && !url.path().to_ascii_lowercase().contains("%2e")
        && !url.path().contains("%2f")
        && !url.path().contains("%2F");
    if allowed { Ok(url) } else { Err(Rejection::CertificateUrlNotAllowed) }
}

// ---------------------------------------------------------------------------
// Signature checks

/// Decides whether a well-formed transmission is authentic.
#[async_trait]
pub trait SignatureCheck: Send + Sync + std::fmt::Debug {
    async fn check(
        &self,
        transmission: &Transmission<'_>,
        body: &[u8],
        webhook_ids: &SecretSet,
        now: OffsetDateTime,
    ) -> Result<(), Rejection>;
}

/// Which [`SignatureCheck`] a deployment uses (`PAYPAL_VERIFICATION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VerificationMode {
    /// Verify locally with the certificate's key.
    #[default]
    Offline,
    /// Ask PayPal's verify-webhook-signature API.
    Api,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("PAYPAL_VERIFICATION must be offline or api")]
pub struct UnknownVerificationMode;

impl FromStr for VerificationMode {
    type Err = UnknownVerificationMode;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "" | "offline" => Ok(Self::Offline),
            "api" => Ok(Self::Api),
            _ => Err(UnknownVerificationMode),
        }
    }
}

/// A certificate PayPal signs with: its key and validity window.
#[derive(Debug, Clone)]
pub struct SigningCertificate {
    key: VerifyingKey<Sha256>,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
}

impl SigningCertificate {
    /// The first certificate of a PEM chain (PayPal serves the leaf first),
    /// or a single DER certificate.
    pub fn parse(bytes: &[u8]) -> Result<Self, Rejection> {
        let unusable = |reason| Rejection::InvalidCertificate { reason };
        let certificate = if bytes.trim_ascii_start().starts_with(b"-----BEGIN") {
            Certificate::load_pem_chain(bytes).ok().and_then(|chain| chain.into_iter().next())
        } else {
            Certificate::from_der(bytes).ok()
        }
        .ok_or(unusable("not an X.509 certificate"))?;
        let tbs = certificate.tbs_certificate();
        let spki = tbs.subject_public_key_info().to_der().map_err(|_| unusable("no public key"))?;
        let key = PublicKey::from_public_key_der(&spki).map_err(|_| unusable("not an RSA key"))?;
        let instant =
            |t: &x509_cert::time::Time| OffsetDateTime::from_unix_timestamp(t.to_unix_duration().as_secs() as i64).ok();
        let validity = tbs.validity();
        Ok(Self {
            key: VerifyingKey::new(key),
            not_before: instant(&validity.not_before).ok_or(unusable("bad validity"))?,
            not_after: instant(&validity.not_after).ok_or(unusable("bad validity"))?,
        })
    }

    pub fn check_validity(&self, now: OffsetDateTime) -> Result<(), Rejection> {
        if now < self.not_before {
            return Err(Rejection::InvalidCertificate { reason: "the certificate is not valid yet" });
        }
        if now > self.not_after {
            return Err(Rejection::InvalidCertificate { reason: "the certificate has expired" });
        }
        Ok(())
    }

    /// Whether `signature` is this key's over `message`.
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        Signature::try_from(signature).map(|signature| self.key.verify(message, &signature).is_ok()).unwrap_or(false)
    }
}

/// Verifies locally with the certificate's public key; certificates are
/// cached per URL for the life of the process (a cold start).
#[derive(Debug)]
pub struct OfflineCheck {
    source: Arc<dyn CertificateSource>,
    cache: RwLock<HashMap<String, Arc<SigningCertificate>>>,
}

impl OfflineCheck {
    pub fn new(source: Arc<dyn CertificateSource>) -> Self {
        Self { source, cache: RwLock::new(HashMap::new()) }
    }

    async fn certificate(&self, url: &Url) -> Result<Arc<SigningCertificate>, Rejection> {
        if let Some(cached) = self.cache.read().unwrap_or_else(|e| e.into_inner()).get(url.as_str()) {
            return Ok(cached.clone());
        }
        let bytes = self.source.fetch(url).await.map_err(|error| {
            tracing::warn!(error = %error, "PayPal certificate fetch failed");
            Rejection::VerificationUnavailable { reason: "the signing certificate could not be fetched" }
        })?;
        let certificate = Arc::new(SigningCertificate::parse(&bytes)?);
        self.cache.write().unwrap_or_else(|e| e.into_inner()).insert(url.as_str().to_owned(), certificate.clone());
        Ok(certificate)
    }
}

#[async_trait]
impl SignatureCheck for OfflineCheck {
    async fn check(
        &self,
        transmission: &Transmission<'_>,
        body: &[u8],
        webhook_ids: &SecretSet,
        now: OffsetDateTime,
    ) -> Result<(), Rejection> {
        let certificate = self.certificate(&transmission.cert_url).await?;
        certificate.check_validity(now)?;
        let crc = crc32fast::hash(body);
        // Every active id, without an early exit.
        let mut matched = false;
        for webhook_id in webhook_ids.iter() {
            let message = format!(
                "{}|{}|{}|{crc}",
                transmission.id,
                transmission.time_text,
                String::from_utf8_lossy(webhook_id.expose())
            );
            matched |= certificate.verifies(message.as_bytes(), &transmission.signature);
        }
        if matched { Ok(()) } else { Err(Rejection::SignatureMismatch) }
    }
}

/// Fetches a certificate (PEM or DER) by URL.
#[async_trait]
pub trait CertificateSource: Send + Sync + std::fmt::Debug {
    async fn fetch(&self, url: &Url) -> Result<Vec<u8>, CertificateError>;
}

#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    #[error("no certificate at this URL")]
    NotFound,
    #[error("the certificate host answered {0}")]
    Status(u16),
    #[error("the certificate is larger than {MAX_CERTIFICATE_BYTES} bytes")]
    TooLarge,
    #[error("the certificate request failed")]
    Http(#[source] reqwest::Error),
    #[error("no HTTP client could be built")]
    NoClient,
}

/// Certificates from PayPal over HTTPS: no redirects (they could leave the
/// allowlist), short timeouts, a size cap.
#[derive(Debug, Clone)]
pub struct HttpCertificateSource {
    /// `None` if the client could not be built: every fetch then fails
    /// (503, retried) rather than fall back to a client that follows redirects.
    client: Option<reqwest::Client>,
}

impl HttpCertificateSource {
    pub fn new() -> Self {
        Self { client: http_client() }
    }
}

impl Default for HttpCertificateSource {
    fn default() -> Self {
        Self::new()
    }
}

/// No redirects (they could leave the allowlist, or carry credentials
/// elsewhere) and short timeouts.
fn http_client() -> Option<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(HTTP_TIMEOUT)
        .timeout(HTTP_TIMEOUT)
        .build()
        .inspect_err(|error| tracing::error!(error = %error, "no HTTP client for PayPal"))
        .ok()
}

#[async_trait]
impl CertificateSource for HttpCertificateSource {
    async fn fetch(&self, url: &Url) -> Result<Vec<u8>, CertificateError> {
        let client = self.client.as_ref().ok_or(CertificateError::NoClient)?;
        let mut response = client.get(url.clone()).send().await.map_err(CertificateError::Http)?;
        if !response.status().is_success() {
            return Err(CertificateError::Status(response.status().as_u16()));
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(CertificateError::Http)? {
            bytes.extend_from_slice(&chunk);
            if bytes.len() > MAX_CERTIFICATE_BYTES {
                return Err(CertificateError::TooLarge);
            }
        }
        Ok(bytes)
    }
}

/// Certificates held in memory by URL: the local server's own, and tests'.
/// Counts fetches so tests can tell what was asked for.
#[derive(Debug, Default)]
pub struct MemoryCertificateSource {
    certificates: RwLock<HashMap<String, Vec<u8>>>,
    fetches: AtomicUsize,
}

impl MemoryCertificateSource {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert(&self, url: &str, certificate: impl Into<Vec<u8>>) {
        self.certificates.write().unwrap_or_else(|e| e.into_inner()).insert(url.to_owned(), certificate.into());
    }

    /// How many fetches were made, found or not.
    pub fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl CertificateSource for MemoryCertificateSource {
    async fn fetch(&self, url: &Url) -> Result<Vec<u8>, CertificateError> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        self.certificates
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(url.as_str())
            .cloned()
            .ok_or(CertificateError::NotFound)
    }
}

/// PayPal's REST API as the app's client credentials reach it: an OAuth
/// token cached until shortly before it expires.
#[derive(Debug)]
pub struct PaypalApi {
    client: Option<reqwest::Client>,
    base: Url,
    client_id: String,
    client_secret: Secret,
    token: Mutex<Option<(String, std::time::Instant)>>,
}

/// PayPal's `POST /v1/notifications/verify-webhook-signature`.
#[derive(Debug)]
pub struct ApiCheck {
    api: PaypalApi,
}

#[derive(Serialize)]
struct VerifyRequest<'a> {
    auth_algo: &'a str,
    cert_url: &'a str,
    transmission_id: &'a str,
    transmission_sig: &'a str,
    transmission_time: &'a str,
    webhook_id: &'a str,
    /// The event as received, byte for byte.
    webhook_event: &'a RawValue,
}

#[derive(Deserialize)]
struct VerifyResponse {
    verification_status: String,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("the PayPal API request failed")]
    Http(#[source] reqwest::Error),
    #[error("the PayPal API answered {0}")]
    Status(u16),
    #[error("no HTTP client could be built")]
    NoClient,
}

impl ApiCheck {
    /// `base` is PayPal's API root ([`LIVE_API_BASE`] or the sandbox's).
    pub fn new(base: Url, client_id: String, client_secret: Secret) -> Self {
        Self::from_api(PaypalApi::new(base, client_id, client_secret))
    }

    pub fn from_api(api: PaypalApi) -> Self {
        Self { api }
    }

    async fn verify_once(&self, request: &VerifyRequest<'_>) -> Result<bool, ApiError> {
        let api = &self.api;
        let token = api.access_token().await?;
        let client = api.client.as_ref().ok_or(ApiError::NoClient)?;
        let response = client
            .post(api.endpoint("/v1/notifications/verify-webhook-signature"))
            .bearer_auth(token)
            .json(request)
            .send()
            .await
            .map_err(ApiError::Http)?;
        if !response.status().is_success() {
            return Err(ApiError::Status(response.status().as_u16()));
        }
        let answer: VerifyResponse = response.json().await.map_err(ApiError::Http)?;
        Ok(answer.verification_status == "SUCCESS")
    }
}

impl PaypalApi {
    /// `base` is PayPal's API root ([`LIVE_API_BASE`] or the sandbox's).
    pub fn new(base: Url, client_id: String, client_secret: Secret) -> Self {
        Self { client: http_client(), base, client_id, client_secret, token: Mutex::new(None) }
    }

    /// GETs `path`; `None` for a 404.
    pub async fn get_json(&self, path: &str) -> Result<Option<serde_json::Value>, ApiError> {
        let token = self.access_token().await?;
        let client = self.client.as_ref().ok_or(ApiError::NoClient)?;
        let response = client.get(self.endpoint(path)).bearer_auth(token).send().await.map_err(ApiError::Http)?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !response.status().is_success() {
            return Err(ApiError::Status(response.status().as_u16()));
        }
        response.json().await.map(Some).map_err(ApiError::Http)
    }

    fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.base.as_str().trim_end_matches('/'))
    }

    async fn access_token(&self) -> Result<String, ApiError> {
        if let Some((token, until)) = &*self.token.lock().unwrap_or_else(|e| e.into_inner())
            && std::time::Instant::now() < *until
        {
            return Ok(token.clone());
        }
        let credentials = BASE64.encode([self.client_id.as_bytes(), b":", self.client_secret.expose()].concat());
        let client = self.client.as_ref().ok_or(ApiError::NoClient)?;
        let response = client
            .post(self.endpoint("/v1/oauth2/token"))
            .header(http::header::AUTHORIZATION, format!("Basic {credentials}"))
            .header(http::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials")
            .send()
            .await
            .map_err(ApiError::Http)?;
        if !response.status().is_success() {
            return Err(ApiError::Status(response.status().as_u16()));
        }
        let token: TokenResponse = response.json().await.map_err(ApiError::Http)?;
        // Renew a minute early so a token never expires mid-request.
        let lifetime = Duration::from_secs(token.expires_in.unwrap_or(0).saturating_sub(60));
        *self.token.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((token.access_token.clone(), std::time::Instant::now() + lifetime));
        Ok(token.access_token)
    }
}

#[async_trait]
impl SignatureCheck for ApiCheck {
    async fn check(
        &self,
        transmission: &Transmission<'_>,
        body: &[u8],
        webhook_ids: &SecretSet,
        _now: OffsetDateTime,
    ) -> Result<(), Rejection> {
        let event: &RawValue =
            serde_json::from_slice(body).map_err(|_| Rejection::InvalidPayload { reason: "not JSON" })?;
        for webhook_id in webhook_ids.iter() {
            let webhook_id = String::from_utf8_lossy(webhook_id.expose());
            let request = VerifyRequest {
                auth_algo: SHA256_WITH_RSA,
                cert_url: transmission.cert_url.as_str(),
                transmission_id: transmission.id,
                transmission_sig: transmission.signature_text,
                transmission_time: transmission.time_text,
                webhook_id: &webhook_id,
                webhook_event: event,
            };
            match self.verify_once(&request).await {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(error) => {
                    tracing::warn!(error = %error, "PayPal verify-webhook-signature failed");
                    return Err(Rejection::VerificationUnavailable {
                        reason: "PayPal's verification API is unavailable",
                    });
                }
            }
        }
        Err(Rejection::SignatureMismatch)
    }
}

// ---------------------------------------------------------------------------
// Local signing: a key and a self-signed certificate made at start

/// A signing key and its self-signed certificate, made by the local server
/// at start (never stored in code) so `trigger` can sign what it verifies.
#[derive(Clone)]
pub struct LocalSigner {
    key: SigningKey<Sha256>,
    pub webhook_id: String,
    pub cert_url: String,
}

impl std::fmt::Debug for LocalSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalSigner")
            .field("webhook_id", &self.webhook_id)
            .field("cert_url", &self.cert_url)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LocalSignerError {
    #[error("could not generate a key: {0}")]
    Key(String),
    #[error("could not build the certificate: {0}")]
    Certificate(String),
    #[error("not a local PayPal signing file: {0}")]
    File(&'static str),
}

const FILE_WEBHOOK_ID: &str = "PayPal-Webhook-Id: ";
const FILE_CERT_URL: &str = "PayPal-Cert-Url: ";

impl LocalSigner {
    /// A fresh 2048-bit key under a certificate URL on PayPal's sandbox
    /// host that only the local [`MemoryCertificateSource`] answers for.
    pub fn generate(webhook_id: &str) -> Result<Self, LocalSignerError> {
        use rsa::Generate as _;
        let key = PrivateKey::try_generate().map_err(|e| LocalSignerError::Key(e.to_string()))?;
        let token = uuid::Uuid::new_v4().simple().to_string();
        Ok(Self {
            key: SigningKey::new(key),
            webhook_id: webhook_id.to_owned(),
            cert_url: format!("https://api-m.sandbox.paypal.com{CERTIFICATE_PATH}CERT-payhooks-local-{token}"),
        })
    }

    /// A fresh signer and a verifier that trusts it: its certificate (valid
    /// from an hour ago for 30 days) served from memory.
    pub fn with_verifier(
        webhook_id: &str,
        tolerance: Duration,
    ) -> Result<(Self, PaypalVerifier), Box<dyn std::error::Error + Send + Sync>> {
        let signer = Self::generate(webhook_id)?;
        let now = OffsetDateTime::now_utc();
        let certificate = signer.certificate_pem(now - time::Duration::hours(1), now + time::Duration::days(30))?;
        let source = Arc::new(MemoryCertificateSource::new());
        source.insert(&signer.cert_url, certificate);
        let webhook_ids = SecretSet::from_comma_separated(webhook_id)?;
        let verifier = PaypalVerifier::new(webhook_ids, tolerance, Arc::new(OfflineCheck::new(source)));
        Ok((signer, verifier))
    }

    pub fn from_key(key: PrivateKey, webhook_id: &str, cert_url: &str) -> Self {
        Self { key: SigningKey::new(key), webhook_id: webhook_id.to_owned(), cert_url: cert_url.to_owned() }
    }

    /// A self-signed certificate for the key, valid over the given window,
    /// as PEM.
    pub fn certificate_pem(
        &self,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Result<String, LocalSignerError> {
        use x509_cert::builder::{Builder, CertificateBuilder, profile};
        use x509_cert::name::Name;
        use x509_cert::serial_number::SerialNumber;
        use x509_cert::spki::SubjectPublicKeyInfoOwned;
        use x509_cert::time::{Time, Validity};
        let fail = |e: &dyn std::fmt::Display| LocalSignerError::Certificate(e.to_string());
        let time = |t: OffsetDateTime| Time::try_from(std::time::SystemTime::from(t)).map_err(|e| fail(&e));
        let subject = Name::from_str("CN=payhooks local PayPal signer,O=payhooks local,C=US").map_err(|e| fail(&e))?;
        let profile = profile::cabf::Root::new(false, subject).map_err(|e| fail(&e))?;
        let spki = SubjectPublicKeyInfoOwned::from_key(&self.key.as_ref().to_public_key()).map_err(|e| fail(&e))?;
        let serial = SerialNumber::new(&uuid::Uuid::new_v4().as_bytes()[..15]).map_err(|e| fail(&e))?;
        let builder =
            CertificateBuilder::new(profile, serial, Validity::new(time(not_before)?, time(not_after)?), spki)
                .map_err(|e| fail(&e))?;
        let certificate = builder.build::<_, Signature>(&self.key).map_err(|e| fail(&e))?;
        certificate.to_pem(LineEnding::LF).map_err(|e| fail(&e))
    }

    /// The signing file `trigger` reads: the webhook id and certificate URL
    /// as explanatory lines before the PKCS#8 key (RFC 7468 allows text
    /// outside the PEM boundaries).
    pub fn to_file(&self) -> Result<String, LocalSignerError> {
        let pem = self
            .key
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|_| LocalSignerError::Key("could not encode the key".into()))?;
        Ok(format!("{FILE_WEBHOOK_ID}{}\n{FILE_CERT_URL}{}\n{}", self.webhook_id, self.cert_url, pem.as_str()))
    }

    pub fn from_file(text: &str) -> Result<Self, LocalSignerError> {
        let line =
            |prefix: &str| text.lines().find_map(|l| l.strip_prefix(prefix)).map(str::trim).filter(|v| !v.is_empty());
        let webhook_id = line(FILE_WEBHOOK_ID).ok_or(LocalSignerError::File("no webhook id line"))?;
        let cert_url = line(FILE_CERT_URL).ok_or(LocalSignerError::File("no certificate URL line"))?;
        let start = text.find("-----BEGIN PRIVATE KEY-----").ok_or(LocalSignerError::File("no PKCS#8 private key"))?;
        let key = PrivateKey::from_pkcs8_pem(&text[start..])
            .map_err(|_| LocalSignerError::File("the private key does not parse"))?;
        Ok(Self::from_key(key, webhook_id, cert_url))
    }

    /// The base64 signature over `signed_string`.
    pub fn sign(&self, signed_string: &str) -> String {
        BASE64.encode(self.key.sign(signed_string.as_bytes()).to_bytes())
    }

    /// The headers PayPal would send with `body` at `now`.
    pub fn headers(&self, body: &[u8], now: OffsetDateTime) -> Result<HeaderMap, SignError> {
        let transmission_id = uuid::Uuid::new_v4().to_string();
        let time_text = now
            .replace_nanosecond(0)
            .unwrap_or(now)
            .format(&Rfc3339)
            .map_err(|_| SignError::Unusable("time out of range".into()))?;
        let signature = self.sign(&signed_string(&transmission_id, &time_text, &self.webhook_id, body));
        let mut headers = HeaderMap::new();
        for (name, value) in [
            (TRANSMISSION_ID, transmission_id.as_str()),
            (TRANSMISSION_TIME, time_text.as_str()),
            (TRANSMISSION_SIG, signature.as_str()),
            (CERT_URL, self.cert_url.as_str()),
            (AUTH_ALGO, SHA256_WITH_RSA),
        ] {
            let value = HeaderValue::from_str(value).map_err(|_| SignError::Unusable("not printable ASCII".into()))?;
            headers.insert(name, value);
        }
        Ok(headers)
    }
}

/// What the local server needs for PayPal: a fresh signer and its verifier
/// (`LocalSigner::with_verifier`), and the signing file for `trigger`
/// written with owner-only permissions.
#[derive(Debug)]
pub struct LocalPaypal {
    pub verifier: PaypalVerifier,
    pub signer: LocalSigner,
    pub signing_file: std::path::PathBuf,
}

impl LocalPaypal {
    /// Generates a key and certificate and writes the signing file into
    /// `dir`.
    pub fn start(
        webhook_id: &str,
        tolerance: Duration,
        dir: &std::path::Path,
    ) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let (signer, verifier) = LocalSigner::with_verifier(webhook_id, tolerance)?;
        let signing_file = dir.join(format!("payhooks-paypal-{}.pem", uuid::Uuid::new_v4().simple()));
        write_private(&signing_file, signer.to_file()?.as_bytes())?;
        Ok(Self { verifier, signer, signing_file })
    }
}

/// Creates `path` (never overwrites) readable by its owner only.
fn write_private(path: &std::path::Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(contents)
}

/// Signs a sample for `trigger`: `secret` is the path of the local server's
/// signing file.
pub fn sign_sample(body: &[u8], secret: &str, now: OffsetDateTime) -> Result<SignedRequest, SignError> {
    let path = secret.trim();
    if path.is_empty() {
        return Err(SignError::NoSecret);
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| SignError::Unusable(format!("cannot read the PayPal signing file: {e}")))?;
    let signer = LocalSigner::from_file(&text).map_err(|e| SignError::Unusable(e.to_string()))?;
    Ok(SignedRequest { headers: signer.headers(body, now)?, path_token: None })
}

// ---------------------------------------------------------------------------
// Samples and parsing

/// Events in PayPal's documented shapes for the `trigger` command and tests,
/// with `{{event_id}}`, `{{customer_id}}` (payer id) and
/// `{{subscription_id}}` placeholders.
pub const SAMPLES: Samples = Samples(&[
    ("PAYMENT.SALE.COMPLETED", include_str!("../../samples/paypal/PAYMENT.SALE.COMPLETED.json")),
    ("BILLING.SUBSCRIPTION.ACTIVATED", include_str!("../../samples/paypal/BILLING.SUBSCRIPTION.ACTIVATED.json")),
    ("BILLING.SUBSCRIPTION.UPDATED", include_str!("../../samples/paypal/BILLING.SUBSCRIPTION.UPDATED.json")),
    (
        "BILLING.SUBSCRIPTION.PAYMENT.FAILED",
        include_str!("../../samples/paypal/BILLING.SUBSCRIPTION.PAYMENT.FAILED.json"),
    ),
    ("BILLING.SUBSCRIPTION.CANCELLED", include_str!("../../samples/paypal/BILLING.SUBSCRIPTION.CANCELLED.json")),
    ("PAYMENT.SALE.REFUNDED", include_str!("../../samples/paypal/PAYMENT.SALE.REFUNDED.json")),
    ("PAYMENT.CAPTURE.COMPLETED", include_str!("../../samples/paypal/PAYMENT.CAPTURE.COMPLETED.json")),
    ("PAYMENT.CAPTURE.REFUNDED", include_str!("../../samples/paypal/PAYMENT.CAPTURE.REFUNDED.json")),
]);

/// Ids in PayPal's shapes: `WH-…` events, 13-character payer ids, `I-…`
/// subscriptions.
pub fn sample_ids() -> SampleIds {
    let token = |n: usize| uuid::Uuid::new_v4().simple().to_string()[..n].to_ascii_uppercase();
    SampleIds {
        event_id: format!("WH-{}-{}", token(17), token(17)),
        customer_id: token(13),
        subscription_id: format!("I-{}", token(12)),
        payment_id: token(17),
        payment_alias_id: token(17),
        refund_id: token(17),
    }
}

#[derive(Deserialize)]
struct Envelope<'a> {
    id: Option<String>,
    event_type: Option<String>,
    create_time: Option<String>,
    #[serde(borrow)]
    resource: Option<&'a RawValue>,
}

/// Parses a verified body into the domain's event. The fingerprint covers
/// the type and the exact bytes of `resource`, the snapshot PayPal took
/// when the event was created.
pub fn parse_event(body: &[u8]) -> Result<VerifiedEvent, Rejection> {
    let envelope: Envelope<'_> = serde_json::from_slice(body)
        .map_err(|_| Rejection::InvalidPayload { reason: "not a JSON object with PayPal's event fields" })?;
    let event_id = EventId::parse(envelope.id.as_deref().unwrap_or_default())?;
    let event_type = envelope.event_type.ok_or(Rejection::InvalidPayload { reason: "no event type" })?;
    let created = envelope
        .create_time
        .and_then(|t| OffsetDateTime::parse(&t, &Rfc3339).ok())
        .ok_or(Rejection::InvalidPayload { reason: "no valid create_time" })?;
    let resource_raw = envelope.resource.ok_or(Rejection::InvalidPayload { reason: "no resource object" })?;
    let resource: Value = serde_json::from_str(resource_raw.get())
        .map_err(|_| Rejection::InvalidPayload { reason: "no resource object" })?;
    if !resource.is_object() {
        return Err(Rejection::InvalidPayload { reason: "no resource object" });
    }

    let fingerprint = super::fingerprint(&event_type, resource_raw.get().as_bytes());

    Ok(VerifiedEvent { event_id, fingerprint, event: normalize(event_type, created, &resource) })
}

fn normalize(event_type: String, occurred_at: OffsetDateTime, r: &Value) -> DomainEvent {
    let customer = str_at(r, &["subscriber", "payer_id"])
        .or_else(|| str_at(r, &["payer", "payer_id"]))
        .or_else(|| str_at(r, &["payer", "payer_info", "payer_id"]));
    let mut event = DomainEvent {
        customer: customer.clone(),
        object: str_at(r, &["id"]),
        ..DomainEvent::new(event_type, occurred_at)
    };
    match event.event_type.as_str() {
        "BILLING.SUBSCRIPTION.ACTIVATED"
        | "BILLING.SUBSCRIPTION.UPDATED"
        | "BILLING.SUBSCRIPTION.CANCELLED"
        | "BILLING.SUBSCRIPTION.EXPIRED"
        | "BILLING.SUBSCRIPTION.SUSPENDED"
        | "BILLING.SUBSCRIPTION.PAYMENT.FAILED" => {
            event.kind = match event.event_type.as_str() {
                "BILLING.SUBSCRIPTION.ACTIVATED" => EventKind::Purchase,
                "BILLING.SUBSCRIPTION.UPDATED" => EventKind::SubscriptionUpdated,
                "BILLING.SUBSCRIPTION.PAYMENT.FAILED" => EventKind::PaymentFailed,
                _ => EventKind::Cancellation,
            };
            event.subscription = str_at(r, &["id"]);
            event.plan = str_at(r, &["plan_id"]);
            event.status = str_at(r, &["status"]).map(|s| s.to_ascii_lowercase());
            let amount = if event.kind == EventKind::PaymentFailed {
                at(r, &["billing_info", "last_failed_payment", "amount"])
            } else if event.kind == EventKind::Purchase {
                at(r, &["billing_info", "last_payment", "amount"])
            } else {
                None
            };
            if let Some(amount) = amount {
                set_amount(&mut event, amount, "value", "currency_code");
            }
        }
        "PAYMENT.SALE.COMPLETED" => {
            event.kind = EventKind::Renewal;
            event.subscription = str_at(r, &["billing_agreement_id"]);
            event.payment = str_at(r, &["id"]);
            if let Some(amount) = at(r, &["amount"]) {
                set_amount(&mut event, amount, "total", "currency");
            }
        }
        "PAYMENT.CAPTURE.COMPLETED" => {
            event.kind = EventKind::Purchase;
            if let Some(amount) = at(r, &["amount"]) {
                set_amount(&mut event, amount, "value", "currency_code");
            }
        }
        "PAYMENT.SALE.REFUNDED" | "PAYMENT.CAPTURE.REFUNDED" => {
            event.kind = EventKind::Refund;
            event.refund_id = str_at(r, &["id"]);
            event.subscription = str_at(r, &["billing_agreement_id"]);
            // v1 names the sale; v2 links the capture as `up`.
            event.payment = str_at(r, &["sale_id"]).or_else(|| refunded_capture(r));
            if let Some(amount) = at(r, &["amount"]) {
                // v1 refunds carry `total`/`currency`, v2 `value`/`currency_code`.
                if amount.get("total").is_some() {
                    set_amount(&mut event, amount, "total", "currency");
                } else {
                    set_amount(&mut event, amount, "value", "currency_code");
                }
            }
        }
        _ => {}
    }
    event.account = str_at(r, &["custom_id"]).or_else(|| str_at(r, &["custom"])).or(customer);
    event
}

/// The capture a v2 refund refunds: the last path segment of its `up` link.
fn refunded_capture(refund: &Value) -> Option<String> {
    refund
        .get("links")?
        .as_array()?
        .iter()
        .find(|link| link.get("rel").and_then(Value::as_str) == Some("up"))?
        .get("href")?
        .as_str()?
        .rsplit('/')
        .next()
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
}

fn set_amount(event: &mut DomainEvent, amount: &Value, value_key: &str, currency_key: &str) {
    let currency = str_at(amount, &[currency_key]);
    let value = str_at(amount, &[value_key]);
    if let (Some(currency), Some(value)) = (currency, value) {
        event.amount_minor = minor_units(&value, &currency);
        event.currency = Some(currency.to_ascii_uppercase());
    }
}

/// Currencies PayPal takes without decimals (HUF and TWD have minor units
/// in ISO 4217, but not at PayPal).
const ZERO_DECIMAL: &[&str] = &["JPY", "HUF", "TWD"];

/// A PayPal decimal string (`"9.99"`, `"1000"`) in the currency's minor
/// units, exactly.
pub fn minor_units(value: &str, currency: &str) -> Option<i64> {
    let exponent = if ZERO_DECIMAL.contains(&currency.to_ascii_uppercase().as_str()) { 0 } else { 2 };
    super::money::decimal_to_minor(value, exponent)
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use super::*;

    /// PayPal-Java-SDK `ValidateCertTest` (exact bytes, no trailing newline).
    const KAT_BODY: &[u8] = include_bytes!("../../../tests/fixtures/paypal-java-BILLING.PLAN.CREATED.json");
    const KAT_CERT: &str = include_str!("../../../tests/fixtures/paypal-java-testClientCert.pem");
    const KAT_ID: &str = "071f7d20-1584-11e7-abf0-6b62a8a99ac4";
    const KAT_TIME: &str = "2017-03-30T20:04:05Z";
    const KAT_SIG: &str = "aBjgm5/xljRYu3G64Q0axISrP2xcy7WbW1u4UTCKnQvyprOZ1a1BBmqn2Jdr6ce8E76I3Ti/AL9y4VYSHyGSEaoE6dVQcCDebLbOXLH0fjTAbTc1/rmfdWmsk0DPltW84Y8W8jOHe3CLWDOwg5zmozyt+AceG2x5eOiw7mLSycaEoj/5RG+dOIWXnmWcLEArbG3VFshy0wuhZrKuGa9C/bD4Ku+Y9gK7Bv5I5IuGRVnTGpcFnVG0KxOyJxccLGyBVCIUMY5IZS7LkmJszQ3HZZFDTNihvgJHECSLwLhzUaysIye5G6CbbLdtAmeeb6wiDciEAvr2dFf+SplOR4Lrng==";
    const KAT_WEBHOOK_ID: &str = "96605875FF6516633";
    const KAT_CERT_URL: &str = "https://api.sandbox.paypal.com/v1/notifications/certs/CERT-kat-java-sdk";
    const TOLERANCE: Duration = Duration::from_secs(300);

    fn kat_now() -> OffsetDateTime {
        OffsetDateTime::parse(KAT_TIME, &Rfc3339).unwrap() + time::Duration::seconds(10)
    }

    fn kat_headers() -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("PAYPAL-TRANSMISSION-ID", KAT_ID),
            ("PAYPAL-TRANSMISSION-TIME", KAT_TIME),
            ("PAYPAL-TRANSMISSION-SIG", KAT_SIG),
            ("PAYPAL-CERT-URL", KAT_CERT_URL),
            ("PAYPAL-AUTH-ALGO", SHA256_WITH_RSA),
        ] {
            headers.insert(http::HeaderName::from_bytes(name.as_bytes()).unwrap(), value.parse().unwrap());
        }
        headers
    }

    fn ids(list: &str) -> SecretSet {
        SecretSet::from_comma_separated(list).unwrap()
    }

    fn offline(webhook_ids: &str, tolerance: Duration) -> (PaypalVerifier, Arc<MemoryCertificateSource>) {
        let source = Arc::new(MemoryCertificateSource::new());
        source.insert(KAT_CERT_URL, KAT_CERT);
        let check = Arc::new(OfflineCheck::new(source.clone()));
        (PaypalVerifier::new(ids(webhook_ids), tolerance, check), source)
    }

    async fn verify(
        verifier: &PaypalVerifier,
        headers: &HeaderMap,
        body: &[u8],
        now: OffsetDateTime,
    ) -> Result<VerifiedEvent, Rejection> {
        verifier.verify(&Inbound::new(headers, body), now).await
    }

    /// One key for the whole test run: generating RSA keys is slow.
    fn test_key() -> PrivateKey {
        static KEY: OnceLock<PrivateKey> = OnceLock::new();
        KEY.get_or_init(|| {
            use rsa::Generate as _;
            PrivateKey::try_generate().unwrap()
        })
        .clone()
    }

    const LOCAL_URL: &str = "https://api-m.sandbox.paypal.com/v1/notifications/certs/CERT-test-local";

    /// A signer with a certificate valid over `[not_before, not_after]`,
    /// served by a memory source under an allowed URL: a local fake of
    /// PayPal's certificate host through the same port.
    fn local(
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> (LocalSigner, PaypalVerifier, Arc<MemoryCertificateSource>) {
        let signer = LocalSigner::from_key(test_key(), "WH-TEST-HOOK", LOCAL_URL);
        let source = Arc::new(MemoryCertificateSource::new());
        source.insert(LOCAL_URL, signer.certificate_pem(not_before, not_after).unwrap());
        let verifier = PaypalVerifier::new(ids("WH-TEST-HOOK"), TOLERANCE, Arc::new(OfflineCheck::new(source.clone())));
        (signer, verifier, source)
    }

    fn now() -> OffsetDateTime {
        OffsetDateTime::now_utc().replace_nanosecond(0).unwrap()
    }

    fn valid_local() -> (LocalSigner, PaypalVerifier, Arc<MemoryCertificateSource>) {
        local(now() - time::Duration::days(1), now() + time::Duration::days(30))
    }

    #[tokio::test]
    async fn the_java_sdk_vector_verifies_with_its_webhook_id() {
        let (verifier, source) = offline(KAT_WEBHOOK_ID, TOLERANCE);
        let verified = verify(&verifier, &kat_headers(), KAT_BODY, kat_now()).await.unwrap();
        assert_eq!(verified.event_id.as_str(), "WH-2MW4820926242972J-6SG447389E205703U");
        assert_eq!(verified.event.event_type, "BILLING.PLAN.CREATED");
        assert_eq!(verified.event.kind, EventKind::Other);
        assert_eq!(source.fetches(), 1);
    }

    #[tokio::test]
    async fn the_java_sdk_vector_fails_with_another_webhook_id() {
        let (verifier, _) = offline("NotToBeFound", TOLERANCE);
        let rejection = verify(&verifier, &kat_headers(), KAT_BODY, kat_now()).await.unwrap_err();
        assert_eq!(rejection, Rejection::SignatureMismatch);
        assert_eq!((rejection.status(), rejection.code()), (401, "invalid_signature"));
    }

    #[tokio::test]
    async fn any_active_webhook_id_verifies() {
        let (verifier, _) = offline("NotToBeFound, 96605875FF6516633", TOLERANCE);
        assert!(verify(&verifier, &kat_headers(), KAT_BODY, kat_now()).await.is_ok());
    }

    #[tokio::test]
    async fn the_java_sdk_certificate_is_refused_as_expired_today() {
        // A window wide enough that only the certificate's dates can refuse it.
        let (verifier, _) = offline(KAT_WEBHOOK_ID, Duration::from_secs(100 * 365 * 24 * 3600));
        let rejection = verify(&verifier, &kat_headers(), KAT_BODY, OffsetDateTime::now_utc()).await.unwrap_err();
        assert_eq!(rejection, Rejection::InvalidCertificate { reason: "the certificate has expired" });
        assert_eq!((rejection.status(), rejection.code()), (401, "invalid_certificate"));
    }

    #[test]
    fn the_crc32_is_printed_unsigned() {
        assert_eq!(crc32fast::hash(KAT_BODY), 3_494_065_244);
        assert!(3_494_065_244_u64 > i32::MAX as u64, "a signed int32 would print it negative");
        assert_eq!(
            signed_string(KAT_ID, KAT_TIME, KAT_WEBHOOK_ID, KAT_BODY),
            "071f7d20-1584-11e7-abf0-6b62a8a99ac4|2017-03-30T20:04:05Z|96605875FF6516633|3494065244"
        );
    }

    #[tokio::test]
    async fn a_changed_body_byte_is_an_invalid_signature() {
        let (verifier, _) = offline(KAT_WEBHOOK_ID, TOLERANCE);
        let mut body = KAT_BODY.to_vec();
        let last = body.len() - 2;
        body[last] ^= 0x01;
        let rejection = verify(&verifier, &kat_headers(), &body, kat_now()).await.unwrap_err();
        assert_eq!((rejection.status(), rejection.code()), (401, "invalid_signature"));
    }

    #[tokio::test]
    async fn an_algorithm_other_than_sha256_with_rsa_is_refused_before_any_fetch() {
        let (verifier, source) = offline(KAT_WEBHOOK_ID, TOLERANCE);
        for algo in ["SHA1withRSA", "sha256withrsa", "HS256", ""] {
            let mut headers = kat_headers();
            headers.insert(AUTH_ALGO, algo.parse().unwrap());
            let rejection = verify(&verifier, &headers, KAT_BODY, kat_now()).await.unwrap_err();
            assert_eq!((rejection.status(), rejection.code()), (400, "unsupported_algorithm"), "{algo:?}");
        }
        assert_eq!(source.fetches(), 0);
    }

    #[tokio::test]
    async fn every_missing_header_is_named_in_a_400() {
        let (verifier, source) = offline(KAT_WEBHOOK_ID, TOLERANCE);
        for name in [TRANSMISSION_ID, TRANSMISSION_TIME, TRANSMISSION_SIG, CERT_URL, AUTH_ALGO] {
            let mut headers = kat_headers();
            headers.remove(name);
            let rejection = verify(&verifier, &headers, KAT_BODY, kat_now()).await.unwrap_err();
            assert_eq!(rejection, Rejection::MissingSignature { header: name });
            assert_eq!((rejection.status(), rejection.code()), (400, "missing_signature"));
        }
        assert_eq!(source.fetches(), 0);
    }

    #[tokio::test]
    async fn malformed_headers_are_told_apart_from_bad_signatures() {
        let (verifier, source) = offline(KAT_WEBHOOK_ID, TOLERANCE);
        for (name, value) in [
            (TRANSMISSION_TIME, "yesterday"),
            (TRANSMISSION_TIME, "1490904245"),
            (TRANSMISSION_SIG, "not base64 !"),
            (TRANSMISSION_ID, "a|b"),
        ] {
            let mut headers = kat_headers();
            headers.insert(name, value.parse().unwrap());
            let rejection = verify(&verifier, &headers, KAT_BODY, kat_now()).await.unwrap_err();
            assert_eq!(rejection.code(), "malformed_signature", "{name}: {value}");
        }
        assert_eq!(source.fetches(), 0);
    }

    #[tokio::test]
    async fn certificate_urls_off_the_allowlist_are_refused_before_any_fetch() {
        let (verifier, source) = offline(KAT_WEBHOOK_ID, TOLERANCE);
        for url in [
            "http://api.sandbox.paypal.com/v1/notifications/certs/CERT-kat-java-sdk",
            "https://evil.example/v1/notifications/certs/CERT-kat-java-sdk",
            "https://api.sandbox.paypal.com.evil.example/v1/notifications/certs/CERT-1",
            "https://paypal.com/v1/notifications/certs/CERT-1",
            "https://api.paypal.com@evil.example/v1/notifications/certs/CERT-1",
            "https://user:pass@api.paypal.com/v1/notifications/certs/CERT-1",
            "https://api.paypal.com:8443/v1/notifications/certs/CERT-1",
            "https://203.0.113.7/v1/notifications/certs/CERT-1",
            "https://[2001:db8::1]/v1/notifications/certs/CERT-1",
            "https://api.paypal.com/v1/notifications/webhooks",
            "https://api.paypal.com/v1/notifications/certs/",
            "https://api.paypal.com/v1/notifications/certs/../../oauth2/token",
            "https://api.paypal.com/v1/notifications/certs/%2e%2e/%2e%2e/oauth2/token",
            "file:///etc/passwd",
            "not a url",
        ] {
            let mut headers = kat_headers();
            headers.insert(CERT_URL, url.parse().unwrap());
            let rejection = verify(&verifier, &headers, KAT_BODY, kat_now()).await.unwrap_err();
            assert_eq!((rejection.status(), rejection.code()), (400, "certificate_url_not_allowed"), "{url}");
        }
        assert_eq!(source.fetches(), 0, "nothing may be fetched for a refused URL");
    }

    #[test]
    fn paypal_certificate_urls_are_allowed() {
        for url in [
            "https://api.paypal.com/v1/notifications/certs/CERT-360caa42-fca2a594-df8cd2d5",
            "https://api.sandbox.paypal.com/v1/notifications/certs/CERT-360caa42-fca2a594-a5cafa77",
            "https://api-m.paypal.com/v1/notifications/certs/CERT-1",
            "https://API-M.SANDBOX.PAYPAL.COM:443/v1/notifications/certs/CERT-1",
        ] {
            assert!(allowed_certificate_url(url).is_ok(), "{url}");
        }
    }

    #[tokio::test]
    async fn a_transmission_time_outside_the_tolerance_is_refused_both_ways() {
        let (verifier, source) = offline(KAT_WEBHOOK_ID, TOLERANCE);
        let sent = kat_now() - time::Duration::seconds(10);
        for now in [sent + time::Duration::seconds(301), sent - time::Duration::seconds(301)] {
            let rejection = verify(&verifier, &kat_headers(), KAT_BODY, now).await.unwrap_err();
            assert_eq!(rejection, Rejection::TimestampOutOfTolerance { tolerance_secs: 300 });
        }
        assert_eq!(source.fetches(), 0);
        assert!(verify(&verifier, &kat_headers(), KAT_BODY, sent + time::Duration::seconds(300)).await.is_ok());
    }

    #[tokio::test]
    async fn a_locally_signed_event_verifies_and_a_second_one_uses_the_cached_certificate() {
        let (signer, verifier, source) = valid_local();
        let ids = SampleIds::random("WH");
        for event_type in ["PAYMENT.SALE.COMPLETED", "BILLING.SUBSCRIPTION.CANCELLED"] {
            let body = SAMPLES.event(event_type, &ids).unwrap();
            let headers = signer.headers(body.as_bytes(), now()).unwrap();
            let verified = verify(&verifier, &headers, body.as_bytes(), now()).await.unwrap();
            assert_eq!(verified.event.event_type, event_type);
        }
        assert_eq!(source.fetches(), 1, "the certificate is fetched once per URL");
    }

    #[tokio::test]
    async fn expired_and_not_yet_valid_certificates_are_refused() {
        let day = time::Duration::days(1);
        for ((not_before, not_after), reason) in [
            ((now() - 30 * day, now() - day), "the certificate has expired"),
            ((now() + day, now() + 30 * day), "the certificate is not valid yet"),
        ] {
            let (signer, verifier, _) = local(not_before, not_after);
            let body = br#"{"id":"WH-1","event_type":"X","create_time":"2025-01-01T00:00:00Z","resource":{}}"#;
            let headers = signer.headers(body, now()).unwrap();
            let rejection = verify(&verifier, &headers, body, now()).await.unwrap_err();
            assert_eq!(rejection, Rejection::InvalidCertificate { reason });
        }
    }

    #[tokio::test]
    async fn an_unknown_certificate_url_is_a_retryable_503() {
        let (signer, _, _) = valid_local();
        let verifier = PaypalVerifier::new(
            ids("WH-TEST-HOOK"),
            TOLERANCE,
            Arc::new(OfflineCheck::new(Arc::new(MemoryCertificateSource::new()))),
        );
        let body = br#"{"id":"WH-1","event_type":"X","create_time":"2025-01-01T00:00:00Z","resource":{}}"#;
        let rejection = verify(&verifier, &signer.headers(body, now()).unwrap(), body, now()).await.unwrap_err();
        assert_eq!((rejection.status(), rejection.code()), (503, "verification_unavailable"));
    }

    #[tokio::test]
    async fn trigger_signs_with_the_file_the_local_server_wrote() {
        let dir = std::env::temp_dir();
        let local = LocalPaypal::start("WH-LOCAL-TEST", TOLERANCE, &dir).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&local.signing_file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let path = local.signing_file.to_str().unwrap().to_owned();
        let ids = sample_ids();
        let body = SAMPLES.event("PAYMENT.SALE.COMPLETED", &ids).unwrap();
        let signed = super::super::sign_sample(Provider::Paypal, body.as_bytes(), &ids, &path, now()).unwrap();
        let verified = verify(&local.verifier, &signed.headers, body.as_bytes(), now()).await;
        std::fs::remove_file(&local.signing_file).unwrap();
        assert_eq!(verified.unwrap().event_id.as_str(), ids.event_id);
        assert!(matches!(
            super::super::sign_sample(
                Provider::Paypal,
                b"{}",
                &SampleIds::random("WH"),
                "/nonexistent/payhooks-signing.pem",
                now()
            ),
            Err(SignError::Unusable(_))
        ));
    }

    /// A local stand-in for PayPal's API on 127.0.0.1: a token endpoint and
    /// verify-webhook-signature, answering SUCCESS only for the signature
    /// `good` with the webhook id `WH-API` and the event as sent.
    async fn fake_paypal_api() -> (Url, Arc<AtomicUsize>) {
        use axum::Json;
        use axum::routing::post;
        let tokens = Arc::new(AtomicUsize::new(0));
        let issued = tokens.clone();
        let app = axum::Router::new()
            .route(
                "/v1/oauth2/token",
                post(move |headers: HeaderMap, body: String| {
                    let issued = issued.clone();
                    async move {
                        let expected = format!("Basic {}", BASE64.encode("client-id:client-secret"));
                        if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str())
                            || body != "grant_type=client_credentials"
                        {
                            return (http::StatusCode::UNAUTHORIZED, Json(serde_json::json!({"error": "invalid_client"})));
                        }
                        issued.fetch_add(1, Ordering::SeqCst);
                        (http::StatusCode::OK, Json(serde_json::json!({"access_token": "A21-token", "token_type": "Bearer", "expires_in": 32400})))
                    }
                }),
            )
            .route(
                "/v1/notifications/verify-webhook-signature",
                post(|headers: HeaderMap, Json(request): Json<Value>| async move {
                    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Bearer A21-token") {
                        return (http::StatusCode::UNAUTHORIZED, Json(serde_json::json!({})));
                    }
                    let ok = request["transmission_sig"] == "good"
                        && request["webhook_id"] == "WH-API"
                        && request["auth_algo"] == "SHA256withRSA"
                        && request["transmission_id"] == KAT_ID
                        && request["webhook_event"]["id"] == "WH-2MW4820926242972J-6SG447389E205703U";
                    let status = if ok { "SUCCESS" } else { "FAILURE" };
                    (http::StatusCode::OK, Json(serde_json::json!({"verification_status": status})))
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (Url::parse(&format!("http://{addr}")).unwrap(), tokens)
    }

    #[tokio::test]
    async fn api_mode_accepts_what_paypal_calls_success_and_refuses_failure() {
        let (base, tokens) = fake_paypal_api().await;
        let check = Arc::new(ApiCheck::new(base, "client-id".into(), Secret::new("client-secret")));
        let verifier = PaypalVerifier::new(ids("WH-API"), TOLERANCE, check);
        let mut headers = kat_headers();
        headers.insert(TRANSMISSION_SIG, "good".parse().unwrap());
        let verified = verify(&verifier, &headers, KAT_BODY, kat_now()).await.unwrap();
        assert_eq!(verified.event.event_type, "BILLING.PLAN.CREATED");

        headers.insert(TRANSMISSION_SIG, "bad0".parse().unwrap());
        let rejection = verify(&verifier, &headers, KAT_BODY, kat_now()).await.unwrap_err();
        assert_eq!((rejection.status(), rejection.code()), (401, "invalid_signature"));
        assert_eq!(tokens.load(Ordering::SeqCst), 1, "the token is reused");
    }

    #[tokio::test]
    async fn api_mode_with_wrong_credentials_is_a_retryable_503() {
        let (base, _) = fake_paypal_api().await;
        let check = Arc::new(ApiCheck::new(base, "client-id".into(), Secret::new("wrong")));
        let verifier = PaypalVerifier::new(ids("WH-API"), TOLERANCE, check);
        let mut headers = kat_headers();
        headers.insert(TRANSMISSION_SIG, "good".parse().unwrap());
        let rejection = verify(&verifier, &headers, KAT_BODY, kat_now()).await.unwrap_err();
        assert_eq!(rejection.status(), 503);
        assert!(!rejection.to_string().contains("wrong"));
    }

    #[test]
    fn verification_modes_parse_from_their_names() {
        assert_eq!("offline".parse(), Ok(VerificationMode::Offline));
        assert_eq!("".parse(), Ok(VerificationMode::Offline));
        assert_eq!("api".parse(), Ok(VerificationMode::Api));
        assert_eq!("API".parse::<VerificationMode>(), Err(UnknownVerificationMode));
    }

    #[test]
    fn decimal_amounts_become_exact_minor_units() {
        for (value, currency, expected) in [
            ("20.00", "USD", Some(2000)),
            ("9.99", "EUR", Some(999)),
            ("0.5", "USD", Some(50)),
            ("1000", "USD", Some(100_000)),
            ("1500", "JPY", Some(1500)),
            ("1500.00", "JPY", Some(1500)),
            ("1500.5", "JPY", None),
            ("0.07", "usd", Some(7)),
            ("19.999", "USD", None),
            ("19.990", "USD", Some(1999)),
            ("-1.00", "USD", None),
            ("1e3", "USD", None),
            ("", "USD", None),
            (".5", "USD", None),
            ("5.", "USD", None),
            ("99999999999999999999", "USD", None),
        ] {
            assert_eq!(minor_units(value, currency), expected, "{value} {currency}");
        }
    }

    #[test]
    fn every_sample_parses_into_the_kind_it_illustrates() {
        let ids = sample_ids();
        assert!(ids.event_id.starts_with("WH-") && ids.subscription_id.starts_with("I-"));
        // (type, kind, subscription, customer, account, amount, currency, refund id)
        let sub = Some(ids.subscription_id.as_str());
        let payer = Some(ids.customer_id.as_str());
        let expected = [
            (
                "PAYMENT.SALE.COMPLETED",
                EventKind::Renewal,
                sub,
                None,
                Some("acct-demo-001"),
                Some(2000),
                Some("USD"),
                None,
            ),
            (
                "BILLING.SUBSCRIPTION.ACTIVATED",
                EventKind::Purchase,
                sub,
                payer,
                Some("acct-demo-001"),
                Some(2000),
                Some("USD"),
                None,
            ),
            (
                "BILLING.SUBSCRIPTION.UPDATED",
                EventKind::SubscriptionUpdated,
                sub,
                payer,
                Some("acct-demo-001"),
                None,
                None,
                None,
            ),
            (
                "BILLING.SUBSCRIPTION.PAYMENT.FAILED",
                EventKind::PaymentFailed,
                sub,
                payer,
                Some("acct-demo-001"),
                Some(2000),
                Some("USD"),
                None,
            ),
            (
                "BILLING.SUBSCRIPTION.CANCELLED",
                EventKind::Cancellation,
                sub,
                payer,
                Some("acct-demo-001"),
                None,
                None,
                None,
            ),
            (
                "PAYMENT.SALE.REFUNDED",
                EventKind::Refund,
                sub,
                None,
                Some("acct-demo-001"),
                Some(2000),
                Some("USD"),
                Some(ids.refund_id.as_str()),
            ),
            (
                "PAYMENT.CAPTURE.COMPLETED",
                EventKind::Purchase,
                None,
                None,
                Some("acct-demo-002"),
                Some(1500),
                Some("JPY"),
                None,
            ),
            (
                "PAYMENT.CAPTURE.REFUNDED",
                EventKind::Refund,
                None,
                None,
                Some("acct-demo-003"),
                Some(1250),
                Some("EUR"),
                Some(ids.refund_id.as_str()),
            ),
        ];
        assert_eq!(SAMPLES.types().count(), expected.len());
        for (event_type, kind, subscription, customer, account, amount, currency, refund) in expected {
            let body = SAMPLES.event(event_type, &ids).unwrap();
            assert!(!body.contains("{{"), "{event_type} keeps a placeholder");
            let verified = parse_event(body.as_bytes()).unwrap();
            let event = verified.event;
            assert_eq!(verified.event_id.as_str(), ids.event_id);
            assert_eq!(event.event_type, event_type);
            assert_eq!(event.kind, kind, "{event_type}");
            assert_eq!(event.subscription.as_deref(), subscription, "{event_type}");
            assert_eq!(event.customer.as_deref(), customer, "{event_type}");
            assert_eq!(event.account.as_deref(), account, "{event_type}");
            assert_eq!(event.amount_minor, amount, "{event_type}");
            assert_eq!(event.currency.as_deref(), currency, "{event_type}");
            assert_eq!(event.refund_id.as_deref(), refund, "{event_type}");
        }
    }

    #[test]
    fn expired_and_suspended_subscriptions_are_cancellations() {
        let ids = sample_ids();
        let body = SAMPLES.event("BILLING.SUBSCRIPTION.CANCELLED", &ids).unwrap();
        for event_type in ["BILLING.SUBSCRIPTION.EXPIRED", "BILLING.SUBSCRIPTION.SUSPENDED"] {
            let body = body.replace("BILLING.SUBSCRIPTION.CANCELLED", event_type);
            assert_eq!(parse_event(body.as_bytes()).unwrap().event.kind, EventKind::Cancellation);
        }
    }

    #[test]
    fn the_account_falls_back_to_the_payer_id() {
        let ids = sample_ids();
        let body = SAMPLES
            .event("BILLING.SUBSCRIPTION.ACTIVATED", &ids)
            .unwrap()
            .replace("\"custom_id\": \"acct-demo-001\",", "");
        let event = parse_event(body.as_bytes()).unwrap().event;
        assert_eq!(event.account.as_deref(), Some(ids.customer_id.as_str()));
    }

    #[test]
    fn the_fingerprint_covers_the_type_and_the_resource_only() {
        let a = br#"{"id":"WH-1","event_type":"PAYMENT.SALE.COMPLETED","create_time":"2025-01-01T00:00:00Z","summary":"one","resource":{"id":"S1"}}"#;
        let b = br#"{"id":"WH-1","event_type":"PAYMENT.SALE.COMPLETED","create_time":"2025-01-01T00:00:00Z","summary":"two","resource":{"id":"S1"}}"#;
        let c = br#"{"id":"WH-1","event_type":"PAYMENT.SALE.COMPLETED","create_time":"2025-01-01T00:00:00Z","summary":"two","resource":{"id":"S2"}}"#;
        let fp = |body: &[u8]| parse_event(body).unwrap().fingerprint;
        assert_eq!(fp(a), fp(b));
        assert_ne!(fp(b), fp(c));
    }

    #[test]
    fn bodies_without_a_usable_id_time_or_resource_are_refused() {
        for body in [
            &b"not json"[..],
            br#"[1]"#,
            br#"{"event_type":"X","create_time":"2025-01-01T00:00:00Z","resource":{}}"#,
            br#"{"id":"WH-1","create_time":"2025-01-01T00:00:00Z","resource":{}}"#,
            br#"{"id":"WH-1","event_type":"X","create_time":"yesterday","resource":{}}"#,
            br#"{"id":"WH-1","event_type":"X","create_time":"2025-01-01T00:00:00Z"}"#,
            br#"{"id":"WH-1","event_type":"X","create_time":"2025-01-01T00:00:00Z","resource":[]}"#,
        ] {
            let rejection = parse_event(body).unwrap_err();
            assert_eq!(rejection.status(), 400, "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn debug_output_of_the_local_signer_hides_the_key() {
        let signer = LocalSigner::from_key(test_key(), "WH-TEST-HOOK", LOCAL_URL);
        let printed = format!("{signer:?}");
        assert!(!printed.contains("PRIVATE") && !printed.contains("key:"), "{printed}");
    }
}

//! Checking a signature offline: PayPal's certificate, fetched only from
//! PayPal's hosts, cached per URL, used inside its validity window.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use rsa::PublicKey;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::DecodePublicKey;
use rsa::signature::Verifier as _;
use sha2::Sha256;
use time::OffsetDateTime;
use url::Url;
use x509_cert::Certificate;
use x509_cert::der::{Decode, Encode};

use crate::providers::Rejection;
use crate::secret::SecretSet;

use super::*;

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
pub(super) fn http_client() -> Option<reqwest::Client> {
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

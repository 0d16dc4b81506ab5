//! The verifier: a transmission read from its headers, the webhook ids it
//! may be for, its time within the window, then its signature checked.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use http::HeaderMap;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use url::{Host, Url};

use crate::event::Provider;
use crate::providers::{Inbound, Rejection, VerifiedEvent, Verifier};
use crate::secret::SecretSet;

use super::*;

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
    crate::providers::single_header(headers, name).map(str::trim)
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

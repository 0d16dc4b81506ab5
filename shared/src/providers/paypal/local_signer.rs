//! Local signing: a key and a self-signed certificate made at start, so the
//! local server and the tests can sign what they verify.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use http::{HeaderMap, HeaderValue};
use rsa::PrivateKey;
use rsa::pkcs1v15::{Signature, SigningKey};
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use rsa::signature::{SignatureEncoding, Signer};
use sha2::Sha256;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use x509_cert::der::EncodePem;

use crate::providers::{SignError, SignedRequest};
use crate::secret::SecretSet;

use super::*;

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

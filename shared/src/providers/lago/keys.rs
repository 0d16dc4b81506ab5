//! Lago's public key for `jwt` signatures: a small port and its two
//! adapters (configured text, or Lago's API, fetched once).

use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::pkcs1v15;
use rsa::pkcs8::DecodePublicKey;
use sha2::Sha256;

use crate::secret::Secret;

use super::*;

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
    pub(super) issuer: Option<String>,
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

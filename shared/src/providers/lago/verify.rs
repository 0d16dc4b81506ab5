//! The verifier: `hmac` against every active key, `jwt` against Lago's
//! public key, each only when configured.

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, KeyInit, Mac};
use rsa::pkcs1v15;
use rsa::signature::Verifier as _;
use serde::Deserialize;
use serde_json::Value;
use sha2::Sha256;
use subtle::{Choice, ConstantTimeEq};
use time::OffsetDateTime;

use crate::event::Provider;
use crate::providers::{Inbound, Rejection, VerifiedEvent, Verifier};
use crate::secret::{Secret, SecretSet};

use super::*;

pub(super) type HmacSha256 = Hmac<Sha256>;

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
        let signature = crate::providers::single_header(inbound.headers, SIGNATURE_HEADER)?;
        let algorithm = crate::providers::single_header(inbound.headers, ALGORITHM_HEADER)?;
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
    pub(super) fn rejection(self) -> Rejection {
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

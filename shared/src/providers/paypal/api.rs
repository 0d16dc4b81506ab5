//! PayPal's REST API with the app's client credentials: OAuth tokens, and
//! the verify-webhook-signature check.

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use time::OffsetDateTime;
use url::Url;

use crate::providers::Rejection;
use crate::secret::{Secret, SecretSet};

use super::*;

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

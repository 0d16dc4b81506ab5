//! The provisioner over HTTP: a JSON POST to a configured URL, signed like
//! Stripe signs its webhooks (`X-Payhooks-Signature: t=…,v1=hex(HMAC-SHA256
//! (secret, "{t}.{body}"))`) so the receiver can use any Stripe-style
//! verifier, with an `Idempotency-Key` header.

use async_trait::async_trait;

use crate::ports::provisioner::{ProvisionError, ProvisionRequest, Provisioner};
use crate::providers::api::http_client;
use crate::providers::stripe;
use crate::secret::Secret;

pub const SIGNATURE_HEADER: &str = "x-payhooks-signature";
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";

#[derive(Debug, Clone)]
pub struct HttpProvisioner {
    http: reqwest::Client,
    url: String,
    secret: Secret,
}

impl HttpProvisioner {
    pub fn new(url: impl Into<String>, secret: Secret) -> Self {
        Self { http: http_client(), url: url.into(), secret }
    }
}

#[async_trait]
impl Provisioner for HttpProvisioner {
    async fn send(&self, request: &ProvisionRequest) -> Result<(), ProvisionError> {
        let body = serde_json::to_vec(request).map_err(|e| ProvisionError::Unreachable(Box::new(e)))?;
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let response = self
            .http
            .post(&self.url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(IDEMPOTENCY_HEADER, &request.idempotency_key)
            .header(SIGNATURE_HEADER, stripe::signature_header(&body, &[&self.secret], now))
            .body(body)
            .send()
            .await
            .map_err(|e| ProvisionError::Unreachable(Box::new(e)))?;
        if response.status().is_success() { Ok(()) } else { Err(ProvisionError::Refused(response.status().as_u16())) }
    }
}

//! Razorpay as payhooks integrates it: an HMAC of the body with the
//! webhook's secret, the event id in a header, and its samples.

use std::sync::Arc;

use async_trait::async_trait;
use http::HeaderMap;
use time::OffsetDateTime;

use super::{EVENT_ID_HEADER, RazorpayVerifier, SAMPLES, SIGNATURE_HEADER, sample_ids, signature};
use crate::event::Provider;
use crate::providers::{
    Integration, SampleIds, Samples, SignError, SignedRequest, Verifier, VerifierSettings, signing_secrets,
};
use crate::secret::SecretSet;

#[derive(Debug, Clone, Copy)]
pub struct Razorpay;

#[async_trait]
impl Integration for Razorpay {
    fn provider(&self) -> Provider {
        Provider::Razorpay
    }

    fn verifier(&self, secrets: SecretSet, _settings: &VerifierSettings) -> Arc<dyn Verifier> {
        Arc::new(RazorpayVerifier::new(secrets))
    }

    fn samples(&self) -> &'static Samples {
        &SAMPLES
    }

    fn sample_ids(&self) -> SampleIds {
        sample_ids()
    }

    fn sample_plan(&self) -> Option<&'static str> {
        Some("plan_test_pro_monthly")
    }

    fn scenario(&self) -> &'static [&'static str] {
        &[
            "subscription.activated",
            "payment.failed",
            "subscription.charged",
            "subscription.updated",
            "subscription.charged.upgrade",
            "refund.processed",
            "subscription.cancelled",
        ]
    }

    /// Razorpay signs with one secret; the event id rides in its header.
    fn sign_sample(
        &self,
        body: &[u8],
        ids: &SampleIds,
        secret: &str,
        _now: OffsetDateTime,
    ) -> Result<SignedRequest, SignError> {
        let unusable = |_| SignError::Unusable("not printable ASCII".into());
        let mut headers = HeaderMap::new();
        headers
            .insert(SIGNATURE_HEADER, signature(body, signing_secrets(secret)?.primary()).parse().map_err(unusable)?);
        headers.insert(EVENT_ID_HEADER, ids.event_id.parse().map_err(unusable)?);
        Ok(SignedRequest { headers, path_token: None })
    }
}

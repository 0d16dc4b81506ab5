//! Paddle Billing as payhooks integrates it: a timestamped HMAC per
//! notification destination, and its samples.

use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{PaddleVerifier, SAMPLES, SIGNATURE_HEADER, sample_ids, signature_header};
use crate::event::Provider;
use crate::providers::{
    Integration, SampleIds, Samples, SignError, SignedRequest, Verifier, VerifierSettings, signed_with,
    signing_secrets, tolerance,
};
use crate::secret::SecretSet;
use crate::settings::{ConfigError, Env};

#[derive(Debug, Clone, Copy)]
pub struct Paddle;

#[async_trait]
impl Integration for Paddle {
    fn provider(&self) -> Provider {
        Provider::Paddle
    }

    fn verifier_settings(&self, env: &Env) -> Result<VerifierSettings, ConfigError> {
        Ok(VerifierSettings { tolerance: tolerance(env)?, ..VerifierSettings::default() })
    }

    fn verifier(&self, secrets: SecretSet, settings: &VerifierSettings) -> Arc<dyn Verifier> {
        Arc::new(PaddleVerifier::new(secrets, settings.tolerance))
    }

    fn samples(&self) -> &'static Samples {
        &SAMPLES
    }

    fn sample_ids(&self) -> SampleIds {
        sample_ids()
    }

    fn sample_plan(&self) -> Option<&'static str> {
        Some("pri_test_pro_monthly")
    }

    fn scenario(&self) -> &'static [&'static str] {
        &[
            "subscription.created",
            "transaction.payment_failed",
            "transaction.completed",
            "subscription.updated.upgrade",
            "transaction.completed.upgrade",
            "adjustment.updated",
            "subscription.canceled",
        ]
    }

    fn sign_sample(
        &self,
        body: &[u8],
        _ids: &SampleIds,
        secret: &str,
        now: OffsetDateTime,
    ) -> Result<SignedRequest, SignError> {
        let secrets = signing_secrets(secret)?;
        let signers: Vec<_> = secrets.iter().collect();
        signed_with(SIGNATURE_HEADER, signature_header(body, &signers, now.unix_timestamp()))
    }
}

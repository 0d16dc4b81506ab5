//! Paystack as payhooks integrates it: an HMAC-SHA512 with the secret key,
//! optionally only from Paystack's published addresses, and its samples.

use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{PUBLISHED_SOURCE_IPS, PaystackVerifier, SAMPLES, SIGNATURE_HEADER, sample_ids, signature};
use crate::event::Provider;
use crate::providers::{
    Integration, SampleIds, Samples, SignError, SignedRequest, Verifier, VerifierSettings, signed_with, signing_secrets,
};
use crate::secret::SecretSet;
use crate::settings::{ConfigError, Env};

/// `published` for Paystack's documented addresses, or a comma-separated
/// list; unset or empty accepts any address.
pub const SOURCE_IPS: &str = "PAYSTACK_SOURCE_IPS";

#[derive(Debug, Clone, Copy)]
pub struct Paystack;

/// The addresses `PAYSTACK_SOURCE_IPS` allows, if it is set.
fn allowed_sources(env: &Env) -> Result<Option<Vec<IpAddr>>, ConfigError> {
    let Some(value) = env.var(SOURCE_IPS) else {
        return Ok(None);
    };
    let list: Vec<&str> = if value.trim() == "published" {
        PUBLISHED_SOURCE_IPS.to_vec()
    } else {
        value.split(',').map(str::trim).filter(|s| !s.is_empty()).collect()
    };
    list.iter().map(|ip| ip.parse()).collect::<Result<Vec<IpAddr>, _>>().map(Some).map_err(|_| ConfigError::Invalid {
        name: SOURCE_IPS.to_owned(),
        expected: "`published` or a comma-separated list of IP addresses",
    })
}

#[async_trait]
impl Integration for Paystack {
    fn provider(&self) -> Provider {
        Provider::Paystack
    }

    fn verifier_settings(&self, env: &Env) -> Result<VerifierSettings, ConfigError> {
        Ok(VerifierSettings { allowed_sources: allowed_sources(env)?, ..VerifierSettings::default() })
    }

    fn verifier(&self, secrets: SecretSet, settings: &VerifierSettings) -> Arc<dyn Verifier> {
        Arc::new(PaystackVerifier::new(secrets, settings.allowed_sources.clone()))
    }

    fn samples(&self) -> &'static Samples {
        &SAMPLES
    }

    fn sample_plan(&self) -> Option<&'static str> {
        Some("PLN_testpro0001")
    }

    fn sample_ids(&self) -> SampleIds {
        sample_ids()
    }

    /// Paystack changes no subscription's plan: the customer subscribes to
    /// Team (a subscription of its own, paid in full) and Pro is cancelled.
    fn scenario(&self) -> &'static [&'static str] {
        &[
            "charge.success.subscription",
            "subscription.create",
            "invoice.payment_failed",
            "invoice.update",
            "charge.success.renewal",
            "refund.processed",
            "charge.success.upgrade",
            "subscription.create.upgrade",
            "subscription.not_renew",
            "subscription.disable",
        ]
    }

    fn sign_sample(
        &self,
        body: &[u8],
        _ids: &SampleIds,
        secret: &str,
        _now: OffsetDateTime,
    ) -> Result<SignedRequest, SignError> {
        signed_with(SIGNATURE_HEADER, signature(body, signing_secrets(secret)?.primary()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_the_published_ones_or_a_list() {
        let published = allowed_sources(&Env::from_pairs([(SOURCE_IPS, "published")])).unwrap();
        assert_eq!(published.map(|s| s.len()), Some(PUBLISHED_SOURCE_IPS.len()));
        let listed = allowed_sources(&Env::from_pairs([(SOURCE_IPS, "10.0.0.1, 10.0.0.2")])).unwrap();
        assert_eq!(listed.map(|s| s.len()), Some(2));
        assert!(matches!(
            allowed_sources(&Env::from_pairs([(SOURCE_IPS, "nowhere")])),
            Err(ConfigError::Invalid { .. })
        ));
        assert_eq!(allowed_sources(&Env::from_pairs([])).unwrap(), None);
    }
}

//! Stripe as payhooks integrates it: a timestamped HMAC, its samples, and
//! its webhook endpoint registered at deploy time when an API key is given.

use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{DEFAULT_API_URL, SAMPLES, SIGNATURE_HEADER, StripeRegistrar, StripeVerifier, signature_header};
use crate::event::Provider;
use crate::ports::SecretStore;
use crate::providers::{
    Integration, RegistrarSetup, SampleIds, Samples, SignError, SignedRequest, Verifier, VerifierSettings, signed_with,
    signing_secrets, tolerance,
};
use crate::registration::Registrar;
use crate::secret::SecretSet;
use crate::settings::{ConfigError, Env, SecretSource};

/// Stripe's secret API key (or a restricted key that may write webhook
/// endpoints), `…_ARN` in Secrets Manager: the register function's.
pub const API_KEY: &str = "STRIPE_API_KEY";
/// Stripe's API root (default `https://api.stripe.com`).
pub const API_URL: &str = "STRIPE_API_URL";
/// Whether a checkout's `client_reference_id` may name its account
/// (`true` or `false`, default `false`).
pub const TRUST_CLIENT_REFERENCE_ID: &str = "STRIPE_TRUST_CLIENT_REFERENCE_ID";

#[derive(Debug, Clone, Copy)]
pub struct Stripe;

#[async_trait]
impl Integration for Stripe {
    fn provider(&self) -> Provider {
        Provider::Stripe
    }

    fn verifier_settings(&self, env: &Env) -> Result<VerifierSettings, ConfigError> {
        Ok(VerifierSettings {
            tolerance: tolerance(env)?,
            customer_chosen_account: env.parsed(TRUST_CLIENT_REFERENCE_ID, false, "true or false")?,
            ..VerifierSettings::default()
        })
    }

    fn verifier(&self, secrets: SecretSet, settings: &VerifierSettings) -> Arc<dyn Verifier> {
        Arc::new(
            StripeVerifier::new(secrets, settings.tolerance)
                .trusting_client_reference(settings.customer_chosen_account),
        )
    }

    fn registration(&self, env: &Env) -> Result<Option<Box<dyn RegistrarSetup>>, ConfigError> {
        Ok(env.secret(API_KEY).map(|key| {
            let url = env.var(API_URL).unwrap_or_else(|| DEFAULT_API_URL.to_owned());
            Box::new(Registration { url, key }) as Box<dyn RegistrarSetup>
        }))
    }

    fn samples(&self) -> &'static Samples {
        &SAMPLES
    }

    fn sample_plan(&self) -> Option<&'static str> {
        Some("price_1TestPlanPro")
    }

    fn scenario(&self) -> &'static [&'static str] {
        // A renewal as Stripe tells it: the period rolls, the first charge
        // fails, the retry succeeds; only the paid invoice grants. Halfway
        // through, an upgrade invoiced at once tops the period up.
        &[
            "checkout.session.completed",
            "customer.subscription.updated",
            "invoice.payment_failed",
            "invoice.payment_succeeded",
            "invoice_payment.paid",
            "customer.subscription.updated.upgrade",
            "invoice.paid.upgrade",
            "refund.created",
            "customer.subscription.deleted",
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

/// The webhook endpoint's registration: Stripe's API and the key.
#[derive(Debug)]
struct Registration {
    url: String,
    key: SecretSource,
}

#[async_trait]
impl RegistrarSetup for Registration {
    async fn build(&self, secrets: &dyn SecretStore) -> Result<Arc<dyn Registrar>, ConfigError> {
        Ok(Arc::new(StripeRegistrar::new(&self.url, self.key.read_trimmed(secrets).await?)))
    }
}

//! An ingest function's settings: its table and queue, and how its provider
//! is verified (each provider's [`crate::providers::Integration`] reads
//! its own).

use std::sync::Arc;

use super::{Cloud, ConfigError, EVENTS_TABLE, Env, MAX_BODY_BYTES, QUEUE_URL, metrics_namespace};
use crate::clock::SystemClock;
use crate::event::Provider;
use crate::ingest::{Ingest, IngestSettings};
use crate::providers::{VerifierSettings, VerifierSetup, integration};

/// The variable holding a provider's signing secrets (`STRIPE_WEBHOOK_SECRET`,
/// PayPal's `PAYPAL_WEBHOOK_ID`).
pub fn secret_variable(provider: Provider) -> String {
    integration(provider).secret_variable()
}

/// What `provider`'s verifier needs besides its secrets.
pub fn verifier_settings(provider: Provider, env: &Env) -> Result<VerifierSettings, ConfigError> {
    integration(provider).verifier_settings(env)
}

/// The ingest settings: the body limit (the rest are fixed).
pub fn ingest_settings(env: &Env) -> Result<IngestSettings, ConfigError> {
    let defaults = IngestSettings::default();
    Ok(IngestSettings { max_body_bytes: env.number(MAX_BODY_BYTES, defaults.max_body_bytes)?, ..defaults })
}

#[derive(Debug)]
pub struct IngestConfig {
    pub provider: Provider,
    pub table: String,
    pub queue_url: String,
    pub namespace: String,
    pub settings: IngestSettings,
    pub verification: Box<dyn VerifierSetup>,
}

impl IngestConfig {
    pub fn read(provider: Provider, env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            provider,
            table: env.required(EVENTS_TABLE)?,
            queue_url: env.required(QUEUE_URL)?,
            namespace: metrics_namespace(env),
            settings: ingest_settings(env)?,
            verification: integration(provider).verification(env)?,
        })
    }

    /// The ingest pipeline on DynamoDB and SQS; the secrets are read here,
    /// once per cold start.
    pub async fn build(self, cloud: &Cloud) -> Result<Ingest, ConfigError> {
        let verifier = self.verification.build(cloud.secrets().as_ref()).await?;
        Ok(Ingest::new(
            vec![verifier],
            Arc::new(cloud.store(&self.table)),
            Arc::new(cloud.queue(&self.queue_url)),
            cloud.metrics(&self.namespace),
            Arc::new(SystemClock),
            self.settings,
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::providers::TOLERANCE_SECS;

    const TABLE_AND_QUEUE: [(&str, &str); 2] = [(EVENTS_TABLE, "events"), (QUEUE_URL, "http://queue")];

    fn env(extra: &[(&'static str, &'static str)]) -> Env<'static> {
        Env::from_pairs(TABLE_AND_QUEUE.iter().chain(extra).copied())
    }

    #[test]
    fn an_ingest_function_needs_its_table_queue_and_secret() {
        let missing = IngestConfig::read(Provider::Stripe, &Env::from_pairs([(QUEUE_URL, "q")]));
        assert!(matches!(missing, Err(ConfigError::Missing(name)) if name == EVENTS_TABLE));
        let no_secret = IngestConfig::read(Provider::Stripe, &env(&[]));
        assert!(matches!(no_secret, Err(ConfigError::NoSecret(name)) if name == "STRIPE_WEBHOOK_SECRET"));
        let config = IngestConfig::read(Provider::Stripe, &env(&[("STRIPE_WEBHOOK_SECRET_ARN", "arn:x")])).unwrap();
        assert_eq!(config.namespace, "payhooks");
        let window = verifier_settings(Provider::Stripe, &Env::from_pairs([(TOLERANCE_SECS, "60")])).unwrap();
        assert_eq!(window.tolerance, Duration::from_secs(60));
    }

    #[test]
    fn the_body_limit_and_the_namespace_are_read() {
        let config = IngestConfig::read(
            Provider::Killbill,
            &env(&[
                ("KILLBILL_WEBHOOK_SECRET", "token"),
                (MAX_BODY_BYTES, "2048"),
                (super::super::METRICS_NAMESPACE, "payhooks/stack-a"),
            ]),
        )
        .unwrap();
        assert_eq!(config.settings.max_body_bytes, 2048);
        assert_eq!(config.namespace, "payhooks/stack-a");
        let bad =
            IngestConfig::read(Provider::Killbill, &env(&[("KILLBILL_WEBHOOK_SECRET", "t"), (MAX_BODY_BYTES, "big")]));
        assert!(matches!(bad, Err(ConfigError::Invalid { .. })));
    }

    #[test]
    fn a_customer_chosen_account_counts_only_when_enabled() {
        use crate::providers::stripe::TRUST_CLIENT_REFERENCE_ID;
        let read =
            |pairs: &[(&str, &str)]| verifier_settings(Provider::Stripe, &Env::from_pairs(pairs.iter().copied()));
        assert!(!read(&[]).unwrap().customer_chosen_account);
        assert!(read(&[(TRUST_CLIENT_REFERENCE_ID, "true")]).unwrap().customer_chosen_account);
        assert!(matches!(read(&[(TRUST_CLIENT_REFERENCE_ID, "yes")]), Err(ConfigError::Invalid { .. })));
    }

    #[test]
    fn every_provider_names_its_secret() {
        assert_eq!(secret_variable(Provider::Paystack), "PAYSTACK_WEBHOOK_SECRET");
        assert_eq!(secret_variable(Provider::Paypal), "PAYPAL_WEBHOOK_ID");
    }
}

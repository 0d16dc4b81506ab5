//! Flutterwave as payhooks integrates it: the secret hash (v3 `verif-hash`,
//! v4 `flutterwave-signature`), its samples, and its verify-transaction API
//! confirming charges, since the hash binds no body.

use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::transactions::DEFAULT_API_URL;
use super::{FlutterwaveTransactions, FlutterwaveVerifier, SAMPLES, sample_header, sample_ids};
use crate::event::Provider;
use crate::ports::{Confirmer, SecretStore};
use crate::providers::{
    ConfirmerSetup, Integration, SampleIds, Samples, SignError, SignedRequest, Verifier, VerifierSettings, signed_with,
    signing_secrets,
};
use crate::secret::SecretSet;
use crate::settings::{ConfigError, Env, SecretSource};

/// `false` turns the verify-transaction check off; `true` requires a key.
pub const VERIFY_TRANSACTIONS: &str = "FLUTTERWAVE_VERIFY_TRANSACTIONS";
/// Flutterwave's secret API key (`FLWSECK_…`), `…_ARN` in Secrets Manager.
pub const SECRET_KEY: &str = "FLUTTERWAVE_SECRET_KEY";
pub const API_URL: &str = "FLUTTERWAVE_API_URL";

#[derive(Debug, Clone, Copy)]
pub struct Flutterwave;

#[async_trait]
impl Integration for Flutterwave {
    fn provider(&self) -> Provider {
        Provider::Flutterwave
    }

    fn signs_body(&self) -> bool {
        false
    }

    fn verifier(&self, secrets: SecretSet, _settings: &VerifierSettings) -> Arc<dyn Verifier> {
        Arc::new(FlutterwaveVerifier::new(secrets))
    }

    /// On whenever a secret key is configured, unless
    /// `FLUTTERWAVE_VERIFY_TRANSACTIONS=false`; asked for without a key, a
    /// configuration error rather than a silent skip.
    fn confirmation(&self, env: &Env) -> Result<Option<Box<dyn ConfirmerSetup>>, ConfigError> {
        let wanted = env.var(VERIFY_TRANSACTIONS).map(|v| v.trim().to_ascii_lowercase());
        if wanted.as_deref() == Some("false") {
            return Ok(None);
        }
        match env.secret(SECRET_KEY) {
            Some(key) => {
                let url = env.var(API_URL).unwrap_or_else(|| DEFAULT_API_URL.to_owned());
                Ok(Some(Box::new(Confirmation { url, key })))
            }
            None if wanted.as_deref() == Some("true") => Err(ConfigError::Missing(format!(
                "{SECRET_KEY}_ARN or {SECRET_KEY} (required by {VERIFY_TRANSACTIONS}=true)"
            ))),
            None => Ok(None),
        }
    }

    fn samples(&self) -> &'static Samples {
        &SAMPLES
    }

    fn sample_plan(&self) -> Option<&'static str> {
        Some("3807")
    }

    fn sample_ids(&self) -> SampleIds {
        sample_ids()
    }

    fn scenario(&self) -> &'static [&'static str] {
        &[
            "charge.completed",
            "charge.completed.failed",
            "charge.completed.renewal",
            "refund.completed",
            "charge.completed.upgrade",
            "subscription.cancelled",
        ]
    }

    fn sign_sample(
        &self,
        body: &[u8],
        _ids: &SampleIds,
        secret: &str,
        _now: OffsetDateTime,
    ) -> Result<SignedRequest, SignError> {
        let (name, value) = sample_header(body, signing_secrets(secret)?.primary());
        signed_with(name, value)
    }
}

/// The verify-transaction API and its key.
#[derive(Debug)]
struct Confirmation {
    url: String,
    key: SecretSource,
}

#[async_trait]
impl ConfirmerSetup for Confirmation {
    async fn build(&self, secrets: &dyn SecretStore) -> Result<Arc<dyn Confirmer>, ConfigError> {
        Ok(Arc::new(FlutterwaveTransactions::new(self.url.clone(), self.key.read_trimmed(secrets).await?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_check_is_on_with_a_key_off_when_asked_and_a_key_is_required_when_wanted() {
        let on = Flutterwave.confirmation(&Env::from_pairs([("FLUTTERWAVE_SECRET_KEY_ARN", "arn:f")])).unwrap();
        assert!(on.is_some());
        let off = Flutterwave
            .confirmation(&Env::from_pairs([("FLUTTERWAVE_SECRET_KEY_ARN", "arn:f"), (VERIFY_TRANSACTIONS, "false")]))
            .unwrap();
        assert!(off.is_none());
        let keyless = Flutterwave.confirmation(&Env::from_pairs([(VERIFY_TRANSACTIONS, "true")]));
        assert!(matches!(keyless, Err(ConfigError::Missing(_))));
        assert!(Flutterwave.confirmation(&Env::from_pairs([])).unwrap().is_none());
    }
}

//! PayPal as payhooks integrates it: its certificate signature over the
//! endpoint's webhook id (checked offline, or by PayPal's API), its
//! samples signed by a key made at start, and its subscriptions read back
//! before value is given.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{
    ApiCheck, LIVE_API_BASE, LocalPaypal, PaypalApi, PaypalSubscriptions, PaypalVerifier, SAMPLES, VerificationMode,
    sample_ids, sign_sample,
};
use crate::event::Provider;
use crate::ports::{Confirmer, SecretStore};
use crate::providers::{
    ConfirmerSetup, Integration, LocalSigning, SampleIds, Samples, SignError, SignedRequest, Verifier,
    VerifierSettings, VerifierSetup, tolerance,
};
use crate::secret::SecretSet;
use crate::settings::{ConfigError, Env, SecretSource};

/// `offline` (default: PayPal's certificate) or `api` (PayPal's
/// verify-webhook-signature API).
pub const VERIFICATION: &str = "PAYPAL_VERIFICATION";
pub const CLIENT_ID: &str = "PAYPAL_CLIENT_ID";
/// The REST app's client secret, `…_ARN` in Secrets Manager.
pub const CLIENT_SECRET: &str = "PAYPAL_CLIENT_SECRET";
/// PayPal's API root (default live; the sandbox is
/// `https://api-m.sandbox.paypal.com`).
pub const API_BASE: &str = "PAYPAL_API_BASE";

#[derive(Debug, Clone, Copy)]
pub struct Paypal;

#[async_trait]
impl Integration for Paypal {
    fn provider(&self) -> Provider {
        Provider::Paypal
    }

    /// PayPal has no shared secret: the endpoint's webhook ids go into what
    /// it signs, and travel the same way.
    fn secret_variable(&self) -> String {
        "PAYPAL_WEBHOOK_ID".to_owned()
    }

    fn verifier_settings(&self, env: &Env) -> Result<VerifierSettings, ConfigError> {
        Ok(VerifierSettings { tolerance: tolerance(env)?, ..VerifierSettings::default() })
    }

    /// Offline, with certificates fetched from PayPal over HTTPS.
    fn verifier(&self, secrets: SecretSet, settings: &VerifierSettings) -> Arc<dyn Verifier> {
        Arc::new(PaypalVerifier::offline_over_https(secrets, settings.tolerance))
    }

    /// The API's credentials are read only in the mode that uses them.
    fn verification(&self, env: &Env) -> Result<Box<dyn VerifierSetup>, ConfigError> {
        let mode: VerificationMode = env.parsed(VERIFICATION, VerificationMode::Offline, "offline or api")?;
        let api = match mode {
            VerificationMode::Offline => None,
            VerificationMode::Api => Some(
                ApiAccess::read(env)?
                    .ok_or_else(|| ConfigError::Missing(format!("{CLIENT_ID} (required by {VERIFICATION}=api)")))?,
            ),
        };
        Ok(Box::new(Verification {
            webhook_ids: env.required_secret(&self.secret_variable())?,
            settings: self.verifier_settings(env)?,
            api,
        }))
    }

    fn confirmation(&self, env: &Env) -> Result<Option<Box<dyn ConfirmerSetup>>, ConfigError> {
        Ok(ApiAccess::read(env)?.map(|api| Box::new(api) as Box<dyn ConfirmerSetup>))
    }

    fn samples(&self) -> &'static Samples {
        &SAMPLES
    }

    fn sample_plan(&self) -> Option<&'static str> {
        Some("P-5ML4271244454362WXNWU5NQ")
    }

    fn sample_ids(&self) -> SampleIds {
        sample_ids()
    }

    fn scenario(&self) -> &'static [&'static str] {
        &[
            "BILLING.SUBSCRIPTION.ACTIVATED",
            "BILLING.SUBSCRIPTION.PAYMENT.FAILED",
            "PAYMENT.SALE.COMPLETED",
            "BILLING.SUBSCRIPTION.UPDATED.upgrade",
            "PAYMENT.SALE.COMPLETED.upgrade",
            "PAYMENT.SALE.REFUNDED",
            "BILLING.SUBSCRIPTION.CANCELLED",
        ]
    }

    /// `secret` is the path of the signing file the local server wrote.
    fn sign_sample(
        &self,
        body: &[u8],
        _ids: &SampleIds,
        secret: &str,
        now: OffsetDateTime,
    ) -> Result<SignedRequest, SignError> {
        sign_sample(body, secret, now)
    }

    /// No shared secret to print: a key and certificate made now, the
    /// certificate served from memory, the key in a file for `trigger`.
    fn local_signing(&self, env: &Env, dir: &Path) -> Result<Option<LocalSigning>, ConfigError> {
        let webhook_id =
            env.var(&self.secret_variable()).unwrap_or_else(|| format!("WH-LOCAL-{}", uuid::Uuid::new_v4().simple()));
        let tolerance = self.verifier_settings(env)?.tolerance;
        let local = LocalPaypal::start(&webhook_id, tolerance, dir).map_err(|e| ConfigError::Local(e.to_string()))?;
        let file = local.signing_file.display().to_string();
        Ok(Some(LocalSigning {
            verifier: Arc::new(local.verifier),
            description: format!("webhook id {webhook_id}, signing file (0600): {file}"),
            secret: file,
        }))
    }

    fn trigger_secret_variable(&self) -> String {
        "PAYHOOKS_PAYPAL_SIGNING_FILE".to_owned()
    }
}

/// PayPal's REST API with an app's client credentials.
#[derive(Debug, Clone)]
pub struct ApiAccess {
    pub client_id: String,
    pub client_secret: SecretSource,
    pub base: url::Url,
}

impl ApiAccess {
    /// When `PAYPAL_CLIENT_ID` is set, the secret is required with it.
    pub fn read(env: &Env) -> Result<Option<Self>, ConfigError> {
        let Some(client_id) = env.var(CLIENT_ID) else {
            return Ok(None);
        };
        let client_secret = env.required_secret(CLIENT_SECRET)?;
        let base = env.var(API_BASE).unwrap_or_else(|| LIVE_API_BASE.to_owned());
        let base = url::Url::parse(base.trim())
            .ok()
            .filter(|url| url.scheme() == "https")
            .ok_or_else(|| ConfigError::Invalid { name: API_BASE.to_owned(), expected: "an https URL" })?;
        Ok(Some(Self { client_id: client_id.trim().to_owned(), client_secret, base }))
    }

    async fn build(&self, secrets: &dyn SecretStore) -> Result<PaypalApi, ConfigError> {
        let secret = self.client_secret.read_trimmed(secrets).await?;
        Ok(PaypalApi::new(self.base.clone(), self.client_id.clone(), secret))
    }
}

#[async_trait]
impl ConfirmerSetup for ApiAccess {
    async fn build(&self, secrets: &dyn SecretStore) -> Result<Arc<dyn Confirmer>, ConfigError> {
        Ok(Arc::new(PaypalSubscriptions::new(ApiAccess::build(self, secrets).await?)))
    }
}

/// The webhook ids, the window, and PayPal's API when it checks signatures.
#[derive(Debug)]
struct Verification {
    webhook_ids: SecretSource,
    settings: VerifierSettings,
    api: Option<ApiAccess>,
}

#[async_trait]
impl VerifierSetup for Verification {
    async fn build(&self, secrets: &dyn SecretStore) -> Result<Arc<dyn Verifier>, ConfigError> {
        let ids = self.webhook_ids.read_set(secrets, &Paypal.secret_variable()).await?;
        Ok(match &self.api {
            None => Paypal.verifier(ids, &self.settings),
            Some(api) => {
                let check = ApiCheck::from_api(api.build(secrets).await?);
                Arc::new(PaypalVerifier::new(ids, self.settings.tolerance, Arc::new(check)))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_is_read_only_in_api_mode_and_then_required() {
        let id = ("PAYPAL_WEBHOOK_ID", "WH-1");
        assert!(Paypal.verification(&Env::from_pairs([id])).is_ok());
        let without_client = Paypal.verification(&Env::from_pairs([id, (VERIFICATION, "api")]));
        assert!(matches!(without_client, Err(ConfigError::Missing(_))));
        let api = [
            id,
            (VERIFICATION, "api"),
            (CLIENT_ID, "client"),
            ("PAYPAL_CLIENT_SECRET_ARN", "arn:x"),
            (API_BASE, "https://api-m.sandbox.paypal.com"),
        ];
        assert!(Paypal.verification(&Env::from_pairs(api)).is_ok());
        let plain_http = ApiAccess::read(&Env::from_pairs([
            (CLIENT_ID, "client"),
            (CLIENT_SECRET, "s"),
            (API_BASE, "http://api-m.paypal.com"),
        ]));
        assert!(matches!(plain_http, Err(ConfigError::Invalid { .. })));
        let mode = Paypal.verification(&Env::from_pairs([id, (VERIFICATION, "maybe")]));
        assert!(matches!(mode, Err(ConfigError::Invalid { .. })));
        assert!(Paypal.confirmation(&Env::from_pairs([])).unwrap().is_none());
    }
}

//! The register function's settings: which registrations it can make, and
//! with which credentials. The secrets' values are read when CloudFormation
//! asks for a registration, so a cold start registers nothing and a deploy
//! after a rotation uses the new values.

use std::sync::Arc;

use super::processor::{killbill, killbill_credentials};
use super::{Cloud, ConfigError, EVENTS_TABLE, Env, STRIPE_API_KEY, STRIPE_API_URL, SecretSource, secret_variable};
use crate::clock::SystemClock;
use crate::event::Provider;
use crate::providers::killbill::KillbillRegistrar;
use crate::providers::stripe::StripeRegistrar;
use crate::registration::{LockSettings, Locked, Registrar, Registrars, RegistrationError};
use crate::secret::Secret;

#[derive(Debug)]
pub struct RegisterConfig {
    pub table: String,
    /// Kill Bill's API, its credentials, and the token its callback URL ends with.
    pub killbill: Option<(String, SecretSource, SecretSource)>,
    /// Stripe's API root and an API key that may write webhook endpoints.
    pub stripe: Option<(String, SecretSource)>,
}

impl RegisterConfig {
    pub fn read(env: &Env) -> Result<Self, ConfigError> {
        let killbill = match killbill(env)? {
            Some((url, credentials)) => {
                Some((url, credentials, env.required_secret(&secret_variable(Provider::Killbill))?))
            }
            None => None,
        };
        let stripe = env.secret(STRIPE_API_KEY).map(|key| {
            let url = env
                .var(STRIPE_API_URL)
                .unwrap_or_else(|| crate::providers::stripe::registrar::DEFAULT_API_URL.to_owned());
            (url, key)
        });
        Ok(Self { table: env.required(EVENTS_TABLE)?, killbill, stripe })
    }

    pub fn build(self, cloud: &Cloud) -> LambdaRegistrars {
        LambdaRegistrars { secrets: cloud.secrets(), lock: Arc::new(cloud.store(&self.table)), config: self }
    }
}

/// The register function's registrars, each behind the lock so concurrent
/// deploys register once.
#[derive(Debug)]
pub struct LambdaRegistrars {
    config: RegisterConfig,
    secrets: Arc<dyn crate::ports::SecretStore>,
    lock: Arc<crate::adapters::DynamoEventStore>,
}

impl LambdaRegistrars {
    fn unconfigured(provider: Provider, name: &str) -> RegistrationError {
        RegistrationError::Unconfigured { provider, source: ConfigError::Missing(name.to_owned()) }
    }
}

#[async_trait::async_trait]
impl Registrars for LambdaRegistrars {
    async fn registrar(&self, provider: Provider) -> Result<Arc<dyn Registrar>, RegistrationError> {
        let unconfigured = |source| RegistrationError::Unconfigured { provider, source };
        let registrar: Arc<dyn Registrar> = match provider {
            Provider::Killbill => {
                let (url, credentials, _) = self
                    .config
                    .killbill
                    .as_ref()
                    .ok_or_else(|| Self::unconfigured(provider, super::KILLBILL_API_URL))?;
                let credentials =
                    killbill_credentials(credentials, self.secrets.as_ref()).await.map_err(unconfigured)?;
                Arc::new(KillbillRegistrar::new(url, credentials))
            }
            Provider::Stripe => {
                let (url, key) =
                    self.config.stripe.as_ref().ok_or_else(|| Self::unconfigured(provider, "STRIPE_API_KEY_ARN"))?;
                let key = key.read(self.secrets.as_ref()).await.map_err(unconfigured)?;
                Arc::new(StripeRegistrar::new(url, Secret::new(String::from_utf8_lossy(key.expose()).trim())))
            }
            other => return Err(RegistrationError::Unsupported(other)),
        };
        Ok(Arc::new(Locked::new(
            registrar,
            self.lock.clone(),
            Arc::new(SystemClock),
            format!("register-{provider}"),
            LockSettings::default(),
        )))
    }

    async fn url_token(&self, provider: Provider) -> Result<Option<Secret>, RegistrationError> {
        if provider != Provider::Killbill {
            return Ok(None);
        }
        let (_, _, token) =
            self.config.killbill.as_ref().ok_or_else(|| Self::unconfigured(provider, super::KILLBILL_API_URL))?;
        let tokens = token
            .read_set(self.secrets.as_ref(), &secret_variable(provider))
            .await
            .map_err(|source| RegistrationError::Unconfigured { provider, source })?;
        // The first token listed is the one new registrations use; the others
        // stay accepted while Kill Bill moves over.
        Ok(Some(tokens.primary().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_registration_is_configured_by_its_own_settings() {
        let none = RegisterConfig::read(&Env::from_pairs([(EVENTS_TABLE, "events")])).expect("config");
        assert!(none.killbill.is_none() && none.stripe.is_none());
        let both = RegisterConfig::read(&Env::from_pairs([
            (EVENTS_TABLE, "events"),
            (super::super::KILLBILL_API_URL, "https://killbill.example"),
            ("KILLBILL_API_CREDENTIALS_ARN", "arn:c"),
            ("KILLBILL_WEBHOOK_SECRET_ARN", "arn:t"),
            ("STRIPE_API_KEY_ARN", "arn:s"),
        ]))
        .expect("config");
        assert!(both.killbill.is_some());
        assert!(
            matches!(both.stripe, Some((ref url, _)) if url == crate::providers::stripe::registrar::DEFAULT_API_URL)
        );
        let tokenless = RegisterConfig::read(&Env::from_pairs([
            (EVENTS_TABLE, "events"),
            (super::super::KILLBILL_API_URL, "https://killbill.example"),
            ("KILLBILL_API_CREDENTIALS_ARN", "arn:c"),
        ]));
        assert!(matches!(tokenless, Err(ConfigError::NoSecret(name)) if name == "KILLBILL_WEBHOOK_SECRET"));
    }
}

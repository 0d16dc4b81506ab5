//! The register function's settings: the registrations each provider's
//! [`crate::providers::Integration`] reads from the environment. Their
//! secrets are read when CloudFormation asks for a registration, so a cold
//! start registers nothing and a deploy after a rotation uses the new values.

use std::sync::Arc;

use super::{Cloud, ConfigError, EVENTS_TABLE, Env};
use crate::adapters::DynamoEventStore;
use crate::clock::SystemClock;
use crate::event::Provider;
use crate::ports::SecretStore;
use crate::providers::{RegistrarSetup, integration};
use crate::registration::{LockSettings, Locked, Registrar, Registrars, RegistrationError};
use crate::secret::Secret;

#[derive(Debug)]
pub struct RegisterConfig {
    pub table: String,
    pub registrations: Vec<(Provider, Box<dyn RegistrarSetup>)>,
}

impl RegisterConfig {
    pub fn read(env: &Env) -> Result<Self, ConfigError> {
        let mut registrations = Vec::new();
        for &provider in Provider::ALL {
            if let Some(setup) = integration(provider).registration(env)? {
                registrations.push((provider, setup));
            }
        }
        Ok(Self { table: env.required(EVENTS_TABLE)?, registrations })
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
    secrets: Arc<dyn SecretStore>,
    lock: Arc<DynamoEventStore>,
}

impl LambdaRegistrars {
    fn setup(&self, provider: Provider) -> Result<&dyn RegistrarSetup, RegistrationError> {
        self.config.registrations.iter().find(|(p, _)| *p == provider).map(|(_, setup)| setup.as_ref()).ok_or(
            RegistrationError::Unconfigured {
                provider,
                source: ConfigError::NotConfigured(format!("{provider}'s callback registration")),
            },
        )
    }
}

#[async_trait::async_trait]
impl Registrars for LambdaRegistrars {
    async fn registrar(&self, provider: Provider) -> Result<Arc<dyn Registrar>, RegistrationError> {
        let registrar = self
            .setup(provider)?
            .build(self.secrets.as_ref())
            .await
            .map_err(|source| RegistrationError::Unconfigured { provider, source })?;
        Ok(Arc::new(Locked::new(
            registrar,
            self.lock.clone(),
            Arc::new(SystemClock),
            format!("register-{provider}"),
            LockSettings::default(),
        )))
    }

    async fn url_token(&self, provider: Provider) -> Result<Option<Secret>, RegistrationError> {
        let Ok(setup) = self.setup(provider) else {
            // Nothing to register with: the registrar says so.
            return Ok(None);
        };
        setup
            .url_token(self.secrets.as_ref())
            .await
            .map_err(|source| RegistrationError::Unconfigured { provider, source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_registration_is_configured_by_its_own_settings() {
        let none = RegisterConfig::read(&Env::from_pairs([(EVENTS_TABLE, "events")])).unwrap();
        assert!(none.registrations.is_empty());
        let both = RegisterConfig::read(&Env::from_pairs([
            (EVENTS_TABLE, "events"),
            ("KILLBILL_API_URL", "https://killbill.example"),
            ("KILLBILL_API_CREDENTIALS_ARN", "arn:c"),
            ("KILLBILL_WEBHOOK_SECRET_ARN", "arn:t"),
            ("STRIPE_API_KEY_ARN", "arn:s"),
        ]))
        .unwrap();
        let providers: Vec<Provider> = both.registrations.iter().map(|(p, _)| *p).collect();
        assert_eq!(providers, [Provider::Stripe, Provider::Killbill]);
        let tokenless = RegisterConfig::read(&Env::from_pairs([
            (EVENTS_TABLE, "events"),
            ("KILLBILL_API_URL", "https://killbill.example"),
            ("KILLBILL_API_CREDENTIALS_ARN", "arn:c"),
        ]));
        assert!(matches!(tokenless, Err(ConfigError::NoSecret(name)) if name == "KILLBILL_WEBHOOK_SECRET"));
    }
}

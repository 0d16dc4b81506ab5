//! Kill Bill as payhooks integrates it: a token ending the callback URL
//! (Kill Bill signs nothing), its samples, its API reading each
//! notification's object back, and its one tenant callback registered at
//! deploy time.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{KillbillApi, KillbillCredentials, KillbillRegistrar, KillbillVerifier, SAMPLES, sample_ids};
use crate::event::Provider;
use crate::ports::{Confirmer, SecretStore};
use crate::providers::{
    ConfirmerSetup, Integration, RegistrarSetup, SampleIds, Samples, SignError, SignedRequest, Verifier,
    VerifierSettings, signing_secrets,
};
use crate::registration::Registrar;
use crate::secret::{Secret, SecretSet};
use crate::settings::{ConfigError, Env, SecretSource};

/// Kill Bill's API root: when set, notifications are confirmed by reading
/// their object back, and deploys register the callback.
pub const API_URL: &str = "KILLBILL_API_URL";
/// JSON `{"api_key", "api_secret", "username", "password"}` of the tenant,
/// `…_ARN` in Secrets Manager.
pub const API_CREDENTIALS: &str = "KILLBILL_API_CREDENTIALS";

#[derive(Debug, Clone, Copy)]
pub struct Killbill;

/// The API and its credentials, when `KILLBILL_API_URL` is set.
fn api(env: &Env) -> Result<Option<Api>, ConfigError> {
    let Some(url) = env.var(API_URL) else {
        return Ok(None);
    };
    Ok(Some(Api { url: url.trim().to_owned(), credentials: env.required_secret(API_CREDENTIALS)? }))
}

#[async_trait]
impl Integration for Killbill {
    fn provider(&self) -> Provider {
        Provider::Killbill
    }

    fn signs_body(&self) -> bool {
        false
    }

    fn token_in_path(&self) -> bool {
        true
    }

    fn verifier(&self, secrets: SecretSet, _settings: &VerifierSettings) -> Arc<dyn Verifier> {
        Arc::new(KillbillVerifier::new(secrets))
    }

    fn confirmation(&self, env: &Env) -> Result<Option<Box<dyn ConfirmerSetup>>, ConfigError> {
        Ok(api(env)?.map(|api| Box::new(api) as Box<dyn ConfirmerSetup>))
    }

    fn registration(&self, env: &Env) -> Result<Option<Box<dyn RegistrarSetup>>, ConfigError> {
        let Some(api) = api(env)? else {
            return Ok(None);
        };
        let token = env.required_secret(&self.secret_variable())?;
        Ok(Some(Box::new(Registration { api, token })))
    }

    fn samples(&self) -> &'static Samples {
        &SAMPLES
    }

    /// Its plans live in its catalog, read back through its API (the local
    /// server's stand-in answers with this one).
    fn sample_plan(&self) -> Option<&'static str> {
        Some(super::sample_api::PRO)
    }

    fn sample_api_objects(&self, sample: &str, ids: &SampleIds) -> Vec<(String, serde_json::Value)> {
        super::sample_api::objects(sample, ids)
    }

    fn sample_ids(&self) -> SampleIds {
        sample_ids()
    }

    fn scenario(&self) -> &'static [&'static str] {
        &[
            "SUBSCRIPTION_CREATION",
            "INVOICE_PAYMENT_FAILED",
            "INVOICE_PAYMENT_SUCCESS",
            "PAYMENT_SUCCESS.refund",
            "SUBSCRIPTION_CHANGE",
            "INVOICE_PAYMENT_SUCCESS.upgrade",
            "SUBSCRIPTION_CANCEL",
        ]
    }

    fn sign_sample(
        &self,
        _body: &[u8],
        _ids: &SampleIds,
        secret: &str,
        _now: OffsetDateTime,
    ) -> Result<SignedRequest, SignError> {
        let token = String::from_utf8_lossy(signing_secrets(secret)?.primary().expose()).into_owned();
        Ok(SignedRequest { headers: http::HeaderMap::new(), path_token: Some(token) })
    }
}

/// Kill Bill's API and the tenant's credentials.
#[derive(Debug)]
struct Api {
    url: String,
    credentials: SecretSource,
}

impl Api {
    async fn credentials(&self, secrets: &dyn SecretStore) -> Result<KillbillCredentials, ConfigError> {
        credentials(self.credentials.read(secrets).await?.expose())
    }
}

/// The credentials' JSON: `api_key`, `api_secret`, `username`, `password`.
fn credentials(json: &[u8]) -> Result<KillbillCredentials, ConfigError> {
    let invalid = || ConfigError::Invalid {
        name: API_CREDENTIALS.to_owned(),
        expected: "a JSON object with api_key, api_secret, username and password",
    };
    let fields: HashMap<String, String> = serde_json::from_slice(json).map_err(|_| invalid())?;
    let field = |name: &str| fields.get(name).cloned().ok_or_else(invalid);
    Ok(KillbillCredentials {
        api_key: field("api_key")?,
        api_secret: Secret::new(field("api_secret")?),
        username: field("username")?,
        password: Secret::new(field("password")?),
    })
}

#[async_trait]
impl ConfirmerSetup for Api {
    async fn build(&self, secrets: &dyn SecretStore) -> Result<Arc<dyn Confirmer>, ConfigError> {
        Ok(Arc::new(KillbillApi::new(self.url.clone(), self.credentials(secrets).await?)))
    }
}

/// The callback registration: the API, and the token the callback URL ends
/// with (the first listed: the others stay accepted while Kill Bill moves
/// over).
#[derive(Debug)]
struct Registration {
    api: Api,
    token: SecretSource,
}

#[async_trait]
impl RegistrarSetup for Registration {
    async fn build(&self, secrets: &dyn SecretStore) -> Result<Arc<dyn Registrar>, ConfigError> {
        Ok(Arc::new(KillbillRegistrar::new(&self.api.url, self.api.credentials(secrets).await?)))
    }

    async fn url_token(&self, secrets: &dyn SecretStore) -> Result<Option<Secret>, ConfigError> {
        let tokens = self.token.read_set(secrets, &Killbill.secret_variable()).await?;
        Ok(Some(tokens.primary().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_needs_its_credentials_and_the_registration_its_token() {
        assert!(Killbill.confirmation(&Env::from_pairs([])).unwrap().is_none());
        let no_credentials = Killbill.confirmation(&Env::from_pairs([(API_URL, "https://killbill.example")]));
        assert!(matches!(no_credentials, Err(ConfigError::NoSecret(name)) if name == API_CREDENTIALS));
        let api = [(API_URL, "https://killbill.example"), ("KILLBILL_API_CREDENTIALS_ARN", "arn:c")];
        assert!(Killbill.confirmation(&Env::from_pairs(api)).unwrap().is_some());
        let tokenless = Killbill.registration(&Env::from_pairs(api));
        assert!(matches!(tokenless, Err(ConfigError::NoSecret(name)) if name == "KILLBILL_WEBHOOK_SECRET"));
        let with_token = api.into_iter().chain([("KILLBILL_WEBHOOK_SECRET_ARN", "arn:t")]);
        assert!(Killbill.registration(&Env::from_pairs(with_token)).unwrap().is_some());
    }

    #[test]
    fn credentials_are_a_json_object_of_four_strings() {
        let json = br#"{"api_key": "k", "api_secret": "s", "username": "u", "password": "p"}"#;
        assert_eq!(credentials(json).unwrap().username, "u");
        assert!(matches!(credentials(br#"{"api_key": "k"}"#), Err(ConfigError::Invalid { .. })));
        assert!(matches!(credentials(b"not json"), Err(ConfigError::Invalid { .. })));
    }
}

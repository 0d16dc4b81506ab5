//! What payhooks knows of one provider, behind one trait: how its webhooks
//! are verified and how a deployment configures that, its samples and how
//! to sign them (for `trigger`, the local server and the tests), and,
//! where it has them, its API read-back (a confirmer) and its callback
//! registration. Each provider's folder exports one value implementing it;
//! [`super::integration`] is the one place a provider is chosen.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{SampleIds, Samples, SignError, SignedRequest, Verifier, VerifierSettings};
use crate::event::Provider;
use crate::ports::{Confirmer, SecretStore};
use crate::registration::Registrar;
use crate::secret::{Secret, SecretSet};
use crate::settings::{ConfigError, Env, SecretSource};

#[async_trait]
pub trait Integration: Send + Sync + fmt::Debug {
    fn provider(&self) -> Provider;

    /// The variable naming its signing secrets (`{PROVIDER}_WEBHOOK_SECRET`,
    /// or `…_ARN` for Secrets Manager).
    fn secret_variable(&self) -> String {
        format!("{}_WEBHOOK_SECRET", self.provider().env_prefix())
    }

    /// Whether its scheme covers the body. Where it does not (a shared
    /// secret sent as is, a token in the URL), anyone who sees one request
    /// can send any body, so its events must be confirmed with its API
    /// before value is given.
    fn signs_body(&self) -> bool {
        true
    }

    /// Whether its route ends with a secret token
    /// (`/webhooks/{provider}/{token}`) instead of a signature.
    fn token_in_path(&self) -> bool {
        false
    }

    /// What its verifier needs besides secrets (a timestamp window, an
    /// address allowlist), read from `env`.
    fn verifier_settings(&self, _env: &Env) -> Result<VerifierSettings, ConfigError> {
        Ok(VerifierSettings::default())
    }

    /// Its verifier over `secrets`, the active ones.
    fn verifier(&self, secrets: SecretSet, settings: &VerifierSettings) -> Arc<dyn Verifier>;

    /// How a deployment verifies it, read from `env`: by default its
    /// secrets and [`Self::verifier_settings`].
    fn verification(&self, env: &Env) -> Result<Box<dyn VerifierSetup>, ConfigError> {
        Ok(Box::new(SecretsVerification {
            provider: self.provider(),
            secrets: env.required_secret(&self.secret_variable())?,
            settings: self.verifier_settings(env)?,
        }))
    }

    /// Its API read-back before effects, when `env` configures one.
    fn confirmation(&self, _env: &Env) -> Result<Option<Box<dyn ConfirmerSetup>>, ConfigError> {
        Ok(None)
    }

    /// Its callback registration at deploy time, when `env` configures one.
    fn registration(&self, _env: &Env) -> Result<Option<Box<dyn RegistrarSetup>>, ConfigError> {
        Ok(None)
    }

    /// Its realistic sample events, by type.
    fn samples(&self) -> &'static Samples;

    /// Fresh ids in its shapes.
    fn sample_ids(&self) -> SampleIds {
        SampleIds::random("evt")
    }

    /// The plan (price) id its samples are billed on, for `PAYHOOKS_PLANS`
    /// in the local server and the tests; `None` where the plan comes from
    /// its API (Kill Bill).
    fn sample_plan(&self) -> Option<&'static str>;

    /// One customer's story in its samples, in order: a purchase, a renewal,
    /// a refund and a cancellation (`trigger … scenario`).
    fn scenario(&self) -> &'static [&'static str];

    /// What its API answers about the objects `sample` (filled with `ids`)
    /// names, for the local server to confirm it with (path → JSON; Kill
    /// Bill, whose notifications are only hints); none by default.
    fn sample_api_objects(&self, _sample: &str, _ids: &SampleIds) -> Vec<(String, serde_json::Value)> {
        Vec::new()
    }

    /// `body` signed as it would sign it with `secret` (comma-separated for
    /// several, where it sends several signatures) at `now`; `ids` are the
    /// ids the body was filled with.
    fn sign_sample(
        &self,
        body: &[u8],
        ids: &SampleIds,
        secret: &str,
        now: OffsetDateTime,
    ) -> Result<SignedRequest, SignError>;

    /// For the local server, when it cannot sign with a secret it prints
    /// (PayPal: a key and certificate made now, the key in a file in `dir`).
    fn local_signing(&self, _env: &Env, _dir: &Path) -> Result<Option<LocalSigning>, ConfigError> {
        Ok(None)
    }

    /// The variable `trigger` reads what it signs with from.
    fn trigger_secret_variable(&self) -> String {
        self.secret_variable()
    }
}

/// How the local server verifies a provider it signs for itself.
#[derive(Debug)]
pub struct LocalSigning {
    pub verifier: Arc<dyn Verifier>,
    /// What `trigger --secret` takes (a file's path).
    pub secret: String,
    /// A line for the server's banner.
    pub description: String,
}

/// A verifier's settings as read at cold start, built once its secrets are
/// read.
#[async_trait]
pub trait VerifierSetup: Send + Sync + fmt::Debug {
    async fn build(&self, secrets: &dyn SecretStore) -> Result<Arc<dyn Verifier>, ConfigError>;
}

/// A confirmer's settings as read at cold start.
#[async_trait]
pub trait ConfirmerSetup: Send + Sync + fmt::Debug {
    async fn build(&self, secrets: &dyn SecretStore) -> Result<Arc<dyn Confirmer>, ConfigError>;
}

/// A registrar's settings as read at cold start; its secrets are read when
/// CloudFormation asks for a registration, so a deploy after a rotation
/// uses the new values.
#[async_trait]
pub trait RegistrarSetup: Send + Sync + fmt::Debug {
    async fn build(&self, secrets: &dyn SecretStore) -> Result<Arc<dyn Registrar>, ConfigError>;

    /// The secret last path segment of its callback URL, when its route has
    /// one, so no template ever holds it.
    async fn url_token(&self, _secrets: &dyn SecretStore) -> Result<Option<Secret>, ConfigError> {
        Ok(None)
    }
}

/// The usual verification: signing secrets and the verifier's settings.
#[derive(Debug)]
pub struct SecretsVerification {
    pub provider: Provider,
    pub secrets: SecretSource,
    pub settings: VerifierSettings,
}

#[async_trait]
impl VerifierSetup for SecretsVerification {
    async fn build(&self, secrets: &dyn SecretStore) -> Result<Arc<dyn Verifier>, ConfigError> {
        let integration = super::integration(self.provider);
        let active = self.secrets.read_set(secrets, &integration.secret_variable()).await?;
        Ok(integration.verifier(active, &self.settings))
    }
}

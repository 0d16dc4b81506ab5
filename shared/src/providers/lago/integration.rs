//! Lago as payhooks integrates it: `hmac` with the organization's key,
//! `jwt` with Lago's public key (given, or fetched once from its API), or
//! both, and its samples.

use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{
    HttpPublicKeySource, JwtVerification, LagoVerifier, PublicKeySource, SAMPLES, StaticPublicKeySource, hmac_headers,
    sample_ids,
};
use crate::event::Provider;
use crate::ports::SecretStore;
use crate::providers::{
    Integration, SampleIds, Samples, SignError, SignedRequest, Verifier, VerifierSettings, VerifierSetup,
    signing_secrets,
};
use crate::secret::SecretSet;
use crate::settings::{ConfigError, Env, SecretSource};

/// Lago's RSA public key for `jwt` signatures: a PEM, or base64 of a PEM.
pub const PUBLIC_KEY: &str = "LAGO_PUBLIC_KEY";
/// Lago's API URL: the `iss` its JWTs must name, and where the public key is
/// fetched from when `LAGO_PUBLIC_KEY` is not set.
pub const API_URL: &str = "LAGO_API_URL";
/// A Lago API key (bearer) for fetching the public key, `…_ARN` in Secrets
/// Manager.
pub const API_KEY: &str = "LAGO_API_KEY";

#[derive(Debug, Clone, Copy)]
pub struct Lago;

#[async_trait]
impl Integration for Lago {
    fn provider(&self) -> Provider {
        Provider::Lago
    }

    /// The `hmac` mode over `secrets`; a deployment builds `jwt` from its
    /// settings ([`Self::verification`]).
    fn verifier(&self, secrets: SecretSet, _settings: &VerifierSettings) -> Arc<dyn Verifier> {
        Arc::new(LagoVerifier::hmac(secrets))
    }

    fn verification(&self, env: &Env) -> Result<Box<dyn VerifierSetup>, ConfigError> {
        let verification = Verification {
            hmac: env.secret(&self.secret_variable()),
            public_key: env.var(PUBLIC_KEY),
            api_url: env.var(API_URL).map(|url| url.trim().to_owned()),
            api_key: env.secret(API_KEY),
        };
        let jwt_possible =
            verification.public_key.is_some() || (verification.api_url.is_some() && verification.api_key.is_some());
        if verification.hmac.is_none() && !jwt_possible {
            return Err(ConfigError::NoLagoVerification);
        }
        Ok(Box::new(verification))
    }

    fn samples(&self) -> &'static Samples {
        &SAMPLES
    }

    fn sample_plan(&self) -> Option<&'static str> {
        Some("pro_monthly")
    }

    fn sample_ids(&self) -> SampleIds {
        sample_ids()
    }

    fn scenario(&self) -> &'static [&'static str] {
        &[
            "subscription.started",
            "invoice.payment_failure",
            "invoice.payment_status_updated",
            "subscription.started.upgrade",
            "invoice.payment_status_updated.upgrade",
            "credit_note.created.upgrade",
            "subscription.terminated",
        ]
    }

    /// Lago sends one signature, made with the organization's current key:
    /// signed with the first.
    fn sign_sample(
        &self,
        body: &[u8],
        ids: &SampleIds,
        secret: &str,
        _now: OffsetDateTime,
    ) -> Result<SignedRequest, SignError> {
        let headers = hmac_headers(body, signing_secrets(secret)?.primary(), &ids.event_id)
            .map_err(|_| SignError::Unusable("not printable ASCII".into()))?;
        Ok(SignedRequest { headers, path_token: None })
    }
}

/// The modes a deployment accepts: `hmac` with a key, `jwt` with a public
/// key given or fetched.
#[derive(Debug)]
struct Verification {
    hmac: Option<SecretSource>,
    public_key: Option<String>,
    api_url: Option<String>,
    api_key: Option<SecretSource>,
}

#[async_trait]
impl VerifierSetup for Verification {
    /// The key is fetched once; a failure here is logged and retried on the
    /// first JWT-signed delivery, so an `hmac` endpoint keeps working.
    async fn build(&self, secrets: &dyn SecretStore) -> Result<Arc<dyn Verifier>, ConfigError> {
        let hmac_keys = match &self.hmac {
            Some(source) => Some(source.read_set(secrets, &Lago.secret_variable()).await?),
            None => None,
        };
        let source: Option<Arc<dyn PublicKeySource>> = match (&self.public_key, &self.api_url, &self.api_key) {
            (Some(pem), _, _) => Some(Arc::new(StaticPublicKeySource::new(pem.clone()))),
            (None, Some(url), Some(key)) => Some(Arc::new(HttpPublicKeySource::new(
                crate::providers::api::http_client(),
                url.clone(),
                key.read_trimmed(secrets).await?,
            ))),
            _ => None,
        };
        let jwt = source.map(|source| JwtVerification::new(source, self.api_url.clone()));
        let verifier = LagoVerifier::new(hmac_keys, jwt).map_err(|_| ConfigError::NoLagoVerification)?;
        if let Err(error) = verifier.preload().await {
            tracing::warn!(error = %error, "Lago public key not loaded at start; retrying on the first jwt delivery");
        }
        Ok(Arc::new(verifier))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lago_needs_an_hmac_key_or_a_way_to_its_public_key() {
        assert!(matches!(
            Lago.verification(&Env::from_pairs([(API_URL, "https://lago.example")])),
            Err(ConfigError::NoLagoVerification)
        ));
        for env in [
            &[("LAGO_WEBHOOK_SECRET", "key")][..],
            &[(PUBLIC_KEY, "pem")][..],
            &[(API_URL, "https://lago.example"), ("LAGO_API_KEY_ARN", "arn:x")][..],
        ] {
            assert!(Lago.verification(&Env::from_pairs(env.iter().copied())).is_ok(), "{env:?}");
        }
    }
}

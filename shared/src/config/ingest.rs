//! An ingest function's settings: its table and queue, and how its provider
//! is verified.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use super::{
    Cloud, ConfigError, EVENTS_TABLE, Env, LAGO_API_KEY, LAGO_API_URL, LAGO_PUBLIC_KEY, MAX_BODY_BYTES,
    PAYPAL_API_BASE, PAYPAL_CLIENT_ID, PAYPAL_CLIENT_SECRET, PAYPAL_VERIFICATION, PAYSTACK_SOURCE_IPS, QUEUE_URL,
    SecretSource, TOLERANCE_SECS, metrics_namespace,
};
use crate::clock::SystemClock;
use crate::event::Provider;
use crate::ingest::{Ingest, IngestSettings};
use crate::providers::paypal::{ApiCheck, PaypalApi, PaypalVerifier, VerificationMode};
use crate::providers::{self, Verifier, VerifierSettings};
use crate::secret::Secret;

/// The variable holding a provider's signing secrets: `<PROVIDER>_WEBHOOK_SECRET`,
/// except PayPal, which has no shared secret and signs with the endpoint's
/// webhook id instead (`PAYPAL_WEBHOOK_ID`).
pub fn secret_variable(provider: Provider) -> String {
    match provider {
        Provider::Paypal => "PAYPAL_WEBHOOK_ID".to_owned(),
        _ => format!("{}_WEBHOOK_SECRET", provider.env_prefix()),
    }
}

#[derive(Debug)]
pub struct IngestConfig {
    pub provider: Provider,
    pub table: String,
    pub queue_url: String,
    pub namespace: String,
    pub settings: IngestSettings,
    pub verification: Verification,
}

/// How a provider's deliveries are verified.
#[derive(Debug)]
pub enum Verification {
    /// A shared secret (or URL token): Stripe, Paystack, Flutterwave, Kill Bill.
    Secrets { secrets: SecretSource, settings: VerifierSettings },
    /// PayPal: the endpoint's webhook ids, checked offline or by PayPal's API.
    Paypal { webhook_ids: SecretSource, tolerance: Duration, api: Option<PaypalApiConfig> },
    /// Lago: an HMAC key, an RS256 public key (or where to fetch it), or both.
    Lago {
        hmac: Option<SecretSource>,
        public_key: Option<String>,
        api_url: Option<String>,
        api_key: Option<SecretSource>,
    },
}

/// PayPal's REST API with an app's client credentials.
#[derive(Debug, Clone)]
pub struct PaypalApiConfig {
    pub client_id: String,
    pub client_secret: SecretSource,
    pub base: url::Url,
}

impl PaypalApiConfig {
    /// When `PAYPAL_CLIENT_ID` is set, the secret is required with it.
    pub(super) fn read(env: &Env) -> Result<Option<Self>, ConfigError> {
        let Some(client_id) = env.var(PAYPAL_CLIENT_ID) else {
            return Ok(None);
        };
        let client_secret = env.required_secret(PAYPAL_CLIENT_SECRET)?;
        let base = env.var(PAYPAL_API_BASE).unwrap_or_else(|| providers::paypal::LIVE_API_BASE.to_owned());
        let base = url::Url::parse(base.trim())
            .ok()
            .filter(|url| url.scheme() == "https")
            .ok_or_else(|| ConfigError::Invalid { name: PAYPAL_API_BASE.to_owned(), expected: "an https URL" })?;
        Ok(Some(Self { client_id: client_id.trim().to_owned(), client_secret, base }))
    }

    pub(super) async fn build(&self, cloud: &Cloud) -> Result<PaypalApi, ConfigError> {
        let secret = self.client_secret.read(cloud.secrets().as_ref()).await?;
        let secret = Secret::new(String::from_utf8_lossy(secret.expose()).trim());
        Ok(PaypalApi::new(self.base.clone(), self.client_id.clone(), secret))
    }
}

/// `PAYSTACK_SOURCE_IPS`: `published` for Paystack's documented addresses,
/// or a comma-separated list; unset or empty accepts any address.
fn paystack_sources(env: &Env) -> Result<Option<Vec<IpAddr>>, ConfigError> {
    let Some(value) = env.var(PAYSTACK_SOURCE_IPS) else {
        return Ok(None);
    };
    let list: Vec<&str> = if value.trim() == "published" {
        providers::paystack::PUBLISHED_SOURCE_IPS.to_vec()
    } else {
        value.split(',').map(str::trim).filter(|s| !s.is_empty()).collect()
    };
    list.iter().map(|ip| ip.parse()).collect::<Result<Vec<IpAddr>, _>>().map(Some).map_err(|_| ConfigError::Invalid {
        name: PAYSTACK_SOURCE_IPS.to_owned(),
        expected: "`published` or a comma-separated list of IP addresses",
    })
}

/// The Stripe-style signature window, in seconds (default 300).
fn tolerance(env: &Env) -> Result<Duration, ConfigError> {
    Ok(Duration::from_secs(env.number(TOLERANCE_SECS, providers::stripe::DEFAULT_TOLERANCE.as_secs())?))
}

/// The verifier settings a provider reads: the timestamp window where its
/// signature has one, the source allowlist for Paystack.
pub fn verifier_settings(provider: Provider, env: &Env) -> Result<VerifierSettings, ConfigError> {
    let mut settings = VerifierSettings::default();
    match provider {
        Provider::Stripe | Provider::Paypal => settings.tolerance = tolerance(env)?,
        Provider::Paystack => settings.paystack_sources = paystack_sources(env)?,
        Provider::Flutterwave | Provider::Killbill | Provider::Lago => {}
    }
    Ok(settings)
}

/// The ingest settings: the body limit (the rest are fixed).
pub fn ingest_settings(env: &Env) -> Result<IngestSettings, ConfigError> {
    let defaults = IngestSettings::default();
    Ok(IngestSettings { max_body_bytes: env.number(MAX_BODY_BYTES, defaults.max_body_bytes)?, ..defaults })
}

impl Verification {
    fn read(provider: Provider, env: &Env) -> Result<Self, ConfigError> {
        Ok(match provider {
            Provider::Paypal => {
                let mode: VerificationMode =
                    env.parsed(PAYPAL_VERIFICATION, VerificationMode::Offline, "offline or api")?;
                // The API's credentials are read only where they are used.
                let api = match mode {
                    VerificationMode::Offline => None,
                    VerificationMode::Api => Some(PaypalApiConfig::read(env)?.ok_or_else(|| {
                        ConfigError::Missing(format!("{PAYPAL_CLIENT_ID} (required by {PAYPAL_VERIFICATION}=api)"))
                    })?),
                };
                Verification::Paypal {
                    webhook_ids: env.required_secret(&secret_variable(provider))?,
                    tolerance: tolerance(env)?,
                    api,
                }
            }
            Provider::Lago => {
                let verification = Verification::Lago {
                    hmac: env.secret(&secret_variable(provider)),
                    public_key: env.var(LAGO_PUBLIC_KEY),
                    api_url: env.var(LAGO_API_URL).map(|url| url.trim().to_owned()),
                    api_key: env.secret(LAGO_API_KEY),
                };
                if let Verification::Lago { hmac: None, public_key: None, api_key, api_url } = &verification
                    && (api_key.is_none() || api_url.is_none())
                {
                    return Err(ConfigError::NoLagoVerification);
                }
                verification
            }
            Provider::Stripe | Provider::Paystack | Provider::Flutterwave | Provider::Killbill => {
                Verification::Secrets {
                    secrets: env.required_secret(&secret_variable(provider))?,
                    settings: verifier_settings(provider, env)?,
                }
            }
        })
    }

    async fn build(&self, provider: Provider, cloud: &Cloud) -> Result<Arc<dyn Verifier>, ConfigError> {
        let secrets = cloud.secrets();
        let name = secret_variable(provider);
        Ok(match self {
            Verification::Secrets { secrets: source, settings } => {
                providers::verifier(provider, source.read_set(secrets.as_ref(), &name).await?, settings)
            }
            Verification::Paypal { webhook_ids, tolerance, api } => {
                let ids = webhook_ids.read_set(secrets.as_ref(), &name).await?;
                match api {
                    None => providers::verifier(
                        provider,
                        ids,
                        &VerifierSettings { tolerance: *tolerance, ..VerifierSettings::default() },
                    ),
                    Some(api) => {
                        let check = ApiCheck::from_api(api.build(cloud).await?);
                        Arc::new(PaypalVerifier::new(ids, *tolerance, Arc::new(check)))
                    }
                }
            }
            Verification::Lago { hmac, public_key, api_url, api_key } => {
                lago_verifier(cloud, hmac, public_key, api_url, api_key).await?
            }
        })
    }
}

/// Lago's verifier: `hmac` with a key, `jwt` with a public key given or
/// fetched from Lago's API (once; a failure here is logged and retried on
/// the first JWT-signed delivery, so an `hmac` endpoint keeps working).
async fn lago_verifier(
    cloud: &Cloud,
    hmac: &Option<SecretSource>,
    public_key: &Option<String>,
    api_url: &Option<String>,
    api_key: &Option<SecretSource>,
) -> Result<Arc<dyn Verifier>, ConfigError> {
    use crate::providers::lago::{
        HttpPublicKeySource, JwtVerification, LagoVerifier, PublicKeySource, StaticPublicKeySource,
    };
    let secrets = cloud.secrets();
    let hmac_keys = match hmac {
        Some(source) => Some(source.read_set(secrets.as_ref(), &secret_variable(Provider::Lago)).await?),
        None => None,
    };
    let source: Option<Arc<dyn PublicKeySource>> = match (public_key, api_url, api_key) {
        (Some(pem), _, _) => Some(Arc::new(StaticPublicKeySource::new(pem.clone()))),
        (None, Some(url), Some(key)) => {
            let key = key.read(secrets.as_ref()).await?;
            Some(Arc::new(HttpPublicKeySource::new(
                crate::providers::api::http_client(),
                url.clone(),
                Secret::new(String::from_utf8_lossy(key.expose()).trim()),
            )))
        }
        _ => None,
    };
    let jwt = source.map(|source| JwtVerification::new(source, api_url.clone()));
    let verifier = LagoVerifier::new(hmac_keys, jwt).map_err(|_| ConfigError::NoLagoVerification)?;
    if let Err(error) = verifier.preload().await {
        tracing::warn!(error = %error, "Lago public key not loaded at start; retrying on the first jwt delivery");
    }
    Ok(Arc::new(verifier))
}

impl IngestConfig {
    pub fn read(provider: Provider, env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            provider,
            table: env.required(EVENTS_TABLE)?,
            queue_url: env.required(QUEUE_URL)?,
            namespace: metrics_namespace(env),
            settings: ingest_settings(env)?,
            verification: Verification::read(provider, env)?,
        })
    }

    /// The ingest pipeline on DynamoDB and SQS; the secrets are read here,
    /// once per cold start.
    pub async fn build(self, cloud: &Cloud) -> Result<Ingest, ConfigError> {
        let verifier = self.verification.build(self.provider, cloud).await?;
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
    use super::*;

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
        let config = IngestConfig::read(
            Provider::Stripe,
            &env(&[("STRIPE_WEBHOOK_SECRET_ARN", "arn:x"), (TOLERANCE_SECS, "60")]),
        )
        .expect("config");
        assert!(matches!(config.verification, Verification::Secrets { secrets: SecretSource::Arn(_), ref settings }
            if settings.tolerance == Duration::from_secs(60)));
        assert_eq!(config.namespace, "payhooks");
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
        .expect("config");
        assert_eq!(config.settings.max_body_bytes, 2048);
        assert_eq!(config.namespace, "payhooks/stack-a");
    }

    #[test]
    fn paystack_sources_are_the_published_ones_or_a_list() {
        let published = verifier_settings(Provider::Paystack, &Env::from_pairs([(PAYSTACK_SOURCE_IPS, "published")]))
            .expect("settings");
        assert_eq!(published.paystack_sources.map(|s| s.len()), Some(providers::paystack::PUBLISHED_SOURCE_IPS.len()));
        let listed =
            verifier_settings(Provider::Paystack, &Env::from_pairs([(PAYSTACK_SOURCE_IPS, "10.0.0.1, 10.0.0.2")]))
                .expect("settings");
        assert_eq!(listed.paystack_sources.map(|s| s.len()), Some(2));
        let bad = verifier_settings(Provider::Paystack, &Env::from_pairs([(PAYSTACK_SOURCE_IPS, "nowhere")]));
        assert!(matches!(bad, Err(ConfigError::Invalid { .. })));
        let any = verifier_settings(Provider::Paystack, &Env::from_pairs([])).expect("settings");
        assert_eq!(any.paystack_sources, None);
    }

    #[test]
    fn paypal_reads_its_api_only_in_api_mode_and_then_requires_it() {
        let offline = IngestConfig::read(Provider::Paypal, &env(&[("PAYPAL_WEBHOOK_ID", "WH-1")])).expect("offline");
        assert!(matches!(offline.verification, Verification::Paypal { api: None, .. }));
        let api_without_client =
            IngestConfig::read(Provider::Paypal, &env(&[("PAYPAL_WEBHOOK_ID", "WH-1"), (PAYPAL_VERIFICATION, "api")]));
        assert!(matches!(api_without_client, Err(ConfigError::Missing(_))));
        let api = IngestConfig::read(
            Provider::Paypal,
            &env(&[
                ("PAYPAL_WEBHOOK_ID", "WH-1"),
                (PAYPAL_VERIFICATION, "api"),
                (PAYPAL_CLIENT_ID, "client"),
                ("PAYPAL_CLIENT_SECRET_ARN", "arn:x"),
                (PAYPAL_API_BASE, "https://api-m.sandbox.paypal.com"),
            ]),
        )
        .expect("api");
        assert!(
            matches!(api.verification, Verification::Paypal { api: Some(ref a), .. } if a.base.host_str() == Some("api-m.sandbox.paypal.com"))
        );
        let plain_http = PaypalApiConfig::read(&Env::from_pairs([
            (PAYPAL_CLIENT_ID, "client"),
            (PAYPAL_CLIENT_SECRET, "s"),
            (PAYPAL_API_BASE, "http://api-m.paypal.com"),
        ]));
        assert!(matches!(plain_http, Err(ConfigError::Invalid { .. })));
        let mode = IngestConfig::read(
            Provider::Paypal,
            &env(&[("PAYPAL_WEBHOOK_ID", "WH-1"), (PAYPAL_VERIFICATION, "maybe")]),
        );
        assert!(matches!(mode, Err(ConfigError::Invalid { .. })));
    }

    #[test]
    fn lago_needs_an_hmac_key_or_a_way_to_its_public_key() {
        let none = IngestConfig::read(Provider::Lago, &env(&[(LAGO_API_URL, "https://lago.example")]));
        assert!(matches!(none, Err(ConfigError::NoLagoVerification)));
        for extra in [
            &[("LAGO_WEBHOOK_SECRET", "key")][..],
            &[(LAGO_PUBLIC_KEY, "pem")][..],
            &[(LAGO_API_URL, "https://lago.example"), ("LAGO_API_KEY_ARN", "arn:x")][..],
        ] {
            assert!(IngestConfig::read(Provider::Lago, &env(extra)).is_ok(), "{extra:?}");
        }
    }
}

//! Configuration from the environment, and the wiring of the Lambda
//! functions: clients and secrets are built once per cold start.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use crate::adapters::secrets_manager::SecretsError;
use crate::adapters::{DynamoEventStore, EmfMetrics, SecretsManagerSource, SqsQueue};
use crate::clock::SystemClock;
use crate::event::Provider;
use crate::ingest::{Ingest, IngestSettings};
use crate::process::{Processor, ProcessorSettings, RecordOnlyEffects};
use crate::providers;
use crate::secret::{Secret, SecretSet};

pub const EVENTS_TABLE: &str = "PAYHOOKS_EVENTS_TABLE";
pub const QUEUE_URL: &str = "PAYHOOKS_QUEUE_URL";
pub const DLQ_URL: &str = "PAYHOOKS_DLQ_URL";
pub const TOLERANCE_SECS: &str = "PAYHOOKS_TOLERANCE_SECS";
pub const EVENT_TTL_DAYS: &str = "PAYHOOKS_EVENT_TTL_DAYS";
pub const MAX_BODY_BYTES: &str = "PAYHOOKS_MAX_BODY_BYTES";
pub const LEASE_SECS: &str = "PAYHOOKS_LEASE_SECS";
pub const BACKOFF_BASE_SECS: &str = "PAYHOOKS_BACKOFF_BASE_SECS";
pub const BACKOFF_MAX_SECS: &str = "PAYHOOKS_BACKOFF_MAX_SECS";
/// Lago's RSA public key for `jwt` signatures: a PEM, or base64 of a PEM.
pub const LAGO_PUBLIC_KEY: &str = "LAGO_PUBLIC_KEY";
/// Lago's API URL: the expected `iss` of its JWTs, and where the public key
/// is fetched from when `LAGO_PUBLIC_KEY` is not set.
pub const LAGO_API_URL: &str = "LAGO_API_URL";
/// The Lago API key (bearer) for fetching the public key: a Secrets Manager
/// ARN, or (locally) the key itself.
pub const LAGO_API_KEY_ARN: &str = "LAGO_API_KEY_ARN";
pub const LAGO_API_KEY: &str = "LAGO_API_KEY";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set")]
    Missing(String),
    #[error("environment variable {name} must be {expected}")]
    Invalid { name: String, expected: &'static str },
    #[error("neither {0}_WEBHOOK_SECRET_ARN nor {0}_WEBHOOK_SECRET is set")]
    NoSecret(&'static str),
    #[error("{0} is set but holds no secret")]
    EmptySecret(String),
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    #[error("Lago needs LAGO_WEBHOOK_SECRET[_ARN] (hmac) or LAGO_PUBLIC_KEY / LAGO_API_URL with LAGO_API_KEY[_ARN] (jwt)")]
    NoLagoVerification,
    #[error("the HTTP client could not be built")]
    HttpClient(#[source] reqwest::Error),
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

pub fn required(name: &str) -> Result<String, ConfigError> {
    var(name).ok_or_else(|| ConfigError::Missing(name.to_owned()))
}

fn number<T: FromStr>(name: &str, default: T) -> Result<T, ConfigError> {
    match var(name) {
        None => Ok(default),
        Some(value) => value.trim().parse().map_err(|_| ConfigError::Invalid {
            name: name.to_owned(),
            expected: "a whole number",
        }),
    }
}

/// The Stripe-style signature window, in seconds (default 300).
pub fn tolerance() -> Result<Duration, ConfigError> {
    Ok(Duration::from_secs(number(TOLERANCE_SECS, 300)?))
}

pub fn ingest_settings() -> Result<IngestSettings, ConfigError> {
    let defaults = IngestSettings::default();
    Ok(IngestSettings {
        max_body_bytes: number(MAX_BODY_BYTES, defaults.max_body_bytes)?,
        event_ttl: Duration::from_secs(number(EVENT_TTL_DAYS, 30u64)? * 24 * 3600),
        ..defaults
    })
}

pub fn processor_settings() -> Result<ProcessorSettings, ConfigError> {
    let defaults = ProcessorSettings::default();
    Ok(ProcessorSettings {
        lease: Duration::from_secs(number(LEASE_SECS, defaults.lease.as_secs())?),
        backoff_base: Duration::from_secs(number(BACKOFF_BASE_SECS, defaults.backoff_base.as_secs())?),
        backoff_max: Duration::from_secs(number(BACKOFF_MAX_SECS, defaults.backoff_max.as_secs())?),
    })
}

/// A provider's signing secrets from its environment variable
/// (`STRIPE_WEBHOOK_SECRET`, comma-separated for several), if set.
pub fn secrets_from_env(provider: Provider) -> Result<Option<SecretSet>, ConfigError> {
    let name = format!("{}_WEBHOOK_SECRET", provider.env_prefix());
    match std::env::var(&name) {
        Err(_) => Ok(None),
        Ok(value) => SecretSet::from_comma_separated(&value)
            .map(Some)
            .map_err(|_| ConfigError::EmptySecret(name)),
    }
}

/// In the cloud: the secret named by `<PROVIDER>_WEBHOOK_SECRET_ARN`, from
/// Secrets Manager; otherwise the environment variable.
pub async fn signing_secrets(
    provider: Provider,
    sdk: &aws_config::SdkConfig,
) -> Result<SecretSet, ConfigError> {
    if let Some(arn) = var(&format!("{}_WEBHOOK_SECRET_ARN", provider.env_prefix())) {
        let source = SecretsManagerSource::new(aws_sdk_secretsmanager::Client::new(sdk));
        return Ok(source.signing_secrets(&arn).await?);
    }
    secrets_from_env(provider)?.ok_or(ConfigError::NoSecret(provider.env_prefix()))
}

/// The SDK configuration: the default chain, so endpoints can be redirected
/// only through the standard `AWS_ENDPOINT_URL_*` variables.
pub async fn aws() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

/// Lago's verifier: `hmac` when `LAGO_WEBHOOK_SECRET[_ARN]` is set, `jwt`
/// when `LAGO_PUBLIC_KEY` is set or `LAGO_API_URL` and an API key are (the
/// key is then fetched once from Lago; a failure here is logged and retried
/// on the first JWT-signed delivery, so an `hmac` endpoint keeps working).
pub async fn lago_verifier(sdk: &aws_config::SdkConfig) -> Result<Arc<dyn providers::Verifier>, ConfigError> {
    use providers::lago::{HttpPublicKeySource, JwtVerification, LagoVerifier, PublicKeySource, StaticPublicKeySource};

    let hmac_keys = match signing_secrets(Provider::Lago, sdk).await {
        Ok(keys) => Some(keys),
        Err(ConfigError::NoSecret(_)) => None,
        Err(other) => return Err(other),
    };
    let api_url = var(LAGO_API_URL).map(|url| url.trim().to_owned());
    let source: Option<Arc<dyn PublicKeySource>> = if let Some(pem) = var(LAGO_PUBLIC_KEY) {
        Some(Arc::new(StaticPublicKeySource::new(pem)))
    } else if let Some(url) = &api_url {
        let api_key = if let Some(arn) = var(LAGO_API_KEY_ARN) {
            let source = SecretsManagerSource::new(aws_sdk_secretsmanager::Client::new(sdk));
            Some(source.signing_secrets(&arn).await?.primary().clone())
        } else {
            var(LAGO_API_KEY).map(|key| Secret::new(key.trim()))
        };
        match api_key {
            Some(api_key) => {
                let client = reqwest::Client::builder().build().map_err(ConfigError::HttpClient)?;
                Some(Arc::new(HttpPublicKeySource::new(client, url.clone(), api_key)))
            }
            None => None,
        }
    } else {
        None
    };
    let jwt = source.map(|source| JwtVerification::new(source, api_url));
    let verifier = LagoVerifier::new(hmac_keys, jwt).map_err(|_| ConfigError::NoLagoVerification)?;
    if let Err(error) = verifier.preload().await {
        tracing::warn!(error = %error, "Lago public key not loaded at start; retrying on the first jwt delivery");
    }
    Ok(Arc::new(verifier))
}

/// One provider's ingest function, wired to DynamoDB and SQS.
pub async fn lambda_ingest(provider: Provider) -> Result<Ingest, ConfigError> {
    let sdk = aws().await;
    let verifier = match provider {
        Provider::Lago => lago_verifier(&sdk).await?,
        _ => providers::verifier(provider, signing_secrets(provider, &sdk).await?, tolerance()?),
    };
    let store = DynamoEventStore::new(aws_sdk_dynamodb::Client::new(&sdk), required(EVENTS_TABLE)?);
    let queue = SqsQueue::new(aws_sdk_sqs::Client::new(&sdk), required(QUEUE_URL)?);
    Ok(Ingest::new(
        vec![verifier],
        Arc::new(store),
        Arc::new(queue),
        Arc::new(EmfMetrics),
        Arc::new(SystemClock),
        ingest_settings()?,
    ))
}

/// The processor function, wired to DynamoDB and SQS.
pub async fn lambda_processor() -> Result<Processor, ConfigError> {
    let sdk = aws().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let store = DynamoEventStore::new(aws_sdk_dynamodb::Client::new(&sdk), required(EVENTS_TABLE)?);
    Ok(Processor::new(
        Arc::new(store),
        Arc::new(SqsQueue::new(sqs.clone(), required(QUEUE_URL)?)),
        Arc::new(SqsQueue::new(sqs, required(DLQ_URL)?)),
        Arc::new(RecordOnlyEffects),
        Arc::new(EmfMetrics),
        Arc::new(SystemClock),
        processor_settings()?,
    ))
}

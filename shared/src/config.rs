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
use crate::secret::SecretSet;

pub const EVENTS_TABLE: &str = "PAYHOOKS_EVENTS_TABLE";
pub const QUEUE_URL: &str = "PAYHOOKS_QUEUE_URL";
pub const DLQ_URL: &str = "PAYHOOKS_DLQ_URL";
pub const TOLERANCE_SECS: &str = "PAYHOOKS_TOLERANCE_SECS";
pub const EVENT_TTL_DAYS: &str = "PAYHOOKS_EVENT_TTL_DAYS";
pub const MAX_BODY_BYTES: &str = "PAYHOOKS_MAX_BODY_BYTES";
pub const LEASE_SECS: &str = "PAYHOOKS_LEASE_SECS";
pub const BACKOFF_BASE_SECS: &str = "PAYHOOKS_BACKOFF_BASE_SECS";
pub const BACKOFF_MAX_SECS: &str = "PAYHOOKS_BACKOFF_MAX_SECS";
/// PayPal: `offline` (default; verify with PayPal's certificate) or `api`
/// (ask PayPal's verify-webhook-signature API).
pub const PAYPAL_VERIFICATION: &str = "PAYPAL_VERIFICATION";
pub const PAYPAL_CLIENT_ID: &str = "PAYPAL_CLIENT_ID";
/// The client secret, or `PAYPAL_CLIENT_SECRET_ARN` naming it in Secrets Manager.
pub const PAYPAL_CLIENT_SECRET: &str = "PAYPAL_CLIENT_SECRET";
/// PayPal's API root for `api` mode (default live; the sandbox is
/// `https://api-m.sandbox.paypal.com`).
pub const PAYPAL_API_BASE: &str = "PAYPAL_API_BASE";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set")]
    Missing(String),
    #[error("environment variable {name} must be {expected}")]
    Invalid { name: String, expected: &'static str },
    #[error("neither {0}_ARN nor {0} is set")]
    NoSecret(String),
    #[error("{0} is set but holds no secret")]
    EmptySecret(String),
    #[error(transparent)]
    Secrets(#[from] SecretsError),
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

/// The variable holding a provider's signing secrets: `<PROVIDER>_WEBHOOK_SECRET`,
/// except PayPal, which has no shared secret and signs with the endpoint's
/// webhook id instead (`PAYPAL_WEBHOOK_ID`).
pub fn secret_variable(provider: Provider) -> String {
    match provider {
        Provider::Paypal => "PAYPAL_WEBHOOK_ID".to_owned(),
        _ => format!("{}_WEBHOOK_SECRET", provider.env_prefix()),
    }
}

/// A provider's signing secrets from its environment variable
/// (`STRIPE_WEBHOOK_SECRET`, comma-separated for several), if set.
pub fn secrets_from_env(provider: Provider) -> Result<Option<SecretSet>, ConfigError> {
    let name = secret_variable(provider);
    match std::env::var(&name) {
        Err(_) => Ok(None),
        Ok(value) => SecretSet::from_comma_separated(&value)
            .map(Some)
            .map_err(|_| ConfigError::EmptySecret(name)),
    }
}

/// In the cloud: the secret named by `<variable>_ARN` (e.g.
/// `STRIPE_WEBHOOK_SECRET_ARN`), from Secrets Manager; otherwise the
/// environment variable itself.
pub async fn signing_secrets(
    provider: Provider,
    sdk: &aws_config::SdkConfig,
) -> Result<SecretSet, ConfigError> {
    let variable = secret_variable(provider);
    if let Some(arn) = var(&format!("{variable}_ARN")) {
        let source = SecretsManagerSource::new(aws_sdk_secretsmanager::Client::new(sdk));
        return Ok(source.signing_secrets(&arn).await?);
    }
    secrets_from_env(provider)?.ok_or(ConfigError::NoSecret(variable))
}

/// A provider's verifier as configured by the environment. Only PayPal has
/// a choice: offline verification (default) or PayPal's API, which needs the
/// app's client credentials.
pub async fn verifier(
    provider: Provider,
    secrets: SecretSet,
    sdk: &aws_config::SdkConfig,
) -> Result<Arc<dyn providers::Verifier>, ConfigError> {
    use providers::paypal::{ApiCheck, PaypalVerifier, VerificationMode};
    let tolerance = tolerance()?;
    if provider != Provider::Paypal {
        return Ok(providers::verifier(provider, secrets, tolerance));
    }
    let mode: VerificationMode = var(PAYPAL_VERIFICATION)
        .unwrap_or_default()
        .parse()
        .map_err(|_| ConfigError::Invalid {
            name: PAYPAL_VERIFICATION.to_owned(),
            expected: "offline or api",
        })?;
    match mode {
        VerificationMode::Offline => Ok(providers::verifier(provider, secrets, tolerance)),
        VerificationMode::Api => {
            let client_id = required(PAYPAL_CLIENT_ID)?;
            let client_secret = match var(&format!("{PAYPAL_CLIENT_SECRET}_ARN")) {
                Some(arn) => SecretsManagerSource::new(aws_sdk_secretsmanager::Client::new(sdk))
                    .signing_secrets(&arn)
                    .await?
                    .primary()
                    .clone(),
                None => SecretSet::from_comma_separated(&required(PAYPAL_CLIENT_SECRET)?)
                    .map_err(|_| ConfigError::EmptySecret(PAYPAL_CLIENT_SECRET.to_owned()))?
                    .primary()
                    .clone(),
            };
            let base = var(PAYPAL_API_BASE)
                .unwrap_or_else(|| providers::paypal::LIVE_API_BASE.to_owned());
            let base = url::Url::parse(&base)
                .ok()
                .filter(|url| url.scheme() == "https")
                .ok_or_else(|| ConfigError::Invalid {
                    name: PAYPAL_API_BASE.to_owned(),
                    expected: "an https URL",
                })?;
            let check = ApiCheck::new(base, client_id, client_secret);
            Ok(Arc::new(PaypalVerifier::new(secrets, tolerance, Arc::new(check))))
        }
    }
}

/// The SDK configuration: the default chain, so endpoints can be redirected
/// only through the standard `AWS_ENDPOINT_URL_*` variables.
pub async fn aws() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

/// One provider's ingest function, wired to DynamoDB and SQS.
pub async fn lambda_ingest(provider: Provider) -> Result<Ingest, ConfigError> {
    let sdk = aws().await;
    let secrets = signing_secrets(provider, &sdk).await?;
    let verifier = verifier(provider, secrets, &sdk).await?;
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

//! Configuration from the environment, and the wiring of the Lambda
//! functions: clients and secrets are built once per cold start.

use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use crate::adapters::secrets_manager::SecretsError;
use crate::adapters::flutterwave_transactions;
use crate::adapters::{
    DynamoEventStore, EmfMetrics, FlutterwaveTransactions, HttpProvisioner, KillbillApi, KillbillCredentials,
    PaypalSubscriptions, SecretsManagerSource, SqsQueue,
};
use crate::clock::SystemClock;
use crate::effects::{BillingEffects, NegativeBalances, Plans};
use crate::admin::Admin;
use crate::reconcile::Reconciler;
use crate::sweep::{SweepSettings, Sweeper};
use crate::ports::Effects;
use crate::event::Provider;
use crate::ingest::{Ingest, IngestSettings};
use crate::process::{Processor, ProcessorSettings, RecordOnlyEffects};
use crate::providers::{self, VerifierSettings};
use crate::registration::{
    self, KillbillRegistrar, LockSettings, Locked, Registrar, Registrars, RegistrationError, StripeRegistrar,
};
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
pub const PAYSTACK_SOURCE_IPS: &str = "PAYSTACK_SOURCE_IPS";
/// Credits per period by plan id, as a JSON object (`PAYHOOKS_PLANS_ARN`
/// names it in Secrets Manager).
pub const PLANS: &str = "PAYHOOKS_PLANS";
/// Where purchases and cancellations are sent, and the secret that signs
/// them (`PAYHOOKS_PROVISIONER_SECRET_ARN` in Secrets Manager).
/// `allow` (default: a claw-back may take a balance below zero, and the
/// account is flagged) or `forbid` (it stops at zero).
pub const NEGATIVE_BALANCES: &str = "PAYHOOKS_NEGATIVE_BALANCES";
pub const PROVISIONER_URL: &str = "PAYHOOKS_PROVISIONER_URL";
pub const PROVISIONER_SECRET: &str = "PAYHOOKS_PROVISIONER_SECRET";
pub const FLUTTERWAVE_VERIFY_TRANSACTIONS: &str = "FLUTTERWAVE_VERIFY_TRANSACTIONS";
pub const FLUTTERWAVE_API_URL: &str = "FLUTTERWAVE_API_URL";
pub const FLUTTERWAVE_SECRET_KEY: &str = "FLUTTERWAVE_SECRET_KEY";
pub const KILLBILL_API_URL: &str = "KILLBILL_API_URL";
pub const KILLBILL_API_CREDENTIALS: &str = "KILLBILL_API_CREDENTIALS";
/// Lago's RSA public key for `jwt` signatures: a PEM, or base64 of a PEM.
pub const LAGO_PUBLIC_KEY: &str = "LAGO_PUBLIC_KEY";
/// Lago's API URL: the expected `iss` of its JWTs, and where the public key
/// is fetched from when `LAGO_PUBLIC_KEY` is not set.
pub const LAGO_API_URL: &str = "LAGO_API_URL";
/// The Lago API key (bearer) for fetching the public key; `LAGO_API_KEY_ARN`
/// names it in Secrets Manager.
pub const LAGO_API_KEY: &str = "LAGO_API_KEY";
/// Stripe's secret API key (`STRIPE_API_KEY_ARN` names it in Secrets
/// Manager), for registering the webhook endpoint at deploy time.
pub const STRIPE_API_KEY: &str = "STRIPE_API_KEY";
/// Stripe's API root (default `https://api.stripe.com`).
pub const STRIPE_API_URL: &str = "STRIPE_API_URL";
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
    #[error("Lago needs LAGO_WEBHOOK_SECRET[_ARN] (hmac) or LAGO_PUBLIC_KEY / LAGO_API_URL with LAGO_API_KEY[_ARN] (jwt)")]
    NoLagoVerification,
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

/// Whether claw-backs may take balances below zero.
pub fn negative_balances() -> Result<NegativeBalances, ConfigError> {
    match var(NEGATIVE_BALANCES) {
        None => Ok(NegativeBalances::default()),
        Some(value) => value.trim().parse().map_err(|_| ConfigError::Invalid {
            name: NEGATIVE_BALANCES.to_owned(),
            expected: "allow or forbid",
        }),
    }
}

/// The Stripe-style signature window, in seconds (default 300).
pub fn tolerance() -> Result<Duration, ConfigError> {
    Ok(Duration::from_secs(number(TOLERANCE_SECS, 300)?))
}

/// `PAYSTACK_SOURCE_IPS`: `published` for Paystack's documented addresses,
/// or a comma-separated list; unset or empty accepts any address.
pub fn paystack_sources() -> Result<Option<Vec<IpAddr>>, ConfigError> {
    let Some(value) = var(PAYSTACK_SOURCE_IPS) else {
        return Ok(None);
    };
    let list: Vec<&str> = if value.trim() == "published" {
        providers::paystack::PUBLISHED_SOURCE_IPS.to_vec()
    } else {
        value.split(',').map(str::trim).filter(|s| !s.is_empty()).collect()
    };
    list.iter()
        .map(|ip| ip.parse())
        .collect::<Result<Vec<IpAddr>, _>>()
        .map(Some)
        .map_err(|_| ConfigError::Invalid {
            name: PAYSTACK_SOURCE_IPS.to_owned(),
            expected: "`published` or a comma-separated list of IP addresses",
        })
}

pub fn verifier_settings() -> Result<VerifierSettings, ConfigError> {
    Ok(VerifierSettings {
        tolerance: tolerance()?,
        paystack_sources: paystack_sources()?,
    })
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

/// PayPal's REST API with the app's client credentials, when
/// `PAYPAL_CLIENT_ID` is set.
pub async fn paypal_api(sdk: &aws_config::SdkConfig) -> Result<Option<providers::paypal::PaypalApi>, ConfigError> {
    let Some(client_id) = var(PAYPAL_CLIENT_ID) else {
        return Ok(None);
    };
    let client_secret = secret_value(PAYPAL_CLIENT_SECRET, sdk)
        .await?
        .ok_or_else(|| ConfigError::Missing(format!("{PAYPAL_CLIENT_SECRET}_ARN or {PAYPAL_CLIENT_SECRET}")))?;
    let base = var(PAYPAL_API_BASE).unwrap_or_else(|| providers::paypal::LIVE_API_BASE.to_owned());
    let base = url::Url::parse(&base)
        .ok()
        .filter(|url| url.scheme() == "https")
        .ok_or_else(|| ConfigError::Invalid {
            name: PAYPAL_API_BASE.to_owned(),
            expected: "an https URL",
        })?;
    Ok(Some(providers::paypal::PaypalApi::new(base, client_id, Secret::new(client_secret.trim()))))
}

/// PayPal's verifier: offline with PayPal's certificate (default), or
/// PayPal's verify API, which needs the app's client credentials.
pub async fn paypal_verifier(
    webhook_ids: SecretSet,
    sdk: &aws_config::SdkConfig,
) -> Result<Arc<dyn providers::Verifier>, ConfigError> {
    use providers::paypal::{ApiCheck, PaypalVerifier, VerificationMode};
    let settings = verifier_settings()?;
    let mode: VerificationMode = var(PAYPAL_VERIFICATION)
        .unwrap_or_default()
        .parse()
        .map_err(|_| ConfigError::Invalid {
            name: PAYPAL_VERIFICATION.to_owned(),
            expected: "offline or api",
        })?;
    match mode {
        VerificationMode::Offline => Ok(providers::verifier(Provider::Paypal, webhook_ids, &settings)),
        VerificationMode::Api => {
            let api = paypal_api(sdk)
                .await?
                .ok_or_else(|| ConfigError::Missing(format!("{PAYPAL_CLIENT_ID} (required by {PAYPAL_VERIFICATION}=api)")))?;
            let check = ApiCheck::from_api(api);
            Ok(Arc::new(PaypalVerifier::new(webhook_ids, settings.tolerance, Arc::new(check))))
        }
    }
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
        let api_key = secret_value(LAGO_API_KEY, sdk).await?.map(|key| Secret::new(key.trim()));
        match api_key {
            Some(api_key) => Some(Arc::new(HttpPublicKeySource::new(
                crate::adapters::provider_api::http_client(),
                url.clone(),
                api_key,
            ))),
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
        Provider::Paypal => paypal_verifier(signing_secrets(provider, &sdk).await?, &sdk).await?,
        _ => providers::verifier(provider, signing_secrets(provider, &sdk).await?, &verifier_settings()?),
    };
    let store = DynamoEventStore::new(aws_sdk_dynamodb::Client::new(&sdk), required(EVENTS_TABLE)?);
    let queue = SqsQueue::new(aws_sdk_sqs::Client::new(&sdk), required(QUEUE_URL)?);
    Ok(Ingest::new(
        vec![verifier],
        Arc::new(store),
        Arc::new(queue),
        Arc::new(EmfMetrics::stdout()),
        Arc::new(SystemClock),
        ingest_settings()?,
    ))
}

/// A secret named `NAME`: from Secrets Manager when `NAME_ARN` is set,
/// else the variable itself.
async fn secret_value(name: &str, sdk: &aws_config::SdkConfig) -> Result<Option<String>, ConfigError> {
    if let Some(arn) = var(&format!("{name}_ARN")) {
        let source = SecretsManagerSource::new(aws_sdk_secretsmanager::Client::new(sdk));
        return Ok(Some(source.secret_string(&arn).await?));
    }
    Ok(var(name))
}

/// Flutterwave's verify-transaction check: on whenever a secret key is
/// configured, unless `FLUTTERWAVE_VERIFY_TRANSACTIONS=false`; asked for
/// without a key, it is a configuration error rather than a silent skip.
pub async fn flutterwave_confirmer(sdk: &aws_config::SdkConfig) -> Result<Option<FlutterwaveTransactions>, ConfigError> {
    let wanted = var(FLUTTERWAVE_VERIFY_TRANSACTIONS).map(|v| v.trim().to_ascii_lowercase());
    if wanted.as_deref() == Some("false") {
        return Ok(None);
    }
    match secret_value(FLUTTERWAVE_SECRET_KEY, sdk).await? {
        Some(key) => Ok(Some(FlutterwaveTransactions::new(
            var(FLUTTERWAVE_API_URL).unwrap_or_else(|| flutterwave_transactions::DEFAULT_API_URL.to_owned()),
            Secret::new(key.trim()),
        ))),
        None if wanted.as_deref() == Some("true") => Err(ConfigError::Missing(format!(
            "{FLUTTERWAVE_SECRET_KEY}_ARN or {FLUTTERWAVE_SECRET_KEY} (required by {FLUTTERWAVE_VERIFY_TRANSACTIONS}=true)"
        ))),
        None => Ok(None),
    }
}

/// Kill Bill's read-back: on when `KILLBILL_API_URL` is set, with the
/// credentials in `KILLBILL_API_CREDENTIALS` (JSON: `api_key`, `api_secret`,
/// `username`, `password`).
pub async fn killbill_confirmer(sdk: &aws_config::SdkConfig) -> Result<Option<KillbillApi>, ConfigError> {
    let Some(url) = var(KILLBILL_API_URL) else {
        return Ok(None);
    };
    Ok(Some(KillbillApi::new(url, killbill_credentials(sdk).await?)))
}

/// Kill Bill's API credentials, from `KILLBILL_API_CREDENTIALS[_ARN]`.
async fn killbill_credentials(sdk: &aws_config::SdkConfig) -> Result<KillbillCredentials, ConfigError> {
    let json = secret_value(KILLBILL_API_CREDENTIALS, sdk)
        .await?
        .ok_or_else(|| ConfigError::Missing(format!("{KILLBILL_API_CREDENTIALS}_ARN or {KILLBILL_API_CREDENTIALS}")))?;
    let invalid = || ConfigError::Invalid {
        name: KILLBILL_API_CREDENTIALS.to_owned(),
        expected: "a JSON object with api_key, api_secret, username and password",
    };
    let fields: std::collections::HashMap<String, String> = serde_json::from_str(&json).map_err(|_| invalid())?;
    let field = |name: &str| fields.get(name).cloned().ok_or_else(invalid);
    Ok(KillbillCredentials {
        api_key: field("api_key")?,
        api_secret: Secret::new(field("api_secret")?),
        username: field("username")?,
        password: Secret::new(field("password")?),
    })
}

/// The plans, when configured: with them the processor applies effects on
/// the ledger; without them it only records events (and says so at start).
pub async fn plans(sdk: &aws_config::SdkConfig) -> Result<Option<Plans>, ConfigError> {
    secret_value(PLANS, sdk).await?.map(|json| parse_plans(&json)).transpose()
}

/// The plans from `PAYHOOKS_PLANS` alone (the local server reads no AWS).
pub fn plans_from_env() -> Result<Option<Plans>, ConfigError> {
    var(PLANS).map(|json| parse_plans(&json)).transpose()
}

fn parse_plans(json: &str) -> Result<Plans, ConfigError> {
    Plans::from_json(json).map_err(|_| ConfigError::Invalid {
        name: PLANS.to_owned(),
        expected: "a JSON object of plan id to whole credits per period",
    })
}

/// Seconds an event may sit in a non-final state before the sweeper sends
/// it again (default 900).
pub const SWEEP_AFTER_SECS: &str = "PAYHOOKS_SWEEP_AFTER_SECS";
/// The main queue's `maxReceiveCount` (default 5, as in the template).
pub const MAX_RECEIVE_COUNT: &str = "PAYHOOKS_MAX_RECEIVE_COUNT";

pub fn sweep_settings() -> Result<SweepSettings, ConfigError> {
    let defaults = SweepSettings::default();
    Ok(SweepSettings {
        older_than: Duration::from_secs(number(SWEEP_AFTER_SECS, defaults.older_than.as_secs())?),
        max_receive_count: number(MAX_RECEIVE_COUNT, defaults.max_receive_count)?,
        ..defaults
    })
}

/// The sweeper function, wired to DynamoDB and SQS.
pub async fn lambda_sweeper() -> Result<Sweeper, ConfigError> {
    let sdk = aws().await;
    let store = Arc::new(DynamoEventStore::new(aws_sdk_dynamodb::Client::new(&sdk), required(EVENTS_TABLE)?));
    let queue = Arc::new(SqsQueue::new(aws_sdk_sqs::Client::new(&sdk), required(QUEUE_URL)?));
    Ok(Sweeper::new(store, queue, Arc::new(EmfMetrics::stdout()), Arc::new(SystemClock), sweep_settings()?))
}

/// The admin function, wired to DynamoDB and both queues.
pub async fn lambda_admin() -> Result<Admin, ConfigError> {
    let sdk = aws().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let store = Arc::new(DynamoEventStore::new(aws_sdk_dynamodb::Client::new(&sdk), required(EVENTS_TABLE)?));
    Ok(Admin {
        store: store.clone(),
        ledger: store,
        queue: Arc::new(SqsQueue::new(sqs.clone(), required(QUEUE_URL)?)),
        dead_letters: Arc::new(SqsQueue::new(sqs, required(DLQ_URL)?)),
        metrics: Arc::new(EmfMetrics::stdout()),
        clock: Arc::new(SystemClock),
        sweep: sweep_settings()?,
    })
}

/// The reconciliation function, wired to DynamoDB.
pub async fn lambda_reconciler() -> Result<Reconciler, ConfigError> {
    let sdk = aws().await;
    let store = Arc::new(DynamoEventStore::new(aws_sdk_dynamodb::Client::new(&sdk), required(EVENTS_TABLE)?));
    Ok(Reconciler::new(store, Arc::new(EmfMetrics::stdout()), Arc::new(SystemClock)))
}

/// The processor function, wired to DynamoDB and SQS.
pub async fn lambda_processor() -> Result<Processor, ConfigError> {
    let sdk = aws().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let store = Arc::new(DynamoEventStore::new(aws_sdk_dynamodb::Client::new(&sdk), required(EVENTS_TABLE)?));
    let effects: Arc<dyn Effects> = match plans(&sdk).await? {
        Some(plans) => {
            let mut effects = BillingEffects::new(store.clone(), plans, Arc::new(SystemClock))
                .with_negative_balances(negative_balances()?);
            if let Some(url) = var(PROVISIONER_URL) {
                let secret = secret_value(PROVISIONER_SECRET, &sdk).await?.ok_or_else(|| {
                    ConfigError::Missing(format!("{PROVISIONER_SECRET}_ARN or {PROVISIONER_SECRET} (to sign requests to {PROVISIONER_URL})"))
                })?;
                effects = effects.with_provisioner(Arc::new(HttpProvisioner::new(url, Secret::new(secret.trim()))));
            }
            Arc::new(effects)
        }
        None => {
            tracing::warn!("{PLANS} is not set: events are recorded but no effects are applied");
            Arc::new(RecordOnlyEffects)
        }
    };
    let mut processor = Processor::new(
        store,
        Arc::new(SqsQueue::new(sqs.clone(), required(QUEUE_URL)?)),
        Arc::new(SqsQueue::new(sqs, required(DLQ_URL)?)),
        effects,
        Arc::new(EmfMetrics::stdout()),
        Arc::new(SystemClock),
        processor_settings()?,
    );
    if let Some(confirmer) = flutterwave_confirmer(&sdk).await? {
        processor = processor.with_confirmer(Provider::Flutterwave, Arc::new(confirmer));
    }
    if let Some(confirmer) = killbill_confirmer(&sdk).await? {
        processor = processor.with_confirmer(Provider::Killbill, Arc::new(confirmer));
    }
    if let Some(api) = paypal_api(&sdk).await? {
        processor = processor.with_confirmer(Provider::Paypal, Arc::new(PaypalSubscriptions::new(api)));
    }
    Ok(processor)
}

/// The register function's registrars. Building them reads nothing: the
/// credentials and the Kill Bill token are read when CloudFormation asks for
/// a registration, so a cold start registers nothing and a deploy after a
/// rotation uses the new values.
#[derive(Debug)]
pub struct LambdaRegistrars {
    sdk: aws_config::SdkConfig,
}

pub async fn lambda_registrars() -> LambdaRegistrars {
    LambdaRegistrars { sdk: aws().await }
}

impl LambdaRegistrars {
    async fn killbill(&self) -> Result<KillbillRegistrar, ConfigError> {
        let url = required(KILLBILL_API_URL)?;
        Ok(KillbillRegistrar::new(&url, killbill_credentials(&self.sdk).await?))
    }

    async fn stripe(&self) -> Result<StripeRegistrar, ConfigError> {
        let key = secret_value(STRIPE_API_KEY, &self.sdk)
            .await?
            .ok_or_else(|| ConfigError::Missing(format!("{STRIPE_API_KEY}_ARN or {STRIPE_API_KEY}")))?;
        let url = var(STRIPE_API_URL).unwrap_or_else(|| registration::stripe::DEFAULT_API_URL.to_owned());
        Ok(StripeRegistrar::new(&url, Secret::new(key.trim())))
    }
}

#[async_trait::async_trait]
impl Registrars for LambdaRegistrars {
    async fn registrar(&self, provider: Provider) -> Result<Arc<dyn Registrar>, RegistrationError> {
        let unconfigured = |source| RegistrationError::Unconfigured { provider, source };
        let registrar: Arc<dyn Registrar> = match provider {
            Provider::Killbill => Arc::new(self.killbill().await.map_err(unconfigured)?),
            Provider::Stripe => Arc::new(self.stripe().await.map_err(unconfigured)?),
            other => return Err(RegistrationError::Unsupported(other)),
        };
        let table = required(EVENTS_TABLE).map_err(unconfigured)?;
        let lock = DynamoEventStore::new(aws_sdk_dynamodb::Client::new(&self.sdk), table);
        Ok(Arc::new(Locked::new(
            registrar,
            Arc::new(lock),
            Arc::new(SystemClock),
            format!("register-{provider}"),
            LockSettings::default(),
        )))
    }

    async fn url_token(&self, provider: Provider) -> Result<Option<Secret>, RegistrationError> {
        if provider != Provider::Killbill {
            return Ok(None);
        }
        let tokens = signing_secrets(provider, &self.sdk)
            .await
            .map_err(|source| RegistrationError::Unconfigured { provider, source })?;
        // The first token listed is the one new registrations use; the others
        // stay accepted while Kill Bill moves over.
        Ok(Some(tokens.primary().clone()))
    }
}

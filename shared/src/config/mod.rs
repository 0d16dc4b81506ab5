//! Configuration in two steps: reading each function's settings from an
//! [`Env`] (the process environment in Lambda, a map in tests), then
//! building its service from them once per cold start with a [`Cloud`]
//! (the SDK configuration and where metric lines go).
//!
//! Layout: [`crate::settings`] (the lookup, typed reads, secret
//! references), `ingest`, `processor`, `operations` (sweeper, reconciler,
//! admin) and `register`, each a settings struct with `read` and `build`.
//! What each provider reads (its secrets, its API, its registration) its
//! [`crate::providers::Integration`] reads. [`read`] reads any
//! function's settings by its binary: what the template contract test
//! holds each function's environment in `template.yaml` to.

mod ingest;
mod operations;
mod processor;
mod register;

use std::io::Write;
use std::sync::{Arc, Mutex};

pub use crate::providers::TOLERANCE_SECS;
pub use crate::settings::{ConfigError, Env, SecretSource};
pub use ingest::{IngestConfig, ingest_settings, secret_variable, verifier_settings};
pub use operations::{AdminConfig, ReconcilerConfig, SweeperConfig, sweep_settings};
pub use processor::{ProcessorConfig, parse_plans, processor_settings};
pub use register::{LambdaRegistrars, RegisterConfig};

use crate::adapters::{DynamoEventStore, EmfMetrics, SecretsManagerSource, SqsQueue};
use crate::event::Provider;
use crate::ports::SecretStore;

pub const EVENTS_TABLE: &str = "PAYHOOKS_EVENTS_TABLE";
pub const QUEUE_URL: &str = "PAYHOOKS_QUEUE_URL";
pub const DLQ_URL: &str = "PAYHOOKS_DLQ_URL";
/// Days a final record is kept (its TTL from when it finishes).
pub const EVENT_TTL_DAYS: &str = "PAYHOOKS_EVENT_TTL_DAYS";
pub const MAX_BODY_BYTES: &str = "PAYHOOKS_MAX_BODY_BYTES";
pub const LEASE_SECS: &str = "PAYHOOKS_LEASE_SECS";
pub const BACKOFF_BASE_SECS: &str = "PAYHOOKS_BACKOFF_BASE_SECS";
pub const BACKOFF_MAX_SECS: &str = "PAYHOOKS_BACKOFF_MAX_SECS";
/// The events queue's `maxReceiveCount`.
pub const MAX_RECEIVE_COUNT: &str = "PAYHOOKS_MAX_RECEIVE_COUNT";
/// Seconds an event may sit in a non-final state before the sweeper sends
/// it again.
pub const SWEEP_AFTER_SECS: &str = "PAYHOOKS_SWEEP_AFTER_SECS";
/// The CloudWatch namespace of the metrics (the template: `payhooks/<stack>`,
/// so one stack's alarms never count another's events).
pub const METRICS_NAMESPACE: &str = "PAYHOOKS_METRICS_NAMESPACE";
/// Credits per period by plan id, as a JSON object (`PAYHOOKS_PLANS_ARN`
/// names it in Secrets Manager).
pub const PLANS: &str = "PAYHOOKS_PLANS";
/// `allow` (default: a claw-back may take a balance below zero, and the
/// account is flagged) or `forbid` (it stops at zero).
pub const NEGATIVE_BALANCES: &str = "PAYHOOKS_NEGATIVE_BALANCES";
/// How a plan change paid for mid-period tops the period up: `prorate`
/// (default: for the time left), `full` or `none` (from the next period).
pub const PLAN_CHANGES: &str = "PAYHOOKS_PLAN_CHANGES";
/// Where purchases and cancellations are sent, and the secret that signs
/// them (`PAYHOOKS_PROVISIONER_SECRET_ARN` in Secrets Manager).
pub const PROVISIONER_URL: &str = "PAYHOOKS_PROVISIONER_URL";
pub const PROVISIONER_SECRET: &str = "PAYHOOKS_PROVISIONER_SECRET";
/// The functions `template.yaml` deploys, each one binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Function {
    Ingest(Provider),
    Processor,
    Sweeper,
    Reconciler,
    Admin,
    Register,
}

impl Function {
    pub fn all() -> Vec<Function> {
        let mut all: Vec<Function> = Provider::ALL.iter().map(|&p| Function::Ingest(p)).collect();
        all.extend([Function::Processor, Function::Sweeper, Function::Reconciler, Function::Admin, Function::Register]);
        all
    }

    /// The binary's name: `ingest-<provider>`, `processor`, ….
    pub fn binary(self) -> String {
        match self {
            Function::Ingest(provider) => format!("ingest-{provider}"),
            Function::Processor => "processor".into(),
            Function::Sweeper => "sweeper".into(),
            Function::Reconciler => "reconciler".into(),
            Function::Admin => "admin".into(),
            Function::Register => "register".into(),
        }
    }

    pub fn from_binary(binary: &str) -> Option<Function> {
        Function::all().into_iter().find(|f| f.binary() == binary)
    }
}

/// Reads `function`'s settings, as its cold start does (the log level
/// included): an error names the setting that is missing or malformed.
pub fn read(function: Function, env: &Env) -> Result<(), ConfigError> {
    crate::telemetry::log_level(env)?;
    match function {
        Function::Ingest(provider) => IngestConfig::read(provider, env).map(drop),
        Function::Processor => ProcessorConfig::read(env).map(drop),
        Function::Sweeper => SweeperConfig::read(env).map(drop),
        Function::Reconciler => ReconcilerConfig::read(env).map(drop),
        Function::Admin => AdminConfig::read(env).map(drop),
        Function::Register => RegisterConfig::read(env).map(drop),
    }
}

type Sink = Arc<Mutex<dyn Write + Send>>;

/// What a cold start builds with: the AWS SDK's configuration and where
/// metric lines go (stdout, which Lambda ships to CloudWatch).
#[derive(Clone)]
pub struct Cloud {
    pub sdk: aws_config::SdkConfig,
    metrics_sink: Option<Sink>,
}

impl std::fmt::Debug for Cloud {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cloud").field("metrics_to_sink", &self.metrics_sink.is_some()).finish()
    }
}

impl Cloud {
    /// The SDK's default chain, so endpoints can be redirected only through
    /// the standard `AWS_ENDPOINT_URL_*` variables.
    pub async fn load() -> Self {
        Self::new(aws().await)
    }

    pub fn new(sdk: aws_config::SdkConfig) -> Self {
        Self { sdk, metrics_sink: None }
    }

    /// Metric lines go to `sink` instead of stdout (tests read them).
    pub fn with_metrics_sink(mut self, sink: Sink) -> Self {
        self.metrics_sink = Some(sink);
        self
    }

    fn metrics(&self, namespace: &str) -> Arc<EmfMetrics> {
        let metrics = EmfMetrics::stdout().in_namespace(namespace);
        Arc::new(match &self.metrics_sink {
            Some(sink) => metrics.to_sink(sink.clone()),
            None => metrics,
        })
    }

    fn secrets(&self) -> Arc<dyn SecretStore> {
        Arc::new(SecretsManagerSource::new(aws_sdk_secretsmanager::Client::new(&self.sdk)))
    }

    fn store(&self, table: &str) -> DynamoEventStore {
        DynamoEventStore::new(aws_sdk_dynamodb::Client::new(&self.sdk), table)
    }

    fn queue(&self, url: &str) -> SqsQueue {
        SqsQueue::new(aws_sdk_sqs::Client::new(&self.sdk), url)
    }
}

/// The SDK configuration: the default chain.
pub async fn aws() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

/// The metrics namespace, `payhooks` unless set.
fn metrics_namespace(env: &Env) -> String {
    env.var(METRICS_NAMESPACE).unwrap_or_else(|| crate::adapters::emf_metrics::NAMESPACE.to_owned())
}

/// A Lambda's cold start: logs first (so a configuration error is logged),
/// then its settings, then its service.
pub async fn lambda_ingest(provider: Provider) -> Result<crate::ingest::Ingest, ConfigError> {
    let env = lambda_env();
    IngestConfig::read(provider, &env)?.build(&Cloud::load().await).await
}

pub async fn lambda_processor() -> Result<crate::process::Processor, ConfigError> {
    let env = lambda_env();
    ProcessorConfig::read(&env)?.build(&Cloud::load().await).await
}

pub async fn lambda_sweeper() -> Result<crate::sweep::Sweeper, ConfigError> {
    let env = lambda_env();
    Ok(SweeperConfig::read(&env)?.build(&Cloud::load().await))
}

pub async fn lambda_reconciler() -> Result<crate::reconcile::Reconciler, ConfigError> {
    let env = lambda_env();
    Ok(ReconcilerConfig::read(&env)?.build(&Cloud::load().await))
}

pub async fn lambda_admin() -> Result<crate::edge::admin::Admin, ConfigError> {
    let env = lambda_env();
    Ok(AdminConfig::read(&env)?.build(&Cloud::load().await))
}

pub async fn lambda_registrars() -> Result<LambdaRegistrars, ConfigError> {
    let env = lambda_env();
    Ok(RegisterConfig::read(&env)?.build(&Cloud::load().await))
}

fn lambda_env() -> Env<'static> {
    let env = Env::process();
    crate::telemetry::init_lambda(&env);
    env
}

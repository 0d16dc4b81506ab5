//! The processor's settings: its table and queues, its retry budget, the
//! plans, and the provider APIs and downstream it talks to.

use std::sync::Arc;
use std::time::Duration;

use super::{
    BACKOFF_BASE_SECS, BACKOFF_MAX_SECS, Cloud, ConfigError, DLQ_URL, EVENT_TTL_DAYS, EVENTS_TABLE, Env, LEASE_SECS,
    MAX_RECEIVE_COUNT, NEGATIVE_BALANCES, PLAN_CHANGES, PLANS, PROVISIONER_SECRET, PROVISIONER_URL, QUEUE_URL,
    SecretSource, metrics_namespace,
};
use crate::adapters::HttpProvisioner;
use crate::clock::SystemClock;
use crate::effects::{BillingEffects, NegativeBalances, PlanChanges, Plans};
use crate::event::Provider;
use crate::ports::Effects;
use crate::ports::SecretStore;
use crate::process::{Processor, ProcessorPorts, ProcessorSettings, RecordOnlyEffects};
use crate::providers::{ConfirmerSetup, integration};
use crate::secret::Secret;

#[derive(Debug)]
pub struct ProcessorConfig {
    pub table: String,
    pub queue_url: String,
    pub dlq_url: String,
    pub namespace: String,
    /// How long a record is kept once it is final.
    pub retention: Duration,
    pub settings: ProcessorSettings,
    /// Without plans the processor records events and applies no effects.
    pub plans: Option<SecretSource>,
    pub negative_balances: NegativeBalances,
    pub plan_changes: PlanChanges,
    pub provisioner: Option<(String, SecretSource)>,
    /// Each provider's API read-back, where configured.
    pub confirmers: Vec<(Provider, Box<dyn ConfirmerSetup>)>,
}

/// The processor's retry and lease settings.
pub fn processor_settings(env: &Env) -> Result<ProcessorSettings, ConfigError> {
    let defaults = ProcessorSettings::default();
    let seconds = |name: &str, default: Duration| env.number(name, default.as_secs()).map(Duration::from_secs);
    Ok(ProcessorSettings {
        lease: seconds(LEASE_SECS, defaults.lease)?,
        backoff_base: seconds(BACKOFF_BASE_SECS, defaults.backoff_base)?,
        backoff_max: seconds(BACKOFF_MAX_SECS, defaults.backoff_max)?,
        max_receive_count: env.number(MAX_RECEIVE_COUNT, defaults.max_receive_count)?,
        ..defaults
    })
}

/// A secret's value as trimmed text (keys pasted with a newline).
async fn trimmed(source: &SecretSource, secrets: &dyn SecretStore) -> Result<Secret, ConfigError> {
    source.read_trimmed(secrets).await
}

/// Parses plans (`{"plan id": credits per period}`, or per plan
/// `{"credits": …, "trial_credits": …, "credits_per_payment": …}`).
pub fn parse_plans(json: &[u8]) -> Result<Plans, ConfigError> {
    Plans::from_json(&String::from_utf8_lossy(json)).map_err(|_| ConfigError::Invalid {
        name: PLANS.to_owned(),
        expected: "a JSON object of plan id to whole credits per period, or to {credits, trial_credits, credits_per_payment}",
    })
}

impl ProcessorConfig {
    pub fn read(env: &Env) -> Result<Self, ConfigError> {
        let provisioner = match env.var(PROVISIONER_URL) {
            None => None,
            Some(url) => Some((
                url.trim().to_owned(),
                env.secret(PROVISIONER_SECRET).ok_or_else(|| {
                    ConfigError::Missing(format!(
                        "{PROVISIONER_SECRET}_ARN or {PROVISIONER_SECRET} (to sign requests to {PROVISIONER_URL})"
                    ))
                })?,
            )),
        };
        let mut confirmers = Vec::new();
        for &provider in Provider::ALL {
            if let Some(setup) = integration(provider).confirmation(env)? {
                confirmers.push((provider, setup));
            }
        }
        Ok(Self {
            table: env.required(EVENTS_TABLE)?,
            queue_url: env.required(QUEUE_URL)?,
            dlq_url: env.required(DLQ_URL)?,
            namespace: metrics_namespace(env),
            retention: Duration::from_secs(env.number(EVENT_TTL_DAYS, 30u64)?.saturating_mul(24 * 3600)),
            settings: processor_settings(env)?,
            plans: env.secret(PLANS),
            negative_balances: env.parsed(NEGATIVE_BALANCES, NegativeBalances::default(), "allow or forbid")?,
            plan_changes: env.parsed(PLAN_CHANGES, PlanChanges::default(), "prorate, full or none")?,
            provisioner,
            confirmers,
        })
    }

    /// The processor on DynamoDB and SQS, with the plans and every provider
    /// API configured; secrets are read here, once per cold start.
    pub async fn build(self, cloud: &Cloud) -> Result<Processor, ConfigError> {
        let secrets = cloud.secrets();
        let store = Arc::new(cloud.store(&self.table).with_retention(self.retention));
        let effects: Arc<dyn Effects> = match &self.plans {
            Some(source) => {
                let plans = parse_plans(source.read(secrets.as_ref()).await?.expose())?;
                let mut effects = BillingEffects::new(store.clone(), plans, Arc::new(SystemClock))
                    .with_negative_balances(self.negative_balances)
                    .with_plan_changes(self.plan_changes);
                if let Some((url, secret)) = &self.provisioner {
                    let secret = trimmed(secret, secrets.as_ref()).await?;
                    effects = effects.with_provisioner(Arc::new(HttpProvisioner::new(url.clone(), secret)));
                }
                Arc::new(effects)
            }
            None => {
                tracing::warn!("{PLANS} is not set: events are recorded but no effects are applied");
                Arc::new(RecordOnlyEffects)
            }
        };
        let mut processor = Processor::new(
            ProcessorPorts {
                store,
                queue: Arc::new(cloud.queue(&self.queue_url)),
                dead_letters: Arc::new(cloud.queue(&self.dlq_url)),
                metrics: cloud.metrics(&self.namespace),
                clock: Arc::new(SystemClock),
            },
            effects,
            self.settings,
        );
        for (provider, setup) in &self.confirmers {
            processor = processor.with_confirmer(*provider, setup.build(secrets.as_ref()).await?);
        }
        Ok(processor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: [(&str, &str); 3] = [(EVENTS_TABLE, "events"), (QUEUE_URL, "http://queue"), (DLQ_URL, "http://dlq")];

    fn env(extra: &[(&'static str, &'static str)]) -> Env<'static> {
        Env::from_pairs(BASE.iter().chain(extra).copied())
    }

    #[test]
    fn the_processor_needs_its_table_and_both_queues() {
        let missing = ProcessorConfig::read(&Env::from_pairs([(EVENTS_TABLE, "t"), (QUEUE_URL, "q")]));
        assert!(matches!(missing, Err(ConfigError::Missing(name)) if name == DLQ_URL));
        let config = ProcessorConfig::read(&env(&[])).expect("config");
        assert!(config.plans.is_none() && config.provisioner.is_none() && config.confirmers.is_empty());
        assert_eq!(config.retention, Duration::from_secs(30 * 24 * 3600));
        assert_eq!(config.settings.max_receive_count, crate::sweep::DEFAULT_MAX_RECEIVE_COUNT);
    }

    #[test]
    fn retries_leases_and_retention_are_read() {
        let config = ProcessorConfig::read(&env(&[
            (LEASE_SECS, "240"),
            (MAX_RECEIVE_COUNT, "9"),
            (BACKOFF_BASE_SECS, "5"),
            (BACKOFF_MAX_SECS, "600"),
            (EVENT_TTL_DAYS, "60"),
        ]))
        .expect("config");
        assert_eq!(config.settings.lease, Duration::from_secs(240));
        assert_eq!(config.settings.max_receive_count, 9);
        assert_eq!(config.settings.backoff_base, Duration::from_secs(5));
        assert_eq!(config.settings.backoff_max, Duration::from_secs(600));
        assert_eq!(config.retention, Duration::from_secs(60 * 24 * 3600));
        let bad = ProcessorConfig::read(&env(&[(MAX_RECEIVE_COUNT, "many")]));
        assert!(matches!(bad, Err(ConfigError::Invalid { name, .. }) if name == MAX_RECEIVE_COUNT));
    }

    #[test]
    fn plans_balances_and_the_provisioner_are_read() {
        let config = ProcessorConfig::read(&env(&[
            ("PAYHOOKS_PLANS_ARN", "arn:plans"),
            (NEGATIVE_BALANCES, "forbid"),
            (PLAN_CHANGES, "full"),
            (PROVISIONER_URL, "https://downstream.example"),
            ("PAYHOOKS_PROVISIONER_SECRET_ARN", "arn:p"),
        ]))
        .expect("config");
        assert!(matches!(config.plans, Some(SecretSource::Arn(ref arn)) if arn == "arn:plans"));
        assert_eq!(config.negative_balances, NegativeBalances::Forbid);
        assert_eq!(config.plan_changes, PlanChanges::Full);
        assert!(matches!(config.provisioner, Some((ref url, _)) if url == "https://downstream.example"));
        let unsigned = ProcessorConfig::read(&env(&[(PROVISIONER_URL, "https://downstream.example")]));
        assert!(matches!(unsigned, Err(ConfigError::Missing(_))));
        let balances = ProcessorConfig::read(&env(&[(NEGATIVE_BALANCES, "sometimes")]));
        assert!(matches!(balances, Err(ConfigError::Invalid { .. })));
        let changes = ProcessorConfig::read(&env(&[(PLAN_CHANGES, "half")]));
        assert!(matches!(changes, Err(ConfigError::Invalid { name, .. }) if name == PLAN_CHANGES));
    }

    #[test]
    fn every_provider_api_configured_confirms_its_events() {
        let config = ProcessorConfig::read(&env(&[
            ("FLUTTERWAVE_SECRET_KEY_ARN", "arn:f"),
            ("KILLBILL_API_URL", "https://killbill.example"),
            ("KILLBILL_API_CREDENTIALS_ARN", "arn:k"),
            ("PAYPAL_CLIENT_ID", "client"),
            ("PAYPAL_CLIENT_SECRET_ARN", "arn:p"),
        ]))
        .unwrap();
        let providers: Vec<Provider> = config.confirmers.iter().map(|(p, _)| *p).collect();
        assert_eq!(providers, [Provider::Flutterwave, Provider::Killbill, Provider::Paypal]);
        let no_credentials = ProcessorConfig::read(&env(&[("KILLBILL_API_URL", "https://killbill.example")]));
        assert!(matches!(no_credentials, Err(ConfigError::NoSecret(name)) if name == "KILLBILL_API_CREDENTIALS"));
    }

    #[test]
    fn plans_are_a_json_object_of_credits() {
        assert!(parse_plans(br#"{"price_1": 100}"#).is_ok());
        assert!(matches!(parse_plans(b"[1, 2]"), Err(ConfigError::Invalid { .. })));
    }
}

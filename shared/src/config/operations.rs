//! The operator's functions: the sweeper, the reconciler and the admin
//! routes.

use std::sync::Arc;
use std::time::Duration;

use super::{
    Cloud, ConfigError, DLQ_URL, EVENTS_TABLE, Env, MAX_RECEIVE_COUNT, QUEUE_URL, SWEEP_AFTER_SECS, metrics_namespace,
};
use crate::clock::SystemClock;
use crate::edge::admin::Admin;
use crate::reconcile::Reconciler;
use crate::sweep::{SweepSettings, Sweeper};

/// When an event counts as stuck, and the queue's retry budget.
pub fn sweep_settings(env: &Env) -> Result<SweepSettings, ConfigError> {
    let defaults = SweepSettings::default();
    Ok(SweepSettings {
        older_than: Duration::from_secs(env.number(SWEEP_AFTER_SECS, defaults.older_than.as_secs())?),
        max_receive_count: env.number(MAX_RECEIVE_COUNT, defaults.max_receive_count)?,
        ..defaults
    })
}

#[derive(Debug)]
pub struct SweeperConfig {
    pub table: String,
    pub queue_url: String,
    pub namespace: String,
    pub settings: SweepSettings,
}

impl SweeperConfig {
    pub fn read(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            table: env.required(EVENTS_TABLE)?,
            queue_url: env.required(QUEUE_URL)?,
            namespace: metrics_namespace(env),
            settings: sweep_settings(env)?,
        })
    }

    pub fn build(self, cloud: &Cloud) -> Sweeper {
        Sweeper::new(
            Arc::new(cloud.store(&self.table)),
            Arc::new(cloud.queue(&self.queue_url)),
            cloud.metrics(&self.namespace),
            Arc::new(SystemClock),
            self.settings,
        )
    }
}

#[derive(Debug)]
pub struct ReconcilerConfig {
    pub table: String,
    pub namespace: String,
}

impl ReconcilerConfig {
    pub fn read(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self { table: env.required(EVENTS_TABLE)?, namespace: metrics_namespace(env) })
    }

    pub fn build(self, cloud: &Cloud) -> Reconciler {
        Reconciler::new(Arc::new(cloud.store(&self.table)), cloud.metrics(&self.namespace), Arc::new(SystemClock))
    }
}

#[derive(Debug)]
pub struct AdminConfig {
    pub table: String,
    pub queue_url: String,
    pub dlq_url: String,
    pub namespace: String,
    pub sweep: SweepSettings,
}

impl AdminConfig {
    pub fn read(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            table: env.required(EVENTS_TABLE)?,
            queue_url: env.required(QUEUE_URL)?,
            dlq_url: env.required(DLQ_URL)?,
            namespace: metrics_namespace(env),
            sweep: sweep_settings(env)?,
        })
    }

    pub fn build(self, cloud: &Cloud) -> Admin {
        let store = Arc::new(cloud.store(&self.table));
        Admin {
            store: store.clone(),
            ledger: store,
            queue: Arc::new(cloud.queue(&self.queue_url)),
            dead_letters: Arc::new(cloud.queue(&self.dlq_url)),
            metrics: cloud.metrics(&self.namespace),
            clock: Arc::new(SystemClock),
            sweep: self.sweep,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sweep_threshold_and_the_retry_budget_are_read() {
        let settings = sweep_settings(&Env::from_pairs([(SWEEP_AFTER_SECS, "1200"), (MAX_RECEIVE_COUNT, "12")]))
            .expect("settings");
        assert_eq!((settings.older_than, settings.max_receive_count), (Duration::from_secs(1200), 12));
        let defaults = sweep_settings(&Env::from_pairs([])).expect("settings");
        assert_eq!(defaults.max_receive_count, crate::sweep::DEFAULT_MAX_RECEIVE_COUNT);
        assert!(matches!(
            sweep_settings(&Env::from_pairs([(SWEEP_AFTER_SECS, "soon")])),
            Err(ConfigError::Invalid { .. })
        ));
    }

    #[test]
    fn each_operator_function_needs_what_it_touches() {
        let table_only = Env::from_pairs([(EVENTS_TABLE, "events")]);
        assert!(ReconcilerConfig::read(&table_only).is_ok());
        assert!(matches!(SweeperConfig::read(&table_only), Err(ConfigError::Missing(name)) if name == QUEUE_URL));
        let with_queue = Env::from_pairs([(EVENTS_TABLE, "events"), (QUEUE_URL, "q")]);
        assert!(SweeperConfig::read(&with_queue).is_ok());
        assert!(matches!(AdminConfig::read(&with_queue), Err(ConfigError::Missing(name)) if name == DLQ_URL));
    }
}

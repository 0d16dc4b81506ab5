//! Kill Bill's API as the simulated provider keeps it: the objects its
//! notifications name, written by the scenario. Confirmation reads them
//! through payhooks' own Kill Bill rules, in process (an HTTP fake would
//! need real time; the memory run's clock is paused).

use std::collections::HashMap;

use async_trait::async_trait;
use payhooks::event::EventRecord;
use payhooks::ports::{Confirmation, Confirmer, EffectError};
use payhooks::providers::killbill::api::{KillbillObjects, confirm};
use serde_json::Value;

#[derive(Debug, Default)]
pub struct SimulatedKillbill {
    /// Path under `/1.0/kb/` → the object.
    pub objects: HashMap<String, Value>,
}

#[async_trait]
impl KillbillObjects for SimulatedKillbill {
    async fn read(&self, path: &str) -> Result<Option<Value>, EffectError> {
        Ok(self.objects.get(path).cloned())
    }
}

#[async_trait]
impl Confirmer for SimulatedKillbill {
    async fn confirm(&self, record: &EventRecord) -> Result<Confirmation, EffectError> {
        confirm(self, &record.event).await
    }
}

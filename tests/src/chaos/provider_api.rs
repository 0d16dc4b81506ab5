//! Kill Bill's API as the simulated provider keeps it: the objects its
//! notifications name, written by the scenario. Confirmation reads them
//! through payhooks' own Kill Bill rules, in process (an HTTP fake would
//! need real time; the memory run's clock is paused).

use std::collections::HashMap;

use async_trait::async_trait;
use payhooks::event::EventRecord;
use payhooks::ports::{Confirmation, Confirmer, EffectError};
use payhooks::providers::killbill::api::{judge, what_to_read};
use serde_json::Value;

#[derive(Debug, Default)]
pub struct SimulatedKillbill {
    /// Path under `/1.0/kb/` → the object.
    pub objects: HashMap<String, Value>,
}

#[async_trait]
impl Confirmer for SimulatedKillbill {
    async fn confirm(&self, record: &EventRecord) -> Result<Confirmation, EffectError> {
        Ok(match what_to_read(&record.event) {
            Ok((kind, path)) => judge(&record.event, kind, self.objects.get(&path)),
            Err(answer) => answer,
        })
    }
}

//! Counters kept in memory: the local server's statistics and the tests'
//! way to see that a metric was emitted.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::ports::Metrics;

#[derive(Debug, Default)]
pub struct MemoryMetrics {
    counts: Mutex<BTreeMap<(String, &'static str), u64>>,
}

impl MemoryMetrics {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn get(&self, provider: &str, name: &str) -> u64 {
        self.counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|((p, n), _)| *p == provider && *n == name)
            .map(|(_, v)| *v)
            .sum()
    }

    pub fn snapshot(&self) -> BTreeMap<(String, &'static str), u64> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Metrics for MemoryMetrics {
    fn count(&self, provider: &str, name: &'static str) {
        *self
            .counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((provider.to_owned(), name))
            .or_default() += 1;
    }
}

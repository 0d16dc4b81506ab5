//! Counters kept in memory: the local server's statistics and the tests'
//! way to see that a metric was emitted.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use crate::ports::Metrics;

#[derive(Debug, Default)]
pub struct MemoryMetrics {
    counts: Mutex<BTreeMap<(String, &'static str), u64>>,
    reasons: Mutex<BTreeMap<(String, &'static str, String), u64>>,
    durations: Mutex<BTreeMap<(String, &'static str), Vec<Duration>>>,
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

    /// How often `name` was counted for `provider` with `reason`.
    pub fn get_reason(&self, provider: &str, name: &'static str, reason: &str) -> u64 {
        let reasons = self.reasons.lock().unwrap_or_else(|e| e.into_inner());
        reasons.get(&(provider.to_owned(), name, reason.to_owned())).copied().unwrap_or(0)
    }

    /// The durations recorded as `name` for `provider`.
    pub fn durations(&self, provider: &str, name: &'static str) -> Vec<Duration> {
        let durations = self.durations.lock().unwrap_or_else(|e| e.into_inner());
        durations.get(&(provider.to_owned(), name)).cloned().unwrap_or_default()
    }

    pub fn snapshot(&self) -> BTreeMap<(String, &'static str), u64> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Metrics for MemoryMetrics {
    fn count(&self, provider: &str, name: &'static str) {
        *self.counts.lock().unwrap_or_else(|e| e.into_inner()).entry((provider.to_owned(), name)).or_default() += 1;
    }

    fn count_reason(&self, provider: &str, name: &'static str, reason: &str) {
        self.count(provider, name);
        *self
            .reasons
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((provider.to_owned(), name, reason.to_owned()))
            .or_default() += 1;
    }

    fn duration(&self, provider: &str, name: &'static str, elapsed: Duration) {
        self.durations
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((provider.to_owned(), name))
            .or_default()
            .push(elapsed);
    }
}

//! Counters and latencies by provider, so duplicates, conflicts, ignored
//! events, rejections and slowness are visible without reading logs.

use std::time::Duration;

pub trait Metrics: Send + Sync + std::fmt::Debug {
    /// Adds one to `name` for `provider` (a provider's name, or `unknown`
    /// for a message that names none).
    fn count(&self, provider: &str, name: &'static str);

    /// Adds one to `name` for `provider`, also broken down by `reason`
    /// (a rejection's code).
    fn count_reason(&self, provider: &str, name: &'static str, reason: &str);

    /// Records how long `name` took for `provider`.
    fn duration(&self, provider: &str, name: &'static str, elapsed: Duration);
}

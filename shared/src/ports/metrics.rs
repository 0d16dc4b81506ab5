//! Counters by provider, so duplicates, conflicts, ignored events and
//! rejections are visible without reading logs.

pub trait Metrics: Send + Sync + std::fmt::Debug {
    /// Adds one to `name` for `provider` (a provider's name, or `unknown`
    /// for a message that names none).
    fn count(&self, provider: &str, name: &'static str);
}

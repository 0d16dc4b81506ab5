//! Metrics as CloudWatch Embedded Metric Format lines on stdout: Lambda
//! ships stdout to CloudWatch Logs, which extracts the metrics, so measuring
//! costs no API call on the request path. Every metric is published without
//! dimensions and by `provider`; a count with a reason also by `provider,
//! reason`. The namespace is the stack's (`payhooks/<stack>` in the
//! template), so one stack's alarms never count another's events.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::ports::Metrics;

/// The namespace when none is configured (the local server, tests).
pub const NAMESPACE: &str = "payhooks";

type Sink = Arc<Mutex<dyn Write + Send>>;

/// Writes to stdout, or to a sink the tests read.
#[derive(Clone)]
pub struct EmfMetrics {
    namespace: String,
    sink: Option<Sink>,
}

impl Default for EmfMetrics {
    fn default() -> Self {
        Self { namespace: NAMESPACE.to_owned(), sink: None }
    }
}

impl std::fmt::Debug for EmfMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let to = if self.sink.is_some() { "sink" } else { "stdout" };
        write!(f, "EmfMetrics({}, {to})", self.namespace)
    }
}

impl EmfMetrics {
    pub fn stdout() -> Self {
        Self::default()
    }

    /// Lines go to `sink` instead of stdout.
    pub fn to(sink: Sink) -> Self {
        Self::default().to_sink(sink)
    }

    pub fn to_sink(mut self, sink: Sink) -> Self {
        self.sink = Some(sink);
        self
    }

    pub fn in_namespace(mut self, namespace: &str) -> Self {
        namespace.clone_into(&mut self.namespace);
        self
    }

    /// The EMF document for one value of `name`, in the default namespace.
    pub fn document(
        provider: &str,
        name: &str,
        value: f64,
        unit: &str,
        reason: Option<&str>,
        at: OffsetDateTime,
    ) -> Value {
        Self::document_in(NAMESPACE, provider, name, value, unit, reason, at)
    }

    fn document_in(
        namespace: &str,
        provider: &str,
        name: &str,
        value: f64,
        unit: &str,
        reason: Option<&str>,
        at: OffsetDateTime,
    ) -> Value {
        let millis = at.unix_timestamp_nanos() / 1_000_000;
        // The empty set also gives each metric summed over providers: what
        // the stack's alarms watch.
        let dimensions = match reason {
            Some(_) => json!([[], ["provider"], ["provider", "reason"]]),
            None => json!([[], ["provider"]]),
        };
        let mut document = json!({
            "_aws": {
                "Timestamp": millis as i64,
                "CloudWatchMetrics": [{
                    "Namespace": namespace,
                    "Dimensions": dimensions,
                    "Metrics": [{"Name": name, "Unit": unit}],
                }],
            },
            "provider": provider,
            name: value,
        });
        if let Some(reason) = reason {
            document["reason"] = json!(reason);
        }
        document
    }

    fn emit(&self, document: &Value) {
        // A metric that cannot be written must not fail the webhook.
        match &self.sink {
            Some(sink) => {
                if let Ok(mut sink) = sink.lock() {
                    let _ = writeln!(sink, "{document}");
                }
            }
            None => {
                let _ = writeln!(std::io::stdout().lock(), "{document}");
            }
        }
    }
}

impl Metrics for EmfMetrics {
    fn count(&self, provider: &str, name: &'static str) {
        let now = OffsetDateTime::now_utc();
        self.emit(&Self::document_in(&self.namespace, provider, name, 1.0, "Count", None, now));
    }

    fn count_reason(&self, provider: &str, name: &'static str, reason: &str) {
        let now = OffsetDateTime::now_utc();
        self.emit(&Self::document_in(&self.namespace, provider, name, 1.0, "Count", Some(reason), now));
    }

    fn duration(&self, provider: &str, name: &'static str, elapsed: Duration) {
        let millis = elapsed.as_secs_f64() * 1000.0;
        let now = OffsetDateTime::now_utc();
        self.emit(&Self::document_in(&self.namespace, provider, name, millis, "Milliseconds", None, now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_count_is_a_valid_emf_document() {
        let at = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let doc = EmfMetrics::document("stripe", "conflict", 1.0, "Count", None, at);
        assert_eq!(doc["_aws"]["Timestamp"], 1_700_000_000_000_i64);
        assert_eq!(doc["_aws"]["CloudWatchMetrics"][0]["Namespace"], "payhooks");
        assert_eq!(doc["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"], "conflict");
        assert_eq!(doc["provider"], "stripe");
        assert_eq!(doc["conflict"], 1.0);
    }

    #[test]
    fn a_reason_adds_its_dimension() {
        let at = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let doc = EmfMetrics::document("paystack", "rejected", 1.0, "Count", Some("invalid_signature"), at);
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([[], ["provider"], ["provider", "reason"]])
        );
        assert_eq!(doc["reason"], "invalid_signature");
    }
}

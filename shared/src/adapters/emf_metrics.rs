//! Metrics as CloudWatch Embedded Metric Format lines on stdout: Lambda
//! ships stdout to CloudWatch Logs, which extracts the metrics, so measuring
//! costs no API call on the request path. Every metric is published without
//! dimensions and by `provider`; a count with a reason also by `provider,
//! reason`.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::ports::Metrics;

pub const NAMESPACE: &str = "payhooks";

type Sink = Arc<Mutex<dyn Write + Send>>;

/// Writes to stdout, or to a sink the tests read.
#[derive(Clone, Default)]
pub struct EmfMetrics {
    sink: Option<Sink>,
}

impl std::fmt::Debug for EmfMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.sink.is_some() { "EmfMetrics(sink)" } else { "EmfMetrics(stdout)" })
    }
}

impl EmfMetrics {
    pub fn stdout() -> Self {
        Self::default()
    }

    /// Lines go to `sink` instead of stdout.
    pub fn to(sink: Sink) -> Self {
        Self { sink: Some(sink) }
    }

    /// The EMF document for one value of `name`.
    pub fn document(provider: &str, name: &str, value: f64, unit: &str, reason: Option<&str>, at: OffsetDateTime) -> Value {
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
                    "Namespace": NAMESPACE,
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
        self.emit(&Self::document(provider, name, 1.0, "Count", None, OffsetDateTime::now_utc()));
    }

    fn count_reason(&self, provider: &str, name: &'static str, reason: &str) {
        self.emit(&Self::document(provider, name, 1.0, "Count", Some(reason), OffsetDateTime::now_utc()));
    }

    fn duration(&self, provider: &str, name: &'static str, elapsed: Duration) {
        let millis = elapsed.as_secs_f64() * 1000.0;
        self.emit(&Self::document(provider, name, millis, "Milliseconds", None, OffsetDateTime::now_utc()));
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
        assert_eq!(doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([[], ["provider"], ["provider", "reason"]]));
        assert_eq!(doc["reason"], "invalid_signature");
    }
}

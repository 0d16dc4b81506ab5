//! Counters as CloudWatch Embedded Metric Format lines on stdout: Lambda
//! ships stdout to CloudWatch Logs, which extracts the metrics, so counting
//! costs no API call on the request path.

use std::io::Write;

use serde_json::json;
use time::OffsetDateTime;

use crate::ports::Metrics;

pub const NAMESPACE: &str = "payhooks";

#[derive(Debug, Default, Clone, Copy)]
pub struct EmfMetrics;

impl EmfMetrics {
    /// The EMF document for one count, at `at`.
    pub fn line(provider: &str, name: &str, at: OffsetDateTime) -> String {
        let millis = at.unix_timestamp_nanos() / 1_000_000;
        json!({
            "_aws": {
                "Timestamp": millis as i64,
                "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE,
                    "Dimensions": [["provider"]],
                    "Metrics": [{"Name": name, "Unit": "Count"}],
                }],
            },
            "provider": provider,
            name: 1,
        })
        .to_string()
    }
}

impl Metrics for EmfMetrics {
    fn count(&self, provider: &str, name: &'static str) {
        let line = Self::line(provider, name, OffsetDateTime::now_utc());
        // A metric that cannot be written must not fail the webhook.
        let _ = writeln!(std::io::stdout().lock(), "{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_count_is_a_valid_emf_document() {
        let at = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let doc: serde_json::Value =
            serde_json::from_str(&EmfMetrics::line("stripe", "conflict", at)).unwrap();
        assert_eq!(doc["_aws"]["Timestamp"], 1_700_000_000_000_i64);
        assert_eq!(doc["_aws"]["CloudWatchMetrics"][0]["Namespace"], "payhooks");
        assert_eq!(doc["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"], "conflict");
        assert_eq!(doc["provider"], "stripe");
        assert_eq!(doc["conflict"], 1);
    }
}

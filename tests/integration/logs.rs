//! The logs of a full request, accepted and processed, and of a rejected
//! one: they tell the story by event id and state, and never contain the
//! secret or the payload (I12).

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::Method;
use payhooks::providers::Inbound;
use payhooks::edge::http::webhook;
use payhooks_tests::Backend;
use payhooks_tests::requests::{SECRET, stripe_event, stripe_headers};

use crate::support::{Rig, VISIBILITY};

/// Log output of every level, as JSON lines, kept in memory.
#[derive(Clone, Default)]
pub(crate) struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("lock")).into_owned()
    }
}

/// Captures this thread's logs until the guard is dropped.
pub(crate) fn capture_logs() -> (Captured, tracing::subscriber::DefaultGuard) {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::TRACE)
        .with_writer({
            let captured = captured.clone();
            move || captured.clone()
        })
        .finish();
    (captured, tracing::subscriber::set_default(subscriber))
}

#[tokio::test]
async fn the_logs_of_a_full_request_hold_neither_the_secret_nor_the_payload() {
    let (captured, _guard) = capture_logs();

    let rig = Rig::new(Backend::memory(VISIBILITY));
    let (ids, body) = stripe_event("checkout.session.completed");
    let headers = stripe_headers(&body, SECRET, rig.now().unix_timestamp());
    let response = webhook(&rig.ingest, &Method::POST, "stripe", &Inbound::new(&headers, &body)).await;
    assert_eq!(response.body["status"], "accepted");
    rig.processor.poll_once(Duration::from_secs(1)).await.expect("poll");
    let rejected = stripe_headers(&body, "whsec_test_wrong_secret", rig.now().unix_timestamp());
    webhook(&rig.ingest, &Method::POST, "stripe", &Inbound::new(&rejected, &body)).await;

    let logs = captured.text();
    for state in ["\"received\"", "\"enqueued\"", "\"processing\"", "completed", "invalid_signature"] {
        assert!(logs.contains(state), "the logs tell the state {state}:\n{logs}");
    }
    assert!(logs.contains(&ids.event_id), "lines carry the event id");
    assert!(!logs.contains(SECRET), "the secret leaked into the logs");
    assert!(!logs.contains("whsec_test_wrong_secret"), "a presented secret leaked");
    assert!(!logs.contains(&headers["stripe-signature"].to_str().expect("ascii")[12..]), "the signature leaked");
    let payload = String::from_utf8(body).expect("utf-8");
    assert!(!logs.contains(&payload), "the raw payload leaked");
    for fragment in ["jenny.rosen@example.com", &ids.customer_id, "cs_test_"] {
        assert!(!logs.contains(fragment), "payload content {fragment} leaked");
    }
}

/// The EMF lines a request produces: every one a valid document in the
/// `payhooks` namespace, with the provider dimension (and the reason for a
/// rejection), counting received, accepted, duplicate, rejected, enqueued,
/// processed and timing ingest and processing.
#[tokio::test]
async fn a_request_produces_emf_lines_cloudwatch_can_extract() {
    use payhooks::adapters::EmfMetrics;
    use payhooks::clock::SystemClock;
    use payhooks::ingest::{Ingest, IngestSettings};
    use payhooks::process::{Processor, ProcessorSettings, RecordOnlyEffects};
    use payhooks::providers::{self, VerifierSettings};
    use payhooks::secret::SecretSet;
    use serde_json::Value;

    let captured = Captured::default();
    let metrics = Arc::new(EmfMetrics::to(Arc::new(Mutex::new(captured.clone()))));
    let backend = Backend::memory(VISIBILITY);
    let verifier = providers::verifier(
        payhooks::event::Provider::Stripe,
        SecretSet::from_comma_separated(SECRET).expect("secret"),
        &VerifierSettings::default(),
    );
    let ingest = Ingest::new(
        vec![verifier],
        backend.store.clone(),
        backend.queue.clone(),
        metrics.clone(),
        Arc::new(SystemClock),
        IngestSettings::default(),
    );
    let processor = Processor::new(
        backend.store.clone(),
        backend.queue.clone(),
        backend.dead_letters.clone(),
        Arc::new(RecordOnlyEffects),
        metrics,
        Arc::new(SystemClock),
        ProcessorSettings::default(),
    );
    let (_, body) = stripe_event("invoice.paid");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let headers = stripe_headers(&body, SECRET, now);
    for _ in 0..2 {
        webhook(&ingest, &Method::POST, "stripe", &Inbound::new(&headers, &body)).await;
    }
    let forged = stripe_headers(&body, "whsec_test_wrong_secret", now);
    webhook(&ingest, &Method::POST, "stripe", &Inbound::new(&forged, &body)).await;
    processor.poll_once(Duration::from_secs(1)).await.expect("poll");

    let documents: Vec<Value> = captured
        .text()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    let mut counted = std::collections::BTreeMap::<String, f64>::new();
    for document in &documents {
        let directive = &document["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "payhooks", "{document}");
        assert!(document["_aws"]["Timestamp"].as_i64().is_some_and(|t| t > 0), "{document}");
        assert_eq!(document["provider"], "stripe");
        let name = directive["Metrics"][0]["Name"].as_str().expect("a metric name");
        let value = document[name].as_f64().unwrap_or_else(|| panic!("{name} has no value: {document}"));
        for dimensions in directive["Dimensions"].as_array().expect("dimensions") {
            for dimension in dimensions.as_array().expect("a dimension set") {
                let key = dimension.as_str().expect("a dimension name");
                assert!(document[key].is_string(), "dimension {key} has no value: {document}");
            }
        }
        match directive["Metrics"][0]["Unit"].as_str() {
            Some("Count") => *counted.entry(name.to_owned()).or_default() += value,
            Some("Milliseconds") => assert!(value >= 0.0),
            unit => panic!("unexpected unit {unit:?}: {document}"),
        }
        if name == "rejected" {
            assert_eq!(document["reason"], "invalid_signature");
        }
    }
    for (name, count) in [("received", 3.0), ("accepted", 1.0), ("duplicate", 1.0), ("rejected", 1.0), ("enqueued", 1.0), ("processed", 1.0)] {
        assert_eq!(counted.get(name), Some(&count), "{name}: {counted:?}");
    }
    let timed: Vec<&str> = documents
        .iter()
        .filter(|d| d["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"] == "Milliseconds")
        .filter_map(|d| d["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"].as_str())
        .collect();
    assert_eq!(timed.iter().filter(|n| **n == "ingest_latency").count(), 3);
    assert_eq!(timed.iter().filter(|n| **n == "processing_latency").count(), 1);
}

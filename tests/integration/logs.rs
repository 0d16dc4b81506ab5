//! The logs of a full request, accepted and processed, and of a rejected
//! one: they tell the story by event id and state, and never contain the
//! secret or the payload (I12).

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::Method;
use payhooks::edge::http::webhook;
use payhooks::providers::Inbound;
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
    let guard = tracing::subscriber::set_default(subscriber);
    // A callsite first reached by another test, before this subscriber
    // existed, may have cached that nobody listens: ask again. A callsite
    // another thread was registering while the cache was rebuilt may have
    // stored its stale answer after it, so ask once more when that is done.
    tracing::callsite::rebuild_interest_cache();
    std::thread::sleep(std::time::Duration::from_millis(20));
    tracing::callsite::rebuild_interest_cache();
    (captured, guard)
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
    use payhooks::process::{Processor, ProcessorPorts, ProcessorSettings, RecordOnlyEffects};
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
        ProcessorPorts {
            store: backend.store.clone(),
            queue: backend.queue.clone(),
            dead_letters: backend.dead_letters.clone(),
            metrics,
            clock: Arc::new(SystemClock),
        },
        Arc::new(RecordOnlyEffects),
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
    for (name, count) in [
        ("received", 3.0),
        ("accepted", 1.0),
        ("duplicate", 1.0),
        ("rejected", 1.0),
        ("enqueued", 1.0),
        ("processed", 1.0),
    ] {
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

/// Kill Bill's ingest function, started as Lambda starts it and logging
/// JSON as the template configures it, at every level the template allows:
/// Lambda keeps every line (the template's ApplicationLogLevel is TRACE), so
/// what it writes is what CloudWatch gets. The metric lines are there at
/// every level; the token in the path, a wrong token tried, and the payload
/// are at none, whatever the runtime, the HTTP stack or the SDK log at
/// their most verbose.
#[tokio::test]
async fn at_every_level_the_logs_keep_the_metrics_and_never_a_raw_request() {
    use payhooks::event::Provider;
    use payhooks::providers;
    use payhooks_tests::runtime_api::{RuntimeApi, http_event};
    use serde_json::json;

    let Some(backend) = Backend::emulators(VISIBILITY).await else { return };
    let resources = backend.resources.clone().expect("emulator names");
    let token = format!("kbtoken{}", uuid::Uuid::new_v4().simple());
    let wrong = format!("kbwrong{}", uuid::Uuid::new_v4().simple());
    for level in ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"] {
        let ids = providers::sample_ids(Provider::Killbill);
        let body = providers::sample_event(Provider::Killbill, "SUBSCRIPTION_CREATION", &ids).expect("sample");
        let (api, addr) = RuntimeApi::start().await.expect("runtime API");
        for presented in [&token, &wrong] {
            let mut event = http_event(
                "POST",
                &format!("/webhooks/killbill/{presented}"),
                json!({"content-type": "application/json"}),
                &body,
            );
            event["pathParameters"] = json!({"token": presented});
            api.invoke(event.to_string());
        }
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_lambda-ingest"))
            .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", "ingest-killbill")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/payhooks/ingest-killbill")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "logs-test")
            // What Lambda sets from the template's LoggingConfig.
            .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
            .env("AWS_LAMBDA_LOG_LEVEL", "TRACE")
            .env("PAYHOOKS_LOG_LEVEL", level)
            .env("PAYHOOKS_TEST_PROVIDER", "killbill")
            .env("PAYHOOKS_EVENTS_TABLE", &resources.table)
            .env("PAYHOOKS_QUEUE_URL", &resources.queue_url)
            .env("KILLBILL_WEBHOOK_SECRET", &token)
            .env_remove("RUST_LOG")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start the function");
        let answers = tokio::time::timeout(Duration::from_secs(30), api.answers(2)).await;
        let pid = child.id();
        // The runtime waits for its next invocation forever: end it.
        let _ = std::process::Command::new("kill").arg(pid.to_string()).status();
        let output = child.wait_with_output().expect("its output");
        let logs = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        let answers = answers.unwrap_or_else(|_| panic!("{level}: no answers within 30 s:\n{logs}"));
        let answered: Vec<String> = answers.iter().map(|a| String::from_utf8_lossy(&a.body).into_owned()).collect();
        assert!(answered[0].contains("accepted") && answered[1].contains("invalid_token"), "{level}: {answered:?}");

        for line in logs.lines().filter(|l| !l.trim().is_empty()) {
            let document: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{level}: every line is JSON for Lambda ({e}): {line}"));
            assert!(document.get("level").is_some() || document.get("_aws").is_some(), "{level}: {line}");
        }
        for metric in ["\"accepted\":1", "\"rejected\":1"] {
            assert!(logs.contains(metric), "{level}: the metric line {metric} is kept:\n{logs}");
        }
        let recorded = logs.contains("event recorded");
        assert_eq!(recorded, ["TRACE", "DEBUG", "INFO"].contains(&level), "{level}: INFO lines follow the level");
        for (what, secret) in
            [("the token", token.as_str()), ("a wrong token", wrong.as_str()), ("the payload", body.as_str())]
        {
            assert!(!logs.contains(secret), "{level}: {what} is in the logs:\n{logs}");
        }
        assert!(body.contains("bundleExternalKey"));
        assert!(!logs.contains("bundleExternalKey"), "{level}: payload content is in the logs");
    }
}

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

//! Ingest: verified, recorded once, enqueued once; bad input answered and
//! nothing written or enqueued (I1–I3, I10). Each test runs on the memory
//! adapters and, under `scripts/test.sh`, on DynamoDB Local and moto's SQS.

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderValue, Method, StatusCode};
use payhooks::edge::http::{JsonResponse, webhook};
use payhooks::event::{EventId, EventKey, EventStatus, Provider};
use payhooks::ingest::IngestSettings;
use payhooks::process::RecordOnlyEffects;
use payhooks::providers::Inbound;
use payhooks_tests::Backend;
use payhooks_tests::faults::{FaultyQueue, FaultyStore};
use payhooks_tests::requests::{SECRET, stripe_event, stripe_headers};
use serde_json::json;

use crate::support::{Rig, VISIBILITY};

async fn post(rig: &Rig, headers: &HeaderMap, body: &[u8]) -> JsonResponse {
    webhook(&rig.ingest, &Method::POST, "stripe", &Inbound::new(headers, body)).await
}

fn signed(rig: &Rig, body: &[u8]) -> HeaderMap {
    stripe_headers(body, SECRET, rig.now().unix_timestamp())
}

fn key(id: &str) -> EventKey {
    EventKey::new(Provider::Stripe, EventId::parse(id).expect("id"))
}

#[tokio::test]
async fn a_first_delivery_is_recorded_enqueued_and_accepted() {
    for backend in Backend::all(VISIBILITY).await {
        let rig = Rig::new(backend);
        let (ids, body) = stripe_event("invoice.payment_succeeded");
        let response = post(&rig, &signed(&rig, &body), &body).await;
        assert_eq!(response, JsonResponse::ok(json!({"status": "accepted"})), "{}", rig.backend.name);

        let record = rig.backend.store.get(&key(&ids.event_id)).await.expect("get").expect("recorded");
        assert_eq!(record.status, EventStatus::Enqueued);
        assert_eq!(record.event_type, "invoice.payment_succeeded");
        assert_eq!(record.received_at, rig.now());
        assert_eq!(record.enqueued_at, Some(rig.now()));
        assert_eq!(record.expires_at, None, "a record with work left to do never expires");
        assert_eq!(
            Backend::drain(rig.backend.queue.as_ref()).await,
            vec![key(&ids.event_id).message_body()],
            "one message carrying the event's key"
        );
        assert_eq!(rig.metrics.get("stripe", "accepted"), 1);
    }
}

#[tokio::test]
async fn a_repeat_delivery_is_a_duplicate_and_sends_no_second_message() {
    for backend in Backend::all(VISIBILITY).await {
        let rig = Rig::new(backend);
        let (_, body) = stripe_event("customer.subscription.updated");
        assert_eq!(post(&rig, &signed(&rig, &body), &body).await.body["status"], "accepted");
        // Stripe signs each retry anew, with a later timestamp.
        rig.clock.advance(time::Duration::seconds(60));
        let again = post(&rig, &signed(&rig, &body), &body).await;
        assert_eq!(again, JsonResponse::ok(json!({"status": "duplicate"})), "{}", rig.backend.name);
        assert_eq!(rig.backend.record_count().await, 1);
        assert_eq!(Backend::drain(rig.backend.queue.as_ref()).await.len(), 1);
        assert_eq!(rig.metrics.get("stripe", "duplicate"), 1);
    }
}

#[tokio::test]
async fn twenty_concurrent_deliveries_of_one_event_give_one_record_and_one_message() {
    for backend in Backend::all(VISIBILITY).await {
        let rig = Rig::new(backend);
        let (_, body) = stripe_event("invoice.paid");
        let headers = signed(&rig, &body);
        let responses = futures::future::join_all((0..20).map(|_| post(&rig, &headers, &body))).await;
        let statuses: Vec<_> = responses.iter().map(|r| r.body["status"].as_str().unwrap_or("error")).collect();
        assert!(responses.iter().all(|r| r.status == StatusCode::OK), "{}: {statuses:?}", rig.backend.name);
        assert_eq!(statuses.iter().filter(|s| **s == "accepted").count(), 1, "{statuses:?}");
        assert_eq!(statuses.iter().filter(|s| **s == "duplicate").count(), 19, "{statuses:?}");
        assert_eq!(rig.backend.record_count().await, 1);
        assert_eq!(Backend::drain(rig.backend.queue.as_ref()).await.len(), 1, "{}", rig.backend.name);
    }
}

fn quick_settings() -> IngestSettings {
    IngestSettings { concurrent_wait: Duration::from_millis(100), ..IngestSettings::default() }
}

#[tokio::test]
async fn a_failed_send_answers_5xx_and_the_retry_enqueues_the_event_once() {
    for backend in Backend::all(VISIBILITY).await {
        let store = backend.store.clone();
        let queue = Arc::new(FaultyQueue::new(backend.queue.clone()));
        queue.faults.fail("send", 1);
        let rig = Rig::with(backend, store, queue, Arc::new(RecordOnlyEffects), quick_settings());
        let (ids, body) = stripe_event("invoice.paid");

        let failed = post(&rig, &signed(&rig, &body), &body).await;
        assert_eq!(failed.status, StatusCode::SERVICE_UNAVAILABLE, "{}", rig.backend.name);
        assert_eq!(failed.body["error"], "unavailable");
        let record = rig.backend.store.get(&key(&ids.event_id)).await.expect("get").expect("recorded");
        assert_eq!(record.status, EventStatus::Received, "recorded, but not marked enqueued");

        // A retry while the first delivery might still be sending is told
        // to come back, rather than answered 2xx for an event not enqueued.
        let early = post(&rig, &signed(&rig, &body), &body).await;
        assert_eq!(early.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(early.body["error"], "in_progress");

        rig.clock.advance(time::Duration::seconds(60));
        let retried = post(&rig, &signed(&rig, &body), &body).await;
        assert_eq!(retried, JsonResponse::ok(json!({"status": "accepted"})));
        let later = post(&rig, &signed(&rig, &body), &body).await;
        assert_eq!(later.body["status"], "duplicate");
        assert_eq!(Backend::drain(rig.backend.queue.as_ref()).await.len(), 1, "enqueued exactly once");
        assert_eq!(rig.metrics.get("stripe", "reenqueued"), 1);
    }
}

#[tokio::test]
async fn a_crash_between_put_and_send_is_healed_by_the_next_delivery() {
    for backend in Backend::all(VISIBILITY).await {
        let store = backend.store.clone();
        // The put lands, then the function dies: no answer, no send, no mark.
        let dead_queue = Arc::new(FaultyQueue::new(backend.queue.clone()));
        dead_queue.faults.fail("send", u32::MAX);
        let crashed =
            Rig::with(backend.clone(), store.clone(), dead_queue, Arc::new(RecordOnlyEffects), quick_settings());
        let (ids, body) = stripe_event("checkout.session.completed");
        assert_eq!(post(&crashed, &signed(&crashed, &body), &body).await.status, StatusCode::SERVICE_UNAVAILABLE);

        let rig =
            Rig::with(backend, store, crashed.backend.queue.clone(), Arc::new(RecordOnlyEffects), quick_settings());
        rig.clock.advance(time::Duration::seconds(120));
        let redelivered = post(&rig, &signed(&rig, &body), &body).await;
        assert_eq!(redelivered.body["status"], "accepted", "{}", rig.backend.name);
        let record = rig.backend.store.get(&key(&ids.event_id)).await.expect("get").expect("recorded");
        assert_eq!(record.status, EventStatus::Enqueued);
        assert_eq!(Backend::drain(rig.backend.queue.as_ref()).await.len(), 1);
    }
}

#[tokio::test]
async fn a_failed_put_answers_5xx_and_leaves_nothing_behind() {
    for backend in Backend::all(VISIBILITY).await {
        let store = Arc::new(FaultyStore::new(backend.store.clone()));
        store.faults.fail("claim", 1);
        let queue = backend.queue.clone();
        let rig = Rig::with(backend, store, queue, Arc::new(RecordOnlyEffects), IngestSettings::default());
        let (_, body) = stripe_event("invoice.paid");
        let response = post(&rig, &signed(&rig, &body), &body).await;
        assert_eq!(response.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(rig.backend.record_count().await, 0);
        assert!(Backend::drain(rig.backend.queue.as_ref()).await.is_empty());
    }
}

#[tokio::test]
async fn the_same_id_with_different_content_is_a_conflict_and_is_not_enqueued() {
    for backend in Backend::all(VISIBILITY).await {
        let rig = Rig::new(backend);
        let (ids, body) = stripe_event("charge.refunded");
        assert_eq!(post(&rig, &signed(&rig, &body), &body).await.body["status"], "accepted");
        let first = rig.backend.store.get(&key(&ids.event_id)).await.expect("get").expect("recorded");

        let altered = String::from_utf8(body.clone())
            .expect("utf-8")
            .replace("\"amount_refunded\": 500", "\"amount_refunded\": 2000");
        assert_ne!(altered.as_bytes(), body.as_slice(), "the sample has a refund amount to alter");
        let response = post(&rig, &signed(&rig, altered.as_bytes()), altered.as_bytes()).await;
        assert_eq!(response, JsonResponse::ok(json!({"status": "conflict"})), "{}", rig.backend.name);

        let record = rig.backend.store.get(&key(&ids.event_id)).await.expect("get").expect("recorded");
        assert_eq!(record.conflicts, 1);
        assert_eq!(record.fingerprint, first.fingerprint, "the first content stays the event");
        assert_eq!(Backend::drain(rig.backend.queue.as_ref()).await.len(), 1);
        assert_eq!(rig.metrics.get("stripe", "conflict"), 1);
    }
}

struct BadInput {
    name: &'static str,
    method: Method,
    provider: &'static str,
    headers: HeaderMap,
    body: Vec<u8>,
    status: StatusCode,
    code: &'static str,
}

fn bad_inputs(rig: &Rig) -> Vec<BadInput> {
    let (_, body) = stripe_event("invoice.paid");
    let now = rig.now().unix_timestamp();
    let header = |value: &str| {
        let mut headers = HeaderMap::new();
        headers.insert("stripe-signature", HeaderValue::from_str(value).expect("ascii"));
        headers
    };
    let case = |name, headers, body: &[u8], status, code| BadInput {
        name,
        method: Method::POST,
        provider: "stripe",
        headers,
        body: body.to_vec(),
        status,
        code,
    };
    let not_json = b"this is not json".to_vec();
    let no_id = br#"{"object":"event","type":"invoice.paid","created":1764000000,"data":{"object":{}}}"#.to_vec();
    let oversized = {
        let mut big = body.clone();
        big.resize(IngestSettings::default().max_body_bytes + 1, b' ');
        big
    };
    vec![
        case("missing signature header", HeaderMap::new(), &body, StatusCode::BAD_REQUEST, "missing_signature"),
        case("garbled signature header", header("garbled"), &body, StatusCode::BAD_REQUEST, "malformed_signature"),
        case("header without v1", header(&format!("t={now}")), &body, StatusCode::BAD_REQUEST, "malformed_signature"),
        case(
            "signed with another secret",
            stripe_headers(&body, "whsec_someone_else", now),
            &body,
            StatusCode::UNAUTHORIZED,
            "invalid_signature",
        ),
        case(
            "timestamp too old",
            stripe_headers(&body, SECRET, now - 301),
            &body,
            StatusCode::UNAUTHORIZED,
            "timestamp_out_of_tolerance",
        ),
        case(
            "timestamp in the future",
            stripe_headers(&body, SECRET, now + 301),
            &body,
            StatusCode::UNAUTHORIZED,
            "timestamp_out_of_tolerance",
        ),
        case(
            "valid signature, not JSON",
            stripe_headers(&not_json, SECRET, now),
            &not_json,
            StatusCode::BAD_REQUEST,
            "invalid_payload",
        ),
        case(
            "valid signature, no id",
            stripe_headers(&no_id, SECRET, now),
            &no_id,
            StatusCode::BAD_REQUEST,
            "invalid_event_id",
        ),
        case(
            "body over the limit",
            stripe_headers(&oversized, SECRET, now),
            &oversized,
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        BadInput {
            method: Method::GET,
            ..case(
                "a GET",
                stripe_headers(&body, SECRET, now),
                &body,
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
            )
        },
        BadInput {
            provider: "stripes",
            ..case(
                "an unknown provider",
                stripe_headers(&body, SECRET, now),
                &body,
                StatusCode::NOT_FOUND,
                "unknown_provider",
            )
        },
    ]
}

#[tokio::test]
async fn bad_input_is_answered_with_its_reason_and_writes_nothing() {
    for backend in Backend::all(VISIBILITY).await {
        let rig = Rig::new(backend);
        for input in bad_inputs(&rig) {
            let response =
                webhook(&rig.ingest, &input.method, input.provider, &Inbound::new(&input.headers, &input.body)).await;
            assert_eq!(response.status, input.status, "{}: {}", input.name, response.body);
            assert_eq!(response.body["error"], input.code, "{}", input.name);
            let message = response.body["message"].as_str().expect("a message");
            assert!(!message.is_empty(), "{}", input.name);
            let text = response.body.to_string();
            assert!(!text.contains(SECRET), "{}: the answer names the secret", input.name);
            assert!(!text.contains("in_1TestInvoice"), "{}: the answer quotes the payload", input.name);
            assert_eq!(rig.backend.record_count().await, 0, "{}: wrote a record", input.name);
            assert!(Backend::drain(rig.backend.queue.as_ref()).await.is_empty(), "{}: enqueued", input.name);
        }
        assert_eq!(rig.metrics.get("stripe", "rejected"), 9, "every rejection counted");
    }
}

#[tokio::test]
async fn the_tolerance_message_names_the_window() {
    let rig = Rig::new(Backend::memory(VISIBILITY));
    let (_, body) = stripe_event("invoice.paid");
    let response = post(&rig, &stripe_headers(&body, SECRET, rig.now().unix_timestamp() - 3600), &body).await;
    assert_eq!(response.status, StatusCode::UNAUTHORIZED);
    assert!(response.body["message"].as_str().expect("message").contains("300 seconds"), "{}", response.body);
}

#[tokio::test]
async fn any_of_several_active_secrets_verifies_during_a_rotation() {
    use payhooks::clock::SystemClock;
    use payhooks::ingest::Ingest;
    use payhooks::secret::SecretSet;
    let backend = Backend::memory(VISIBILITY);
    let verifier = payhooks::providers::verifier(
        Provider::Stripe,
        SecretSet::from_comma_separated("whsec_test_old_one,whsec_test_new_one").expect("secrets"),
        &payhooks::providers::VerifierSettings::default(),
    );
    let ingest = Ingest::new(
        vec![verifier],
        backend.store.clone(),
        backend.queue.clone(),
        Arc::new(payhooks::adapters::MemoryMetrics::new()),
        Arc::new(SystemClock),
        IngestSettings::default(),
    );
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    for secret in ["whsec_test_old_one", "whsec_test_new_one"] {
        let (_, body) = stripe_event("invoice.paid");
        let response =
            webhook(&ingest, &Method::POST, "stripe", &Inbound::new(&stripe_headers(&body, secret, now), &body)).await;
        assert_eq!(response.body["status"], "accepted", "{secret}");
    }
}

#[tokio::test]
async fn aws_calls_per_webhook_stay_at_their_floor() {
    for backend in Backend::all(VISIBILITY).await {
        let store = Arc::new(FaultyStore::new(backend.store.clone()));
        let queue = Arc::new(FaultyQueue::new(backend.queue.clone()));
        let rig =
            Rig::with(backend, store.clone(), queue.clone(), Arc::new(RecordOnlyEffects), IngestSettings::default());
        let (_, body) = stripe_event("invoice.paid");

        assert_eq!(post(&rig, &signed(&rig, &body), &body).await.body["status"], "accepted");
        let accepted = (store.faults.count("claim"), queue.faults.count("send"), store.faults.count("mark_enqueued"));
        assert_eq!(accepted, (1, 1, 1), "{}: put, send, mark", rig.backend.name);
        assert_eq!(store.faults.total() + queue.faults.total(), 3);

        store.faults.reset();
        queue.faults.reset();
        assert_eq!(post(&rig, &signed(&rig, &body), &body).await.body["status"], "duplicate");
        assert_eq!(store.faults.total() + queue.faults.total(), 1, "a duplicate costs one conditional put");
    }
}

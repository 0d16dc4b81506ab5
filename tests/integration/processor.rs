//! The processor: leases, completes or ignores, retries with backoff,
//! dead-letters what can never succeed, and never lets one message fail its
//! batch (I7, I8).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use http::Method;
use payhooks::edge::http::webhook;
use payhooks::event::{EventId, EventKey, EventStatus, Provider};
use payhooks::ingest::IngestSettings;
use payhooks::ports::{Delivery, LeaseOutcome};
use payhooks::process::Disposition;
use payhooks::providers::Inbound;
use payhooks_tests::Backend;
use payhooks_tests::faults::ScriptedEffects;
use payhooks_tests::requests::{SECRET, stripe_event, stripe_headers};

use crate::support::{Rig, VISIBILITY};

fn key(id: &str) -> EventKey {
    EventKey::new(Provider::Stripe, EventId::parse(id).expect("id"))
}

async fn deliver(rig: &Rig, body: &[u8]) {
    let headers = stripe_headers(body, SECRET, rig.now().unix_timestamp());
    let response = webhook(&rig.ingest, &Method::POST, "stripe", &Inbound::new(&headers, body)).await;
    assert_eq!(response.body["status"], "accepted", "{}", response.body);
}

async fn deliver_sample(rig: &Rig, event_type: &str) -> EventKey {
    let (ids, body) = stripe_event(event_type);
    deliver(rig, &body).await;
    key(&ids.event_id)
}

fn scripted(backend: Backend, effects: ScriptedEffects) -> (Rig, Arc<ScriptedEffects>) {
    let effects = Arc::new(effects);
    let store = backend.store.clone();
    let queue = backend.queue.clone();
    (Rig::with(backend, store, queue, effects.clone(), IngestSettings::default()), effects)
}

#[tokio::test]
async fn an_enqueued_event_is_leased_completed_and_its_message_deleted() {
    for backend in Backend::all(VISIBILITY).await {
        let rig = Rig::new(backend);
        let key = deliver_sample(&rig, "invoice.payment_succeeded").await;
        let report = rig.processor.poll_once(Duration::from_secs(1)).await.expect("poll");
        assert_eq!(report.processed, 1, "{}", rig.backend.name);
        assert!(report.retry_message_ids.is_empty());
        let record = rig.backend.store.get(&key).await.expect("get").expect("record");
        assert_eq!(record.status, EventStatus::Completed);
        assert_eq!(record.attempts, 1);
        assert_eq!(record.finished_at, Some(rig.now()));
        assert!(Backend::drain(rig.backend.queue.as_ref()).await.is_empty(), "the message is deleted");
        assert_eq!(rig.metrics.get("stripe", "processed"), 1);
    }
}

#[tokio::test]
async fn an_event_type_without_a_handler_is_recorded_as_ignored() {
    for backend in Backend::all(VISIBILITY).await {
        let rig = Rig::new(backend);
        let id = format!("evt_test_{}", uuid::Uuid::new_v4().simple());
        let body = format!(
            r#"{{"id":"{id}","object":"event","type":"customer.created","created":1764000000,"data":{{"object":{{"id":"cus_test_1","object":"customer"}}}}}}"#
        );
        deliver(&rig, body.as_bytes()).await;
        rig.processor.poll_once(Duration::from_secs(1)).await.expect("poll");
        let record = rig.backend.store.get(&key(&id)).await.expect("get").expect("record");
        assert_eq!(record.status, EventStatus::Ignored, "{}", rig.backend.name);
        assert_eq!(rig.metrics.get("stripe", "ignored"), 1);
        assert!(Backend::drain(rig.backend.queue.as_ref()).await.is_empty());
    }
}

#[tokio::test]
async fn one_bad_message_never_fails_the_rest_of_its_batch() {
    for backend in Backend::all(VISIBILITY).await {
        let (rig, _) = scripted(
            backend,
            ScriptedEffects { permanent_for_type: Some("invoice.payment_failed".into()), ..ScriptedEffects::default() },
        );
        let good = deliver_sample(&rig, "invoice.paid").await;
        let doomed = deliver_sample(&rig, "invoice.payment_failed").await;
        rig.backend.queue.send("not an event key").await.expect("send");
        rig.backend.queue.send(&key("evt_never_recorded").message_body()).await.expect("send");

        let mut deliveries = Vec::new();
        while deliveries.len() < 4 {
            let batch = rig.backend.queue.receive(10, Duration::from_secs(1)).await.expect("receive");
            assert!(!batch.is_empty(), "{}: all four messages arrive", rig.backend.name);
            deliveries.extend(batch);
        }
        let report = rig.processor.process_batch(&deliveries).await;
        assert!(report.retry_message_ids.is_empty(), "nothing here is worth retrying: {report:?}");
        assert_eq!(report.processed, 4);

        let completed = rig.backend.store.get(&good).await.expect("get").expect("record");
        assert_eq!(completed.status, EventStatus::Completed);
        let failed = rig.backend.store.get(&doomed).await.expect("get").expect("record");
        assert_eq!(failed.status, EventStatus::Failed);
        assert_eq!(failed.last_error.as_deref(), Some("no plan configured for this event"));

        let mut dead = Backend::drain(rig.backend.dead_letters.as_ref()).await;
        dead.sort();
        let mut expected =
            vec![doomed.message_body(), "not an event key".to_owned(), key("evt_never_recorded").message_body()];
        expected.sort();
        assert_eq!(dead, expected, "{}: what can never succeed goes to the DLQ at once", rig.backend.name);
        assert_eq!(rig.metrics.get("stripe", "dead_lettered"), 2);
        assert_eq!(rig.metrics.get("unknown", "dead_lettered"), 1);
    }
}

#[tokio::test]
async fn a_transient_failure_releases_the_event_and_retries_after_a_backoff() {
    for backend in Backend::all(VISIBILITY).await {
        let (rig, effects) =
            scripted(backend, ScriptedEffects { transient_failures: AtomicU32::new(1), ..ScriptedEffects::default() });
        let key = deliver_sample(&rig, "invoice.paid").await;
        let first = rig.processor.poll_once(Duration::from_secs(1)).await.expect("poll");
        assert_eq!(first.retry_message_ids.len(), 1, "{}", rig.backend.name);
        let record = rig.backend.store.get(&key).await.expect("get").expect("record");
        assert_eq!(record.status, EventStatus::Enqueued, "released for the retry");
        assert!(record.last_error.as_deref().unwrap_or_default().contains("injected failure"));
        assert!(
            rig.backend.queue.receive(10, Duration::ZERO).await.expect("receive").is_empty(),
            "hidden for the backoff"
        );

        // The backoff for a first receive is 2 s in this rig.
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let second = rig.processor.poll_once(Duration::from_secs(3)).await.expect("poll");
        assert_eq!(second.processed, 1, "{}", rig.backend.name);
        let record = rig.backend.store.get(&key).await.expect("get").expect("record");
        assert_eq!(record.status, EventStatus::Completed);
        assert_eq!(record.attempts, 2);
        assert_eq!(effects.calls.load(Ordering::SeqCst), 2);
    }
}

/// The queue would dead-letter the message after this receive anyway: the
/// event is failed with its last error, so its record says why and a replay
/// finds it, rather than staying pending behind a message gone to the DLQ.
#[tokio::test]
async fn a_transient_failure_on_the_last_receive_fails_the_event_with_its_reason() {
    for backend in Backend::all(VISIBILITY).await {
        let (rig, _) = scripted(
            backend,
            ScriptedEffects { transient_failures: AtomicU32::new(u32::MAX), ..ScriptedEffects::default() },
        );
        let key = deliver_sample(&rig, "invoice.paid").await;
        let mut delivery = rig.backend.queue.receive(1, Duration::from_secs(1)).await.expect("receive").remove(0);
        delivery.receive_count = payhooks_tests::backend::MAX_RECEIVE_COUNT - 1;
        assert!(matches!(rig.processor.process(&delivery).await, Disposition::Retry(_)), "{}", rig.backend.name);
        delivery.receive_count = payhooks_tests::backend::MAX_RECEIVE_COUNT;
        assert_eq!(rig.processor.process(&delivery).await, Disposition::DeadLettered, "{}", rig.backend.name);
        let record = rig.backend.store.get(&key).await.expect("get").expect("record");
        assert_eq!(record.status, EventStatus::Failed);
        let reason = record.last_error.unwrap_or_default();
        assert!(reason.starts_with("gave up after 5 attempts") && reason.contains("injected failure"), "{reason}");
        assert_eq!(Backend::drain(rig.backend.dead_letters.as_ref()).await, vec![key.message_body()]);
    }
}

#[tokio::test]
async fn no_event_is_started_with_too_little_of_the_invocation_left() {
    for backend in Backend::all(VISIBILITY).await {
        let (rig, effects) = scripted(backend, ScriptedEffects::default());
        let key = deliver_sample(&rig, "invoice.paid").await;
        let deliveries = rig.backend.queue.receive(10, Duration::from_secs(1)).await.expect("receive");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        let report = rig.processor.process_batch_before(&deliveries, Some(deadline)).await;
        assert_eq!(report.retry_message_ids.len(), 1, "{}: the message comes back", rig.backend.name);
        let record = rig.backend.store.get(&key).await.expect("get").expect("record");
        assert_eq!((record.status, record.attempts), (EventStatus::Enqueued, 0), "not leased");
        assert_eq!(effects.calls.load(Ordering::SeqCst), 0);
    }
}

/// Work still in hand when the invocation is nearly over is stopped and its
/// lease given back, so the answer goes out in time and the next attempt
/// need not wait for the lease to end.
#[tokio::test]
async fn work_in_hand_at_the_deadline_is_stopped_and_its_lease_given_back() {
    for backend in Backend::all(VISIBILITY).await {
        let (rig, _) =
            scripted(backend, ScriptedEffects { delay: Duration::from_secs(60), ..ScriptedEffects::default() });
        let key = deliver_sample(&rig, "invoice.paid").await;
        let deliveries = rig.backend.queue.receive(10, Duration::from_secs(1)).await.expect("receive");
        let started = tokio::time::Instant::now();
        let deadline = started + Duration::from_secs(6);
        let report = rig.processor.process_batch_before(&deliveries, Some(deadline)).await;
        assert!(started.elapsed() < Duration::from_secs(5), "answered before the deadline: {:?}", started.elapsed());
        assert_eq!(report.retry_message_ids.len(), 1, "{}", rig.backend.name);
        let record = rig.backend.store.get(&key).await.expect("get").expect("record");
        assert_eq!((record.status, record.lease_owner, record.attempts), (EventStatus::Enqueued, None, 1));
        assert_eq!(record.last_error.as_deref(), Some("the invocation ran out of time"));
    }
}

#[tokio::test]
async fn a_lease_held_by_another_worker_defers_the_message_until_it_ends() {
    let rig = Rig::new(Backend::memory(VISIBILITY));
    let key = deliver_sample(&rig, "invoice.paid").await;
    let until = rig.now() + Duration::from_secs(20);
    assert!(matches!(
        rig.backend.store.lease(&key, "another-worker", rig.now(), until).await.expect("lease"),
        LeaseOutcome::Acquired(_)
    ));
    let delivery =
        Delivery { message_id: "m1".into(), receipt: "r1".into(), body: key.message_body(), receive_count: 1 };
    assert_eq!(rig.processor.process(&delivery).await, Disposition::Retry(Duration::from_secs(21)));
    let record = rig.backend.store.get(&key).await.expect("get").expect("record");
    assert_eq!(record.lease_owner.as_deref(), Some("another-worker"));
}

#[tokio::test]
async fn an_expired_lease_is_taken_over_and_the_event_completes_once() {
    for backend in Backend::all(VISIBILITY).await {
        let (rig, effects) = scripted(backend, ScriptedEffects::default());
        let key = deliver_sample(&rig, "invoice.paid").await;
        // A worker leased it and died.
        rig.backend.store.lease(&key, "dead-worker", rig.now(), rig.now() + VISIBILITY).await.expect("lease");
        rig.clock.advance(time::Duration::seconds(31));
        let delivery = rig.backend.queue.receive(1, Duration::from_secs(1)).await.expect("receive");
        assert_eq!(rig.processor.process(&delivery[0]).await, Disposition::Done);
        // The same message, redelivered, changes nothing.
        assert_eq!(rig.processor.process(&delivery[0]).await, Disposition::Done);
        let record = rig.backend.store.get(&key).await.expect("get").expect("record");
        assert_eq!(record.status, EventStatus::Completed, "{}", rig.backend.name);
        assert_eq!(record.attempts, 2);
        assert_eq!(effects.calls.load(Ordering::SeqCst), 1, "effects applied once");
        assert_eq!(rig.metrics.get("stripe", "duplicate_message"), 1);
    }
}

#[tokio::test]
async fn processing_an_event_costs_one_lease_and_one_finish() {
    use payhooks::process::RecordOnlyEffects;
    use payhooks_tests::faults::FaultyStore;
    for backend in Backend::all(VISIBILITY).await {
        let store = Arc::new(FaultyStore::new(backend.store.clone()));
        let queue = backend.queue.clone();
        let rig = Rig::with(backend, store.clone(), queue, Arc::new(RecordOnlyEffects), IngestSettings::default());
        deliver_sample(&rig, "invoice.paid").await;
        store.faults.reset();
        let deliveries = rig.backend.queue.receive(10, Duration::from_secs(1)).await.expect("receive");
        let report = rig.processor.process_batch(&deliveries).await;
        assert_eq!(report.processed, 1, "{}", rig.backend.name);
        assert_eq!((store.faults.count("lease"), store.faults.count("finish")), (1, 1));
        // The worker's first success of the minute is noted for health.
        assert_eq!(store.faults.count("note_success"), 1);
        assert_eq!(store.faults.total(), 3);

        // Within the minute, a second event costs only its lease and finish.
        deliver_sample(&rig, "invoice.paid").await;
        store.faults.reset();
        let deliveries = rig.backend.queue.receive(10, Duration::from_secs(1)).await.expect("receive");
        rig.processor.process_batch(&deliveries).await;
        assert_eq!((store.faults.count("lease"), store.faults.count("finish"), store.faults.total()), (1, 1, 2));
    }
}

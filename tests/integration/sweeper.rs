//! The sweeper brings back what no delivery will (I3): an event recorded but
//! never enqueued, an enqueued event whose message was lost, a processing
//! event whose worker died with its lease; it marks events out of attempts
//! failed (their messages are in the dead-letter queue), so however many
//! there are they never hide one still to be sent; and two sweepers send
//! one message. On the memory adapters and on DynamoDB Local and moto's SQS.

use std::sync::Arc;
use std::time::Duration;

use payhooks::event::{EventId, EventKey, EventStatus, NewEvent, Provider};
use payhooks::ports::LeaseOutcome;
use payhooks::providers::{SampleIds, stripe};
use payhooks::sweep::{SweepReport, SweepSettings, Sweeper};
use payhooks_tests::Backend;

use crate::support::{Rig, VISIBILITY};

const AFTER: Duration = Duration::from_secs(15 * 60);

fn sweeper(rig: &Rig) -> Sweeper {
    Sweeper::new(
        rig.backend.store.clone(),
        rig.backend.queue.clone(),
        rig.metrics.clone(),
        rig.clock.clone(),
        SweepSettings {
            older_than: AFTER,
            max_receive_count: payhooks_tests::backend::MAX_RECEIVE_COUNT,
            limit: 100,
            ..SweepSettings::default()
        },
    )
}

/// A Stripe renewal recorded as ingest's put leaves it, never sent.
async fn recorded_only(rig: &Rig) -> EventKey {
    let ids = SampleIds::random("evt");
    let body = stripe::SAMPLES.event("invoice.payment_succeeded", &ids).expect("sample");
    let verified = stripe::parse_event(body.as_bytes()).expect("parses");
    let key = EventKey::new(Provider::Stripe, EventId::parse(&ids.event_id).expect("id"));
    let now = rig.now();
    let new = NewEvent { key: key.clone(), fingerprint: verified.fingerprint, event: verified.event, received_at: now };
    rig.backend.store.claim(&new).await.expect("claim");
    key
}

fn later(rig: &Rig) {
    rig.clock.advance(time::Duration::seconds(AFTER.as_secs() as i64 + 1));
}

async fn status(rig: &Rig, key: &EventKey) -> EventStatus {
    rig.backend.store.get(key).await.expect("get").expect("record").status
}

#[tokio::test]
async fn an_event_recorded_but_never_enqueued_is_enqueued_and_processed() {
    for backend in Backend::all(VISIBILITY).await {
        let rig = Rig::new(backend);
        let key = recorded_only(&rig).await;
        let fresh = recorded_only(&rig).await;
        assert_eq!(sweeper(&rig).sweep().await.expect("sweep"), SweepReport::default(), "nothing is old yet");
        later(&rig);
        let young = recorded_only(&rig).await;
        let report = sweeper(&rig).sweep().await.expect("sweep");
        assert_eq!(report.requeued_unsent, 2, "{}: {report:?}", rig.backend.name);
        assert_eq!(status(&rig, &key).await, EventStatus::Enqueued);
        assert_eq!(status(&rig, &young).await, EventStatus::Received, "younger than the threshold");
        while rig.processor.poll_once(Duration::ZERO).await.expect("poll").processed > 0 {}
        for key in [&key, &fresh] {
            assert_eq!(status(&rig, key).await, EventStatus::Completed, "{}", rig.backend.name);
        }
        assert_eq!(rig.metrics.get("stripe", "swept_unsent"), 2);
    }
}

#[tokio::test]
async fn a_lost_message_and_an_abandoned_lease_are_sent_again_and_processed_once() {
    for backend in Backend::all(VISIBILITY).await {
        let rig = Rig::new(backend);
        let lost = recorded_only(&rig).await;
        rig.backend.store.mark_enqueued(&lost, rig.now()).await.expect("mark");
        let abandoned = recorded_only(&rig).await;
        let until = rig.now() + time::Duration::seconds(30);
        let leased = rig.backend.store.lease(&abandoned, "a-worker-that-died", rig.now(), until).await.expect("lease");
        assert!(matches!(leased, LeaseOutcome::Acquired(_)));
        later(&rig);
        let report = sweeper(&rig).sweep().await.expect("sweep");
        assert_eq!(report.requeued_stalled, 2, "{}: {report:?}", rig.backend.name);
        // A second run finds them fresh again: nothing more is sent.
        assert_eq!(sweeper(&rig).sweep().await.expect("sweep"), SweepReport::default());
        while rig.processor.poll_once(Duration::ZERO).await.expect("poll").processed > 0 {}
        for key in [&lost, &abandoned] {
            let record = rig.backend.store.get(key).await.expect("get").expect("record");
            assert_eq!(record.status, EventStatus::Completed, "{}", rig.backend.name);
        }
        assert!(Backend::drain(rig.backend.queue.as_ref()).await.is_empty(), "no message left");
    }
}

/// Leases and releases `key` as many times as the queue delivers a message.
async fn out_of_attempts(rig: &Rig, key: &EventKey) {
    for attempt in 0..payhooks_tests::backend::MAX_RECEIVE_COUNT {
        let now = rig.now() + time::Duration::seconds(i64::from(attempt));
        let leased = rig.backend.store.lease(key, "w", now, now + time::Duration::seconds(1)).await.expect("lease");
        assert!(matches!(leased, LeaseOutcome::Acquired(_)));
        rig.backend.store.release(key, "w", now, "the provider's API timed out").await.expect("release");
    }
}

#[tokio::test]
async fn an_event_out_of_attempts_is_failed_with_its_reason_and_not_sent_again() {
    for backend in Backend::all(VISIBILITY).await {
        let rig = Rig::new(backend);
        let key = recorded_only(&rig).await;
        out_of_attempts(&rig, &key).await;
        rig.clock.advance(time::Duration::minutes(1));
        later(&rig);
        let report = sweeper(&rig).sweep().await.expect("sweep");
        assert_eq!((report.gave_up, report.requeued_stalled), (1, 0), "{}", rig.backend.name);
        assert!(Backend::drain(rig.backend.queue.as_ref()).await.is_empty());
        let record = rig.backend.store.get(&key).await.expect("get").expect("record");
        assert_eq!(record.status, EventStatus::Failed);
        let reason = record.last_error.unwrap_or_default();
        assert!(reason.contains("gave up after") && reason.contains("the provider's API timed out"), "{reason}");
        assert_eq!(record.expires_at, None, "a failed record waits for its replay");
        assert_eq!(sweeper(&rig).sweep().await.expect("sweep"), SweepReport::default(), "once");
    }
}

/// However many events ran out of attempts, an event recorded but never
/// sent is found in the same run: the failed ones leave the pending index.
#[tokio::test]
async fn events_out_of_attempts_never_hide_one_never_enqueued() {
    for backend in Backend::all(VISIBILITY).await {
        let rig = Rig::new(backend);
        let mut exhausted = Vec::new();
        for _ in 0..25 {
            let key = recorded_only(&rig).await;
            out_of_attempts(&rig, &key).await;
            exhausted.push(key);
        }
        rig.clock.advance(time::Duration::minutes(1));
        let unsent = recorded_only(&rig).await;
        later(&rig);
        let sweeper = Sweeper::new(
            rig.backend.store.clone(),
            rig.backend.queue.clone(),
            rig.metrics.clone(),
            rig.clock.clone(),
            SweepSettings {
                older_than: AFTER,
                max_receive_count: payhooks_tests::backend::MAX_RECEIVE_COUNT,
                limit: 10,
                ..SweepSettings::default()
            },
        );
        let report = sweeper.sweep().await.expect("sweep");
        assert_eq!((report.gave_up, report.requeued_unsent), (25, 1), "{}: {report:?}", rig.backend.name);
        assert_eq!(Backend::drain(rig.backend.queue.as_ref()).await, vec![unsent.message_body()]);
        assert_eq!(rig.backend.store.failed(Provider::Stripe, 100).await.expect("failed").len(), 25);
    }
}

#[tokio::test]
async fn two_sweepers_at_once_send_one_message() {
    for backend in Backend::all(VISIBILITY).await {
        let rig = Arc::new(Rig::new(backend));
        let key = recorded_only(&rig).await;
        later(&rig);
        let reports = futures::future::join_all((0..4).map(|_| {
            let rig = rig.clone();
            async move { sweeper(&rig).sweep().await.expect("sweep") }
        }))
        .await;
        assert_eq!(reports.iter().map(|r| r.requeued_unsent).sum::<u32>(), 1, "{reports:?}");
        assert_eq!(Backend::drain(rig.backend.queue.as_ref()).await, vec![key.message_body()]);
    }
}

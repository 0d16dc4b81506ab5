//! Replay from the dead-letter queue: a dry run lists and moves nothing; a
//! replay after the cause is fixed processes the event once; replaying an
//! event already completed changes nothing; filters move only what they
//! name. On the memory adapters and on DynamoDB Local and moto's SQS.

use std::sync::Arc;
use std::time::Duration;

use payhooks::clock::SystemClock;
use payhooks::effects::{BillingEffects, Plans};
use payhooks::event::{EventKey, EventStatus, Provider};
use payhooks::ingest::IngestSettings;
use payhooks::ports::Delivery;
use payhooks::replay::{ReplayFilter, ReplayReport, Replayer};
use payhooks_tests::Backend;

use crate::effects::{CREDITS, PLAN, account, for_account, recorded, without_explicit_account};
use crate::support::{Rig, VISIBILITY};

fn rig_with_plans(backend: Backend, plans: &str) -> Rig {
    let effects = Arc::new(BillingEffects::new(
        backend.ledger.clone(),
        Plans::from_json(plans).expect("plans"),
        Arc::new(SystemClock),
    ));
    let (store, queue) = (backend.store.clone(), backend.queue.clone());
    Rig::with(backend, store, queue, effects, IngestSettings::default())
}

fn replayer(rig: &Rig) -> Replayer {
    Replayer::new(
        rig.backend.store.clone(),
        rig.backend.queue.clone(),
        rig.backend.dead_letters.clone(),
        rig.metrics.clone(),
        rig.clock.clone(),
    )
}

async fn replay(rig: &Rig, filter: &ReplayFilter, dry_run: bool) -> ReplayReport {
    replayer(rig).replay(filter, dry_run, None, &|_| {}).await.expect("replay")
}

fn key_of(delivery: &Delivery) -> EventKey {
    EventKey::from_message(&delivery.body).expect("key")
}

async fn drive(rig: &Rig) {
    while rig.processor.poll_once(Duration::ZERO).await.expect("poll").processed > 0 {}
}

#[tokio::test]
async fn a_failed_event_is_listed_by_a_dry_run_and_processed_once_when_replayed_after_the_fix() {
    for backend in Backend::all(VISIBILITY).await {
        let name = format!("cus_test_{}", uuid::Uuid::new_v4().simple());
        let ids = for_account(&name);
        // Deployed without the plan: the renewal fails into the DLQ.
        let before = rig_with_plans(backend.clone(), r#"{"price_other": 1}"#);
        let renewal = recorded(&before, "invoice.payment_succeeded", &ids, without_explicit_account).await;
        before.processor.process(&renewal).await;
        let key = key_of(&renewal);
        assert_eq!(before.backend.store.get(&key).await.expect("get").expect("record").status, EventStatus::Failed);

        let listed = replay(&before, &ReplayFilter::All, true).await;
        assert_eq!((listed.moved, listed.matched.len()), (0, 1), "{}", backend.name);
        assert_eq!(listed.matched[0].status, Some(EventStatus::Failed));
        assert!(listed.matched[0].last_error.as_deref().unwrap_or_default().contains("unknown plan"));
        // The dry run released it: a second one sees it again.
        assert_eq!(replay(&before, &ReplayFilter::All, true).await.matched.len(), 1, "{}", backend.name);

        // The plan is added; the replay reopens and moves it; it is granted once.
        let after = rig_with_plans(backend.clone(), &format!(r#"{{"{PLAN}": {CREDITS}}}"#));
        let moved = replay(&after, &ReplayFilter::All, false).await;
        assert_eq!((moved.moved, moved.reopened, moved.kept), (1, 1, 0), "{}", backend.name);
        drive(&after).await;
        assert_eq!(after.backend.store.get(&key).await.expect("get").expect("record").status, EventStatus::Completed);
        assert_eq!(account(&after, &name).await, (CREDITS, vec![CREDITS]), "{}", backend.name);
        assert!(Backend::drain(after.backend.dead_letters.as_ref()).await.is_empty());
    }
}

#[tokio::test]
async fn replaying_an_event_already_completed_changes_nothing() {
    for backend in Backend::all(VISIBILITY).await {
        let rig = rig_with_plans(backend, &format!(r#"{{"{PLAN}": {CREDITS}}}"#));
        let name = format!("cus_test_{}", uuid::Uuid::new_v4().simple());
        let renewal = recorded(&rig, "invoice.payment_succeeded", &for_account(&name), without_explicit_account).await;
        rig.processor.process(&renewal).await;
        // A copy of its message ends up in the DLQ anyway (a redelivery that
        // ran out of receives while the first was being processed).
        rig.backend.dead_letters.send(&renewal.body).await.expect("send");
        let report = replay(&rig, &ReplayFilter::All, false).await;
        assert_eq!((report.moved, report.reopened), (1, 0), "{}", rig.backend.name);
        assert_eq!(report.matched[0].status, Some(EventStatus::Completed));
        drive(&rig).await;
        assert_eq!(account(&rig, &name).await, (CREDITS, vec![CREDITS]), "{}: one grant", rig.backend.name);
        assert!(Backend::drain(rig.backend.queue.as_ref()).await.is_empty());
    }
}

#[tokio::test]
async fn a_replay_by_provider_or_event_moves_only_those_and_keeps_the_rest() {
    for backend in Backend::all(VISIBILITY).await {
        let rig = rig_with_plans(backend, "{}");
        let key =
            |provider: Provider, id: &str| EventKey::new(provider, payhooks::event::EventId::parse(id).expect("id"));
        let stripe_one = key(Provider::Stripe, "evt_test_one");
        let stripe_two = key(Provider::Stripe, "evt_test_two");
        let paystack = key(Provider::Paystack, "T_test_three");
        for key in [&stripe_one, &stripe_two, &paystack] {
            rig.backend.dead_letters.send(&key.message_body()).await.expect("send");
        }
        rig.backend.dead_letters.send("not a payhooks message").await.expect("send");

        let one = replay(&rig, &ReplayFilter::Event(stripe_two.clone()), false).await;
        assert_eq!((one.moved, one.kept, one.matched[0].status), (1, 3, None), "{}", rig.backend.name);
        let stripe = replay(&rig, &ReplayFilter::Provider(Provider::Stripe), false).await;
        assert_eq!((stripe.moved, stripe.kept), (1, 2), "{}", rig.backend.name);
        let mut moved = Backend::drain(rig.backend.queue.as_ref()).await;
        moved.sort();
        let mut expected = vec![stripe_one.message_body(), stripe_two.message_body()];
        expected.sort();
        assert_eq!(moved, expected, "{}", rig.backend.name);
        let mut left = Backend::drain(rig.backend.dead_letters.as_ref()).await;
        left.sort();
        let mut expected = vec![paystack.message_body(), "not a payhooks message".to_owned()];
        expected.sort();
        assert_eq!(left, expected, "{}", rig.backend.name);
    }
}

/// A failed record never expires, but its dead letter does (after 14 days),
/// and one out of attempts may have none: a replay reopens and enqueues it
/// from the record, once, and a dry run lists it.
#[tokio::test]
async fn a_failed_event_whose_dead_letter_is_gone_is_replayed_from_its_record() {
    for backend in Backend::all(VISIBILITY).await {
        let name = format!("cus_test_{}", uuid::Uuid::new_v4().simple());
        let before = rig_with_plans(backend.clone(), r#"{"price_other": 1}"#);
        let renewal =
            recorded(&before, "invoice.payment_succeeded", &for_account(&name), without_explicit_account).await;
        before.processor.process(&renewal).await;
        let key = key_of(&renewal);
        // The trigger deleted the processed message; SQS deleted the dead
        // letter at the end of its retention.
        assert_eq!(Backend::drain(before.backend.queue.as_ref()).await, vec![key.message_body()]);
        assert_eq!(Backend::drain(before.backend.dead_letters.as_ref()).await, vec![key.message_body()]);

        let listed = replay(&before, &ReplayFilter::Event(key.clone()), true).await;
        assert_eq!((listed.matched.len(), listed.from_records, listed.moved), (1, 0, 0), "{}", backend.name);
        assert_eq!(listed.matched[0].status, Some(EventStatus::Failed));
        assert!(Backend::drain(before.backend.queue.as_ref()).await.is_empty(), "a dry run sends nothing");

        let after = rig_with_plans(backend.clone(), &format!(r#"{{"{PLAN}": {CREDITS}}}"#));
        let other = rig_with_plans(backend.clone(), "{}");
        let elsewhere = replay(&other, &ReplayFilter::Provider(Provider::Paystack), false).await;
        assert!(elsewhere.matched.is_empty(), "{}: another provider's replay leaves it", backend.name);
        let replayed = replay(&after, &ReplayFilter::Provider(Provider::Stripe), false).await;
        assert_eq!((replayed.reopened, replayed.from_records, replayed.moved), (1, 1, 0), "{}", backend.name);
        assert_eq!(Backend::drain(after.backend.queue.as_ref()).await, vec![key.message_body()]);
        after.backend.queue.send(&key.message_body()).await.expect("send");
        drive(&after).await;
        assert_eq!(after.backend.store.get(&key).await.expect("get").expect("record").status, EventStatus::Completed);
        assert_eq!(account(&after, &name).await, (CREDITS, vec![CREDITS]), "{}", backend.name);
        let again = replay(&after, &ReplayFilter::Event(key.clone()), false).await;
        assert_eq!(
            (again.matched.len(), again.reopened),
            (0, 0),
            "{}: a completed event is not replayed",
            backend.name
        );
    }
}

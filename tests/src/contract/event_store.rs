//! What every [`EventStore`] must do.

use std::sync::Arc;

use payhooks::event::{DomainEvent, EventId, EventKey, EventKind, EventStatus, NewEvent, Provider};
use payhooks::ports::event_store::DEFAULT_RETENTION;
use payhooks::ports::{Claim, EventStore, Finish, FinishOutcome, LeaseOutcome};
use time::OffsetDateTime;

fn t(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000 + seconds).expect("valid time")
}

fn key() -> EventKey {
    EventKey::new(
        Provider::Stripe,
        EventId::parse(&format!("evt_contract_{}", uuid::Uuid::new_v4().simple())).expect("valid id"),
    )
}

fn new_event(key: &EventKey, fingerprint: &str) -> NewEvent {
    NewEvent {
        key: key.clone(),
        fingerprint: fingerprint.to_owned(),
        event: DomainEvent {
            kind: EventKind::Renewal,
            event_type: "invoice.paid".into(),
            occurred_at: t(-60),
            account: Some("acct-1".into()),
            customer: Some("cus_1".into()),
            subscription: Some("sub_1".into()),
            plan: Some("price_1".into()),
            period: None,
            amount_minor: Some(2000),
            currency: Some("USD".into()),
            refund_id: None,
            payment: Some("in_1".into()),
            payment_alias: None,
            status: None,
            object: Some("in_1".into()),
            // Kept whole, so a plan change's top-up reads what was billed.
            prorations: vec![payhooks::event::Proration {
                plan: "price_2".into(),
                period: payhooks::event::Period { start: t(-3600), end: t(3600) },
                credit: false,
                share: Some(500_000_000),
            }],
            period_share: Some(500_000_000),
        },
        received_at: t(0),
    }
}

pub async fn a_claim_creates_the_record_once_and_then_returns_it(store: Arc<dyn EventStore>) {
    let key = key();
    let event = new_event(&key, "fp-1");
    assert_eq!(store.claim(&event).await.expect("claim"), Claim::Created);
    let Claim::Existing(existing) = store.claim(&new_event(&key, "fp-2")).await.expect("claim") else {
        panic!("a second claim must find the first record");
    };
    assert_eq!(existing.fingerprint, "fp-1", "the first write wins");
    assert_eq!(existing.status, EventStatus::Received);
    assert_eq!(existing.enqueued_at, None);
    assert_eq!(existing.attempts, 0);
    assert_eq!(existing.expires_at, None, "a record with work left to do never expires");
    assert_eq!(existing.event, event.event, "the normalized event round-trips");
    assert_eq!(store.get(&key).await.expect("get").as_ref(), Some(existing.as_ref()));
}

pub async fn concurrent_claims_create_exactly_one_record(store: Arc<dyn EventStore>) {
    let key = key();
    let claims = futures::future::join_all((0..20).map(|i| {
        let store = store.clone();
        let event = new_event(&key, &format!("fp-{i}"));
        async move { store.claim(&event).await.expect("claim") }
    }))
    .await;
    let created = claims.iter().filter(|c| **c == Claim::Created).count();
    assert_eq!(created, 1, "exactly one of 20 concurrent claims creates the record");
}

pub async fn marking_enqueued_moves_only_a_received_record(store: Arc<dyn EventStore>) {
    let key = key();
    store.claim(&new_event(&key, "fp")).await.expect("claim");
    store.mark_enqueued(&key, t(1)).await.expect("mark");
    let record = store.get(&key).await.expect("get").expect("record");
    assert_eq!(record.status, EventStatus::Enqueued);
    assert_eq!(record.enqueued_at, Some(t(1)));

    // A worker got there first: marking must not undo its lease.
    let raced = self::key();
    store.claim(&new_event(&raced, "fp")).await.expect("claim");
    assert!(matches!(store.lease(&raced, "w1", t(1), t(31)).await.expect("lease"), LeaseOutcome::Acquired(_)));
    store.mark_enqueued(&raced, t(2)).await.expect("mark");
    let record = store.get(&raced).await.expect("get").expect("record");
    assert_eq!(record.status, EventStatus::Processing);
    assert_eq!(record.enqueued_at, Some(t(1)), "the lease records when it was first seen enqueued");

    // Marking an unknown key is harmless.
    store.mark_enqueued(&self::key(), t(3)).await.expect("mark unknown");
}

pub async fn a_lease_keeps_other_workers_off_until_it_expires(store: Arc<dyn EventStore>) {
    let key = key();
    store.claim(&new_event(&key, "fp")).await.expect("claim");
    let LeaseOutcome::Acquired(record) = store.lease(&key, "w1", t(10), t(40)).await.expect("lease") else {
        panic!("the first lease is granted");
    };
    assert_eq!(record.status, EventStatus::Processing);
    assert_eq!(record.attempts, 1);
    assert_eq!(record.lease_owner.as_deref(), Some("w1"));
    assert_eq!(record.lease_until, Some(t(40)));

    assert_eq!(store.lease(&key, "w2", t(20), t(50)).await.expect("lease"), LeaseOutcome::Held { until: t(40) });
    let LeaseOutcome::Acquired(taken) = store.lease(&key, "w2", t(41), t(71)).await.expect("lease") else {
        panic!("an expired lease can be taken over");
    };
    assert_eq!(taken.attempts, 2);
    assert_eq!(taken.lease_owner.as_deref(), Some("w2"));

    assert_eq!(
        store.finish(&key, "w1", &Finish::Completed, t(42)).await.expect("finish"),
        FinishOutcome::LeaseLost,
        "the worker whose lease expired cannot finish the event"
    );
    assert_eq!(store.finish(&key, "w2", &Finish::Completed, t(43)).await.expect("finish"), FinishOutcome::Finished);
    let record = store.get(&key).await.expect("get").expect("record");
    assert_eq!(record.status, EventStatus::Completed);
    assert_eq!(record.finished_at, Some(t(43)));
    assert_eq!(record.lease_owner, None);
    assert_eq!(record.lease_until, None);
}

pub async fn concurrent_leases_are_granted_to_exactly_one_worker(store: Arc<dyn EventStore>) {
    let key = key();
    store.claim(&new_event(&key, "fp")).await.expect("claim");
    let outcomes = futures::future::join_all((0..10).map(|i| {
        let store = store.clone();
        let key = key.clone();
        async move { store.lease(&key, &format!("w{i}"), t(5), t(35)).await.expect("lease") }
    }))
    .await;
    let granted = outcomes.iter().filter(|o| matches!(o, LeaseOutcome::Acquired(_))).count();
    assert_eq!(granted, 1);
    assert!(outcomes.iter().all(|o| matches!(o, LeaseOutcome::Acquired(_) | LeaseOutcome::Held { .. })));
}

pub async fn a_finished_event_cannot_be_leased_again(store: Arc<dyn EventStore>) {
    for (finish, status) in [
        (Finish::Completed, EventStatus::Completed),
        (Finish::Ignored, EventStatus::Ignored),
        (Finish::Failed { reason: "unknown plan".into() }, EventStatus::Failed),
    ] {
        let key = key();
        store.claim(&new_event(&key, "fp")).await.expect("claim");
        store.lease(&key, "w1", t(1), t(31)).await.expect("lease");
        assert_eq!(store.finish(&key, "w1", &finish, t(2)).await.expect("finish"), FinishOutcome::Finished);
        assert_eq!(store.lease(&key, "w2", t(100), t(130)).await.expect("lease"), LeaseOutcome::Finished(status));
        let record = store.get(&key).await.expect("get").expect("record");
        assert_eq!(record.status, status);
        if let Finish::Failed { reason } = &finish {
            assert_eq!(record.last_error.as_ref(), Some(reason));
        }
        assert_eq!(
            store.finish(&key, "w1", &Finish::Completed, t(3)).await.expect("finish"),
            FinishOutcome::LeaseLost,
            "a final state is final"
        );
    }
}

pub async fn a_released_lease_can_be_taken_at_once(store: Arc<dyn EventStore>) {
    let key = key();
    store.claim(&new_event(&key, "fp")).await.expect("claim");
    store.lease(&key, "w1", t(1), t(31)).await.expect("lease");
    store.release(&key, "w2", t(2), "not mine").await.expect("release by a non-owner");
    assert!(matches!(store.lease(&key, "w3", t(3), t(33)).await.expect("lease"), LeaseOutcome::Held { .. }));

    store.release(&key, "w1", t(4), "downstream timed out").await.expect("release");
    let record = store.get(&key).await.expect("get").expect("record");
    assert_eq!(record.status, EventStatus::Enqueued);
    assert_eq!(record.last_error.as_deref(), Some("downstream timed out"));
    assert_eq!(record.lease_owner, None);
    let LeaseOutcome::Acquired(again) = store.lease(&key, "w3", t(5), t(35)).await.expect("lease") else {
        panic!("a released event can be leased");
    };
    assert_eq!(again.attempts, 2);
}

pub async fn leasing_an_unknown_event_reports_it_missing(store: Arc<dyn EventStore>) {
    assert_eq!(store.lease(&key(), "w1", t(1), t(31)).await.expect("lease"), LeaseOutcome::Missing);
    assert_eq!(store.get(&key()).await.expect("get"), None);
}

pub async fn only_one_delivery_takes_over_an_abandoned_event(store: Arc<dyn EventStore>) {
    let key = key();
    store.claim(&new_event(&key, "fp")).await.expect("claim");
    let seen = store.get(&key).await.expect("get").expect("record").updated_at;
    let winners = futures::future::join_all((0..10).map(|i| {
        let store = store.clone();
        let key = key.clone();
        async move { store.requeue(&key, EventStatus::Received, seen, t(100 + i)).await.expect("take over") }
    }))
    .await;
    assert_eq!(winners.iter().filter(|w| **w).count(), 1);

    // Not once it is enqueued.
    let enqueued = self::key();
    store.claim(&new_event(&enqueued, "fp")).await.expect("claim");
    store.mark_enqueued(&enqueued, t(1)).await.expect("mark");
    let seen = store.get(&enqueued).await.expect("get").expect("record").updated_at;
    assert!(!store.requeue(&enqueued, EventStatus::Received, seen, t(100)).await.expect("take over"));
}

pub async fn conflicts_are_counted_on_the_record(store: Arc<dyn EventStore>) {
    let key = key();
    store.claim(&new_event(&key, "fp")).await.expect("claim");
    store.record_conflict(&key, t(5)).await.expect("conflict");
    store.record_conflict(&key, t(6)).await.expect("conflict");
    let record = store.get(&key).await.expect("get").expect("record");
    assert_eq!(record.conflicts, 2);
    assert_eq!(record.fingerprint, "fp", "a conflict never overwrites the recorded event");
    assert_eq!(record.status, EventStatus::Received);
}

pub async fn stuck_lists_only_unfinished_events_older_than_asked_oldest_first(store: Arc<dyn EventStore>) {
    let (old, older, recent, finished) = (key(), key(), key(), key());
    for (key, at) in [(&old, t(10)), (&older, t(5)), (&recent, t(100)), (&finished, t(1))] {
        store.claim(&NewEvent { received_at: at, ..new_event(key, "fp") }).await.expect("claim");
    }
    assert!(matches!(store.lease(&finished, "w", t(2), t(32)).await.expect("lease"), LeaseOutcome::Acquired(_)));
    assert_eq!(store.finish(&finished, "w", &Finish::Completed, t(3)).await.expect("finish"), FinishOutcome::Finished);
    let stuck = store.stuck(Provider::Stripe, None, t(50), 10).await.expect("stuck");
    let keys: Vec<EventKey> = stuck.iter().map(|r| r.key()).collect();
    assert_eq!(keys, vec![older.clone(), old.clone()], "unfinished, older than asked, oldest first");
    assert_eq!(store.stuck(Provider::Stripe, None, t(50), 1).await.expect("stuck").len(), 1, "at most the limit");
    assert!(store.stuck(Provider::Paypal, None, t(50), 10).await.expect("stuck").is_empty(), "per provider");
    let since: Vec<EventKey> =
        store.stuck(Provider::Stripe, Some(t(10)), t(50), 10).await.expect("stuck").iter().map(|r| r.key()).collect();
    assert_eq!(since, vec![old], "from where the last page ended, inclusive");
}

pub async fn only_one_sweeper_requeues_a_stuck_event(store: Arc<dyn EventStore>) {
    let key = key();
    store.claim(&new_event(&key, "fp")).await.expect("claim");
    let seen = store.get(&key).await.expect("get").expect("record");
    let winners =
        futures::future::join_all(
            (0..8).map(|i| {
                let store = store.clone();
                let key = key.clone();
                async move {
                    store.requeue(&key, EventStatus::Received, seen.updated_at, t(1000 + i)).await.expect("requeue")
                }
            }),
        )
        .await;
    assert_eq!(winners.iter().filter(|w| **w).count(), 1, "{winners:?}");
    assert!(
        !store.requeue(&key, EventStatus::Received, seen.updated_at, t(2000)).await.expect("requeue"),
        "seen is stale now"
    );

    // A processing event only once its lease has expired.
    let leased = self::key();
    store.claim(&new_event(&leased, "fp")).await.expect("claim");
    assert!(matches!(store.lease(&leased, "w", t(10), t(40)).await.expect("lease"), LeaseOutcome::Acquired(_)));
    let seen = store.get(&leased).await.expect("get").expect("record");
    assert!(
        !store.requeue(&leased, EventStatus::Processing, seen.updated_at, t(20)).await.expect("requeue"),
        "lease held"
    );
    assert!(
        store.requeue(&leased, EventStatus::Processing, seen.updated_at, t(41)).await.expect("requeue"),
        "lease expired"
    );
    // Never a final one.
    let done = self::key();
    store.claim(&new_event(&done, "fp")).await.expect("claim");
    assert!(matches!(store.lease(&done, "w", t(10), t(40)).await.expect("lease"), LeaseOutcome::Acquired(_)));
    store.finish(&done, "w", &Finish::Completed, t(11)).await.expect("finish");
    let seen = store.get(&done).await.expect("get").expect("record");
    assert!(!store.requeue(&done, EventStatus::Completed, seen.updated_at, t(100)).await.expect("requeue"));
}

pub async fn only_a_failed_event_can_be_reopened(store: Arc<dyn EventStore>) {
    let (failed, completed) = (key(), key());
    for (key, finish) in [(&failed, Finish::Failed { reason: "unknown plan".into() }), (&completed, Finish::Completed)]
    {
        store.claim(&new_event(key, "fp")).await.expect("claim");
        assert!(matches!(store.lease(key, "w", t(1), t(31)).await.expect("lease"), LeaseOutcome::Acquired(_)));
        store.finish(key, "w", &finish, t(2)).await.expect("finish");
    }
    assert!(store.reopen(&failed, t(10)).await.expect("reopen"));
    let record = store.get(&failed).await.expect("get").expect("record");
    assert_eq!((record.status, record.updated_at), (EventStatus::Enqueued, t(10)));
    assert_eq!(record.last_error.as_deref(), Some("unknown plan"), "its history stays");
    assert!(!store.reopen(&failed, t(11)).await.expect("reopen"), "once");
    assert!(!store.reopen(&completed, t(12)).await.expect("reopen"), "never a completed one");
    assert_eq!(store.get(&completed).await.expect("get").expect("record").status, EventStatus::Completed);
    assert!(matches!(store.lease(&failed, "w2", t(20), t(50)).await.expect("lease"), LeaseOutcome::Acquired(_)));
}

pub async fn the_last_success_only_moves_forward(store: Arc<dyn EventStore>) {
    assert!(store.last_successes().await.expect("read").is_empty());
    store.note_success(Provider::Stripe, t(100)).await.expect("note");
    store.note_success(Provider::Stripe, t(50)).await.expect("an older note is not an error");
    store.note_success(Provider::Lago, t(10)).await.expect("note");
    let last = store.last_successes().await.expect("read");
    assert_eq!(last.get(&Provider::Stripe), Some(&t(100)));
    assert_eq!(last.get(&Provider::Lago), Some(&t(10)));
    assert_eq!(last.len(), 2);
}

/// A record leaves the table only once nobody needs it again: when it is
/// completed, ignored or stale, the retention from then. A record with work
/// left, or a failed one waiting for a replay, never expires (I14).
pub async fn only_a_record_done_with_expires(store: Arc<dyn EventStore>) {
    let retention = time::Duration::try_from(DEFAULT_RETENTION).expect("retention");
    let pending = key();
    store.claim(&new_event(&pending, "fp")).await.expect("claim");
    store.mark_enqueued(&pending, t(1)).await.expect("mark");
    store.lease(&pending, "w", t(2), t(32)).await.expect("lease");
    store.release(&pending, "w", t(3), "transient").await.expect("release");
    assert_eq!(store.get(&pending).await.expect("get").expect("record").expires_at, None, "pending");
    for (finish, expires) in [
        (Finish::Completed, Some(t(10) + retention)),
        (Finish::Ignored, Some(t(10) + retention)),
        (Finish::Stale, Some(t(10) + retention)),
        (Finish::Failed { reason: "unknown plan".into() }, None),
    ] {
        let key = key();
        store.claim(&new_event(&key, "fp")).await.expect("claim");
        store.lease(&key, "w", t(5), t(35)).await.expect("lease");
        store.finish(&key, "w", &finish, t(10)).await.expect("finish");
        let record = store.get(&key).await.expect("get").expect("record");
        assert_eq!(record.expires_at, expires, "{finish:?}");
    }
}

pub async fn failed_events_are_listed_until_reopened(store: Arc<dyn EventStore>) {
    let (first, second, done) = (key(), key(), key());
    for (key, finish, at) in [
        (&second, Finish::Failed { reason: "b".into() }, t(20)),
        (&first, Finish::Failed { reason: "a".into() }, t(10)),
        (&done, Finish::Completed, t(5)),
    ] {
        store.claim(&new_event(key, "fp")).await.expect("claim");
        store.lease(key, "w", at, at + time::Duration::seconds(30)).await.expect("lease");
        store.finish(key, "w", &finish, at).await.expect("finish");
    }
    let failed = store.failed(Provider::Stripe, 10).await.expect("failed");
    let keys: Vec<EventKey> = failed.iter().map(|r| r.key()).collect();
    assert_eq!(keys, vec![first.clone(), second.clone()], "failed only, oldest first");
    assert_eq!(store.failed(Provider::Stripe, 1).await.expect("failed").len(), 1, "at most the limit");
    assert!(store.failed(Provider::Paypal, 10).await.expect("failed").is_empty(), "per provider");
    assert!(
        store.stuck(Provider::Stripe, None, t(1000), 10).await.expect("stuck").is_empty(),
        "a failed event is not stuck"
    );
    assert!(store.reopen(&first, t(30)).await.expect("reopen"));
    let keys: Vec<EventKey> =
        store.failed(Provider::Stripe, 10).await.expect("failed").iter().map(|r| r.key()).collect();
    assert_eq!(keys, vec![second], "a reopened event is pending again");
    assert_eq!(store.stuck(Provider::Stripe, None, t(1000), 10).await.expect("stuck").len(), 1);
}

pub async fn an_event_out_of_attempts_is_given_up_once(store: Arc<dyn EventStore>) {
    let key = key();
    store.claim(&new_event(&key, "fp")).await.expect("claim");
    store.lease(&key, "w", t(1), t(31)).await.expect("lease");
    let seen = store.get(&key).await.expect("get").expect("record");
    assert!(
        !store
            .give_up(&key, EventStatus::Processing, seen.updated_at, t(10), "out of attempts")
            .await
            .expect("give up"),
        "not while a worker holds it"
    );
    let winners = futures::future::join_all((0..6).map(|i| {
        let store = store.clone();
        let key = key.clone();
        async move {
            store
                .give_up(&key, EventStatus::Processing, seen.updated_at, t(40 + i), "out of attempts")
                .await
                .expect("give up")
        }
    }))
    .await;
    assert_eq!(winners.iter().filter(|w| **w).count(), 1, "{winners:?}");
    let record = store.get(&key).await.expect("get").expect("record");
    assert_eq!(record.status, EventStatus::Failed);
    assert_eq!(record.last_error.as_deref(), Some("out of attempts"));
    assert_eq!((record.lease_owner, record.expires_at), (None, None));
    assert_eq!(store.failed(Provider::Stripe, 10).await.expect("failed").len(), 1);
    assert!(store.stuck(Provider::Stripe, None, t(1000), 10).await.expect("stuck").is_empty(), "no longer pending");
    assert_eq!(
        store.lease(&key, "w2", t(50), t(80)).await.expect("lease"),
        LeaseOutcome::Finished(EventStatus::Failed)
    );
}

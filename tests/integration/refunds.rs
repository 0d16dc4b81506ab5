//! Refunds claw back what their payment granted, once per refund, in
//! proportion, never more than the grant, whichever of the renewal, the
//! invoice payment and the refund arrives first (incident 5), on the memory
//! adapters and on DynamoDB Local and moto's SQS.

use payhooks::effects::NegativeBalances;
use payhooks::event::{EventId, EventKey, EventStatus, Provider};
use payhooks::ports::{AccountRef, Change, Delivery, Effect, LeaseOutcome};
use payhooks::process::Disposition;
use payhooks::providers::SampleIds;
use payhooks_tests::Backend;

use crate::effects::{CREDITS, account, for_account, recorded, rig_with_effects, without_explicit_account};
use crate::support::{Rig, VISIBILITY};

/// The samples' renewal paid 2000; each refund of 500 is a quarter of it.
const QUARTER: i64 = CREDITS / 4;

/// The sample refund, for `amount` and under a refund id of its own.
fn refund_of(amount: i64) -> impl Fn(String) -> String {
    let refund_id = format!("re_test_{}", uuid::Uuid::new_v4().simple());
    move |body: String| {
        body.replace("\"amount\": 500", &format!("\"amount\": {amount}")).replacen(
            "\"id\": \"re_test_",
            &format!("\"id\": \"{refund_id}\", \"was\": \"re_test_"),
            1,
        )
    }
}

/// Processes `deliveries` until none asks to be retried.
async fn drive(rig: &Rig, deliveries: Vec<Delivery>) {
    let mut pending = deliveries;
    for attempt in 2..20 {
        let report = rig.processor.process_batch(&pending).await;
        pending.retain(|d| report.retry_message_ids.contains(&d.message_id));
        if pending.is_empty() {
            return;
        }
        for delivery in &mut pending {
            delivery.receive_count = attempt;
        }
    }
    panic!("{} events never completed", pending.len());
}

async fn renewal_and_link(rig: &Rig, ids: &SampleIds) -> Vec<Delivery> {
    vec![
        recorded(rig, "invoice.payment_succeeded", ids, without_explicit_account).await,
        recorded(rig, "invoice_payment.paid", ids, without_explicit_account).await,
    ]
}

fn status(rig: &Rig, delivery: &Delivery) -> impl Future<Output = EventStatus> {
    let key = payhooks::event::EventKey::from_message(&delivery.body).expect("key");
    let store = rig.backend.store.clone();
    async move { store.get(&key).await.expect("get").expect("record").status }
}

#[tokio::test]
async fn the_same_refund_twice_claws_back_once() {
    for backend in Backend::all(VISIBILITY).await {
        let (rig, _) = rig_with_effects(backend, |e| e);
        let name = format!("cus_test_{}", uuid::Uuid::new_v4().simple());
        let ids = for_account(&name);
        drive(&rig, renewal_and_link(&rig, &ids).await).await;
        let refund = recorded(&rig, "refund.created", &ids, without_explicit_account).await;
        // The same refund in a second event (another delivery, or the
        // charge's event listing it), and the first redelivered.
        let again = recorded(&rig, "refund.created", &ids, without_explicit_account).await;
        drive(&rig, vec![refund.clone(), again]).await;
        assert_eq!(rig.processor.process(&Delivery { receive_count: 2, ..refund }).await, Disposition::Done);
        assert_eq!(account(&rig, &name).await, (CREDITS - QUARTER, vec![-QUARTER, CREDITS]), "{}", rig.backend.name);
        assert_eq!(rig.metrics.get("stripe", "effect_duplicate"), 1, "{}", rig.backend.name);
    }
}

#[tokio::test]
async fn partial_refunds_each_claw_back_and_never_more_than_was_granted() {
    for backend in Backend::all(VISIBILITY).await {
        let (rig, _) = rig_with_effects(backend, |e| e);
        let name = format!("cus_test_{}", uuid::Uuid::new_v4().simple());
        let ids = for_account(&name);
        drive(&rig, renewal_and_link(&rig, &ids).await).await;
        // 500 + 500 + 1500 of a payment of 2000, concurrently.
        let refunds = vec![
            recorded(&rig, "refund.created", &ids, refund_of(500)).await,
            recorded(&rig, "refund.created", &ids, refund_of(500)).await,
            recorded(&rig, "refund.created", &ids, refund_of(1500)).await,
        ];
        drive(&rig, refunds.clone()).await;
        for refund in &refunds {
            assert_eq!(status(&rig, refund).await, EventStatus::Completed);
        }
        let (balance, entries) = account(&rig, &name).await;
        assert_eq!(balance, 0, "{}: all of the grant and no more", rig.backend.name);
        assert_eq!(entries.len(), 4, "{}: the grant and three claw-backs", rig.backend.name);
        // Each claws back at most its own share (1500 of 2000 is 75); the
        // refund that goes past the payment claws back only what is left.
        assert!(entries.iter().all(|d| *d >= -(CREDITS * 3 / 4)), "{entries:?}");
        assert_eq!(entries.iter().filter(|d| **d <= 0).sum::<i64>(), -CREDITS, "{entries:?}");
    }
}

#[tokio::test]
async fn a_refund_that_arrives_before_its_payment_is_clawed_back_when_the_grant_arrives() {
    for backend in Backend::all(VISIBILITY).await {
        let (rig, _) = rig_with_effects(backend, |e| e);
        let name = format!("cus_test_{}", uuid::Uuid::new_v4().simple());
        let ids = for_account(&name);
        // Refund, then the invoice payment, then the renewal: the reverse of
        // the order they happened in.
        let refund = recorded(&rig, "refund.created", &ids, without_explicit_account).await;
        drive(&rig, vec![refund]).await;
        assert_eq!(account(&rig, &name).await, (0, vec![]));
        let [renewal, link] = <[Delivery; 2]>::try_from(renewal_and_link(&rig, &ids).await).expect("two");
        drive(&rig, vec![link]).await;
        drive(&rig, vec![renewal]).await;
        assert_eq!(account(&rig, &name).await, (CREDITS - QUARTER, vec![CREDITS - QUARTER]), "{}", rig.backend.name);
    }
}

/// Stripe's `refund.created` may be pending; a refund can fail later
/// (`refund.failed`, or `refund.updated` with status `failed`).
#[tokio::test]
async fn a_refund_that_fails_gives_its_claw_back_back_once() {
    for backend in Backend::all(VISIBILITY).await {
        let (rig, _) = rig_with_effects(backend, |e| e);
        let name = format!("cus_test_{}", uuid::Uuid::new_v4().simple());
        let ids = for_account(&name);
        drive(&rig, renewal_and_link(&rig, &ids).await).await;
        drive(&rig, vec![recorded(&rig, "refund.created", &ids, without_explicit_account).await]).await;
        assert_eq!(account(&rig, &name).await.0, CREDITS - QUARTER);
        let failed = recorded(&rig, "refund.failed", &ids, without_explicit_account).await;
        let updated = recorded(&rig, "refund.failed", &ids, |body| {
            body.replace("\"type\": \"refund.failed\"", "\"type\": \"refund.updated\"")
        })
        .await;
        drive(&rig, vec![failed, updated]).await;
        assert_eq!(account(&rig, &name).await, (CREDITS, vec![QUARTER, -QUARTER, CREDITS]), "{}", rig.backend.name);
    }
}

#[tokio::test]
async fn a_refund_that_fails_before_it_is_seen_claws_back_nothing() {
    for backend in Backend::all(VISIBILITY).await {
        let (rig, _) = rig_with_effects(backend, |e| e);
        let name = format!("cus_test_{}", uuid::Uuid::new_v4().simple());
        let ids = for_account(&name);
        drive(&rig, renewal_and_link(&rig, &ids).await).await;
        drive(&rig, vec![recorded(&rig, "refund.failed", &ids, without_explicit_account).await]).await;
        drive(&rig, vec![recorded(&rig, "refund.created", &ids, without_explicit_account).await]).await;
        assert_eq!(account(&rig, &name).await, (CREDITS, vec![CREDITS]), "{}", rig.backend.name);
    }
}

/// A dispute withdraws the payment's funds (all 2000 of it), and, won,
/// reinstates them.
#[tokio::test]
async fn a_dispute_claws_back_when_funds_are_withdrawn_and_restores_when_reinstated() {
    for backend in Backend::all(VISIBILITY).await {
        let (rig, _) = rig_with_effects(backend, |e| e);
        let name = format!("cus_test_{}", uuid::Uuid::new_v4().simple());
        let ids = for_account(&name);
        drive(&rig, renewal_and_link(&rig, &ids).await).await;
        drive(&rig, vec![recorded(&rig, "charge.dispute.funds_withdrawn", &ids, without_explicit_account).await]).await;
        assert_eq!(account(&rig, &name).await.0, 0, "{}", rig.backend.name);
        drive(&rig, vec![recorded(&rig, "charge.dispute.funds_reinstated", &ids, without_explicit_account).await])
            .await;
        assert_eq!(account(&rig, &name).await.0, CREDITS, "{}", rig.backend.name);
    }
}

/// Credits spent outside payhooks, taken straight off the ledger.
async fn spend(rig: &Rig, name: &str, amount: i64) {
    let key = EventKey::new(
        Provider::Stripe,
        EventId::parse(&format!("usage_{}", uuid::Uuid::new_v4().simple())).expect("id"),
    );
    let usage = payhooks::event::NewEvent {
        key: key.clone(),
        fingerprint: "usage".into(),
        event: payhooks::event::DomainEvent::new("usage", rig.now()),
        received_at: rig.now(),
    };
    rig.backend.store.claim(&usage).await.expect("claim");
    let leased = rig.backend.store.lease(&key, "usage", rig.now(), rig.now() + time::Duration::minutes(1)).await;
    assert!(matches!(leased.expect("lease"), LeaseOutcome::Acquired(_)));
    let effect =
        Effect::new(format!("usage:{key}"), AccountRef::new(Provider::Stripe, name), Change::Credit(-amount), key);
    rig.backend.ledger.commit(&effect, "usage", rig.now()).await.expect("commit");
}

#[tokio::test]
async fn a_claw_back_below_zero_is_flagged_or_stopped_at_zero_as_configured() {
    for (setting, balance, flag) in
        [(NegativeBalances::Allow, -15, "negative_balance"), (NegativeBalances::Forbid, 0, "clawback_shortfall")]
    {
        for backend in Backend::all(VISIBILITY).await {
            let (rig, _) = rig_with_effects(backend, |e| e.with_negative_balances(setting));
            let name = format!("cus_test_{}", uuid::Uuid::new_v4().simple());
            let ids = for_account(&name);
            drive(&rig, renewal_and_link(&rig, &ids).await).await;
            spend(&rig, &name, CREDITS - 10).await;
            drive(&rig, vec![recorded(&rig, "refund.created", &ids, without_explicit_account).await]).await;
            assert_eq!(account(&rig, &name).await.0, balance, "{setting:?} on {}", rig.backend.name);
            let state = rig
                .backend
                .ledger
                .account(&AccountRef::new(Provider::Stripe, &name))
                .await
                .expect("account")
                .expect("account");
            assert_eq!(state.flags.into_iter().collect::<Vec<_>>(), vec![flag.to_owned()]);
        }
    }
}

#[tokio::test]
async fn a_refund_in_another_currency_than_its_payment_goes_to_the_dlq() {
    let (rig, _) = rig_with_effects(Backend::memory(VISIBILITY), |e| e);
    let name = format!("cus_test_{}", uuid::Uuid::new_v4().simple());
    let ids = for_account(&name);
    drive(&rig, renewal_and_link(&rig, &ids).await).await;
    let refund =
        recorded(&rig, "refund.created", &ids, |body| body.replace("\"currency\": \"usd\"", "\"currency\": \"eur\""))
            .await;
    drive(&rig, vec![refund.clone()]).await;
    let key = payhooks::event::EventKey::from_message(&refund.body).expect("key");
    let record = rig.backend.store.get(&key).await.expect("get").expect("record");
    assert_eq!(record.status, EventStatus::Failed);
    assert!(record.last_error.unwrap_or_default().contains("is in EUR but its payment was in USD"));
    assert_eq!(account(&rig, &name).await.0, CREDITS);
}

#[tokio::test]
async fn a_second_payment_for_an_already_granted_period_is_not_credited_with_the_grant() {
    for backend in Backend::all(VISIBILITY).await {
        let (rig, _) = rig_with_effects(backend, |e| e);
        let name = format!("cus_test_{}", uuid::Uuid::new_v4().simple());
        let ids = for_account(&name);
        drive(&rig, renewal_and_link(&rig, &ids).await).await;
        // A re-issued invoice for the same period, paid by another payment,
        // granted nothing: refunding it claws nothing back.
        let reissued = SampleIds {
            payment_id: format!("in_test_{}", uuid::Uuid::new_v4().simple()),
            payment_alias_id: format!("pi_test_{}", uuid::Uuid::new_v4().simple()),
            refund_id: format!("re_test_{}", uuid::Uuid::new_v4().simple()),
            ..ids.clone()
        };
        drive(&rig, renewal_and_link(&rig, &reissued).await).await;
        drive(&rig, vec![recorded(&rig, "refund.created", &reissued, without_explicit_account).await]).await;
        assert_eq!(account(&rig, &name).await, (CREDITS, vec![CREDITS]), "{}", rig.backend.name);
        // The first payment's refund still claws back.
        drive(&rig, vec![recorded(&rig, "refund.created", &ids, without_explicit_account).await]).await;
        assert_eq!(account(&rig, &name).await.0, CREDITS - QUARTER, "{}", rig.backend.name);
    }
}

/// DynamoDB requests each effect makes, beyond the event's lease (one
/// `UpdateItem`): counted at the ledger port, on both backends.
#[tokio::test]
async fn dynamodb_requests_per_effect() {
    use std::sync::Arc;

    use payhooks::clock::SystemClock;
    use payhooks::effects::{BillingEffects, Plans};
    use payhooks::ingest::IngestSettings;
    use payhooks_tests::faults::FaultyLedger;

    for backend in Backend::all(VISIBILITY).await {
        let ledger = Arc::new(FaultyLedger::new(backend.ledger.clone()));
        let calls = ledger.faults.clone();
        let plans = Plans::from_json(&format!(r#"{{"{}": {CREDITS}}}"#, crate::effects::PLAN)).expect("plans");
        let effects = Arc::new(BillingEffects::new(ledger, plans, Arc::new(SystemClock)));
        let (store, queue) = (backend.store.clone(), backend.queue.clone());
        let rig = Rig::with(backend, store, queue, effects, IngestSettings::default());
        let name = format!("cus_test_{}", uuid::Uuid::new_v4().simple());
        let ids = for_account(&name);
        let mut counted = Vec::new();
        for sample in [
            "customer.subscription.created",
            "invoice.payment_succeeded",
            "invoice_payment.paid",
            "customer.subscription.updated",
            "refund.created",
            "customer.subscription.deleted",
        ] {
            let delivery = recorded(&rig, sample, &ids, without_explicit_account).await;
            calls.reset();
            drive(&rig, vec![delivery]).await;
            counted.push((sample, calls.count("GetItem"), calls.count("TransactWriteItems")));
        }
        assert_eq!(
            counted,
            vec![
                // The trial: one transaction.
                ("customer.subscription.created", 0, 1),
                // The grant reads its payment (by invoice) and commits.
                ("invoice.payment_succeeded", 1, 1),
                // The link reads the invoice's payment and the intent's.
                ("invoice_payment.paid", 2, 1),
                // The period roll sets the subscription's status: one transaction.
                ("customer.subscription.updated", 0, 1),
                // The refund follows the intent to the invoice and reads the balance.
                ("refund.created", 3, 1),
                // A cancellation, without a provisioner: one transaction.
                ("customer.subscription.deleted", 0, 1),
            ],
            "{}",
            rig.backend.name
        );
        assert_eq!(account(&rig, &name).await.0, CREDITS - QUARTER);
    }
}

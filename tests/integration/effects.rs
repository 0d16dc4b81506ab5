//! The seed incidents, each a test, on the memory adapters and on DynamoDB
//! Local and moto's SQS: two events for one renewal give one grant;
//! concurrent grants add up exactly; one trial per account; an unknown plan
//! goes to the DLQ with its reason while the rest of its batch completes; a
//! redelivered message after the transaction changes nothing; and every
//! balance equals the sum of its ledger (I4, I5, I7).

use std::sync::Arc;

use http::Method;
use payhooks::adapters::MemoryProvisioner;
use payhooks::clock::SystemClock;
use payhooks::edge::http::webhook;
use payhooks::effects::{BillingEffects, Plans};
use payhooks::event::{EventId, EventKey, EventStatus, Provider};
use payhooks::ingest::IngestSettings;
use payhooks::ports::{AccountRef, Action, Delivery};
use payhooks::process::Disposition;
use payhooks::providers::{Inbound, SampleIds, stripe};
use payhooks_tests::Backend;
use payhooks_tests::requests::{SECRET, stripe_headers};

use crate::support::{Rig, VISIBILITY};

pub(crate) const PLAN: &str = "price_1TestPlanPro";
pub(crate) const CREDITS: i64 = 100;

fn rig(backend: Backend) -> Rig {
    rig_with_provisioner(backend).0
}

pub(crate) fn rig_with_provisioner(backend: Backend) -> (Rig, Arc<MemoryProvisioner>) {
    rig_with_effects(backend, |effects| effects)
}

/// A rig whose effects are adjusted by `configure` (negative balances, …).
pub(crate) fn rig_with_effects(
    backend: Backend,
    configure: impl FnOnce(BillingEffects) -> BillingEffects,
) -> (Rig, Arc<MemoryProvisioner>) {
    rig_with_plans(backend, &format!(r#"{{"{PLAN}": {CREDITS}}}"#), configure)
}

fn rig_with_plans(
    backend: Backend,
    plans: &str,
    configure: impl FnOnce(BillingEffects) -> BillingEffects,
) -> (Rig, Arc<MemoryProvisioner>) {
    let plans = Plans::from_json(plans).expect("plans");
    let provisioner = Arc::new(MemoryProvisioner::new());
    let effects = Arc::new(configure(
        BillingEffects::new(backend.ledger.clone(), plans, Arc::new(SystemClock)).with_provisioner(provisioner.clone()),
    ));
    let (store, queue) = (backend.store.clone(), backend.queue.clone());
    (Rig::with(backend, store, queue, effects, IngestSettings::default()), provisioner)
}

/// Delivers a Stripe sample for `ids` (fresh event id each time) and
/// returns the delivery the processor would get, without going through the
/// queue, so tests choose what runs concurrently.
pub(crate) async fn recorded(rig: &Rig, sample: &str, ids: &SampleIds, edit: impl Fn(String) -> String) -> Delivery {
    let ids = ids.next_event("evt");
    let body = edit(stripe::SAMPLES.event(sample, &ids).expect("sample"));
    let headers = stripe_headers(body.as_bytes(), SECRET, rig.now().unix_timestamp());
    let response = webhook(&rig.ingest, &Method::POST, "stripe", &Inbound::new(&headers, body.as_bytes())).await;
    assert_eq!(response.body["status"], "accepted", "{}", response.body);
    let key = EventKey::new(Provider::Stripe, EventId::parse(&ids.event_id).expect("id"));
    Delivery {
        message_id: ids.event_id.clone(),
        receipt: format!("receipt-{}", ids.event_id),
        body: key.message_body(),
        receive_count: 1,
    }
}

pub(crate) async fn account(rig: &Rig, name: &str) -> (i64, Vec<i64>) {
    let account = AccountRef::new(Provider::Stripe, name);
    let balance = rig.backend.ledger.account(&account).await.expect("account").map_or(0, |a| a.balance);
    let entries = rig.backend.ledger.entries(&account).await.expect("entries");
    let deltas: Vec<i64> = entries.iter().map(|e| e.delta).collect();
    assert_eq!(balance, deltas.iter().sum::<i64>(), "{name}: the balance is the sum of its ledger");
    (balance, deltas)
}

pub(crate) fn for_account(account: &str) -> SampleIds {
    SampleIds { customer_id: account.to_owned(), ..SampleIds::random("evt") }
}

/// Removes the samples' explicit account (metadata, and checkout's client
/// reference) so the customer id is the account.
pub(crate) fn without_explicit_account(body: String) -> String {
    body.replace("\"account_id\": \"acct-demo-001\"", "\"note\": \"none\"")
        .replace("\"client_reference_id\": \"acct-demo-001\"", "\"client_reference_id\": null")
}

#[tokio::test]
async fn the_two_invoice_events_of_one_renewal_grant_once_even_concurrently() {
    for backend in Backend::all(VISIBILITY).await {
        let rig = rig(backend);
        let name = format!("cus_test_{}", uuid::Uuid::new_v4().simple());
        let ids = for_account(&name);
        // The samples are two invoices; these are one, told twice.
        let paid = recorded(&rig, "invoice.payment_succeeded", &ids, |body| {
            without_explicit_account(body).replace("\"invoice.payment_succeeded\"", "\"invoice.paid\"")
        })
        .await;
        let succeeded = recorded(&rig, "invoice.payment_succeeded", &ids, without_explicit_account).await;

        let report = rig.processor.process_batch(&[paid, succeeded]).await;
        assert!(report.retry_message_ids.is_empty() || rig.backend.name == "emulators", "{report:?}");
        // A transaction conflict is retried; drive any retry to the end.
        for id in report.retry_message_ids {
            let key = EventKey::new(Provider::Stripe, EventId::parse(&id).expect("id"));
            let delivery = Delivery { message_id: id, receipt: "r".into(), body: key.message_body(), receive_count: 2 };
            rig.processor.process(&delivery).await;
        }
        let (balance, entries) = account(&rig, &name).await;
        assert_eq!((balance, entries.len()), (CREDITS, 1), "{}: one grant", rig.backend.name);
        assert_eq!(rig.metrics.get("stripe", "effect_applied"), 1);
        assert_eq!(rig.metrics.get("stripe", "effect_duplicate"), 1);
        assert_eq!(rig.metrics.get("stripe", "processed"), 2, "both finished, neither taken over");
    }
}

/// Stripe rolls the period about an hour before it charges (PROVIDERS.md
/// §11): the roll is a status, and only the paid invoice grants.
#[tokio::test]
async fn the_period_roll_grants_nothing_and_a_renewal_whose_charge_fails_keeps_nothing() {
    for backend in Backend::all(VISIBILITY).await {
        let rig = rig(backend);
        let name = format!("cus_test_{}", uuid::Uuid::new_v4().simple());
        let ids = for_account(&name);
        let roll = recorded(&rig, "customer.subscription.updated", &ids, without_explicit_account).await;
        assert_eq!(rig.processor.process(&roll).await, Disposition::Done);
        assert_eq!(account(&rig, &name).await.0, 0, "{}: the roll grants nothing", rig.backend.name);
        assert_eq!(entitlement(&rig, &name).await.status, "active");

        let failed = recorded(&rig, "invoice.payment_failed", &ids, without_explicit_account).await;
        assert_eq!(rig.processor.process(&failed).await, Disposition::Done);
        assert_eq!(account(&rig, &name).await.0, 0, "a failed charge grants nothing");

        // Stripe's retry of the charge succeeds: now the period is paid.
        let paid = recorded(&rig, "invoice.paid", &ids, without_explicit_account).await;
        assert_eq!(rig.processor.process(&paid).await, Disposition::Done);
        assert_eq!(account(&rig, &name).await.0, CREDITS, "{}", rig.backend.name);
    }
}

/// A trial's first invoice is paid with `amount_paid: 0`; a one-off
/// invoice pays for no period. Neither grants credits, neither fails.
#[tokio::test]
async fn a_zero_invoice_and_a_one_off_invoice_grant_nothing_and_never_fail() {
    for backend in Backend::all(VISIBILITY).await {
        let rig = rig(backend);
        let name = format!("cus_test_{}", uuid::Uuid::new_v4().simple());
        let ids = for_account(&name);
        let trial = recorded(&rig, "invoice.paid", &ids, |body| {
            without_explicit_account(body).replace("\"amount_paid\": 2000", "\"amount_paid\": 0")
        })
        .await;
        assert_eq!(rig.processor.process(&trial).await, Disposition::Done);
        let one_off = recorded(&rig, "invoice.paid", &SampleIds { customer_id: name.clone(), ..SampleIds::random("evt") }, |body| {
            let mut invoice: serde_json::Value = serde_json::from_str(&without_explicit_account(body)).expect("json");
            invoice["data"]["object"]["parent"] = serde_json::Value::Null;
            invoice["data"]["object"]["lines"]["data"][0]["parent"] =
                serde_json::json!({"type": "invoice_item_details", "invoice_item_details": {"invoice_item": "ii_1"}});
            invoice.to_string()
        })
        .await;
        assert_eq!(rig.processor.process(&one_off).await, Disposition::Done);
        assert_eq!(account(&rig, &name).await.0, 0, "{}", rig.backend.name);
        assert_eq!(rig.metrics.get("stripe", "failed"), 0);
        assert_eq!(rig.metrics.get("stripe", "processed"), 2);
    }
}

/// Trial credits are a plan setting, granted once with the one trial; the
/// trial's $0 invoice grants no period.
#[tokio::test]
async fn a_trial_grants_its_plans_trial_credits_once() {
    for backend in Backend::all(VISIBILITY).await {
        let plans = format!(r#"{{"{PLAN}": {{"credits": {CREDITS}, "trial_credits": 10}}}}"#);
        let (rig, _) = rig_with_plans(backend, &plans, |e| e);
        let name = format!("cus_test_{}", uuid::Uuid::new_v4().simple());
        let ids = for_account(&name);
        for _ in 0..2 {
            let trial = recorded(&rig, "customer.subscription.created", &ids, without_explicit_account).await;
            assert_eq!(rig.processor.process(&trial).await, Disposition::Done);
        }
        let zero = recorded(&rig, "invoice.paid", &ids, |body| {
            without_explicit_account(body).replace("\"amount_paid\": 2000", "\"amount_paid\": 0")
        })
        .await;
        assert_eq!(rig.processor.process(&zero).await, Disposition::Done);
        assert_eq!(account(&rig, &name).await, (10, vec![10]), "{}", rig.backend.name);
    }
}

/// A price configured as a credit pack grants per payment outside any
/// subscription, and its refunds claw back in proportion.
#[tokio::test]
async fn a_credit_pack_grants_per_payment_and_its_refund_claws_back() {
    for backend in Backend::all(VISIBILITY).await {
        let (rig, _) = rig_with_plans(backend, r#"{"price_pack": {"credits_per_payment": 500}}"#, |e| e);
        let name = format!("cus_test_{}", uuid::Uuid::new_v4().simple());
        let ids = for_account(&name);
        let pack = recorded(&rig, "invoice.paid", &ids, |body| {
            let mut invoice: serde_json::Value = serde_json::from_str(&without_explicit_account(body)).expect("json");
            let object = &mut invoice["data"]["object"];
            object["parent"] = serde_json::Value::Null;
            object["lines"]["data"][0]["parent"] =
                serde_json::json!({"type": "invoice_item_details", "invoice_item_details": {"invoice_item": "ii_1"}});
            object["lines"]["data"][0]["pricing"]["price_details"]["price"] = "price_pack".into();
            invoice.to_string()
        })
        .await;
        let link = recorded(&rig, "invoice_payment.paid", &ids, without_explicit_account).await;
        let refund = recorded(&rig, "refund.created", &ids, without_explicit_account).await;
        for delivery in [pack, link, refund] {
            assert_eq!(rig.processor.process(&delivery).await, Disposition::Done);
        }
        // A refund of 500 of the 2000 paid: a quarter of 500.
        assert_eq!(account(&rig, &name).await, (375, vec![-125, 500]), "{}", rig.backend.name);
    }
}

/// Pro (100 credits) and Team (250), as the upgrade samples name them.
const UPGRADE_PLANS: &str = r#"{"price_1TestPlanPro": 100, "price_1TestPlanTeam": 250}"#;

/// The samples' upgrade, halfway through a period Pro paid for: Team for
/// the half left tops it up by half the difference once the change is paid
/// for (`prorate`, the default), the whole of it (`full`), or not at all
/// (`none`); an invoice for the change that overtook every statement of
/// the period's length waits for one.
#[tokio::test]
async fn an_upgrade_paid_mid_period_tops_the_period_up_as_configured() {
    use payhooks::effects::PlanChanges;
    for backend in Backend::all(VISIBILITY).await {
        for (setting, top_up) in [(PlanChanges::Prorate, 75), (PlanChanges::Full, 150), (PlanChanges::None, 0)] {
            let (rig, provisioner) = rig_with_plans(backend.clone(), UPGRADE_PLANS, |e| e.with_plan_changes(setting));
            let name = format!("cus_test_{}", uuid::Uuid::new_v4().simple());
            let ids = for_account(&name);
            let renewal = recorded(&rig, "invoice.payment_succeeded", &ids, without_explicit_account).await;
            assert_eq!(rig.processor.process(&renewal).await, Disposition::Done);
            let invoice = recorded(&rig, "invoice.paid.upgrade", &ids, without_explicit_account).await;
            if setting == PlanChanges::Prorate {
                assert!(matches!(rig.processor.process(&invoice).await, Disposition::Retry(_)), "no period known yet");
            }
            let change = recorded(&rig, "customer.subscription.updated.upgrade", &ids, without_explicit_account).await;
            assert_eq!(rig.processor.process(&change).await, Disposition::Done);
            let again = Delivery { receive_count: 2, ..invoice };
            assert_eq!(rig.processor.process(&again).await, Disposition::Done);
            let (balance, _) = account(&rig, &name).await;
            assert_eq!(balance, CREDITS + top_up, "{} {setting:?}", rig.backend.name);
            let actions: Vec<_> = provisioner.received().iter().map(|r| (r.action, r.plan.clone())).collect();
            assert_eq!(
                actions,
                [(Action::Provision, Some("price_1TestPlanTeam".to_owned()))],
                "the change is the first state this account's subscription was told"
            );
        }
    }
}

/// A downgrade's invoice credits the unused time on the higher plan: it
/// takes no credits back and gives none; the lower plan starts with the
/// next period's payment. The change's refund claws back in proportion.
#[tokio::test]
async fn a_downgrade_waits_for_the_next_period_and_an_upgrades_refund_claws_back_its_share() {
    for backend in Backend::all(VISIBILITY).await {
        let (rig, _) = rig_with_plans(backend, UPGRADE_PLANS, |e| e);
        let name = format!("cus_test_{}", uuid::Uuid::new_v4().simple());
        let ids = for_account(&name);
        let change = recorded(&rig, "customer.subscription.updated.upgrade", &ids, without_explicit_account).await;
        let upgrade = recorded(&rig, "invoice.paid.upgrade", &ids, without_explicit_account).await;
        // The same invoice the other way round: Team's unused half credited.
        let downgrade_ids = SampleIds { payment_id: format!("{}_down", ids.payment_id), ..ids.clone() };
        let downgrade = recorded(&rig, "invoice.paid.upgrade", &downgrade_ids, |body| {
            without_explicit_account(body)
                .replace("\"amount\": -1000", "\"amount\": 1000")
                .replace("\"amount\": 2500", "\"amount\": -2500")
                .replace("\"amount_paid\": 1500", "\"amount_paid\": 0")
        })
        .await;
        // A refund of 500 of the upgrade's 1,500: a third of its 75.
        let paid_by = SampleIds { payment_id: format!("{}_upgrade", ids.payment_id), ..ids.clone() };
        let link = recorded(&rig, "invoice_payment.paid", &paid_by, without_explicit_account).await;
        let refund = recorded(&rig, "refund.created", &paid_by, without_explicit_account).await;
        for delivery in [change, upgrade, downgrade, link, refund] {
            assert_eq!(rig.processor.process(&delivery).await, Disposition::Done, "{}", rig.backend.name);
        }
        let (balance, mut deltas) = account(&rig, &name).await;
        deltas.sort_unstable();
        // The subscription's state and the downgrade change no credits.
        assert_eq!((balance, deltas), (50, vec![-25, 0, 0, 75]), "{}", rig.backend.name);
    }
}

/// Two subscriptions of one account billed on the same anchor: two paid
/// periods, two grants.
#[tokio::test]
async fn two_subscriptions_of_one_account_on_one_anchor_are_granted_each() {
    for backend in Backend::all(VISIBILITY).await {
        let rig = rig(backend);
        let name = format!("cus_test_{}", uuid::Uuid::new_v4().simple());
        let first = for_account(&name);
        let second = SampleIds { customer_id: name.clone(), ..SampleIds::random("evt") };
        for ids in [&first, &second] {
            let paid = recorded(&rig, "invoice.paid", ids, without_explicit_account).await;
            assert_eq!(rig.processor.process(&paid).await, Disposition::Done);
        }
        assert_eq!(account(&rig, &name).await, (2 * CREDITS, vec![CREDITS, CREDITS]), "{}", rig.backend.name);
    }
}

#[tokio::test]
async fn concurrent_grants_for_distinct_periods_on_one_account_sum_exactly() {
    for backend in Backend::all(VISIBILITY).await {
        let rig = rig(backend);
        let count = if rig.backend.name == "memory" { 200 } else { 40 };
        let name = format!("cus_test_{}", uuid::Uuid::new_v4().simple());
        let ids = for_account(&name);
        let mut deliveries = Vec::new();
        for i in 0..count {
            // Each its own invoice for its own billing period: a period
            // start `i` days later.
            let start = 1_766_592_000 + i * 86_400;
            let invoice = SampleIds { payment_id: format!("{}_{i}", ids.payment_id), ..ids.clone() };
            let delivery = recorded(&rig, "invoice.payment_succeeded", &invoice, |body| {
                without_explicit_account(body).replacen("\"start\": 1766592000", &format!("\"start\": {start}"), 1)
            })
            .await;
            deliveries.push(delivery);
        }
        let mut pending = deliveries;
        for _ in 0..20 {
            let report = rig.processor.process_batch(&pending).await;
            pending.retain(|d| report.retry_message_ids.contains(&d.message_id));
            if pending.is_empty() {
                break;
            }
        }
        assert!(pending.is_empty(), "{} events never completed", pending.len());
        let (balance, entries) = account(&rig, &name).await;
        assert_eq!(entries.len() as i64, count, "{}", rig.backend.name);
        assert_eq!(balance, count * CREDITS, "{}: no lost update", rig.backend.name);
    }
}

#[tokio::test]
async fn two_concurrent_trial_events_for_one_account_give_one_trial() {
    for backend in Backend::all(VISIBILITY).await {
        let rig = rig(backend);
        let name = format!("cus_test_{}", uuid::Uuid::new_v4().simple());
        let ids = for_account(&name);
        let first = recorded(&rig, "customer.subscription.created", &ids, without_explicit_account).await;
        let second = recorded(&rig, "customer.subscription.created", &ids, |body| {
            without_explicit_account(body).replace(&ids.subscription_id, "sub_test_another_one")
        })
        .await;
        let report = rig.processor.process_batch(&[first, second]).await;
        for id in report.retry_message_ids {
            let key = EventKey::new(Provider::Stripe, EventId::parse(&id).expect("id"));
            rig.processor
                .process(&Delivery { message_id: id, receipt: "r".into(), body: key.message_body(), receive_count: 2 })
                .await;
        }
        let state = rig
            .backend
            .ledger
            .account(&AccountRef::new(Provider::Stripe, &name))
            .await
            .expect("account")
            .expect("account");
        assert!(state.trial_started_at.is_some());
        assert_eq!(account(&rig, &name).await.1.len(), 1, "{}: one trial", rig.backend.name);
        assert_eq!(rig.metrics.get("stripe", "effect_duplicate"), 1);
    }
}

#[tokio::test]
async fn an_unknown_plan_goes_to_the_dlq_with_its_reason_and_the_batch_completes() {
    for backend in Backend::all(VISIBILITY).await {
        let rig = rig(backend);
        let name = format!("cus_test_{}", uuid::Uuid::new_v4().simple());
        let ids = for_account(&name);
        let good = recorded(&rig, "invoice.payment_succeeded", &ids, without_explicit_account).await;
        let unknown = recorded(&rig, "invoice.paid", &ids, |body| {
            without_explicit_account(body).replace(PLAN, "price_nobody_configured")
        })
        .await;
        let report = rig.processor.process_batch(&[good.clone(), unknown.clone()]).await;
        assert!(report.retry_message_ids.is_empty(), "{report:?}");
        let key = |d: &Delivery| payhooks::event::EventKey::from_message(&d.body).expect("key");
        let failed = rig.backend.store.get(&key(&unknown)).await.expect("get").expect("record");
        assert_eq!(failed.status, EventStatus::Failed);
        assert!(failed.last_error.unwrap_or_default().contains("unknown plan \"price_nobody_configured\""));
        assert_eq!(Backend::drain(rig.backend.dead_letters.as_ref()).await, vec![unknown.body.clone()]);
        let completed = rig.backend.store.get(&key(&good)).await.expect("get").expect("record");
        assert_eq!(completed.status, EventStatus::Completed, "{}", rig.backend.name);
        assert_eq!(account(&rig, &name).await.0, CREDITS);
    }
}

#[tokio::test]
async fn a_redelivery_after_the_transaction_changes_nothing() {
    for backend in Backend::all(VISIBILITY).await {
        let rig = rig(backend);
        let name = format!("cus_test_{}", uuid::Uuid::new_v4().simple());
        let delivery = recorded(&rig, "invoice.payment_succeeded", &for_account(&name), without_explicit_account).await;
        // The worker commits, then dies before deleting the message.
        rig.processor.process(&delivery).await;
        // The message comes back after its visibility timeout.
        rig.clock.advance(time::Duration::seconds(VISIBILITY.as_secs() as i64 + 1));
        let again = Delivery { receive_count: 2, ..delivery };
        assert_eq!(rig.processor.process(&again).await, payhooks::process::Disposition::Done);
        assert_eq!(account(&rig, &name).await, (CREDITS, vec![CREDITS]), "{}", rig.backend.name);
        assert_eq!(rig.metrics.get("stripe", "duplicate_message"), 1);
    }
}

async fn entitlement(rig: &Rig, name: &str) -> payhooks::ports::Entitlement {
    rig.backend
        .ledger
        .account(&AccountRef::new(Provider::Stripe, name))
        .await
        .expect("account")
        .and_then(|a| a.entitlement)
        .expect("an entitlement")
}

#[tokio::test]
async fn a_purchase_provisions_once_however_many_events_carry_it() {
    for backend in Backend::all(VISIBILITY).await {
        let (rig, provisioner) = rig_with_provisioner(backend);
        let name = format!("cus_test_{}", uuid::Uuid::new_v4().simple());
        let ids = for_account(&name);
        for _ in 0..2 {
            let delivery = recorded(&rig, "checkout.session.completed", &ids, without_explicit_account).await;
            assert_eq!(rig.processor.process(&delivery).await, Disposition::Done);
        }
        let received = provisioner.received();
        assert_eq!(received.len(), 1, "{}: one call downstream", rig.backend.name);
        assert_eq!(received[0].action, Action::Provision);
        assert_eq!(received[0].idempotency_key, format!("provision:stripe:{}:new", ids.subscription_id));
        let state = entitlement(&rig, &name).await;
        assert_eq!(
            (state.status.as_str(), state.subscription.as_deref()),
            ("active", Some(ids.subscription_id.as_str()))
        );
        assert_eq!(rig.metrics.get("stripe", "effect_duplicate"), 1);
    }
}

/// A Stripe sample for `ids` told at provider time `at`, its subscription
/// in `status` on `price` (where the sample has them).
fn told_at(at: i64, status: &'static str, price: &'static str) -> impl Fn(String) -> String {
    move |body| {
        let mut event: serde_json::Value = serde_json::from_str(&without_explicit_account(body)).expect("json");
        event["created"] = at.into();
        let object = &mut event["data"]["object"];
        if object["object"] == "subscription" {
            object["status"] = status.into();
            object["items"]["data"][0]["price"]["id"] = price.into();
        }
        event.to_string()
    }
}

/// Subscriptions are first-class: a customer who buys a second one and
/// cancels the first stays entitled, and the account lists both.
#[tokio::test]
async fn cancelling_one_subscription_leaves_the_account_entitled_by_another() {
    for backend in Backend::all(VISIBILITY).await {
        let (rig, provisioner) = rig_with_provisioner(backend);
        let name = format!("cus_test_{}", uuid::Uuid::new_v4().simple());
        let (old, new) = (for_account(&name), for_account(&name));
        let t = 1_770_000_000;
        for (ids, sample, at) in [
            (&old, "checkout.session.completed", t),
            (&new, "checkout.session.completed", t + 10),
            (&old, "customer.subscription.deleted", t + 20),
        ] {
            let delivery = recorded(&rig, sample, ids, told_at(at, "canceled", PLAN)).await;
            assert_eq!(rig.processor.process(&delivery).await, Disposition::Done);
        }
        let state = rig
            .backend
            .ledger
            .account(&AccountRef::new(Provider::Stripe, &name))
            .await
            .expect("account")
            .expect("an account");
        let entitlement = state.entitlement.expect("entitled");
        assert_eq!(
            (entitlement.status.as_str(), entitlement.subscription.as_deref()),
            ("active", Some(new.subscription_id.as_str())),
            "{}",
            rig.backend.name
        );
        let statuses: Vec<(&str, &str)> =
            state.subscriptions.iter().map(|(id, e)| (id.as_str(), e.status.as_str())).collect();
        let mut want = vec![(old.subscription_id.as_str(), "cancelled"), (new.subscription_id.as_str(), "active")];
        want.sort();
        assert_eq!(statuses, want);
        let told: Vec<(Action, String)> =
            provisioner.received().into_iter().map(|r| (r.action, r.subscription.unwrap_or_default())).collect();
        assert_eq!(
            told,
            [
                (Action::Provision, old.subscription_id.clone()),
                (Action::Provision, new.subscription_id.clone()),
                (Action::Deprovision, old.subscription_id.clone())
            ]
        );
    }
}

/// Every transition reaches downstream, each under its own key: a plan
/// change, a pause and its resumption, a cancellation, a reactivation told
/// as an update, and the real cancellation after it.
#[tokio::test]
async fn every_entitlement_transition_reaches_the_provisioner_once() {
    for backend in Backend::all(VISIBILITY).await {
        let (rig, provisioner) = rig_with_provisioner(backend);
        let name = format!("cus_test_{}", uuid::Uuid::new_v4().simple());
        let ids = for_account(&name);
        let t = 1_770_000_000;
        let story = [
            ("checkout.session.completed", t, "active", PLAN),
            ("customer.subscription.updated", t + 1, "active", PLAN),
            ("customer.subscription.updated", t + 2, "active", "price_upgraded"),
            ("customer.subscription.updated", t + 3, "paused", "price_upgraded"),
            ("customer.subscription.updated", t + 4, "active", "price_upgraded"),
            ("customer.subscription.deleted", t + 5, "canceled", "price_upgraded"),
            ("customer.subscription.updated", t + 6, "active", "price_upgraded"),
            ("customer.subscription.deleted", t + 7, "canceled", "price_upgraded"),
        ];
        for (sample, at, status, price) in story {
            let delivery = recorded(&rig, sample, &ids, told_at(at, status, price)).await;
            assert_eq!(rig.processor.process(&delivery).await, Disposition::Done);
            // Each told twice: the repeat changes nothing.
            let again = recorded(&rig, sample, &ids, told_at(at, status, price)).await;
            assert_eq!(rig.processor.process(&again).await, Disposition::Done);
        }
        let told: Vec<(Action, String, Option<String>)> =
            provisioner.received().into_iter().map(|r| (r.action, r.status, r.plan)).collect();
        let step = |action, status: &str, plan: &str| (action, status.to_owned(), Some(plan.to_owned()));
        assert_eq!(
            told,
            [
                // Checkout names no price; the first update with one
                // states the plan it started on: no change.
                (Action::Provision, "active".to_owned(), None),
                step(Action::ChangePlan, "active", "price_upgraded"),
                step(Action::Deprovision, "paused", "price_upgraded"),
                step(Action::Provision, "active", "price_upgraded"),
                step(Action::Deprovision, "cancelled", "price_upgraded"),
                step(Action::Provision, "active", "price_upgraded"),
                step(Action::Deprovision, "cancelled", "price_upgraded"),
            ],
            "{}",
            rig.backend.name
        );
        let keys: std::collections::BTreeSet<String> =
            provisioner.received().into_iter().map(|r| r.idempotency_key).collect();
        assert_eq!(keys.len(), 7, "a key per transition: {keys:?}");
        assert_eq!(entitlement(&rig, &name).await.status, "cancelled");
    }
}

#[tokio::test]
async fn a_cancellation_delivered_before_the_update_that_preceded_it_stays_cancelled() {
    for backend in Backend::all(VISIBILITY).await {
        let (rig, provisioner) = rig_with_provisioner(backend);
        let name = format!("cus_test_{}", uuid::Uuid::new_v4().simple());
        let ids = for_account(&name);
        let cancel = recorded(&rig, "customer.subscription.deleted", &ids, without_explicit_account).await;
        // An earlier status change (not a period roll), delivered late.
        let earlier = recorded(&rig, "customer.subscription.updated", &ids, |body| {
            without_explicit_account(body).replace("\"previous_attributes\"", "\"earlier_attributes\"")
        })
        .await;
        assert_eq!(rig.processor.process(&cancel).await, Disposition::Done);
        assert_eq!(rig.processor.process(&earlier).await, Disposition::Done);

        assert_eq!(entitlement(&rig, &name).await.status, "cancelled", "{}", rig.backend.name);
        let key = payhooks::event::EventKey::from_message(&earlier.body).expect("key");
        assert_eq!(rig.backend.store.get(&key).await.expect("get").expect("record").status, EventStatus::Stale);
        let actions: Vec<Action> = provisioner.received().iter().map(|r| r.action).collect();
        assert_eq!(actions, vec![Action::Deprovision]);
        assert_eq!(rig.metrics.get("stripe", "stale"), 1);
    }
}

#[tokio::test]
async fn a_provisioner_outage_is_retried_and_provisions_once() {
    for backend in Backend::all(VISIBILITY).await {
        let (rig, provisioner) = rig_with_provisioner(backend);
        let name = format!("cus_test_{}", uuid::Uuid::new_v4().simple());
        let delivery =
            recorded(&rig, "checkout.session.completed", &for_account(&name), without_explicit_account).await;
        provisioner.fail_next(1);
        assert!(matches!(rig.processor.process(&delivery).await, Disposition::Retry(_)));
        let key = payhooks::event::EventKey::from_message(&delivery.body).expect("key");
        let record = rig.backend.store.get(&key).await.expect("get").expect("record");
        assert_eq!(record.status, EventStatus::Enqueued, "released, nothing committed");
        assert!(record.last_error.unwrap_or_default().contains("provisioner"));

        let retry = Delivery { receive_count: 2, ..delivery };
        assert_eq!(rig.processor.process(&retry).await, Disposition::Done);
        assert_eq!(provisioner.received().len(), 1);
        assert_eq!(entitlement(&rig, &name).await.status, "active", "{}", rig.backend.name);
    }
}

#[tokio::test]
async fn a_lease_that_expires_mid_processing_still_gives_one_effect() {
    use payhooks::ports::{Applied, Effects, LeaseOutcome};
    for backend in Backend::all(VISIBILITY).await {
        let rig = rig(backend);
        let name = format!("cus_test_{}", uuid::Uuid::new_v4().simple());
        let delivery = recorded(&rig, "invoice.payment_succeeded", &for_account(&name), without_explicit_account).await;
        let key = payhooks::event::EventKey::from_message(&delivery.body).expect("key");
        // A slow worker leases the event …
        let LeaseOutcome::Acquired(record) =
            rig.backend.store.lease(&key, "slow-worker", rig.now(), rig.now() + VISIBILITY).await.expect("lease")
        else {
            panic!("leased");
        };
        // … its lease runs out, and another worker finishes the event.
        rig.clock.advance(time::Duration::seconds(VISIBILITY.as_secs() as i64 + 1));
        assert_eq!(rig.processor.process(&delivery).await, Disposition::Done);
        // The slow worker's commit then changes nothing.
        let plans = Plans::from_json(&format!(r#"{{"{PLAN}": {CREDITS}}}"#)).expect("plans");
        let slow = BillingEffects::new(rig.backend.ledger.clone(), plans, Arc::new(SystemClock));
        let outcome = slow.apply(&record, "slow-worker").await.expect("apply");
        assert!(matches!(outcome, Applied::LeaseLost | Applied::DuplicateEffect), "{outcome:?}");
        assert_eq!(account(&rig, &name).await, (CREDITS, vec![CREDITS]), "{}", rig.backend.name);
    }
}

#[tokio::test]
async fn a_failed_payment_is_recorded_and_counted_once_and_changes_no_balance() {
    for backend in Backend::all(VISIBILITY).await {
        let rig = rig(backend);
        let name = format!("cus_test_{}", uuid::Uuid::new_v4().simple());
        let ids = for_account(&name);
        let failed = recorded(&rig, "invoice.payment_failed", &ids, without_explicit_account).await;
        rig.processor.process(&failed).await;
        rig.processor.process(&Delivery { receive_count: 2, ..failed }).await;
        let state = rig
            .backend
            .ledger
            .account(&AccountRef::new(Provider::Stripe, &name))
            .await
            .expect("account")
            .expect("account");
        assert_eq!((state.failed_payments, state.balance), (1, 0), "{}", rig.backend.name);
        assert_eq!(rig.metrics.get("stripe", "payment_failed"), 1, "{}", rig.backend.name);
    }
}

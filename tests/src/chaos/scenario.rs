//! What the simulated provider sends, and what must come of it, computed
//! from the scenario alone (never from the code under test): per account a
//! trial (sometimes), a purchase, renewals told twice (the invoice and the
//! subscription's period roll, plus the invoice payment that links the
//! payment intent), partial refunds, a failed payment, a cancellation.

use payhooks::providers::{SampleIds, stripe};
use rand::RngExt;
use rand::rngs::StdRng;

/// Credits per period of the samples' plan, and what each renewal paid.
pub const PLAN: &str = "price_1TestPlanPro";
pub const CREDITS: i64 = 100;
pub const PAID: i64 = 2000;
/// A month, between the samples' periods.
const PERIOD: i64 = 2_678_400;
const FIRST_PERIOD: i64 = 1_766_592_000;

#[derive(Debug, Clone)]
pub struct SimEvent {
    pub account: usize,
    pub event_id: String,
    pub body: Vec<u8>,
}

/// What an account must end with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub name: String,
    pub balance: i64,
    pub grants: usize,
    pub trial: bool,
    pub cancelled: bool,
    pub failed_payments: u32,
}

/// Without the samples' explicit account, the customer id is the account.
pub fn without_explicit_account(body: String) -> String {
    body.replace("\"account_id\": \"acct-demo-001\"", "\"note\": \"none\"")
        .replace("\"client_reference_id\": \"acct-demo-001\"", "\"client_reference_id\": null")
}

fn event(account: usize, sample: &str, ids: &SampleIds, edit: impl Fn(String) -> String) -> SimEvent {
    let body = edit(without_explicit_account(stripe::SAMPLES.event(sample, ids).expect("a sample")));
    SimEvent {
        account,
        event_id: ids.event_id.clone(),
        body: body.into_bytes(),
    }
}

/// The events of account `index` and what it must end with.
pub fn account(index: usize, run: &str, rng: &mut StdRng) -> (Vec<SimEvent>, Expected) {
    let name = format!("cus_chaos_{run}_{index}");
    let mut serial = 0;
    let mut ids = |payment: usize, refund: usize| {
        serial += 1;
        SampleIds {
            event_id: format!("evt_chaos_{run}_{index}_{serial}"),
            customer_id: name.clone(),
            subscription_id: format!("sub_chaos_{run}_{index}"),
            payment_id: format!("in_chaos_{run}_{index}_{payment}"),
            payment_alias_id: format!("pi_chaos_{run}_{index}_{payment}"),
            refund_id: format!("re_chaos_{run}_{index}_{payment}_{refund}"),
        }
    };
    let mut events = Vec::new();
    let mut expected = Expected {
        name: name.clone(),
        balance: 0,
        grants: 0,
        trial: rng.random_bool(0.3),
        cancelled: rng.random_bool(0.5),
        failed_payments: 0,
    };
    if expected.trial {
        events.push(event(index, "customer.subscription.created", &ids(0, 0), |b| b));
    }
    events.push(event(index, "checkout.session.completed", &ids(0, 0), |b| b));
    let renewals = rng.random_range(1..=4);
    for k in 1..=renewals {
        let (start, end) = (FIRST_PERIOD + (k as i64 - 1) * PERIOD, FIRST_PERIOD + k as i64 * PERIOD);
        let period = move |body: String| {
            body.replace("\"start\": 1766592000", &format!("\"start\": {start}"))
                .replace("\"end\": 1769270400", &format!("\"end\": {end}"))
                .replacen("\"current_period_start\": 1766592000", &format!("\"current_period_start\": {start}"), 1)
                .replacen("\"current_period_end\": 1769270400", &format!("\"current_period_end\": {end}"), 1)
        };
        events.push(event(index, "invoice.payment_succeeded", &ids(k, 0), period));
        events.push(event(index, "invoice_payment.paid", &ids(k, 0), |b| b));
        if rng.random_bool(0.7) {
            events.push(event(index, "customer.subscription.updated", &ids(k, 0), period));
        }
        expected.grants += 1;
        let mut refunded = 0;
        if rng.random_bool(0.35) {
            for r in 1..=rng.random_range(1..=2) {
                let amount: i64 = rng.random_range(100..=1500);
                refunded += amount;
                events.push(event(index, "refund.created", &ids(k, r), move |b| {
                    b.replace("\"amount\": 500", &format!("\"amount\": {amount}"))
                }));
            }
        }
        expected.balance += CREDITS - CREDITS * refunded.min(PAID) / PAID;
    }
    if rng.random_bool(0.2) {
        events.push(event(index, "invoice.payment_failed", &ids(0, 0), |b| b));
        expected.failed_payments += 1;
    }
    if expected.cancelled {
        events.push(event(index, "customer.subscription.deleted", &ids(0, 0), |b| b));
    }
    (events, expected)
}

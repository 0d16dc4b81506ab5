//! Paddle tells a story as its renewal scenario documents it: a purchase
//! with `subscription.created`; each renewal with the period roll
//! (`subscription.updated`, the new `current_billing_period`, still
//! `active`) first, usually, then `transaction.paid` and
//! `transaction.completed` (one payment, one grant); each refund with
//! `adjustment.created` (pending approval: nothing moves) then
//! `adjustment.updated` (approved); a chargeback of a whole payment with
//! its adjustment, and, where Paddle wins the contest, the
//! `chargeback_reverse` adjustment; a failed renewal with its roll,
//! `transaction.payment_failed` and `subscription.past_due` (a roll that is
//! never paid grants nothing); an upgrade from Pro to Team halfway through a
//! paid period with `subscription.updated` naming Team and the transaction
//! of its prorations (`prorated_immediately`), later periods billing Team;
//! a pause with `subscription.paused` and a
//! resumption with `subscription.resumed`; a cancellation with
//! `subscription.canceled`.
//! The account is the custom data's `account_id`.

use payhooks::providers::SampleIds;
use serde_json::{Value, json};

use super::{Lifecycle, Outline, Simulated, Teller, Upgrade, edited};

pub const PLAN: &str = "pri_test_pro_monthly";
/// The transaction's grand total, in cents.
pub const PAID: i64 = 2000;

/// How this provider tells a story.
pub const SIMULATED: Simulated = Simulated::paid_only(PLAN, PAID, tell).telling(Lifecycle {
    upgrade: Some(UPGRADE),
    second_subscription: true,
    disputes: true,
    ..Lifecycle::PAUSING
});
/// The refund number a renewal's chargeback adjustments are named by.
const DISPUTE: usize = 99;
/// Team for 250 credits at 5,000: halfway through a period, the upgrade's
/// transaction bills 1,500 and tops the period up by half of 150.
const UPGRADE: Upgrade = Upgrade { plan: "pri_test_team_monthly", credits: 250, paid: 5000, top_up: 75, credited: 0 };
const FIRST_PERIOD: i64 = 1_793_523_600;

pub fn tell(outline: &Outline, teller: &mut Teller) {
    let (run, index) = (teller.run.clone(), teller.index);
    let mut serial = 0;
    let mut ids = |payment: usize, refund: usize| {
        serial += 1;
        SampleIds {
            customer_id: format!("ctm_chaos_{run}_{index}"),
            subscription_id: format!("sub_chaos_{run}_{index}"),
            payment_id: format!("txn_chaos_{run}_{index}_{payment}"),
            refund_id: format!("adj_chaos_{run}_{index}_{payment}_{refund}"),
            ..super::ids(format!("evt_chaos_{run}_{index}_{serial}"))
        }
    };
    let billing_period = |k: usize| {
        let (start, end) = super::period(FIRST_PERIOD, k);
        json!({"starts_at": super::rfc3339_millis(start), "ends_at": super::rfc3339_millis(end)})
    };
    // Subscription events are dated as the story runs (the newest status
    // wins), whatever order they arrive in.
    let at = |k: usize, offset: i64| json!(super::rfc3339_millis(super::period(FIRST_PERIOD, k).0 + offset));
    // After an upgrade, periods bill Team: the subscription names its
    // price, each renewal's transaction bills it.
    let price = |k: usize| if outline.upgraded(k - 1) { UPGRADE.plan } else { PLAN };
    let roll = |k: usize, status: &'static str, offset: i64| {
        let period = billing_period(k);
        let occurred = at(k, offset);
        let price = price(k);
        move |b: String| {
            edited(b.replace(PLAN, price), |v| {
                v["occurred_at"] = occurred;
                v["data"]["current_billing_period"] = period;
                v["data"]["status"] = json!(status);
            })
        }
    };
    let after = outline.renewals.len() + 1;
    teller.send("subscription.created", ids(0, 0), |b| {
        edited(b, |v| {
            v["occurred_at"] = at(1, 0);
            v["data"]["current_billing_period"] = billing_period(1);
        })
    });
    for (i, refunds) in outline.renewals.iter().enumerate() {
        let k = i + 1;
        // The first period is the checkout's; each later one rolls first.
        if k > 1 && outline.period_rolls[i] {
            teller.send("subscription.updated", ids(0, 0), roll(k, "active", 0));
        }
        let period = billing_period(k);
        let (credits, paid) = outline.terms(i, SIMULATED.lifecycle, PAID);
        teller.payments.push((format!("txn_chaos_{run}_{index}_{k}"), credits));
        for sample in ["transaction.paid", "transaction.completed"] {
            let period = period.clone();
            teller.send(sample, ids(k, 0), |b| {
                edited(b.replace(PLAN, price(k)), |v| {
                    v["data"]["billing_period"] = period;
                    v["data"]["details"]["totals"]["grand_total"] = json!(paid.to_string());
                })
            });
        }
        for (r, amount) in refunds.iter().enumerate() {
            let total = |v: &mut Value| v["data"]["totals"]["total"] = json!(amount.to_string());
            teller.send("adjustment.created", ids(k, r + 1), |b| edited(b, total));
            teller.send("adjustment.updated", ids(k, r + 1), |b| edited(b, total));
        }
        // A chargeback is of the whole payment; Paddle contests it and wins
        // or not.
        if let Some(won) = outline.disputes[i] {
            let total = move |v: &mut Value| v["data"]["totals"]["total"] = json!(paid.to_string());
            teller.send("adjustment.created.chargeback", ids(k, DISPUTE), |b| edited(b, total));
            if won {
                teller.send("adjustment.created.chargeback_reverse", ids(k, DISPUTE), |b| edited(b, total));
            }
        }
        if outline.upgrade == Some(i) {
            let (start, end) = super::period(FIRST_PERIOD, k);
            let half = start + (end - start) / 2;
            let (change, remaining) = (super::rfc3339_millis(half), super::rfc3339_millis(end));
            let current = billing_period(k);
            teller.send("subscription.updated.upgrade", ids(0, 0), |b| {
                edited(b, |v| {
                    v["occurred_at"] = json!(change);
                    v["data"]["current_billing_period"] = current;
                })
            });
            let prorated = json!({"starts_at": change, "ends_at": remaining});
            teller.payments.push((format!("txn_chaos_{run}_{index}_{k}_upgrade"), UPGRADE.top_up));
            teller.send("transaction.completed.upgrade", ids(k, 0), |b| {
                edited(b, |v| {
                    v["occurred_at"] = json!(super::rfc3339_millis(half + 4));
                    for line in v["data"]["details"]["line_items"].as_array_mut().expect("lines") {
                        line["proration"]["billing_period"] = prorated.clone();
                    }
                })
            });
        }
    }
    if outline.failed_payment {
        teller.send("subscription.updated", ids(0, 0), roll(after, "active", 0));
        teller.send("transaction.payment_failed", ids(after, 0), |b| b);
        teller.send("subscription.past_due", ids(0, 0), roll(after, "past_due", 300));
        teller.open_status = "past_due";
    }
    if let Some(resumed) = outline.pause {
        let dated = |offset| move |b: String| edited(b, |v| v["occurred_at"] = at(after, offset));
        teller.send("subscription.paused", ids(0, 0), dated(600));
        if resumed {
            teller.send("subscription.resumed", ids(0, 0), dated(900));
        } else {
            teller.open_status = "paused";
        }
    }
    if outline.cancelled {
        teller.send("subscription.canceled", ids(0, 0), |b| edited(b, |v| v["occurred_at"] = at(after + 1, 0)));
    }
    if outline.second > 0 {
        second_subscription(outline, teller);
    }
}

/// A second subscription of the same customer, bought a minute after the
/// first on its billing anchor and paid for `outline.second` periods, kept
/// whatever becomes of the first: the account stays entitled by it.
fn second_subscription(outline: &Outline, teller: &mut Teller) {
    let (run, index) = (teller.run.clone(), teller.index);
    let first = format!("sub_chaos_{run}_{index}");
    let first_closed = outline.cancelled || !payhooks::ports::ledger::entitles(teller.open_status);
    teller.subscriptions.push((first, first_closed));
    let subscription = format!("sub_chaos_{run}_{index}_b");
    let mut serial = 0;
    let mut ids = |payment: usize| {
        serial += 1;
        SampleIds {
            customer_id: format!("ctm_chaos_{run}_{index}"),
            subscription_id: subscription.clone(),
            payment_id: format!("txn_chaos_{run}_{index}_b{payment}"),
            ..super::ids(format!("evt_chaos_{run}_{index}_b{serial}"))
        }
    };
    let created = super::rfc3339_millis(FIRST_PERIOD + 60);
    teller.send("subscription.created", ids(0), |b| edited(b, |v| v["occurred_at"] = json!(created)));
    for k in 1..=outline.second {
        let (start, end) = super::period(FIRST_PERIOD, k);
        let period = json!({"starts_at": super::rfc3339_millis(start), "ends_at": super::rfc3339_millis(end)});
        teller.payments.push((format!("txn_chaos_{run}_{index}_b{k}"), super::CREDITS));
        teller.send("transaction.completed", ids(k), |b| edited(b, |v| v["data"]["billing_period"] = period));
    }
    teller.subscriptions.push((subscription, false));
    // The first gives no access any more: the account's entitlement is the
    // second's.
    if first_closed {
        teller.open_status = "active";
    }
}

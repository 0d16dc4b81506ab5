//! Paddle tells a story as its renewal scenario documents it: a purchase
//! with `subscription.created`; each renewal with the period roll
//! (`subscription.updated`, the new `current_billing_period`, still
//! `active`) first, usually, then `transaction.paid` and
//! `transaction.completed` (one payment, one grant); each refund with
//! `adjustment.created` (pending approval: nothing moves) then
//! `adjustment.updated` (approved); a failed renewal with its roll,
//! `transaction.payment_failed` and `subscription.past_due` (a roll that is
//! never paid grants nothing); a pause with `subscription.paused` and a
//! resumption with `subscription.resumed`; a cancellation with
//! `subscription.canceled`.
//! The account is the custom data's `account_id`.

use payhooks::providers::SampleIds;
use serde_json::{Value, json};

use super::{Lifecycle, Outline, Simulated, Teller, edited};

pub const PLAN: &str = "pri_test_pro_monthly";
/// The transaction's grand total, in cents.
pub const PAID: i64 = 2000;

/// How this provider tells a story.
pub const SIMULATED: Simulated = Simulated::paid_only(PLAN, PAID, tell).telling(Lifecycle::PAUSING);
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
    let roll = |k: usize, status: &'static str, offset: i64| {
        let period = billing_period(k);
        let occurred = at(k, offset);
        move |b: String| {
            edited(b, |v| {
                v["occurred_at"] = occurred;
                v["data"]["current_billing_period"] = period;
                v["data"]["status"] = json!(status);
            })
        }
    };
    let after = outline.renewals.len() + 1;
    teller.send("subscription.created", ids(0, 0), |b| edited(b, |v| v["occurred_at"] = at(1, 0)));
    for (i, refunds) in outline.renewals.iter().enumerate() {
        let k = i + 1;
        // The first period is the checkout's; each later one rolls first.
        if k > 1 && outline.period_rolls[i] {
            teller.send("subscription.updated", ids(0, 0), roll(k, "active", 0));
        }
        let period = billing_period(k);
        for sample in ["transaction.paid", "transaction.completed"] {
            let period = period.clone();
            teller.send(sample, ids(k, 0), |b| edited(b, |v| v["data"]["billing_period"] = period));
        }
        for (r, amount) in refunds.iter().enumerate() {
            let total = |v: &mut Value| v["data"]["totals"]["total"] = json!(amount.to_string());
            teller.send("adjustment.created", ids(k, r + 1), |b| edited(b, total));
            teller.send("adjustment.updated", ids(k, r + 1), |b| edited(b, total));
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
}

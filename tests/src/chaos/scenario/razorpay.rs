//! Razorpay tells a purchase with `subscription.activated`, each renewal
//! with `subscription.charged` (the subscription's current period, the
//! payment), refunds with `refund.processed` naming the payment, a failed
//! charge with `payment.failed` and `subscription.pending` (Razorpay's
//! retries: the subscription waits, nothing is granted), a pause with
//! `subscription.paused` and a resumption with `subscription.resumed`, a
//! cancellation with `subscription.cancelled`. Some payments are disputed
//! (`payment.dispute.created`), then won or lost (`.won`, `.lost`, the
//! whole payment deducted). A plan change from Pro to Team at a cycle's
//! end is `subscription.updated` (the new plan and cycle), each later
//! `subscription.charged` naming Team and paying its price; nothing is
//! prorated. The event id travels in `x-razorpay-event-id`; the account is
//! the notes' `account_id`.

use payhooks::providers::SampleIds;
use serde_json::json;

use super::{Lifecycle, Outline, Simulated, Teller, Upgrade, edited};

pub const PLAN: &str = "plan_test_pro_monthly";
/// The payment's amount, in paise.
pub const PAID: i64 = 200_000;

/// How this provider tells a story.
pub const SIMULATED: Simulated = Simulated::paid_only(PLAN, PAID, tell).telling(Lifecycle {
    disputes: true,
    upgrade: Some(UPGRADE),
    ..Lifecycle::PAUSING
});
/// Team for 250 credits at 5,000 rupees, from the next cycle on.
const UPGRADE: Upgrade =
    Upgrade { plan: "plan_test_team_monthly", credits: 250, paid: 500_000, top_up: 0, credited: 0 };
const FIRST_PERIOD: i64 = 1_793_523_600;

pub fn tell(outline: &Outline, teller: &mut Teller) {
    let (run, index) = (teller.run.clone(), teller.index);
    let mut serial = 0;
    let mut ids = |payment: usize, refund: usize| {
        serial += 1;
        SampleIds {
            customer_id: format!("cust_chaos{run}x{index}"),
            subscription_id: format!("sub_chaos{run}x{index}"),
            payment_id: format!("pay_chaos{run}x{index}x{payment}"),
            payment_alias_id: format!("inv_chaos{run}x{index}x{payment}"),
            refund_id: format!("rfnd_chaos{run}x{index}x{payment}x{refund}"),
            ..super::ids(format!("rzpchaos{run}x{index}x{serial}"))
        }
    };
    // Subscription events are dated as the story runs (the newest status
    // wins), whatever order they arrive in.
    // After a plan change, the subscription names Team.
    let after = outline.renewals.len() + 1;
    let last_plan = if outline.upgraded(after - 1) { UPGRADE.plan } else { PLAN };
    teller.plan = Some(last_plan);
    let at = |k: usize, offset: i64| {
        let created = json!(super::period(FIRST_PERIOD, k).0 + offset);
        let plan = if k >= after { last_plan } else { PLAN };
        move |b: String| {
            edited(b, |v| {
                v["created_at"] = created;
                v["payload"]["subscription"]["entity"]["plan_id"] = json!(plan);
            })
        }
    };
    teller.send("subscription.activated", ids(0, 0), at(1, 0));
    for (i, refunds) in outline.renewals.iter().enumerate() {
        let k = i + 1;
        let (start, end) = super::period(FIRST_PERIOD, k);
        let (credits, paid) = outline.terms(i, SIMULATED.lifecycle, PAID);
        let plan = if outline.upgraded(i) { UPGRADE.plan } else { PLAN };
        teller.payments.push((format!("pay_chaos{run}x{index}x{k}"), credits));
        teller.send("subscription.charged", ids(k, 0), |b| {
            edited(b, |v| {
                v["payload"]["subscription"]["entity"]["current_start"] = json!(start);
                v["payload"]["subscription"]["entity"]["current_end"] = json!(end);
                v["payload"]["subscription"]["entity"]["plan_id"] = json!(plan);
                v["payload"]["payment"]["entity"]["amount"] = json!(paid);
            })
        });
        for (r, amount) in refunds.iter().enumerate() {
            teller.send("refund.processed", ids(k, r + 1), |b| {
                edited(b, |v| v["payload"]["refund"]["entity"]["amount"] = json!(amount))
            });
        }
        if let Some(won) = outline.disputes[i] {
            let dispute = format!("disp_chaos{run}x{index}x{k}");
            let told = |event: &'static str, status: &'static str, deducted: i64| {
                let dispute = dispute.clone();
                move |b: String| {
                    edited(b, |v| {
                        v["event"] = json!(event);
                        let entity = &mut v["payload"]["dispute"]["entity"];
                        entity["id"] = json!(dispute);
                        entity["status"] = json!(status);
                        entity["amount_deducted"] = json!(deducted);
                    })
                }
            };
            teller.send("payment.dispute.lost", ids(k, 0), told("payment.dispute.created", "open", 0));
            let outcome =
                if won { told("payment.dispute.won", "won", 0) } else { told("payment.dispute.lost", "lost", paid) };
            teller.send("payment.dispute.lost", ids(k, 0), outcome);
        }
        // The change applies at this cycle's end: the next one is Team's.
        if outline.upgrade == Some(i) {
            let (next_start, next_end) = super::period(FIRST_PERIOD, k + 1);
            teller.send("subscription.updated", ids(0, 0), |b| {
                edited(b, |v| {
                    v["created_at"] = json!(next_start - 5);
                    v["payload"]["subscription"]["entity"]["current_start"] = json!(next_start);
                    v["payload"]["subscription"]["entity"]["current_end"] = json!(next_end);
                })
            });
        }
    }
    if outline.failed_payment {
        teller.send("payment.failed", ids(after, 0), |b| b);
        teller.send("subscription.pending", ids(0, 0), at(after, 300));
        teller.open_status = "pending";
    }
    if let Some(resumed) = outline.pause {
        teller.send("subscription.paused", ids(0, 0), at(after, 600));
        if resumed {
            teller.send("subscription.resumed", ids(0, 0), at(after, 900));
        } else {
            teller.open_status = "paused";
        }
    }
    if outline.cancelled {
        teller.send("subscription.cancelled", ids(0, 0), at(after + 1, 0));
    }
}

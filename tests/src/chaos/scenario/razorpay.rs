//! Razorpay tells a purchase with `subscription.activated`, each renewal
//! with `subscription.charged` (the subscription's current period, the
//! payment), refunds with `refund.processed` naming the payment, a failed
//! charge with `payment.failed` and `subscription.pending` (Razorpay's
//! retries: the subscription waits, nothing is granted), a pause with
//! `subscription.paused` and a resumption with `subscription.resumed`, a
//! cancellation with `subscription.cancelled`. Some payments are disputed
//! (`payment.dispute.created`), then won or lost (`.won`, `.lost`, the
//! whole payment deducted). The event id travels in `x-razorpay-event-id`;
//! the account is the notes' `account_id`.

use payhooks::providers::SampleIds;
use serde_json::json;

use super::{Lifecycle, Outline, Simulated, Teller, edited};

pub const PLAN: &str = "plan_test_pro_monthly";
/// The payment's amount, in paise.
pub const PAID: i64 = 200_000;

/// How this provider tells a story.
pub const SIMULATED: Simulated =
    Simulated::paid_only(PLAN, PAID, tell).telling(Lifecycle { disputes: true, ..Lifecycle::PAUSING });
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
    let at = |k: usize, offset: i64| {
        let created = json!(super::period(FIRST_PERIOD, k).0 + offset);
        move |b: String| edited(b, |v| v["created_at"] = created)
    };
    let after = outline.renewals.len() + 1;
    teller.send("subscription.activated", ids(0, 0), at(1, 0));
    for (i, refunds) in outline.renewals.iter().enumerate() {
        let k = i + 1;
        let (start, end) = super::period(FIRST_PERIOD, k);
        teller.payments.push((format!("pay_chaos{run}x{index}x{k}"), super::CREDITS));
        teller.send("subscription.charged", ids(k, 0), |b| {
            edited(b, |v| {
                v["payload"]["subscription"]["entity"]["current_start"] = json!(start);
                v["payload"]["subscription"]["entity"]["current_end"] = json!(end);
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
                if won { told("payment.dispute.won", "won", 0) } else { told("payment.dispute.lost", "lost", PAID) };
            teller.send("payment.dispute.lost", ids(k, 0), outcome);
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

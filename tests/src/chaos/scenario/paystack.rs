//! Paystack tells a subscription's first payment with its plan's
//! `charge.success` (no invoice: the customer paid when subscribing) and
//! `subscription.create`, each renewal twice: its charge (plan, no
//! subscription) and the paid `invoice.update` (its period and transaction,
//! no plan: the subscription's). Refunds with `refund.processed` naming the
//! transaction, a cancellation with `subscription.not_renew` and, at the
//! period's end, `subscription.disable`. Some customers also subscribe to a
//! second plan (Paystack changes no subscription's plan: a new plan is a
//! new subscription) and keep it. Its events have no ids: payhooks derives
//! them from the object and its status.

use payhooks::providers::SampleIds;

use super::{Lifecycle, Outline, Simulated, Teller};

pub const PLAN: &str = "PLN_testpro0001";
/// `invoice.update`'s amount, in kobo.
pub const PAID: i64 = 500_000;

/// The plan of the second subscription some customers keep.
const SECOND_PLAN: &str = "PLN_testteam0001";

/// How this provider tells a story.
pub const SIMULATED: Simulated = Simulated::paid_only(PLAN, PAID, tell).telling(Lifecycle {
    second_subscription: true,
    second_plan: Some(SECOND_PLAN),
    ..Lifecycle::PAID_ONLY
});
const FIRST_PERIOD: i64 = 1_766_592_000;

pub fn tell(outline: &Outline, teller: &mut Teller) {
    let (run, index) = (teller.run.clone(), teller.index);
    let mut serial = 0;
    let mut ids = |subscription: &str, payment: usize| {
        serial += 1;
        // The event id stands for the invoice code or refund reference.
        SampleIds {
            customer_id: format!("CUS_chaos{run}x{index}"),
            subscription_id: format!("SUB_chaos{run}x{index}{subscription}"),
            payment_id: format!("T_pay{run}x{index}{subscription}x{payment}"),
            ..super::ids(format!("T_chaos{run}x{index}x{serial}"))
        }
    };
    for (i, refunds) in outline.renewals.iter().enumerate() {
        let k = i + 1;
        let renewal = ids("", k);
        teller.payments.push((renewal.payment_id.clone(), super::CREDITS));
        paid_period(teller, k, renewal, |b| b);
        if k == 1 {
            teller.send("subscription.create", ids("", 0), |b| b);
        }
        for amount in refunds {
            teller.send("refund.processed", ids("", k), |b| {
                b.replace("\"amount\": \"125000\"", &format!("\"amount\": \"{amount}\""))
            });
        }
    }
    if outline.failed_payment {
        teller.send("invoice.payment_failed", ids("", 0), |b| b);
    }
    if outline.cancelled {
        // Cancelled at the period's end: not renewing, then disabled.
        teller.send("subscription.not_renew", ids("", 0), |b| b);
        teller.send("subscription.disable", ids("", 0), |b| b);
    }
    if outline.second > 0 {
        let second = ids("second", 0).subscription_id;
        teller.subscriptions.push((ids("", 0).subscription_id, outline.cancelled));
        let on_second_plan =
            |b: String| b.replace(&format!("\"plan_code\": \"{PLAN}\""), &format!("\"plan_code\": \"{SECOND_PLAN}\""));
        for k in 1..=outline.second {
            let renewal = ids("second", k);
            teller.payments.push((renewal.payment_id.clone(), super::CREDITS));
            paid_period(teller, k, renewal, on_second_plan);
            if k == 1 {
                teller.send("subscription.create", ids("second", 0), on_second_plan);
            }
        }
        teller.subscriptions.push((second, false));
    }
}

/// Period `k` paid by `renewal`'s transaction: the first by its charge
/// alone, later ones by their charge and their invoice.
fn paid_period(teller: &mut Teller, k: usize, renewal: SampleIds, edit: impl Fn(String) -> String) {
    if k == 1 {
        let first = SampleIds { event_id: renewal.payment_id.clone(), ..renewal };
        teller.send("charge.success.subscription", first, &edit);
        return;
    }
    let (start, end) = super::period(FIRST_PERIOD, k);
    teller.send("charge.success.renewal", renewal.clone(), &edit);
    teller.send("invoice.update", renewal, |b| {
        edit(b)
            .replace(
                "\"period_start\": \"2025-12-24T16:00:00.000Z\"",
                &format!("\"period_start\": \"{}\"", super::rfc3339_millis(start)),
            )
            .replace(
                "\"period_end\": \"2026-01-24T16:00:00.000Z\"",
                &format!("\"period_end\": \"{}\"", super::rfc3339_millis(end)),
            )
    });
}

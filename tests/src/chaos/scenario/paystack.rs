//! Paystack tells a purchase with `subscription.create` (the plan), each
//! renewal with the paid `invoice.update` (its period and transaction, no
//! plan: the subscription's), refunds with `refund.processed` naming the
//! transaction, a cancellation with `subscription.not_renew` and, at the
//! period's end, `subscription.disable`. Its events
//! have no ids: payhooks derives them from the object and its status.

use payhooks::providers::SampleIds;

use super::{Outline, Simulated, Teller};

pub const PLAN: &str = "PLN_testpro0001";
/// `invoice.update`'s amount, in kobo.
pub const PAID: i64 = 500_000;

/// How this provider tells a story.
pub const SIMULATED: Simulated = Simulated::paid_only(PLAN, PAID, tell);
const FIRST_PERIOD: i64 = 1_766_592_000;

pub fn tell(outline: &Outline, teller: &mut Teller) {
    let (run, index) = (teller.run.clone(), teller.index);
    let mut serial = 0;
    let mut ids = |payment: usize| {
        serial += 1;
        // The event id stands for the invoice code or refund reference.
        SampleIds {
            customer_id: format!("CUS_chaos{run}x{index}"),
            subscription_id: format!("SUB_chaos{run}x{index}"),
            payment_id: format!("T_pay{run}x{index}x{payment}"),
            ..super::ids(format!("T_chaos{run}x{index}x{serial}"))
        }
    };
    teller.send("subscription.create", ids(0), |b| b);
    for (i, refunds) in outline.renewals.iter().enumerate() {
        let k = i + 1;
        let (start, end) = super::period(FIRST_PERIOD, k);
        teller.payments.push((format!("T_pay{run}x{index}x{k}"), super::CREDITS));
        teller.send("invoice.update", ids(k), |b| {
            b.replace(
                "\"period_start\": \"2025-12-24T16:00:00.000Z\"",
                &format!("\"period_start\": \"{}\"", super::rfc3339_millis(start)),
            )
            .replace(
                "\"period_end\": \"2026-01-24T16:00:00.000Z\"",
                &format!("\"period_end\": \"{}\"", super::rfc3339_millis(end)),
            )
        });
        for amount in refunds {
            teller.send("refund.processed", ids(k), |b| {
                b.replace("\"amount\": \"125000\"", &format!("\"amount\": \"{amount}\""))
            });
        }
    }
    if outline.failed_payment {
        teller.send("invoice.payment_failed", ids(0), |b| b);
    }
    if outline.cancelled {
        // Cancelled at the period's end: not renewing, then disabled.
        teller.send("subscription.not_renew", ids(0), |b| b);
        teller.send("subscription.disable", ids(0), |b| b);
    }
}

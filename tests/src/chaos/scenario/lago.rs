//! Lago tells a purchase with `subscription.started`, each renewal with
//! `invoice.payment_status_updated` (succeeded: its fee's period, the
//! invoice as the payment), refunds with `credit_note.created` (its refund
//! amount, the invoice), a cancellation with `subscription.terminated`. The
//! event id travels in the `X-Lago-Unique-Key` header; the account is the
//! external customer id.

use payhooks::providers::SampleIds;

use super::{Outline, Simulated, Teller};

pub const PLAN: &str = "pro_monthly";
/// The invoice's total, in cents.
pub const PAID: i64 = 5880;

/// How this provider tells a story.
pub const SIMULATED: Simulated = Simulated::paid_only(PLAN, PAID, tell);
const FIRST_PERIOD: i64 = 1_773_532_800;

pub fn tell(outline: &Outline, teller: &mut Teller) {
    let (run, index, name) = (teller.run.clone(), teller.index, teller.name.clone());
    let mut serial = 0;
    let mut ids = |payment: usize, refund: usize| {
        serial += 1;
        SampleIds {
            customer_id: name.clone(),
            subscription_id: format!("sub-chaos-{run}-{index}"),
            payment_id: format!("inv-chaos-{run}-{index}-{payment}"),
            refund_id: format!("cn-chaos-{run}-{index}-{payment}-{refund}"),
            ..super::ids(format!("lago-chaos-{run}-{index}-{serial}"))
        }
    };
    teller.send("subscription.started", ids(0, 0), |b| b);
    for (i, refunds) in outline.renewals.iter().enumerate() {
        let k = i + 1;
        let (start, end) = super::period(FIRST_PERIOD, k);
        teller.payments.push((format!("inv-chaos-{run}-{index}-{k}"), super::CREDITS));
        teller.send("invoice.payment_status_updated", ids(k, 0), |b| {
            b.replace("2026-03-15T00:00:00+00:00", &super::rfc3339_millis(start))
                .replace("2026-04-14T23:59:59+00:00", &super::rfc3339_millis(end))
        });
        for (r, amount) in refunds.iter().enumerate() {
            teller.send("credit_note.created", ids(k, r + 1), |b| {
                b.replace("\"refund_amount_cents\": 2940", &format!("\"refund_amount_cents\": {amount}"))
            });
        }
    }
    if outline.failed_payment {
        teller.send("invoice.payment_failure", ids(0, 0), |b| b);
    }
    if outline.cancelled {
        teller.send("subscription.terminated", ids(0, 0), |b| b);
    }
}

//! PayPal tells a purchase with `BILLING.SUBSCRIPTION.ACTIVATED` (the
//! plan), each renewal with `PAYMENT.SALE.COMPLETED` (no plan, no period:
//! one grant per sale, the subscription's plan), refunds with
//! `PAYMENT.SALE.REFUNDED` naming the sale, a suspension and a
//! reactivation with `BILLING.SUBSCRIPTION.SUSPENDED` and `.RE-ACTIVATED`
//! (dated days apart, before any cancellation), a cancellation with
//! `BILLING.SUBSCRIPTION.CANCELLED`. Every delivery is signed anew with
//! the run's certificate.

use payhooks::providers::SampleIds;

use super::{Lifecycle, Outline, Simulated, Teller};

pub const PLAN: &str = "P-5ML4271244454362WXNWU5NQ";
/// A sale's 20.00 USD, in cents.
pub const PAID: i64 = 2000;

/// How this provider tells a story.
pub const SIMULATED: Simulated = Simulated::paid_only(PLAN, PAID, tell).telling(Lifecycle::PAUSING);

pub fn tell(outline: &Outline, teller: &mut Teller) {
    let (run, index) = (teller.run.clone(), teller.index);
    let mut serial = 0;
    let mut ids = |payment: usize, refund: usize| {
        serial += 1;
        SampleIds {
            customer_id: format!("PAYER{index:08}"),
            subscription_id: format!("I-CHAOS{run}X{index}"),
            payment_id: format!("SALE{run}X{index}X{payment}"),
            refund_id: format!("REFUND{run}X{index}X{payment}X{refund}"),
            ..super::ids(format!("WH-CHAOS{run}-{index}-{serial}"))
        }
    };
    teller.send("BILLING.SUBSCRIPTION.ACTIVATED", ids(0, 0), |b| b);
    for (i, refunds) in outline.renewals.iter().enumerate() {
        let k = i + 1;
        teller.payments.push((format!("SALE{run}X{index}X{k}"), super::CREDITS));
        teller.send("PAYMENT.SALE.COMPLETED", ids(k, 0), |b| b);
        for (r, amount) in refunds.iter().enumerate() {
            teller.send("PAYMENT.SALE.REFUNDED", ids(k, r + 1), |b| {
                b.replace(
                    "\"amount\": { \"total\": \"20.00\"",
                    &format!("\"amount\": {{ \"total\": \"{}\"", super::decimal(*amount)),
                )
            });
        }
    }
    if outline.failed_payment {
        teller.send("BILLING.SUBSCRIPTION.PAYMENT.FAILED", ids(0, 0), |b| b);
    }
    if let Some(resumed) = outline.pause {
        teller.send("BILLING.SUBSCRIPTION.SUSPENDED", ids(0, 0), |b| b);
        if resumed {
            teller.send("BILLING.SUBSCRIPTION.RE-ACTIVATED", ids(0, 0), |b| b);
        } else {
            teller.open_status = "suspended";
        }
    }
    if outline.cancelled {
        teller.send("BILLING.SUBSCRIPTION.CANCELLED", ids(0, 0), |b| b);
    }
}

//! Lago tells a purchase with `subscription.started`, each renewal with
//! `invoice.payment_status_updated` (succeeded: its fee's period, the
//! invoice as the payment), refunds with `credit_note.created` (its refund
//! amount, the invoice), a cancellation with `subscription.terminated`. An
//! upgrade from Pro to Team halfway through a paid period is told as Lago
//! bills it: a new subscription under the same external id
//! (`subscription.started` naming the previous plan), its first invoice
//! billing Team for the half left (the fee's share of Team's price), and a
//! credit note giving back Pro's unused half of the period's invoice; later
//! periods bill Team. The event id travels in the `X-Lago-Unique-Key`
//! header; the account is the external customer id.

use payhooks::providers::SampleIds;

use super::{Lifecycle, Outline, Simulated, Teller, Upgrade};

pub const PLAN: &str = "pro_monthly";
/// The invoice's total, in cents.
pub const PAID: i64 = 5880;

/// How this provider tells a story.
pub const SIMULATED: Simulated =
    Simulated::paid_only(PLAN, PAID, tell).telling(Lifecycle { upgrade: Some(UPGRADE), ..Lifecycle::PAID_ONLY });
/// Team for 250 credits at 11,880 with tax: halfway through a period, its
/// first invoice bills half of Team's price (125 credits) and the credit
/// note gives back half of Pro's invoice (a claw-back of 50).
const UPGRADE: Upgrade = Upgrade { plan: "team_monthly", credits: 250, paid: 11_880, top_up: 125, credited: 2940 };
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
    let dated = |b: String, start: i64, end: i64| {
        b.replace("2026-03-15T00:00:00+00:00", &super::rfc3339_millis(start))
            .replace("2026-04-14T23:59:59+00:00", &super::rfc3339_millis(end))
    };
    // A period on Team bills Team's whole price.
    let on_team = |b: String| {
        b.replace(PLAN, UPGRADE.plan)
            .replace("5880", "11880")
            .replace("4900", "9900")
            .replace("\"taxes_amount_cents\": 980", "\"taxes_amount_cents\": 1980")
    };
    teller.send("subscription.started", ids(0, 0), |b| b);
    for (i, refunds) in outline.renewals.iter().enumerate() {
        let k = i + 1;
        let (start, end) = super::period(FIRST_PERIOD, k);
        let (credits, _) = outline.terms(i, SIMULATED.lifecycle, PAID);
        teller.payments.push((format!("inv-chaos-{run}-{index}-{k}"), credits));
        let team = outline.upgraded(i);
        teller.send("invoice.payment_status_updated", ids(k, 0), |b| {
            let b = dated(b, start, end);
            if team { on_team(b) } else { b }
        });
        for (r, amount) in refunds.iter().enumerate() {
            teller.send("credit_note.created", ids(k, r + 1), |b| {
                b.replace("\"refund_amount_cents\": 2940", &format!("\"refund_amount_cents\": {amount}"))
            });
        }
        if outline.upgrade == Some(i) {
            let half = start + (end - start) / 2;
            let (change, until) = (super::rfc3339_millis(half), super::rfc3339_millis(end));
            teller.send("subscription.started.upgrade", ids(0, 0), |b| {
                b.replace("2026-03-30T11:02:41.317Z", &change)
                    .replace("2026-03-30T00:00:00Z", &change)
                    .replace("2026-04-14T23:59:59Z", &until)
            });
            teller.payments.push((format!("inv-chaos-{run}-{index}-{k}_upgrade"), UPGRADE.top_up));
            teller.send("invoice.payment_status_updated.upgrade", ids(k, 0), |b| {
                b.replace("2026-03-30T00:00:00+00:00", &change)
                    .replace("2026-04-14T23:59:59+00:00", &until)
                    .replace("5110", "4950")
                    .replace("6132", "5940")
                    .replace("1022", "990")
            });
            teller.send("credit_note.created.upgrade", ids(k, 0), |b| b.replace("3035", &UPGRADE.credited.to_string()));
        }
    }
    if outline.failed_payment {
        teller.send("invoice.payment_failure", ids(0, 0), |b| b);
    }
    if outline.cancelled {
        // Dated after every change the story told.
        let (ended, _) = super::period(FIRST_PERIOD, outline.renewals.len() + 1);
        teller.send("subscription.terminated", ids(0, 0), |b| {
            b.replace("2026-04-02T17:45:10Z", &super::rfc3339_millis(ended))
        });
    }
}

//! Stripe tells a renewal with the subscription's period roll (often; always
//! when the charge fails), its invoice, and the invoice payment that links
//! the payment intent; a failed charge with `invoice.payment_failed`, and a
//! trial with its $0 first invoice. Refunds name the payment intent; some
//! fail after they were created; some payments are disputed, won or lost.
//! Accounts are customers (no explicit account).

use payhooks::providers::SampleIds;

use super::{Charge, Lifecycle, Outline, Simulated, Teller};

pub const PLAN: &str = "price_1TestPlanPro";
pub const PAID: i64 = 2000;

/// How this provider tells a story.
pub const SIMULATED: Simulated = Simulated {
    plan: PLAN,
    paid: PAID,
    trial: true,
    lifecycle: Lifecycle { failed_charges: true, failed_refunds: true, disputes: true },
    name: customer,
    rewrite: without_explicit_account,
    tell,
};
const FIRST_PERIOD: i64 = 1_766_592_000;
/// The refund number a renewal's dispute is named by (`du_` + that id).
const DISPUTE: usize = 99;

pub fn customer(run: &str, index: usize) -> String {
    format!("cus_chaos_{run}_{index}")
}

/// Without the samples' explicit account, the customer id is the account.
pub fn without_explicit_account(body: String, _name: &str) -> String {
    body.replace("\"account_id\": \"acct-demo-001\"", "\"note\": \"none\"")
        .replace("\"client_reference_id\": \"acct-demo-001\"", "\"client_reference_id\": null")
}

pub fn tell(outline: &Outline, teller: &mut Teller) {
    let (run, index, name) = (teller.run.clone(), teller.index, teller.name.clone());
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
    let same = |b: String| b;
    if outline.trial {
        teller.send("customer.subscription.created", ids(0, 0), same);
        // The trial's first invoice: paid, with nothing.
        teller.send("invoice.paid", ids(0, 0), |b| b.replace("\"amount_paid\": 2000", "\"amount_paid\": 0"));
    }
    teller.send("checkout.session.completed", ids(0, 0), same);
    for (i, (refunds, charge)) in outline.renewals.iter().zip(&outline.charges).enumerate() {
        let k = i + 1;
        let (start, end) = super::period(FIRST_PERIOD, k);
        let period = move |body: String| {
            body.replace("\"start\": 1766592000", &format!("\"start\": {start}"))
                .replace("\"end\": 1769270400", &format!("\"end\": {end}"))
                .replacen("\"current_period_start\": 1766592000", &format!("\"current_period_start\": {start}"), 1)
                .replacen("\"current_period_end\": 1769270400", &format!("\"current_period_end\": {end}"), 1)
        };
        // Stripe rolls the period about an hour before it charges; a
        // charge that fails leaves the roll standing.
        if outline.period_rolls[i] || *charge != Charge::Paid {
            teller.send("customer.subscription.updated", ids(k, 0), period);
        }
        if *charge != Charge::Paid {
            teller.send("invoice.payment_failed", ids(k, 0), same);
        }
        if !charge.paid() {
            continue;
        }
        teller.send("invoice.payment_succeeded", ids(k, 0), period);
        teller.send("invoice_payment.paid", ids(k, 0), same);
        for (r, (amount, fails)) in refunds.iter().zip(&outline.failed_refunds[i]).enumerate() {
            let amount = move |b: String| b.replace("\"amount\": 500", &format!("\"amount\": {amount}"));
            teller.send("refund.created", ids(k, r + 1), amount);
            if *fails {
                teller.send("refund.failed", ids(k, r + 1), amount);
            }
        }
        // The samples dispute the whole 2000 paid.
        if let Some(won) = outline.disputes[i] {
            teller.send("charge.dispute.funds_withdrawn", ids(k, DISPUTE), same);
            if won {
                teller.send("charge.dispute.funds_reinstated", ids(k, DISPUTE), same);
            }
        }
    }
    if outline.failed_payment {
        teller.send("invoice.payment_failed", ids(0, 0), same);
    }
    if outline.cancelled {
        teller.send("customer.subscription.deleted", ids(0, 0), same);
    }
}

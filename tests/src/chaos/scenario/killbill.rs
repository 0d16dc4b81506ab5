//! Kill Bill's notifications name objects and little else: a purchase is
//! `SUBSCRIPTION_CREATION`, a renewal `INVOICE_PAYMENT_SUCCESS` (the invoice
//! and its payment), a refund the payment's `PAYMENT_SUCCESS` of type
//! REFUND, a cancellation `SUBSCRIPTION_CANCEL`. The plan, the periods, the
//! refunded amounts and the subscription's dates come from its API, so the
//! story also writes what the API answers: the subscription as it ends (a
//! late creation finds it cancelled), each invoice, each payment's refunds.

use payhooks::providers::SampleIds;
use serde_json::{Value, json};

use super::{Outline, Simulated, Teller};

pub const PLAN: &str = "pro-monthly";
/// The notification's 19.99 EUR, in cents.
pub const PAID: i64 = 1999;

/// How this provider tells a story.
pub const SIMULATED: Simulated = Simulated::paid_only(PLAN, PAID, tell);
const FIRST_PERIOD: i64 = 1_766_592_000;

fn date(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix).expect("a time").date().to_string()
}

pub fn tell(outline: &Outline, teller: &mut Teller) {
    let (run, index, name) = (teller.run.clone(), teller.index, teller.name.clone());
    let subscription = format!("kb-sub-{run}-{index}");
    let mut serial = 0;
    let mut ids = |payment: usize| {
        serial += 1;
        SampleIds {
            customer_id: name.clone(),
            subscription_id: subscription.clone(),
            payment_id: format!("kb-pay-{run}-{index}-{payment}"),
            // The invoice, refund transaction or bundle the event is about.
            ..super::ids(format!("kb-{run}-{index}-{serial}"))
        }
    };
    let mut state = json!({"accountId": name, "state": "ACTIVE", "planName": PLAN, "startDate": "2025-11-24"});
    if outline.cancelled {
        state["state"] = json!("CANCELLED");
        state["cancelledDate"] = json!("2026-02-01");
    }
    teller.api.push((format!("subscriptions/{subscription}"), state));
    teller.send("SUBSCRIPTION_CREATION", ids(0), |b| b);
    let invoice = |balance: Value, k: usize| {
        let (start, end) = super::period(FIRST_PERIOD, k);
        json!({"accountId": name, "balance": balance, "currency": "EUR", "items": [{
            "itemType": "RECURRING", "startDate": date(start), "endDate": date(end),
            "planName": PLAN, "subscriptionId": subscription}]})
    };
    for (i, refunds) in outline.renewals.iter().enumerate() {
        let k = i + 1;
        let renewal = ids(k);
        teller.api.push((format!("invoices/{}?withItems=true", renewal.event_id), invoice(json!(0), k)));
        let payment = renewal.payment_id.clone();
        teller.send("INVOICE_PAYMENT_SUCCESS", renewal, |b| b);
        let mut transactions =
            vec![json!({"transactionId": format!("{payment}-capture"), "transactionType": "PURCHASE",
                                            "status": "SUCCESS", "amount": "19.99", "currency": "EUR"})];
        for amount in refunds {
            let refund = ids(k);
            transactions.push(json!({"transactionId": refund.event_id, "transactionType": "REFUND",
                                     "status": "SUCCESS", "amount": super::decimal(*amount), "currency": "EUR"}));
            teller.send("PAYMENT_SUCCESS.refund", refund, |b| b);
        }
        teller.api.push((format!("payments/{payment}"), json!({"accountId": name, "transactions": transactions})));
    }
    if outline.failed_payment {
        let failed = ids(0);
        teller.api.push((
            format!("invoices/{}?withItems=true", failed.event_id),
            invoice(json!(19.99), outline.renewals.len() + 1),
        ));
        teller.send("INVOICE_PAYMENT_FAILED", failed, |b| b);
    }
    if outline.cancelled {
        teller.send("SUBSCRIPTION_CANCEL", ids(0), |b| b);
    }
}

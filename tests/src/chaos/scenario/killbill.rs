//! Kill Bill's notifications name objects and little else: a purchase is
//! `SUBSCRIPTION_CREATION`, a renewal `INVOICE_PAYMENT_SUCCESS` (the invoice
//! and its payment), a refund the payment's `PAYMENT_SUCCESS` of type
//! REFUND, a cancellation `SUBSCRIPTION_CANCEL`. The plan, the periods, the
//! refunded amounts and the subscription's dates come from its API, so the
//! story also writes what the API answers: the subscription as it ends (a
//! late creation finds it cancelled), each invoice, each payment's refunds.
//! An upgrade from Pro to Team halfway through a paid period is the
//! change's invoice as Kill Bill bills it: a `REPAIR_ADJ` giving back the
//! Pro item's unused half (linked to that item, read from the invoice that
//! holds it) and a `RECURRING` Team item for the half left, prorated from
//! its rate; later periods bill Team. The change itself is a
//! `SUBSCRIPTION_CHANGE` naming the subscription, whose `CHANGE` event (in
//! the API's answer) says when and to what. The subscription's dates are
//! instants, as Kill Bill writes them.

use payhooks::providers::SampleIds;
use serde_json::{Value, json};

use super::{Lifecycle, Outline, Simulated, Teller, Upgrade};

pub const PLAN: &str = "pro-monthly";
/// The notification's 19.99 EUR, in cents.
pub const PAID: i64 = 1999;

/// How this provider tells a story.
pub const SIMULATED: Simulated =
    Simulated::paid_only(PLAN, PAID, tell).telling(Lifecycle { upgrade: Some(UPGRADE), ..Lifecycle::PAID_ONLY });
/// Team for 250 credits at 49.99: the change's invoice bills half of its
/// rate and tops the period up by half of 150.
const UPGRADE: Upgrade = Upgrade { plan: "team-monthly", credits: 250, paid: 4999, top_up: 75, credited: 0 };
const FIRST_PERIOD: i64 = 1_766_592_000;

fn date(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix).expect("a time").date().to_string()
}

/// An instant as Kill Bill's API writes a `DateTime`.
fn instant(unix: i64) -> String {
    super::rfc3339_millis(unix)
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
    let started = FIRST_PERIOD - 30 * 86_400;
    let mut events = vec![json!({"eventType": "START_BILLING", "effectiveDate": instant(started), "plan": PLAN})];
    if let Some(at) = outline.upgrade {
        let (start, end) = super::period(FIRST_PERIOD, at + 1);
        events.push(json!({"eventType": "CHANGE", "effectiveDate": instant(start + (end - start) / 2),
                           "plan": UPGRADE.plan}));
    }
    let plan = if outline.upgraded(outline.renewals.len()) { UPGRADE.plan } else { PLAN };
    teller.plan = Some(plan);
    let mut state = json!({"accountId": name, "state": "ACTIVE", "planName": plan, "startDate": instant(started),
                           "events": events});
    if outline.cancelled {
        // After every period the story pays for.
        state["state"] = json!("CANCELLED");
        state["cancelledDate"] = json!(instant(FIRST_PERIOD + 6 * super::PERIOD_SECS));
    }
    teller.api.push((format!("subscriptions/{subscription}"), state));
    teller.send("SUBSCRIPTION_CREATION", ids(0), |b| b);
    let item = |k: usize, plan: &str, rate: &str| {
        let (start, end) = super::period(FIRST_PERIOD, k);
        json!({"invoiceItemId": format!("kb-item-{run}-{index}-{k}"), "itemType": "RECURRING",
               "startDate": date(start), "endDate": date(end), "planName": plan, "subscriptionId": subscription,
               "amount": rate, "rate": rate})
    };
    let invoice = |balance: Value, items: Vec<Value>| json!({"accountId": name, "balance": balance, "currency": "EUR", "items": items});
    let plan_of = |i: usize| if outline.upgraded(i) { (UPGRADE.plan, "49.99") } else { (PLAN, "19.99") };
    for (i, refunds) in outline.renewals.iter().enumerate() {
        let k = i + 1;
        let renewal = ids(k);
        let (plan, rate) = plan_of(i);
        let (credits, _) = outline.terms(i, SIMULATED.lifecycle, PAID);
        let billed = item(k, plan, rate);
        teller
            .api
            .push((format!("invoices/{}?withItems=true", renewal.event_id), invoice(json!(0), vec![billed.clone()])));
        let payment = renewal.payment_id.clone();
        teller.payments.push((payment.clone(), credits));
        teller.send("INVOICE_PAYMENT_SUCCESS", renewal, |b| {
            b.replace("\\\"amount\\\":19.99", &format!("\\\"amount\\\":{rate}"))
        });
        if outline.upgrade == Some(i) {
            let (start, end) = super::period(FIRST_PERIOD, k);
            let half = date(start + (end - start) / 2);
            let change = SampleIds { payment_id: format!("{payment}-upgrade"), ..ids(k) };
            let repair = json!({"invoiceItemId": format!("kb-repair-{run}-{index}-{k}"), "itemType": "REPAIR_ADJ",
                                "linkedInvoiceItemId": billed["invoiceItemId"], "startDate": half,
                                "endDate": date(end), "amount": "-10.00"});
            let team = json!({"invoiceItemId": format!("kb-item-{run}-{index}-{k}-upgrade"), "itemType": "RECURRING",
                              "startDate": half, "endDate": date(end), "planName": UPGRADE.plan,
                              "subscriptionId": subscription, "amount": "25.00", "rate": "50.00"});
            teller
                .api
                .push((format!("invoices/{}?withItems=true", change.event_id), invoice(json!(0), vec![repair, team])));
            teller.api.push((
                format!("invoices/byItemId/{}", billed["invoiceItemId"].as_str().expect("an id")),
                invoice(json!(0), vec![billed.clone()]),
            ));
            teller.payments.push((change.payment_id.clone(), UPGRADE.top_up));
            teller
                .send("INVOICE_PAYMENT_SUCCESS", change, |b| b.replace("\\\"amount\\\":19.99", "\\\"amount\\\":15.00"));
            teller.send("SUBSCRIPTION_CHANGE", ids(0), |b| b);
        }
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
            invoice(json!(19.99), vec![item(outline.renewals.len() + 1, plan_of(outline.renewals.len()).0, "19.99")]),
        ));
        teller.send("INVOICE_PAYMENT_FAILED", failed, |b| b);
    }
    if outline.cancelled {
        teller.send("SUBSCRIPTION_CANCEL", ids(0), |b| b);
    }
}

//! What Kill Bill's API answers about its samples' objects, so the local
//! server can confirm a sample as the processor confirms a real
//! notification (`trigger killbill …` uploads them before it sends). One
//! customer's story: subscribed to Pro on 2025-11-24, the period from
//! 2025-12-24 paid (19.99 EUR), 5.00 of it refunded, changed to Team
//! halfway through that period (Kill Bill repairs Pro's unused half and
//! bills Team's half on the change's invoice), then cancelled. Invoice items'
//! dates are days; a subscription's dates are instants.

use serde_json::{Value, json};

use crate::providers::SampleIds;

/// The samples' plans, as Kill Bill's catalog names them.
pub const PRO: &str = "pro-monthly";
pub const TEAM: &str = "team-monthly";

const STARTED: &str = "2025-11-24T16:00:00.000Z";
const CHANGED: &str = "2026-01-08T16:00:00.000Z";
const CANCELLED: &str = "2026-01-20T10:00:00.000Z";

/// The objects (path under `/1.0/kb/` → JSON) confirming `sample` filled
/// with `ids`: nothing for a sample that names none.
pub fn objects(sample: &str, ids: &SampleIds) -> Vec<(String, Value)> {
    let account = &ids.customer_id;
    let invoice_path = format!("invoices/{}?withItems=true", ids.event_id);
    let subscription = |state: &str, plan: &str, changed: bool| {
        let mut events = vec![json!({"eventType": "START_BILLING", "effectiveDate": STARTED, "plan": PRO})];
        if changed {
            events.push(json!({"eventType": "CHANGE", "effectiveDate": CHANGED, "plan": TEAM}));
        }
        let mut subscription = json!({"accountId": account, "subscriptionId": ids.subscription_id, "state": state,
                                      "planName": plan, "startDate": STARTED, "events": events});
        if state == "CANCELLED" {
            subscription["cancelledDate"] = json!(CANCELLED);
        }
        (format!("subscriptions/{}", ids.subscription_id), subscription)
    };
    let invoice = |balance: &str, items: Vec<Value>| json!({"accountId": account, "balance": balance, "currency": "EUR", "items": items});
    let item =
        |id: String, item_type: &str, plan: Option<&str>, dates: (&str, &str), amount: &str, rate: Option<&str>| {
            json!({"invoiceItemId": id, "itemType": item_type, "planName": plan, "subscriptionId": ids.subscription_id,
               "startDate": dates.0, "endDate": dates.1, "amount": amount, "rate": rate})
        };
    // The paid period's item, which the change repairs.
    let paid_item = format!("item-{}", ids.payment_id);
    let paid_period =
        item(paid_item.clone(), "RECURRING", Some(PRO), ("2025-12-24", "2026-01-24"), "19.99", Some("19.99"));
    match sample {
        "SUBSCRIPTION_CREATION" => vec![subscription("ACTIVE", PRO, false)],
        "SUBSCRIPTION_CHANGE" => vec![subscription("ACTIVE", TEAM, true)],
        "SUBSCRIPTION_CANCEL" => vec![subscription("CANCELLED", TEAM, true)],
        "INVOICE_PAYMENT_SUCCESS" => {
            let paid = invoice("0", vec![paid_period]);
            vec![(invoice_path, paid.clone()), (format!("invoices/byItemId/{paid_item}"), paid)]
        }
        "INVOICE_PAYMENT_SUCCESS.upgrade" => {
            let mut repair = item(
                format!("repair-{}", ids.event_id),
                "REPAIR_ADJ",
                None,
                ("2026-01-08", "2026-01-24"),
                "-10.00",
                None,
            );
            repair["linkedInvoiceItemId"] = json!(paid_item);
            let team = item(
                format!("item-{}", ids.event_id),
                "RECURRING",
                Some(TEAM),
                ("2026-01-08", "2026-01-24"),
                "25.00",
                Some("49.99"),
            );
            vec![
                (invoice_path, invoice("0", vec![repair, team])),
                (format!("invoices/byItemId/{paid_item}"), invoice("0", vec![paid_period])),
            ]
        }
        "INVOICE_PAYMENT_FAILED" => {
            let next = item(
                format!("item-{}", ids.event_id),
                "RECURRING",
                Some(PRO),
                ("2026-01-24", "2026-02-24"),
                "19.99",
                Some("19.99"),
            );
            vec![(invoice_path, invoice("19.99", vec![next]))]
        }
        "PAYMENT_SUCCESS.refund" => {
            let transactions = [
                json!({"transactionId": format!("capture-{}", ids.payment_id), "transactionType": "PURCHASE",
                       "status": "SUCCESS", "amount": "19.99", "currency": "EUR"}),
                json!({"transactionId": ids.event_id, "transactionType": "REFUND", "status": "SUCCESS",
                       "amount": "5.00", "currency": "EUR"}),
            ];
            vec![(format!("payments/{}", ids.payment_id), json!({"accountId": account, "transactions": transactions}))]
        }
        _ => Vec::new(),
    }
}

//! Stripe tells a renewal with the subscription's period roll (often; always
//! when the charge fails), its invoice, and the invoice payment that links
//! the payment intent; a failed charge with `invoice.payment_failed`, and a
//! trial with its $0 first invoice. Refunds name the payment intent; some
//! fail after they were created; some payments are disputed, won or lost.
//! Some subscriptions are upgraded from Pro to Team halfway through a paid
//! period, its prorations invoiced at once; later periods bill Team, until
//! a downgrade back to Pro halfway through a later period (no proration: Pro
//! bills from the next period). A trial may end unpaid: Stripe pauses the
//! subscription and nothing is ever charged. Some customers buy a second
//! subscription on the same billing anchor and keep it, whatever becomes of
//! the first; some buy credit packs on one-off invoices.
//! Accounts are customers (no explicit account).

use payhooks::providers::SampleIds;

use serde_json::{Value, json};

use super::{Charge, CreditPack, Lifecycle, Outline, Simulated, Teller, Upgrade, edited};

pub const PLAN: &str = "price_1TestPlanPro";
pub const PAID: i64 = 2000;
/// Team for 250 credits at 5,000: halfway through a period, the upgrade
/// charges 1,500 and tops the period up by half of 150.
const UPGRADE: Upgrade = Upgrade { plan: "price_1TestPlanTeam", credits: 250, paid: 5000, top_up: 75, credited: 0 };
/// 40 credits for 10.00.
const PACK: CreditPack = CreditPack { plan: "price_1TestPack40", credits: 40, paid: 1000 };

/// How this provider tells a story.
pub const SIMULATED: Simulated = Simulated {
    plan: PLAN,
    paid: PAID,
    trial: true,
    lifecycle: Lifecycle {
        failed_charges: true,
        failed_refunds: true,
        disputes: true,
        upgrade: Some(UPGRADE),
        downgrade: true,
        lapsing_trials: true,
        credit_pack: Some(PACK),
        second_subscription: true,
        second_plan: None,
        pauses: false,
    },
    name: customer,
    rewrite: without_explicit_account,
    tell,
};
const FIRST_PERIOD: i64 = 1_766_592_000;
/// The refund number a renewal's dispute is named by (`du_` + that id).
const DISPUTE: usize = 99;

/// The upgrade halfway through the period `start..end`, as the samples
/// tell it: the subscription's change, then its own invoice of prorations.
fn upgrade(teller: &mut Teller, [change, invoice]: [SampleIds; 2], start: i64, end: i64) {
    let half = start + (end - start) / 2;
    let times = move |body: String| {
        body.replace("1767931200", &half.to_string())
            .replace("1767931202", &(half + 2).to_string())
            .replace("\"end\": 1769270400", &format!("\"end\": {end}"))
            .replace("\"current_period_start\": 1766592000", &format!("\"current_period_start\": {start}"))
            .replace("\"current_period_end\": 1769270400", &format!("\"current_period_end\": {end}"))
    };
    teller.send("customer.subscription.updated.upgrade", change, times);
    teller.send("invoice.paid.upgrade", invoice, times);
}

/// The downgrade from Team back to Pro halfway through the period
/// `start..end`, with nothing invoiced: the change's sample, told the other
/// way round.
fn downgrade(teller: &mut Teller, change: SampleIds, start: i64, end: i64) {
    let half = start + (end - start) / 2;
    teller.send("customer.subscription.updated.upgrade", change, move |body: String| {
        let swap = |body: String, a: &str, b: &str| body.replace(a, "\u{0}").replace(b, a).replace('\u{0}', b);
        let body = swap(body, PLAN, UPGRADE.plan);
        let body = swap(body, "\"unit_amount\": 2000", "\"unit_amount\": 5000");
        swap(body, "\"unit_amount_decimal\": \"2000\"", "\"unit_amount_decimal\": \"5000\"")
            .replace("1767931200", &half.to_string())
            .replace("\"current_period_start\": 1766592000", &format!("\"current_period_start\": {start}"))
            .replace("\"current_period_end\": 1769270400", &format!("\"current_period_end\": {end}"))
    });
}

/// A trial that ends unpaid: its $0 invoice, then the subscription paused
/// at the trial's end (no payment method), maybe cancelled later.
fn lapse(outline: &Outline, teller: &mut Teller, mut ids: impl FnMut() -> SampleIds) {
    let subscription = ids().subscription_id;
    teller.send("customer.subscription.created", ids(), |b| b);
    teller.send("invoice.paid", ids(), |b| b.replace("\"amount_paid\": 2000", "\"amount_paid\": 0"));
    teller.send("customer.subscription.updated", ids(), |b| {
        edited(b, |v| {
            v["created"] = json!(1_765_209_601);
            v["data"]["object"]["status"] = json!("paused");
        })
    });
    teller.open_status = "paused";
    if outline.cancelled {
        teller.send("customer.subscription.deleted", ids(), |b| b);
    }
    teller.subscriptions.push((subscription, true));
}

/// A credit pack bought on a one-off invoice: no subscription, an invoice
/// item's line for the pack's price.
fn credit_pack(teller: &mut Teller, ids: SampleIds) {
    teller.payments.push((ids.payment_id.clone(), PACK.credits));
    teller.send("invoice.paid", ids, |b| {
        edited(b.replace(PLAN, PACK.plan), |v| {
            let invoice = &mut v["data"]["object"];
            invoice["parent"] = Value::Null;
            invoice["billing_reason"] = json!("manual");
            invoice["amount_paid"] = json!(PACK.paid);
            let line = &mut invoice["lines"]["data"][0];
            line["amount"] = json!(PACK.paid);
            line["parent"] = json!({"type": "invoice_item_details", "invoice_item_details": {"invoice_item": "ii_1"}});
        })
    });
}

/// A second subscription of the same customer, bought with a checkout and
/// paid for `outline.second` periods on the first one's billing anchor.
fn second_subscription(outline: &Outline, teller: &mut Teller) {
    let (run, index, name) = (teller.run.clone(), teller.index, teller.name.clone());
    let subscription = format!("sub_chaos_{run}_{index}_b");
    let ids = |serial: usize, payment: usize| SampleIds {
        event_id: format!("evt_chaos_{run}_{index}_b{serial}"),
        customer_id: name.clone(),
        subscription_id: subscription.clone(),
        payment_id: format!("in_chaos_{run}_{index}_b{payment}"),
        payment_alias_id: format!("pi_chaos_{run}_{index}_b{payment}"),
        refund_id: format!("re_chaos_{run}_{index}_b{payment}"),
    };
    teller.send("checkout.session.completed", ids(0, 0), |b| b);
    for k in 1..=outline.second {
        let (start, end) = super::period(FIRST_PERIOD, k);
        let period = move |body: String| {
            body.replace("\"start\": 1766592000", &format!("\"start\": {start}"))
                .replace("\"end\": 1769270400", &format!("\"end\": {end}"))
        };
        teller.payments.push((format!("in_chaos_{run}_{index}_b{k}"), super::CREDITS));
        teller.send("invoice.payment_succeeded", ids(2 * k - 1, k), period);
        teller.send("invoice_payment.paid", ids(2 * k, k), |b| b);
    }
    teller.subscriptions.push((subscription, false));
}

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
    if outline.lapsed {
        return lapse(outline, teller, || ids(0, 0));
    }
    if outline.trial {
        teller.send("customer.subscription.created", ids(0, 0), same);
        // The trial's first invoice: paid, with nothing.
        teller.send("invoice.paid", ids(0, 0), |b| b.replace("\"amount_paid\": 2000", "\"amount_paid\": 0"));
    }
    teller.send("checkout.session.completed", ids(0, 0), same);
    for pack in 1..=outline.packs {
        credit_pack(teller, SampleIds { payment_id: format!("in_chaos_{run}_{index}_pack{pack}"), ..ids(0, 0) });
    }
    for (i, (refunds, charge)) in outline.renewals.iter().zip(&outline.charges).enumerate() {
        let k = i + 1;
        let (start, end) = super::period(FIRST_PERIOD, k);
        let (credits, paid) = outline.terms(i, SIMULATED.lifecycle, PAID);
        // After the upgrade, periods bill Team: its price, what it pays.
        let plan = move |body: String| {
            if paid == PAID {
                return body;
            }
            body.replace(PLAN, UPGRADE.plan)
                .replace("\"amount_paid\": 2000", &format!("\"amount_paid\": {paid}"))
                .replace("\"amount\": 2000", &format!("\"amount\": {paid}"))
        };
        let period = move |body: String| {
            plan(body)
                .replace("\"start\": 1766592000", &format!("\"start\": {start}"))
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
        teller.payments.push((format!("in_chaos_{run}_{index}_{k}"), credits));
        teller.send("invoice.payment_succeeded", ids(k, 0), period);
        teller.send("invoice_payment.paid", ids(k, 0), same);
        for (r, (amount, fails)) in refunds.iter().zip(&outline.failed_refunds[i]).enumerate() {
            let amount = move |b: String| b.replace("\"amount\": 500", &format!("\"amount\": {amount}"));
            teller.send("refund.created", ids(k, r + 1), amount);
            if *fails {
                teller.send("refund.failed", ids(k, r + 1), amount);
            }
        }
        // A dispute is of the whole payment.
        if let Some(won) = outline.disputes[i] {
            teller.send("charge.dispute.funds_withdrawn", ids(k, DISPUTE), plan);
            if won {
                teller.send("charge.dispute.funds_reinstated", ids(k, DISPUTE), plan);
            }
        }
        if outline.upgrade == Some(i) {
            teller.payments.push((format!("in_chaos_{run}_{index}_{k}_upgrade"), UPGRADE.top_up));
            upgrade(teller, [ids(k, 0), ids(k, 0)], start, end);
        }
        if outline.downgrade == Some(i) {
            downgrade(teller, ids(k, 0), start, end);
        }
    }
    if outline.failed_payment {
        teller.send("invoice.payment_failed", ids(0, 0), same);
    }
    teller.subscriptions.push((format!("sub_chaos_{run}_{index}"), outline.cancelled));
    if outline.second > 0 {
        second_subscription(outline, teller);
    }
    // The checkout names no price: the plan is known once a subscription
    // event newer than it was told (a roll, the upgrade, the cancellation).
    let rolled = (0..outline.renewals.len()).any(|i| outline.period_rolls[i] || outline.charges[i] != Charge::Paid);
    // With a second subscription, the account's entitlement is either.
    let plan = if outline.upgraded(outline.renewals.len()) { UPGRADE.plan } else { PLAN };
    if outline.second == 0 && (rolled || outline.upgrade.is_some() || outline.cancelled) {
        teller.plan = Some(plan);
    }
    if outline.cancelled {
        // Cancelled after the last period's plan change, if any.
        let (_, last_end) = super::period(FIRST_PERIOD, outline.renewals.len());
        let at = (last_end + 2).max(1_771_948_802);
        let after =
            move |b: String| b.replace("\"created\": 1771948802", &format!("\"created\": {at}")).replace(PLAN, plan);
        teller.send("customer.subscription.deleted", ids(0, 0), after);
    }
}

//! Flutterwave (v3) tells a one-off payment with a `charge.completed`
//! without a payment plan (two accounts in three), each renewal with one
//! naming the plan (its first paid charge starts the subscription; no
//! period: one grant per transaction), refunds with its refund object
//! naming the transaction, a cancellation with `subscription.cancelled`
//! (naming the plan). Some customers also subscribe to a second payment
//! plan, and keep it whatever becomes of the first. Its ids are numbers;
//! its events have none of their own (derived by payhooks).

use payhooks::providers::SampleIds;

use super::{Lifecycle, Outline, Simulated, Teller};

/// The samples' payment plan id.
pub const PLAN: &str = "3807";
/// A renewal's 25,000 NGN, in kobo.
pub const PAID: i64 = 2_500_000;
/// The second payment plan some customers subscribe to.
const SECOND_PLAN: &str = "3809";

/// How this provider tells a story.
pub const SIMULATED: Simulated = Simulated::paid_only(PLAN, PAID, tell).telling(Lifecycle {
    second_subscription: true,
    second_plan: Some(SECOND_PLAN),
    ..Lifecycle::PAID_ONLY
});

/// A number unique to this run, account and `n`, in a `kind` of id.
fn number(run: &str, index: usize, kind: u64, n: usize) -> String {
    let run: u64 = run.bytes().fold(0, |acc, b| (acc * 31 + u64::from(b)) % 1000);
    format!("{kind}{index:07}{run:03}{n:03}")
}

pub fn tell(outline: &Outline, teller: &mut Teller) {
    let (run, index) = (teller.run.clone(), teller.index);
    let mut serial = 0;
    let mut ids = |payment: usize| {
        serial += 1;
        SampleIds {
            customer_id: number(&run, index, 2, 0),
            subscription_id: number(&run, index, 3, 0),
            payment_id: number(&run, index, 4, payment),
            ..super::ids(number(&run, index, 1, serial))
        }
    };
    if index % 3 != 0 {
        teller.send("charge.completed", ids(0), |b| b);
    }
    for (i, refunds) in outline.renewals.iter().enumerate() {
        let k = i + 1;
        let renewal = ids(k);
        teller.payments.push((renewal.payment_id.clone(), super::CREDITS));
        teller.send("charge.completed.renewal", renewal, |b| b);
        for amount in refunds {
            // Refunds are in naira, whole here.
            teller.send("refund.completed", ids(k), |b| {
                b.replace("\"AmountRefunded\": 5000", &format!("\"AmountRefunded\": {}", amount / 100))
            });
        }
    }
    if outline.failed_payment {
        teller.send("charge.completed.failed", ids(0), |b| b);
    }
    if outline.cancelled {
        teller.send("subscription.cancelled", ids(0), |b| b);
    }
    if outline.second > 0 {
        second_subscription(outline, teller);
    }
}

/// The customer's subscription to a second payment plan, paid for
/// `outline.second` times and kept: the first one's cancellation names its
/// own plan, so the account stays entitled by the second.
fn second_subscription(outline: &Outline, teller: &mut Teller) {
    let (run, index) = (teller.run.clone(), teller.index);
    // The first plan's subscription exists once a charge or a cancellation
    // named it.
    if !outline.renewals.is_empty() || outline.cancelled {
        teller.subscriptions.push((format!("plan-{PLAN}"), outline.cancelled));
    }
    for k in 1..=outline.second {
        let charge = SampleIds {
            customer_id: number(&run, index, 2, 0),
            payment_id: number(&run, index, 5, k),
            ..super::ids(number(&run, index, 6, k))
        };
        teller.payments.push((charge.payment_id.clone(), super::CREDITS));
        teller.send("charge.completed.renewal", charge, |b| {
            b.replace(&format!("\"payment_plan\": {PLAN}"), &format!("\"payment_plan\": {SECOND_PLAN}"))
        });
    }
    teller.subscriptions.push((format!("plan-{SECOND_PLAN}"), false));
    teller.open_status = "active";
}

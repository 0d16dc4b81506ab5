//! Flutterwave (v3) tells a purchase with a `charge.completed` without a
//! payment plan (two accounts in three: the others subscribe to the plan
//! directly, and its first paid charge starts the subscription), each
//! renewal with one naming the plan (no period: one grant per transaction), refunds with its refund object naming the
//! transaction, a cancellation with `subscription.cancelled`. Its ids are
//! numbers; its events have none of their own (derived by payhooks).

use payhooks::providers::SampleIds;

use super::{Outline, Simulated, Teller};

/// The samples' payment plan id.
pub const PLAN: &str = "3807";
/// A renewal's 25,000 NGN, in kobo.
pub const PAID: i64 = 2_500_000;

/// How this provider tells a story.
pub const SIMULATED: Simulated = Simulated::paid_only(PLAN, PAID, tell);

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
        teller.send("charge.completed.renewal", ids(k), |b| b);
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
}

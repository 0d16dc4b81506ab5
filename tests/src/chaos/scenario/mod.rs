//! What the simulated providers send, and what must come of it, computed
//! from the scenario alone (never from the code under test).
//!
//! Each account's story is drawn once (`Outline`): sometimes a trial, a
//! purchase, one to four renewals (where the provider rolls a period before
//! charging it, some charges fail, then recover or not), partial refunds of
//! paid ones, sometimes a failed payment, sometimes a pause or suspension
//! after the last renewal (resumed or not), sometimes a cancellation. Its
//! provider then tells it in its own samples and habits (`stripe`,
//! `paystack`, …): Stripe rolls the period before the invoice, sends a
//! trial's $0 invoice and links its payment intent; Kill Bill's
//! notifications need its API, which the story fills in (`api`).

mod flutterwave;
mod killbill;
mod lago;
mod paddle;
mod paypal;
mod paystack;
mod razorpay;
mod stripe;

use payhooks::event::Provider;
use payhooks::providers::SampleIds;
use rand::RngExt;
use rand::rngs::StdRng;
use serde_json::Value;

/// Credits per period of every story's plan.
pub const CREDITS: i64 = 100;
/// Credits the one trial of a plan with trials grants.
pub const TRIAL_CREDITS: i64 = 10;

/// A provider's simulated provider: the plan its stories name, what each
/// renewal pays (minor units), whether a story may start with a trial,
/// which turns of a payment's life it tells, the account its events
/// resolve to, how a sample is pointed at that account, and how it tells a
/// story.
#[derive(Debug, Clone, Copy)]
pub struct Simulated {
    pub plan: &'static str,
    pub paid: i64,
    pub trial: bool,
    pub lifecycle: Lifecycle,
    name: fn(&str, usize) -> String,
    rewrite: fn(String, &str) -> String,
    tell: fn(&Outline, &mut Teller),
}

impl Simulated {
    /// A provider whose stories name the account in their own field, with
    /// no trial and every renewal paid.
    const fn paid_only(plan: &'static str, paid: i64, tell: fn(&Outline, &mut Teller)) -> Self {
        Self {
            plan,
            paid,
            trial: false,
            lifecycle: Lifecycle::PAID_ONLY,
            name: account_name,
            rewrite: with_account,
            tell,
        }
    }

    /// The same provider, telling the turns of `lifecycle` too.
    const fn telling(self, lifecycle: Lifecycle) -> Self {
        Self { lifecycle, ..self }
    }
}

/// The one dispatch from a provider to its simulated provider.
pub fn simulated(provider: Provider) -> &'static Simulated {
    match provider {
        Provider::Stripe => &stripe::SIMULATED,
        Provider::Paystack => &paystack::SIMULATED,
        Provider::Flutterwave => &flutterwave::SIMULATED,
        Provider::Killbill => &killbill::SIMULATED,
        Provider::Lago => &lago::SIMULATED,
        Provider::Paypal => &paypal::SIMULATED,
        Provider::Paddle => &paddle::SIMULATED,
        Provider::Razorpay => &razorpay::SIMULATED,
    }
}

/// The plans the stories' samples name, as `PAYHOOKS_PLANS` says them:
/// `CREDITS` per period (and `TRIAL_CREDITS` for a trial where stories have
/// trials), an upgrade's plan its own credits, a credit pack its credits
/// per payment.
pub fn plans() -> impl Iterator<Item = (&'static str, Value)> {
    Provider::ALL.iter().flat_map(|&provider| {
        let simulated = simulated(provider);
        let plan = match simulated.trial {
            true => serde_json::json!({"credits": CREDITS, "trial_credits": TRIAL_CREDITS}),
            false => serde_json::json!(CREDITS),
        };
        let upgrade = simulated.lifecycle.upgrade.map(|u| (u.plan, serde_json::json!(u.credits)));
        let pack =
            simulated.lifecycle.credit_pack.map(|p| (p.plan, serde_json::json!({"credits_per_payment": p.credits})));
        let second = simulated.lifecycle.second_plan.map(|plan| (plan, serde_json::json!(CREDITS)));
        std::iter::once((simulated.plan, plan)).chain(upgrade).chain(pack).chain(second)
    })
}

#[derive(Debug, Clone)]
pub struct SimEvent {
    pub provider: Provider,
    pub account: usize,
    /// The ids the body was filled with (Lago sends its event id in a header).
    pub ids: SampleIds,
    pub body: Vec<u8>,
}

/// What an account must end with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub provider: Provider,
    pub name: String,
    pub balance: i64,
    pub grants: usize,
    pub trial: bool,
    pub cancelled: bool,
    /// The entitlement's status when not cancelled.
    pub open_status: &'static str,
    pub failed_payments: u32,
    /// What each payment the provider names must have granted (provider's
    /// payment id, credits), where the story says.
    pub payments: Vec<(String, i64)>,
    /// The plan the account's subscription ends on, where the story says.
    pub plan: Option<&'static str>,
    /// Each subscription the story names, and whether it ends without
    /// access (cancelled, paused): downstream must end each where it ends
    /// (else the account's one).
    pub subscriptions: Vec<(String, bool)>,
}

/// The turns of a payment's life a simulated provider tells, beyond a paid
/// renewal and its refunds.
#[derive(Debug, Clone, Copy)]
pub struct Lifecycle {
    /// A renewal's charge fails after its period rolled (then recovers or
    /// not).
    pub failed_charges: bool,
    /// A refund fails after it was created.
    pub failed_refunds: bool,
    /// A payment is disputed: its funds withdrawn, and reinstated if won.
    pub disputes: bool,
    /// Halfway through a paid period, the plan changes to a richer one.
    pub upgrade: Option<Upgrade>,
    /// Halfway through a later paid period, the plan goes back down (no
    /// proration: the lower plan bills from the next period).
    pub downgrade: bool,
    /// A trial may end unpaid, pausing the subscription.
    pub lapsing_trials: bool,
    /// One-off invoices of a credit pack.
    pub credit_pack: Option<CreditPack>,
    /// The customer buys a second subscription on the same billing anchor
    /// and keeps it.
    pub second_subscription: bool,
    /// The second subscription's plan, where it must be another than the
    /// first's (Flutterwave names a subscription by its plan); worth
    /// `CREDITS` a period too.
    pub second_plan: Option<&'static str>,
    /// After its last renewal, the subscription is paused (suspended), then
    /// resumed (reactivated) or not.
    pub pauses: bool,
}

impl Lifecycle {
    pub const PAID_ONLY: Lifecycle = Lifecycle {
        failed_charges: false,
        failed_refunds: false,
        disputes: false,
        upgrade: None,
        downgrade: false,
        lapsing_trials: false,
        credit_pack: None,
        second_subscription: false,
        second_plan: None,
        pauses: false,
    };

    /// Paid renewals only, and pauses.
    pub const PAUSING: Lifecycle = Lifecycle { pauses: true, ..Lifecycle::PAID_ONLY };
}

/// An upgrade halfway through a period, paid for at once: the period is
/// topped up by `top_up` (half of the plans' difference), and every later
/// period pays `paid` for the new plan's `credits`. Where the provider
/// gives the old plan's unused time back on the upgraded period's payment
/// instead (Lago's credit note), `credited` is that amount: a claw-back
/// like a refund's, and `top_up` the new plan's half.
#[derive(Debug, Clone, Copy)]
pub struct Upgrade {
    pub plan: &'static str,
    pub credits: i64,
    pub paid: i64,
    pub top_up: i64,
    pub credited: i64,
}

/// A price bought by one-off invoices, granting `credits` per payment of
/// `paid`.
#[derive(Debug, Clone, Copy)]
pub struct CreditPack {
    pub plan: &'static str,
    pub credits: i64,
    pub paid: i64,
}

/// How a renewal's charge goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charge {
    Paid,
    /// The first attempt fails; the provider's retry succeeds.
    FailedThenPaid,
    /// Every attempt fails: the period rolled but was never paid.
    Failed,
}

impl Charge {
    pub fn paid(self) -> bool {
        self != Charge::Failed
    }

    fn failures(self) -> u32 {
        u32::from(self != Charge::Paid)
    }
}

/// One account's story, before any provider tells it.
#[derive(Debug, Clone)]
pub struct Outline {
    pub trial: bool,
    /// Per renewal, the amounts (minor units) its payment is refunded by.
    pub renewals: Vec<Vec<i64>>,
    /// Per renewal, how its charge goes.
    pub charges: Vec<Charge>,
    /// Per renewal, per refund: whether it fails after it was created.
    pub failed_refunds: Vec<Vec<bool>>,
    /// Per renewal: a dispute of the whole payment, and whether it is won.
    pub disputes: Vec<Option<bool>>,
    /// Stripe: whether each renewal's period roll is sent too.
    pub period_rolls: Vec<bool>,
    /// The paid renewal whose period is upgraded halfway through.
    pub upgrade: Option<usize>,
    /// A later paid renewal whose period is downgraded halfway through.
    pub downgrade: Option<usize>,
    /// The trial ended unpaid: no renewal ever, the subscription paused.
    pub lapsed: bool,
    /// Credit packs bought.
    pub packs: usize,
    /// Paid periods of a second subscription the account keeps.
    pub second: usize,
    /// A pause after the last renewal, and whether it is resumed.
    pub pause: Option<bool>,
    pub failed_payment: bool,
    pub cancelled: bool,
}

impl Outline {
    /// Draws a story of `simulated`, whose renewals each pay its `paid`.
    fn draw(rng: &mut StdRng, simulated: &Simulated) -> Self {
        let paid = simulated.paid;
        let trial = simulated.trial && rng.random_bool(0.3);
        let cancelled = rng.random_bool(0.5);
        let lifecycle = simulated.lifecycle;
        let packs = if lifecycle.credit_pack.is_some() && rng.random_bool(0.3) { rng.random_range(1..=2) } else { 0 };
        if trial && lifecycle.lapsing_trials && rng.random_bool(0.3) {
            return Self::lapsed(cancelled);
        }
        let mut renewals = Vec::new();
        let mut period_rolls = Vec::new();
        let mut charges = Vec::new();
        let (mut failed_refunds, mut disputes) = (Vec::new(), Vec::new());
        for _ in 0..rng.random_range(1..=4) {
            let charge = match rng.random_range(0..10) {
                0 if lifecycle.failed_charges => Charge::Failed,
                1 if lifecycle.failed_charges => Charge::FailedThenPaid,
                _ => Charge::Paid,
            };
            charges.push(charge);
            period_rolls.push(rng.random_bool(0.7));
            let mut refunds = Vec::new();
            if charge.paid() && rng.random_bool(0.35) {
                for _ in 0..rng.random_range(1..=2) {
                    // Whole hundreds of minor units, so every provider's
                    // decimal form is exact.
                    let share: i64 = rng.random_range(5..=75);
                    refunds.push((paid * share / 100 / 100 * 100).max(100));
                }
            }
            failed_refunds.push(refunds.iter().map(|_| lifecycle.failed_refunds && rng.random_bool(0.3)).collect());
            let disputed = lifecycle.disputes && charge.paid() && rng.random_bool(0.1);
            disputes.push(disputed.then(|| rng.random_bool(0.5)));
            renewals.push(refunds);
        }
        let paid: Vec<usize> = (0..charges.len()).filter(|&i| charges[i].paid()).collect();
        let upgrade = match lifecycle.upgrade {
            Some(_) if !paid.is_empty() && rng.random_bool(0.4) => Some(paid[rng.random_range(0..paid.len())]),
            _ => None,
        };
        let downgrade = match upgrade {
            Some(at) if lifecycle.downgrade && rng.random_bool(0.5) => {
                let later: Vec<usize> = paid.iter().copied().filter(|&i| i > at).collect();
                (!later.is_empty()).then(|| later[rng.random_range(0..later.len())])
            }
            _ => None,
        };
        let second = if lifecycle.second_subscription && rng.random_bool(0.3) { rng.random_range(1..=2) } else { 0 };
        let failed_payment = rng.random_bool(0.2);
        // Only a subscription in good standing is paused.
        let pause = (lifecycle.pauses && !failed_payment && rng.random_bool(0.3)).then(|| rng.random_bool(0.5));
        Self {
            trial,
            renewals,
            charges,
            failed_refunds,
            disputes,
            period_rolls,
            upgrade,
            downgrade,
            lapsed: false,
            packs,
            second,
            pause,
            failed_payment,
            cancelled,
        }
    }

    /// A trial that ended unpaid: nothing else happens but, maybe, its
    /// cancellation.
    fn lapsed(cancelled: bool) -> Self {
        Self {
            trial: true,
            renewals: Vec::new(),
            charges: Vec::new(),
            failed_refunds: Vec::new(),
            disputes: Vec::new(),
            period_rolls: Vec::new(),
            upgrade: None,
            downgrade: None,
            lapsed: true,
            packs: 0,
            second: 0,
            pause: None,
            failed_payment: false,
            cancelled,
        }
    }

    /// Whether renewal `i` (or the story's end, past the last) bills the
    /// upgrade's plan: after the period it happened in, until the period a
    /// downgrade happened in.
    pub fn upgraded(&self, i: usize) -> bool {
        self.upgrade.is_some_and(|at| i > at) && self.downgrade.is_none_or(|at| i <= at)
    }

    /// Renewal `i`'s plan credits and what it pays.
    pub fn terms(&self, i: usize, lifecycle: Lifecycle, paid: i64) -> (i64, i64) {
        match lifecycle.upgrade {
            Some(upgrade) if self.upgraded(i) => (upgrade.credits, upgrade.paid),
            _ => (CREDITS, paid),
        }
    }

    /// What the account must end with: each paid renewal grants its plan's
    /// credits once (a trial's $0 invoice and a period never paid grant
    /// nothing); the refunds that stand (not failed) and a dispute lost
    /// (of the whole payment) claw back `floor(credits × refunded ÷ paid)`,
    /// never more than was granted; an upgrade adds its top-up (a downgrade
    /// neither takes nor gives); the trial grants its credits once, each
    /// credit pack its own. Every failed charge is counted.
    fn expected(&self, simulated: &Simulated, provider: Provider, name: String, open_status: &'static str) -> Expected {
        let lifecycle = simulated.lifecycle;
        let standing = |i: usize, paid: i64| -> i64 {
            let refunds = self.renewals[i].iter().zip(&self.failed_refunds[i]);
            let refunded: i64 = refunds.filter(|(_, fails)| !**fails).map(|(amount, _)| amount).sum();
            let credited = lifecycle.upgrade.filter(|_| self.upgrade == Some(i)).map_or(0, |u| u.credited);
            refunded + credited + if self.disputes[i] == Some(false) { paid } else { 0 }
        };
        let paid_renewals = || (0..self.renewals.len()).filter(|&i| self.charges[i].paid());
        let kept = |i: usize| {
            let (credits, paid) = self.terms(i, lifecycle, simulated.paid);
            credits - credits * standing(i, paid).min(paid) / paid
        };
        let top_up = lifecycle.upgrade.filter(|_| self.upgrade.is_some()).map_or(0, |u| u.top_up);
        let credited_upgrade = lifecycle.upgrade.is_some_and(|u| u.credited > 0) && self.upgrade.is_some();
        // A second subscription's periods are granted each, even on the
        // first one's billing anchor.
        let second = CREDITS * self.second as i64;
        let packs = lifecycle.credit_pack.map_or(0, |pack| pack.credits * self.packs as i64);
        let trial = if self.trial { TRIAL_CREDITS } else { 0 };
        let balance = paid_renewals().map(kept).sum::<i64>() + top_up + second + packs + trial;
        let failures: u32 = self.charges.iter().map(|charge| charge.failures()).sum();
        Expected {
            provider,
            name,
            balance,
            // Where the old plan's time is credited back, the new plan's
            // half is a period of its own, granted once more.
            grants: paid_renewals().count() + self.second + usize::from(credited_upgrade),
            trial: self.trial,
            // The account stays entitled by the subscription it keeps.
            cancelled: self.cancelled && self.second == 0,
            open_status,
            failed_payments: u32::from(self.failed_payment) + failures,
            payments: Vec::new(),
            plan: None,
            subscriptions: Vec::new(),
        }
    }
}

/// One account of a provider, telling its story in the provider's samples.
#[derive(Debug, Clone)]
pub struct Teller {
    pub provider: Provider,
    pub run: String,
    pub index: usize,
    /// The account the provider's events resolve to.
    pub name: String,
    /// The entitlement's status at the end of the story unless cancelled:
    /// active, unless the provider tells a failed payment with a status.
    pub open_status: &'static str,
    /// Points a sample at this account.
    rewrite: fn(String, &str) -> String,
    /// What each payment must have granted, the plan the subscription ends
    /// on, and each subscription with whether it ends cancelled, where the
    /// provider's story says.
    payments: Vec<(String, i64)>,
    plan: Option<&'static str>,
    subscriptions: Vec<(String, bool)>,
    events: Vec<SimEvent>,
    /// The objects the provider's API must answer with (path → JSON).
    api: Vec<(String, Value)>,
}

impl Teller {
    /// Sends `sample` with `ids`, for this account, edited by `edit`.
    fn send(&mut self, sample: &str, ids: SampleIds, edit: impl FnOnce(String) -> String) {
        let body = payhooks::providers::sample_event(self.provider, sample, &ids)
            .unwrap_or_else(|| panic!("a {sample} sample of {}", self.provider));
        let body = edit((self.rewrite)(body, &self.name));
        self.events.push(SimEvent { provider: self.provider, account: self.index, ids, body: body.into_bytes() });
    }
}

/// The account of most stories: named by the run, not by the provider.
fn account_name(run: &str, index: usize) -> String {
    format!("acct-chaos-{run}-{index}")
}

/// The samples' explicit account id, replaced by the account's name.
fn with_account(body: String, name: &str) -> String {
    body.replace("acct-demo-001", name)
}

/// `body` with its JSON edited by `edit`.
fn edited(body: String, edit: impl FnOnce(&mut Value)) -> String {
    let mut value: Value = serde_json::from_str(&body).expect("a sample is JSON");
    edit(&mut value);
    value.to_string()
}

/// An account's events, the objects its provider's API must answer with
/// (path → JSON, Kill Bill only), and what it must end with.
#[derive(Debug)]
pub struct Account {
    pub events: Vec<SimEvent>,
    pub api: Vec<(String, Value)>,
    pub expected: Expected,
}

/// Account `index` of the run, told by `provider`.
pub fn account(provider: Provider, index: usize, run: &str, rng: &mut StdRng) -> Account {
    let simulated = simulated(provider);
    let mut teller = Teller {
        provider,
        run: run.to_owned(),
        index,
        name: (simulated.name)(run, index),
        rewrite: simulated.rewrite,
        open_status: "active",
        events: Vec::new(),
        api: Vec::new(),
        payments: Vec::new(),
        plan: None,
        subscriptions: Vec::new(),
    };
    let outline = Outline::draw(rng, simulated);
    (simulated.tell)(&outline, &mut teller);
    let expected = Expected {
        payments: teller.payments,
        plan: teller.plan,
        subscriptions: teller.subscriptions,
        ..outline.expected(simulated, provider, teller.name.clone(), teller.open_status)
    };
    Account { expected, events: teller.events, api: teller.api }
}

/// Ids with only the event's set; each provider fills what its samples use.
fn ids(event_id: String) -> SampleIds {
    SampleIds {
        event_id,
        customer_id: String::new(),
        subscription_id: String::new(),
        payment_id: String::new(),
        payment_alias_id: String::new(),
        refund_id: String::new(),
    }
}

/// A month, between renewals' periods.
const PERIOD_SECS: i64 = 2_678_400;

/// Renewal `k`'s period (1-based) from `first_start`, as Unix seconds.
fn period(first_start: i64, k: usize) -> (i64, i64) {
    let start = first_start + (k as i64 - 1) * PERIOD_SECS;
    (start, start + PERIOD_SECS)
}

/// `unix` as RFC 3339 with milliseconds (`2025-12-24T16:00:00.000Z`).
fn rfc3339_millis(unix: i64) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp(unix).expect("a time");
    at.format(&time::format_description::well_known::Rfc3339).expect("formats").replace('Z', ".000Z")
}

/// Minor units as a two-decimal amount (`"5.00"`).
fn decimal(minor: i64) -> String {
    format!("{}.{:02}", minor / 100, minor % 100)
}

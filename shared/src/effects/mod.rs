//! The business effects of each kind of event, on the ledger. Every effect
//! has a business key, so one fact gives one effect however many events
//! carry it and however often they arrive (I4):
//!
//! | kind | business key | change |
//! |---|---|---|
//! | renewal (proof of payment) | `grant:{provider}:{account}:{subscription}:{period start}` (or `…:payment:{id}` where the provider names no period) | the plan's credits for the period, and a plan change's top-up it paid for; nothing for a period paid with 0 |
//! | payment for no period | `payment:{provider}:{payment id}` | recorded for its refunds; a credit pack's credits; a plan change's top-up |
//! | trial started | `trial:{provider}:{account}` | the account's one trial, with its plan's trial credits |
//! | payment failed | `payment_failed:{provider}:{event id}` | counted on the account |
//! | purchase, cancellation, subscription updated (with a status) | `state:{provider}:{event id}` | the subscription's state; the provisioner told of a transition |
//! | refund | `refund:{provider}:{refund id}` | credits clawed back from what its payment granted |
//! | refund reversed | `refund_reversed:{provider}:{refund id}` | the claw-back given back |
//! | payment linked | `link:{provider}:{other id}` | the payment known under a second id |
//!
//! Subscriptions are state: one set by an event older than the one that set
//! that subscription last is stale and changes nothing (I6). `Other` is
//! recorded as ignored.
//!
//! Refunds meet their payment on the ledger's payment record, whichever
//! arrives first: a renewal that names its payment records what it granted
//! there, a refund records what it refunded, and each claws back what the
//! two together call for ([`payments`]). A refund of a payment that granted
//! nothing flags the account `refund_without_grant`.

pub mod payments;
mod plan_changes;
mod plans;
#[cfg(test)]
mod transitions;

pub use plan_changes::PlanChanges;
pub use plans::{InvalidPlans, Plans};

use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::clock::Clock;
use crate::event::{EventKind, EventRecord, Provider};
use crate::ports::{
    AccountRef, Action, Applied, BalanceGuard, Basis, Change, CommitOutcome, Effect, EffectError, Effects, Entitlement,
    Payment, PaymentRef, PaymentWrite, Postings, ProvisionRequest, Provisioner, StoreError,
};

/// Whether a claw-back may take a balance below zero.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum NegativeBalances {
    /// It may; the account is flagged `negative_balance`.
    #[default]
    Allow,
    /// The claw-back stops at zero; the account is flagged
    /// `clawback_shortfall`.
    Forbid,
}

impl std::str::FromStr for NegativeBalances {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "allow" => Ok(Self::Allow),
            "forbid" => Ok(Self::Forbid),
            other => Err(format!("{other:?} is neither allow nor forbid")),
        }
    }
}

/// How many times an effect is re-read and retried at once when a payment
/// or balance it was based on changed underneath it, before the event is
/// retried later instead.
const RACE_RETRIES: usize = 5;

fn transient(e: StoreError) -> EffectError {
    EffectError::Transient(Box::new(e))
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Contended(&'static str);

/// Runs `attempt` again at once while what it read (a payment, a balance)
/// changed before its commit, up to [`RACE_RETRIES`] times; after that the
/// event is retried later, as any transient failure.
async fn until_settled<F>(what: &'static str, mut attempt: impl FnMut() -> F) -> Result<Applied, EffectError>
where
    F: Future<Output = Result<Applied, EffectError>>,
{
    for _ in 0..RACE_RETRIES {
        match attempt().await? {
            Applied::Raced => continue,
            applied => return Ok(applied),
        }
    }
    Err(EffectError::Transient(Box::new(Contended(what))))
}

#[derive(Debug)]
pub struct BillingEffects {
    ledger: Arc<dyn Postings>,
    plans: Plans,
    clock: Arc<dyn Clock>,
    provisioner: Option<Arc<dyn Provisioner>>,
    negative_balances: NegativeBalances,
    plan_changes: PlanChanges,
}

/// A payment record as read, with where it lives and the version read.
struct Read {
    reference: PaymentRef,
    payment: Option<Payment>,
}

impl Read {
    fn version(&self) -> u64 {
        self.payment.as_ref().map_or(0, |p| p.version)
    }

    fn write(&self, payment: Payment) -> PaymentWrite {
        PaymentWrite { reference: self.reference.clone(), read_version: self.version(), payment }
    }
}

impl BillingEffects {
    pub fn new(ledger: Arc<dyn Postings>, plans: Plans, clock: Arc<dyn Clock>) -> Self {
        Self {
            ledger,
            plans,
            clock,
            provisioner: None,
            negative_balances: NegativeBalances::default(),
            plan_changes: PlanChanges::default(),
        }
    }

    pub fn with_plan_changes(mut self, plan_changes: PlanChanges) -> Self {
        self.plan_changes = plan_changes;
        self
    }

    pub fn with_negative_balances(mut self, negative_balances: NegativeBalances) -> Self {
        self.negative_balances = negative_balances;
        self
    }

    /// Tells `provisioner` about purchases and cancellations.
    pub fn with_provisioner(mut self, provisioner: Arc<dyn Provisioner>) -> Self {
        self.provisioner = Some(provisioner);
        self
    }

    /// Decides a subscription state against the one stored: a duplicate
    /// or a stale state goes no further; a state that states no period (a
    /// Paddle cancellation) keeps the one before it, since the
    /// subscription's periods are as long as they were; the effect is
    /// given the stored state as its basis, so it commits only while that
    /// state is stored (two workers reading one state, a pause and its
    /// resumption, cannot both commit what they decided).
    ///
    /// Then tells the provisioner about a state that changes whether its
    /// subscription gives access, or its plan while it does: not yet given
    /// access to given it (a purchase, a reactivation, a resumption, a
    /// first status that entitles), access ended (a cancellation, a pause,
    /// a suspension), or the plan changed. A change that changes neither
    /// never reaches downstream.
    ///
    /// The request's key names the transition: the action, the subscription
    /// and the provider time of the state it leaves, so two events of one
    /// transition (or two workers racing past this check) send the same
    /// key, and a later transition of the same kind is a new one.
    async fn decide(&self, record: &EventRecord, effect: &mut Effect) -> Result<Option<Applied>, EffectError> {
        let (Change::Entitlement(new), Some(account)) = (&mut effect.change, &effect.account) else {
            return Ok(None);
        };
        // With no one to tell, only a state without a period needs the one
        // stored; the commit alone orders the rest (I6), with no read.
        let telling = self.provisioner.is_some();
        if !telling && new.period.is_some() {
            return Ok(None);
        }
        if telling && self.ledger.has_effect(&effect.business_key).await.map_err(transient)? {
            return Ok(Some(Applied::DuplicateEffect));
        }
        let state = self.ledger.account(account).await.map_err(transient)?;
        let current = state.and_then(|mut a| a.subscriptions.remove(new.key()));
        if let Some(current) = &current
            && !new.supersedes(current)
        {
            // The same state told again (two events of one purchase) is a
            // duplicate; anything else older is stale.
            let restated = (&current.status, &current.plan, current.as_of) == (&new.status, &new.plan, new.as_of);
            if restated {
                return Ok(Some(Applied::DuplicateEffect));
            }
            // An earlier attempt (or this one, before its commit raced) may
            // have told downstream this event's transition: downstream hears
            // where the subscription stands now, which is newer.
            if let Some(provisioner) = &self.provisioner
                && (record.attempts > 1 || effect.basis.is_some())
            {
                self.retell(provisioner.as_ref(), record, account, new, current).await?;
            }
            return Ok(Some(Applied::Stale));
        }
        if new.period.is_none() {
            new.period = current.as_ref().and_then(|c| c.period);
        }
        effect.basis = Some(Basis::of(current.as_ref()));
        let Some(provisioner) = &self.provisioner else {
            return Ok(None);
        };
        let replan = |c: &Entitlement| c.plan.is_some() && new.plan.is_some() && c.plan != new.plan;
        let action = match (&current, new.entitles()) {
            (None, true) => Action::Provision,
            // A subscription first seen ending is deprovisioned anyway:
            // downstream may have given access by other means.
            (None, false) => Action::Deprovision,
            (Some(c), true) if !c.entitles() => Action::Provision,
            (Some(c), false) if c.entitles() => Action::Deprovision,
            (Some(c), true) if replan(c) => Action::ChangePlan,
            _ => return Ok(None),
        };
        let since = current.map_or_else(|| "new".to_owned(), |c| millis(c.as_of));
        provisioner.send(&request(record, account, action, &since, new)).await.map_err(told_failed)?;
        Ok(None)
    }

    /// Tells downstream the subscription's `current` state, as of its own
    /// time, after `told` (a stale event's state) may have been: keyed as a
    /// transition from `told`, so each stale event's correction is one.
    async fn retell(
        &self,
        provisioner: &dyn Provisioner,
        record: &EventRecord,
        account: &AccountRef,
        told: &Entitlement,
        current: &Entitlement,
    ) -> Result<(), EffectError> {
        let action = if current.entitles() { Action::Provision } else { Action::Deprovision };
        provisioner.send(&request(record, account, action, &millis(told.as_of), current)).await.map_err(told_failed)
    }

    /// States a subscription: the provisioner told of its transition from
    /// the state read, then the commit, which holds only while that state
    /// is stored; raced, the transition is decided again.
    async fn state(&self, record: &EventRecord, effect: &Effect, owner: &str) -> Result<Applied, EffectError> {
        let mut effect = effect.clone();
        for _ in 0..RACE_RETRIES {
            if let Some(decided) = self.decide(record, &mut effect).await? {
                return Ok(decided);
            }
            match self.commit(&effect, owner).await? {
                Applied::Raced => continue,
                applied => return Ok(applied),
            }
        }
        Err(EffectError::Transient(Box::new(Contended("the subscription kept changing while its state was told"))))
    }

    /// The effect of `record`, if its kind has one; a payment's credits
    /// include `top_up` for a plan change it paid for.
    fn effect(&self, record: &EventRecord, top_up: i64) -> Result<Option<Effect>, EffectError> {
        let event = &record.event;
        let provider = record.provider;
        let account = || {
            event
                .account
                .as_deref()
                .map(|a| AccountRef::new(provider, a))
                .ok_or_else(|| EffectError::Permanent(format!("the {} event names no account", event.event_type)))
        };
        let effect = |business_key: String, change: Change| -> Result<Option<Effect>, EffectError> {
            Ok(Some(Effect::new(business_key, account()?, change, record.key())))
        };
        match event.kind {
            EventKind::Renewal => {
                let account = account()?;
                let plan =
                    event.plan.as_deref().ok_or_else(|| EffectError::Permanent("the renewal names no plan".into()))?;
                let credits = self
                    .plans
                    .credits(plan)
                    .ok_or_else(|| EffectError::Permanent(format!("unknown plan {plan:?}: add it to the plans")))?;
                let credits = share_of(credits, event.period_share);
                // Once per period where the provider names it (two events of
                // one renewal meet here); where it names none, once per
                // payment (its only renewal event names the payment).
                let occasion = match (event.period, event.payment.as_deref().or(event.object.as_deref())) {
                    (Some(period), _) => period.start.unix_timestamp().to_string(),
                    (None, Some(payment)) => format!("payment:{payment}"),
                    (None, None) => {
                        return Err(EffectError::Permanent("the renewal names no billing period or payment".into()));
                    }
                };
                // Each subscription's periods are its own: two subscriptions
                // of one account with one billing anchor are two grants.
                let subscription = event.subscription.as_deref().map(|s| format!("{s}:")).unwrap_or_default();
                effect(
                    format!("grant:{provider}:{}:{subscription}{occasion}", account.account),
                    Change::Credit(credits + top_up),
                )
            }
            EventKind::Payment => {
                let payment = event.payment.as_deref().or(event.object.as_deref()).ok_or_else(|| {
                    EffectError::Permanent(format!("the {} event names no payment", event.event_type))
                })?;
                // A credit pack grants per payment; anything else nothing.
                let credits = event.plan.as_deref().map_or(0, |plan| self.plans.payment_credits(plan));
                effect(format!("payment:{provider}:{payment}"), Change::Credit(credits + top_up))
            }
            EventKind::TrialStarted => {
                let credits = event.plan.as_deref().map_or(0, |plan| self.plans.trial_credits(plan));
                effect(format!("trial:{provider}:{}", account()?.account), Change::Trial(credits))
            }
            EventKind::PaymentFailed => {
                effect(format!("payment_failed:{provider}:{}", record.event_id), Change::PaymentFailed)
            }
            // Subscriptions are state: each event that states one is an
            // effect of its own, ordered by provider time (I6).
            EventKind::Purchase | EventKind::Cancellation => {
                let status = if event.kind == EventKind::Purchase { "active" } else { crate::ports::ledger::CANCELLED };
                Ok(Some(stated(record, account()?, status)))
            }
            EventKind::SubscriptionUpdated => match &event.status {
                Some(status) => Ok(Some(stated(record, account()?, &status.to_ascii_lowercase()))),
                None => Ok(None),
            },
            // Payment effects depend on what the ledger holds: see `apply`.
            EventKind::Refund | EventKind::RefundReversed | EventKind::PaymentLinked | EventKind::Other => Ok(None),
        }
    }

    /// For a renewal that names no plan (Paystack's invoices, PayPal's
    /// sales, Kill Bill's notifications without the API): the plan of the
    /// account's entitlement to the same subscription. A renewal that
    /// overtook its purchase waits for it (retried); none at all is a
    /// permanent failure.
    async fn subscribed_plan(&self, record: &EventRecord) -> Result<Option<String>, EffectError> {
        let event = &record.event;
        if event.kind != EventKind::Renewal || event.plan.is_some() {
            return Ok(None);
        }
        let Some(account) = event.account.as_deref() else {
            return Ok(None);
        };
        let state = self.ledger.account(&AccountRef::new(record.provider, account)).await.map_err(transient)?;
        let subscription = event.subscription.as_deref().unwrap_or_default();
        match state.and_then(|mut s| s.subscriptions.remove(subscription)) {
            Some(e) => Ok(e.plan),
            None => Err(EffectError::Transient(Box::new(Contended(
                "the renewal names no plan and its subscription's purchase is not in yet",
            )))),
        }
    }

    /// A payment that also states its subscription (a Flutterwave plan
    /// charge: a plan's subscriber is active from the first payment, and no
    /// other event says so): the state, ordered like any other (I6), and
    /// its transition told to the provisioner, committed before the grant
    /// and leaving the event for it. `Some` only when the lease was lost.
    async fn state_paid(&self, record: &EventRecord, owner: &str) -> Result<Option<Applied>, EffectError> {
        let event = &record.event;
        let (Some(status), Some(account)) = (&event.status, &event.account) else {
            return Ok(None);
        };
        let account = AccountRef::new(record.provider, account);
        let state = Effect { completes_event: false, ..stated(record, account, &status.to_ascii_lowercase()) };
        // A duplicate or a stale state changes nothing; the payment still counts.
        match self.state(record, &state, owner).await? {
            Applied::LeaseLost => Ok(Some(Applied::LeaseLost)),
            _ => Ok(None),
        }
    }

    /// What a payment adds to its period for a plan change it paid for
    /// (see [`PlanChanges`]), pro rata to the length of the subscription's
    /// period: as the provider's share of it implies (Paddle's rate), else
    /// as the subscription's last state stated it, else as the payment's
    /// own period line does. A top-up that overtook every statement of the
    /// period waits for one (retried).
    async fn top_up(&self, record: &EventRecord) -> Result<i64, EffectError> {
        let event = &record.event;
        if !self.plan_changes.may_top_up(&event.prorations, &self.plans) {
            return Ok(0);
        }
        let secs = |period: crate::event::Period| (period.end - period.start).whole_seconds();
        let implied = event.prorations.iter().find_map(crate::event::Proration::implied_period_secs);
        let mut period = None;
        // Only prorating needs the period's length.
        if let (PlanChanges::Prorate, None, Some(account), Some(subscription)) =
            (self.plan_changes, implied, event.account.as_deref(), event.subscription.as_deref())
        {
            let state = self.ledger.account(&AccountRef::new(record.provider, account)).await.map_err(transient)?;
            period = state.and_then(|mut a| a.subscriptions.remove(subscription)).and_then(|s| s.period).map(secs);
        }
        let period = implied.or(period).or(event.period.map(secs));
        self.plan_changes.top_up(&event.prorations, &self.plans, period).map_err(|_| {
            EffectError::Transient(Box::new(Contended(
                "the plan change's top-up needs its subscription's period: waiting for the subscription's update",
            )))
        })
    }

    /// The payment record `id` names, following an alias once.
    async fn read_payment(&self, provider: Provider, id: &str) -> Result<Read, EffectError> {
        let reference = PaymentRef::new(provider, id);
        let payment = self.ledger.payment(&reference).await.map_err(transient)?;
        match payment.as_ref().and_then(|p| p.alias_of.clone()) {
            Some(target) => {
                let reference = PaymentRef::new(provider, target);
                let payment = self.ledger.payment(&reference).await.map_err(transient)?;
                Ok(Read { reference, payment })
            }
            None => Ok(Read { reference, payment }),
        }
    }

    /// The event's payment, merged with what was recorded under its alias
    /// before the two were linked; the writes that link them; and the
    /// credits that merge makes due back.
    async fn gather(&self, record: &EventRecord, account: &str) -> Result<Option<Gathered>, EffectError> {
        let event = &record.event;
        let Some(id) = event.payment.as_deref() else {
            return Ok(None);
        };
        let primary = self.read_payment(record.provider, id).await?;
        let mut payment = primary.payment.clone().unwrap_or_default();
        if payment.account.is_empty() {
            payment.account = account.to_owned();
        }
        let mut writes = Vec::new();
        let mut due = 0;
        if let Some(alias) = event.payment_alias.as_deref().filter(|a| *a != primary.reference.id) {
            let reference = PaymentRef::new(record.provider, alias);
            let existing = self.ledger.payment(&reference).await.map_err(transient)?;
            let read = Read { reference, payment: existing.clone() };
            match existing {
                Some(alias) if alias.alias_of.is_some() => {}
                found => {
                    if let Some(refunds) = &found {
                        due += payments::merge(&mut payment, refunds);
                    }
                    writes.push(read.write(Payment {
                        account: payment.account.clone(),
                        alias_of: Some(primary.reference.id.clone()),
                        ..Payment::default()
                    }));
                }
            }
        }
        Ok(Some(Gathered { primary, payment, writes, due }))
    }

    /// The renewal's grant, with what it paid recorded on its payment. When
    /// another event of the renewal granted it first, the payment is still
    /// recorded (under its own key), so its refunds find the grant.
    async fn renew(&self, record: &EventRecord, grant: Effect, owner: &str) -> Result<Applied, EffectError> {
        let Change::Credit(credits) = grant.change else {
            return self.commit(&grant, owner).await;
        };
        let account = grant.account.clone().ok_or_else(|| EffectError::Permanent("a grant needs an account".into()))?;
        until_settled("the payment kept changing while its renewal was applied", || {
            self.renew_once(record, &grant, credits, &account, owner)
        })
        .await
    }

    async fn renew_once(
        &self,
        record: &EventRecord,
        grant: &Effect,
        credits: i64,
        account: &AccountRef,
        owner: &str,
    ) -> Result<Applied, EffectError> {
        let Some(mut gathered) = self.gather(record, &account.account).await? else {
            return self.commit(grant, owner).await;
        };
        // The payment belongs to the account it grants, whatever a refund
        // that came first took it for (Flutterwave's refunds name the
        // customer, not the account), so later refunds claw back from it.
        gathered.payment.account.clone_from(&account.account);
        // One payment pays for one period: another event of the same
        // payment (Stripe's `invoice.paid` and `invoice.payment_succeeded`)
        // finds it granted and changes nothing.
        if gathered.payment.granted.is_some() && gathered.writes.is_empty() {
            return Ok(Applied::DuplicateEffect);
        }
        let event = &record.event;
        let due =
            gathered.due + payments::grant(&mut gathered.payment, credits, event.amount_minor, event.currency.clone());
        let mut writes = std::mem::take(&mut gathered.writes);
        // The same writes for when another event granted the period: the
        // payment is then written once its claw-back is known.
        let mut linked = writes.clone();
        writes.push(gathered.primary.write(gathered.payment.clone()));
        // One payment per grant: a second payment for the same period (a
        // re-issued invoice) is not credited with it.
        let attributed = format!("paid:{}", grant.business_key);
        let with_payment = Effect {
            also_keys: vec![attributed.clone()],
            change: Change::Credit(credits - due),
            payments: writes,
            ..grant.clone()
        };
        let applied = self.commit(&with_payment, owner).await?;
        if applied != Applied::DuplicateEffect {
            return Ok(applied);
        }
        // Refunds that arrived first are clawed back now; otherwise the
        // account does not change and gets no entry.
        let (claw, guard, flag) = self.claw(account, due).await?;
        gathered.payment.unclawed += (due - claw).max(0);
        linked.push(gathered.primary.write(gathered.payment));
        let link = Effect {
            business_key: attributed,
            account: (claw > 0).then(|| account.clone()),
            change: Change::Credit(-claw),
            payments: linked,
            guard,
            flags: flag.into_iter().map(str::to_owned).collect(),
            ..grant.clone()
        };
        Ok(match self.commit(&link, owner).await? {
            Applied::Committed => Applied::DuplicateCompleted,
            other => other,
        })
    }

    /// A refund's claw-back, in proportion to what its payment granted.
    async fn refund(&self, record: &EventRecord, owner: &str) -> Result<Applied, EffectError> {
        let (refund_id, amount) = refund_named(record)?;
        until_settled("the payment kept changing while its refund was applied", || {
            self.refund_once(record, refund_id, amount, owner)
        })
        .await
    }

    async fn refund_once(
        &self,
        record: &EventRecord,
        refund_id: &str,
        amount: i64,
        owner: &str,
    ) -> Result<Applied, EffectError> {
        let event = &record.event;
        let provider = record.provider;
        // Stripe's refunds name no customer: the payment's account is the
        // one that was granted credits.
        let account = event.account.as_deref().unwrap_or_default();
        let mut gathered = self
            .gather(record, account)
            .await?
            .ok_or_else(|| EffectError::Permanent(format!("refund {refund_id} names no payment")))?;
        if let (Some(paid), Some(refunded)) = (&gathered.payment.currency, &event.currency)
            && paid != refunded
        {
            return Err(EffectError::Permanent(format!(
                "refund {refund_id} is in {refunded} but its payment was in {paid}"
            )));
        }
        let mut flags = Vec::new();
        if gathered.payment.granted.is_none() {
            flags.push("refund_without_grant".to_owned());
        }
        let due = gathered.due + payments::refund(&mut gathered.payment, amount);
        let account =
            (!gathered.payment.account.is_empty()).then(|| AccountRef::new(provider, gathered.payment.account.clone()));
        let (claw, guard, flag) = match &account {
            Some(account) => self.claw(account, due).await?,
            None => (0, None, None),
        };
        gathered.payment.unclawed += (due - claw).max(0);
        flags.extend(flag.map(str::to_owned));
        let mut writes = std::mem::take(&mut gathered.writes);
        writes.push(gathered.primary.write(gathered.payment));
        let effect = Effect {
            business_key: format!("refund:{provider}:{refund_id}"),
            also_keys: Vec::new(),
            account,
            change: Change::Credit(-claw),
            event: record.key(),
            completes_event: true,
            payments: writes,
            guard,
            flags,
            basis: None,
        };
        self.commit(&effect, owner).await
    }

    /// A refund that failed or was cancelled (or a dispute's funds
    /// reinstated): what its claw-back took is given back, once. One that
    /// comes before its refund takes the refund's key, so the refund, when
    /// it comes, changes nothing.
    async fn reverse(&self, record: &EventRecord, owner: &str) -> Result<Applied, EffectError> {
        let (refund_id, amount) = refund_named(record)?;
        until_settled("the payment kept changing while its refund was undone", || {
            self.reverse_once(record, refund_id, amount, owner)
        })
        .await
    }

    async fn reverse_once(
        &self,
        record: &EventRecord,
        refund_id: &str,
        amount: i64,
        owner: &str,
    ) -> Result<Applied, EffectError> {
        let provider = record.provider;
        let business_key = format!("refund_reversed:{provider}:{refund_id}");
        let refund_key = format!("refund:{provider}:{refund_id}");
        if self.ledger.has_effect(&business_key).await.map_err(transient)? {
            return Ok(Applied::DuplicateEffect);
        }
        let effect = |account, restore, payments| Effect {
            business_key: business_key.clone(),
            also_keys: Vec::new(),
            account,
            change: Change::Credit(restore),
            event: record.key(),
            completes_event: true,
            payments,
            guard: None,
            flags: Vec::new(),
            basis: None,
        };
        if !self.ledger.has_effect(&refund_key).await.map_err(transient)? {
            let never_applied = Effect { also_keys: vec![refund_key], ..effect(None, 0, Vec::new()) };
            return Ok(match self.commit(&never_applied, owner).await? {
                // The refund (or this event's twin) got in meanwhile: read again.
                Applied::DuplicateEffect => Applied::Raced,
                applied => applied,
            });
        }
        let account = record.event.account.as_deref().unwrap_or_default();
        let mut gathered = self
            .gather(record, account)
            .await?
            .ok_or_else(|| EffectError::Permanent(format!("refund {refund_id} names no payment")))?;
        let restore = payments::unrefund(&mut gathered.payment, amount);
        let account =
            (!gathered.payment.account.is_empty()).then(|| AccountRef::new(provider, gathered.payment.account.clone()));
        let mut writes = std::mem::take(&mut gathered.writes);
        writes.push(gathered.primary.write(gathered.payment));
        self.commit(&effect(account.filter(|_| restore > 0), restore, writes), owner).await
    }

    /// Another id for a payment (Stripe: an invoice's payment intent), so
    /// that refunds naming it find the grant.
    async fn link(&self, record: &EventRecord, owner: &str) -> Result<Applied, EffectError> {
        let Some(alias) = record.event.payment_alias.as_deref() else {
            return Err(EffectError::Permanent(format!(
                "the {} event names no second payment id",
                record.event.event_type
            )));
        };
        until_settled("the payment kept changing while it was linked", || self.link_once(record, alias, owner)).await
    }

    async fn link_once(&self, record: &EventRecord, alias: &str, owner: &str) -> Result<Applied, EffectError> {
        let provider = record.provider;
        let Some(mut gathered) = self.gather(record, "").await? else {
            return Err(EffectError::Permanent(format!("the {} event names no payment", record.event.event_type)));
        };
        if gathered.writes.is_empty() {
            return Ok(Applied::DuplicateEffect);
        }
        let mut writes = std::mem::take(&mut gathered.writes);
        let account =
            (!gathered.payment.account.is_empty()).then(|| AccountRef::new(provider, gathered.payment.account.clone()));
        let (claw, guard, flag) = match &account {
            Some(account) if gathered.due > 0 => self.claw(account, gathered.due).await?,
            _ => (0, None, None),
        };
        gathered.payment.unclawed += (gathered.due - claw).max(0);
        // The payment carries the refunds merged from the alias, if any.
        writes.push(gathered.primary.write(gathered.payment));
        let effect = Effect {
            business_key: format!("link:{provider}:{alias}"),
            also_keys: Vec::new(),
            account: account.filter(|_| claw > 0),
            change: Change::Credit(-claw),
            event: record.key(),
            completes_event: true,
            payments: writes,
            guard,
            flags: flag.into_iter().map(str::to_owned).collect(),
            basis: None,
        };
        self.commit(&effect, owner).await
    }

    /// How much of `due` to claw back from `account` now, the balance that
    /// decision rests on, and the flag it raises.
    async fn claw(
        &self,
        account: &AccountRef,
        due: i64,
    ) -> Result<(i64, Option<BalanceGuard>, Option<&'static str>), EffectError> {
        if due <= 0 {
            return Ok((0, None, None));
        }
        let balance = self.ledger.account(account).await.map_err(transient)?.map_or(0, |a| a.balance);
        if balance >= due {
            let guard = BalanceGuard { at_least: Some(due), below: None };
            return Ok((due, Some(guard), None));
        }
        let below = Some(due);
        Ok(match self.negative_balances {
            NegativeBalances::Allow => (due, Some(BalanceGuard { at_least: None, below }), Some("negative_balance")),
            NegativeBalances::Forbid => {
                let claw = balance.max(0);
                let guard = BalanceGuard { at_least: Some(claw), below };
                (claw, Some(guard), Some("clawback_shortfall"))
            }
        })
    }

    async fn commit(&self, effect: &Effect, owner: &str) -> Result<Applied, EffectError> {
        let now: OffsetDateTime = self.clock.now();
        // Throttling surfaces as a store error: transient, retried with
        // backoff. A conflicting transaction is Raced, retried at once.
        let outcome = self.ledger.commit(effect, owner, now).await.map_err(transient)?;
        Ok(match outcome {
            CommitOutcome::Applied => Applied::Committed,
            CommitOutcome::DuplicateEffect => Applied::DuplicateEffect,
            CommitOutcome::LeaseLost => Applied::LeaseLost,
            CommitOutcome::Stale => Applied::Stale,
            CommitOutcome::Raced => Applied::Raced,
        })
    }
}

struct Gathered {
    primary: Read,
    payment: Payment,
    writes: Vec<PaymentWrite>,
    due: i64,
}

#[async_trait]
impl Effects for BillingEffects {
    async fn apply(&self, record: &EventRecord, owner: &str) -> Result<Applied, EffectError> {
        match record.event.kind {
            EventKind::Other => return Ok(Applied::NoHandler),
            EventKind::Refund => return self.refund(record, owner).await,
            EventKind::RefundReversed => return self.reverse(record, owner).await,
            EventKind::PaymentLinked => return self.link(record, owner).await,
            // A period paid with nothing (a trial's first invoice, a full
            // discount) is not a paid period: it grants nothing.
            EventKind::Renewal if record.event.amount_minor == Some(0) => return Ok(Applied::Done),
            _ => {}
        }
        let with_plan;
        let record = match self.subscribed_plan(record).await? {
            Some(plan) => {
                let mut copy = record.clone();
                copy.event.plan = Some(plan);
                with_plan = copy;
                &with_plan
            }
            None => record,
        };
        let top_up = match record.event.kind {
            EventKind::Renewal | EventKind::Payment => self.top_up(record).await?,
            _ => 0,
        };
        let Some(effect) = self.effect(record, top_up)? else {
            return Ok(Applied::Done);
        };
        if matches!(effect.change, Change::Entitlement(_)) {
            return self.state(record, &effect, owner).await;
        }
        if matches!(record.event.kind, EventKind::Renewal | EventKind::Payment) {
            if let Some(decided) = self.state_paid(record, owner).await? {
                return Ok(decided);
            }
            return self.renew(record, effect, owner).await;
        }
        // Raced here means another transaction held the account: try again.
        until_settled("the account was busy with other transactions", || self.commit(&effect, owner)).await
    }
}

/// The request telling downstream of `record`'s transition to `state`, keyed
/// by the action, the subscription and `since` (the state it leaves).
fn request(
    record: &EventRecord,
    account: &AccountRef,
    action: Action,
    since: &str,
    state: &Entitlement,
) -> ProvisionRequest {
    ProvisionRequest {
        idempotency_key: format!("{}:{}:{}:{since}", action.as_str(), record.provider, state.key()),
        action,
        status: state.status.clone(),
        provider: record.provider,
        account: account.account.clone(),
        plan: state.plan.clone(),
        subscription: state.subscription.clone(),
        customer: state.customer.clone(),
        event_id: record.event_id.to_string(),
        as_of: state.as_of,
    }
}

/// A provider time as a request key names it: Unix milliseconds.
fn millis(at: OffsetDateTime) -> String {
    (at.unix_timestamp_nanos() / 1_000_000).to_string()
}

fn told_failed(e: crate::ports::ProvisionError) -> EffectError {
    EffectError::Transient(Box::new(e))
}

/// The refund a refund event (or its reversal) names, and its amount.
fn refund_named(record: &EventRecord) -> Result<(&str, i64), EffectError> {
    let event = &record.event;
    let refund_id = event
        .refund_id
        .as_deref()
        .ok_or_else(|| EffectError::Permanent(format!("the {} event names no refund id", event.event_type)))?;
    let amount =
        event.amount_minor.ok_or_else(|| EffectError::Permanent(format!("refund {refund_id} names no amount")))?;
    Ok((refund_id, amount))
}

/// The subscription state `record` states, `status` on the account: an
/// effect of its own, keyed by the event (ordered by provider time, I6).
fn stated(record: &EventRecord, account: AccountRef, status: &str) -> Effect {
    let key = format!("state:{}:{}", record.provider, record.event_id);
    Effect::new(key, account, entitle(&record.event, status), record.key())
}

fn entitle(event: &crate::event::DomainEvent, status: &str) -> Change {
    Change::Entitlement(Entitlement {
        status: status.to_owned(),
        plan: event.plan.clone(),
        subscription: event.subscription.clone(),
        customer: event.customer.clone(),
        period: event.period,
        as_of: event.occurred_at,
    })
}

/// A plan's credits for the share of a period a payment paid for (in
/// billionths; a whole period where the provider states none), rounded
/// down.
fn share_of(credits: i64, share: Option<i64>) -> i64 {
    match share {
        Some(share) if (0..1_000_000_000).contains(&share) => {
            i64::try_from(i128::from(credits) * i128::from(share) / 1_000_000_000).unwrap_or(0)
        }
        _ => credits,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::MemoryEventStore;
    use crate::clock::SystemClock;
    use crate::event::{EventKey, NewEvent, Provider};
    use crate::ports::{Balances, Intake, LeaseOutcome, Leases};
    use crate::providers::flutterwave;

    #[tokio::test]
    async fn a_renewal_without_a_period_is_granted_once_per_payment() {
        let store = Arc::new(MemoryEventStore::new());
        let ids = flutterwave::sample_ids();
        let body = flutterwave::SAMPLES.event("charge.completed.renewal", &ids).unwrap();
        let verified = flutterwave::parse_event(body.as_bytes(), OffsetDateTime::now_utc()).unwrap();
        assert_eq!((verified.event.period, verified.event.plan.as_deref()), (None, Some("3807")));
        let plans = Plans::from_json(r#"{"3807": 7}"#).unwrap();
        let effects = BillingEffects::new(store.clone(), plans, Arc::new(SystemClock));
        assert_eq!(apply(&store, &effects, body).await, Applied::Committed);
        let account = AccountRef::new(Provider::Flutterwave, "acct-demo-001");
        let entries = store.entries(&account).await.unwrap();
        let grants: Vec<_> = entries.iter().filter(|e| e.delta != 0).map(|e| e.business_key.as_str()).collect();
        assert_eq!(grants, [format!("grant:flutterwave:acct-demo-001:plan-3807:payment:{}", ids.payment_id)]);
        assert_eq!(store.account(&account).await.unwrap().unwrap().balance, 7);
    }

    /// A Flutterwave plan's subscriber is active from a paid plan charge (no
    /// other event says the subscription started): provisioned once with
    /// the grant, and ended by its cancellation, which is newer.
    #[tokio::test]
    async fn a_flutterwave_plan_subscriber_is_active_from_the_paid_charge_until_cancelled() {
        use crate::adapters::MemoryProvisioner;

        let store = Arc::new(MemoryEventStore::new());
        let provisioner = Arc::new(MemoryProvisioner::new());
        let plans = Plans::from_json(r#"{"3807": 100}"#).unwrap();
        let effects =
            BillingEffects::new(store.clone(), plans, Arc::new(SystemClock)).with_provisioner(provisioner.clone());
        let ids = flutterwave::sample_ids();
        let sample = |name: &str| {
            let ids = crate::providers::SampleIds { event_id: flutterwave::sample_ids().event_id, ..ids.clone() };
            flutterwave::SAMPLES.event(name, &ids).unwrap()
        };
        let account = AccountRef::new(Provider::Flutterwave, "acct-demo-001");
        let entitlement = || {
            let (store, account) = (store.clone(), account.clone());
            async move { store.account(&account).await.unwrap().and_then(|a| a.entitlement) }
        };
        let charge = sample("charge.completed.renewal");
        assert_eq!(apply(&store, &effects, charge).await, Applied::Committed);
        let state = entitlement().await.expect("the subscriber is entitled");
        assert_eq!((state.status.as_str(), state.plan.as_deref()), ("active", Some("3807")));
        let actions = || provisioner.received().into_iter().map(|r| r.action).collect::<Vec<_>>();
        assert_eq!(actions(), [Action::Provision]);
        apply(&store, &effects, sample("subscription.cancelled")).await;
        assert_eq!(entitlement().await.unwrap().status, crate::ports::ledger::CANCELLED);
        assert_eq!(actions(), [Action::Provision, Action::Deprovision]);
        assert_eq!(store.account(&account).await.unwrap().unwrap().balance, 100);
    }

    /// A period granted by an event that named no payment: the event that
    /// names it records the payment with its own completion and is
    /// finished, not left for a finish that would find its lease gone.
    #[tokio::test]
    async fn a_payment_recorded_for_a_period_already_granted_finishes_its_event() {
        let store = Arc::new(MemoryEventStore::new());
        let plans = Plans::from_json(r#"{"3807": 7}"#).unwrap();
        let effects = BillingEffects::new(store.clone(), plans, Arc::new(SystemClock));
        let ids = flutterwave::sample_ids();
        let renewal = |payment: Option<String>| {
            let ids = crate::providers::SampleIds { event_id: flutterwave::sample_ids().event_id, ..ids.clone() };
            let body = flutterwave::SAMPLES.event("charge.completed.renewal", &ids).unwrap();
            let mut verified = flutterwave::parse_event(body.as_bytes(), OffsetDateTime::now_utc()).unwrap();
            let start = OffsetDateTime::from_unix_timestamp(1_766_592_000).unwrap();
            verified.event.period = Some(crate::event::Period { start, end: start + time::Duration::days(31) });
            // Two events: Flutterwave's ids come from the transaction.
            let tag = if payment.is_some() { "with-payment" } else { "without" };
            verified.event_id = crate::event::EventId::parse(&format!("fw-{tag}-{}", ids.payment_id)).unwrap();
            verified.event.payment = payment;
            verified
        };
        let first = renewal(None);
        assert_eq!(apply_verified(&store, &effects, Provider::Flutterwave, first).await, Applied::Committed);
        let second = renewal(Some(ids.payment_id.clone()));
        let key = EventKey::new(Provider::Flutterwave, second.event_id.clone());
        assert_eq!(apply_verified(&store, &effects, Provider::Flutterwave, second).await, Applied::DuplicateCompleted);
        use crate::ports::EventRecords;
        assert_eq!(store.get(&key).await.unwrap().unwrap().status, crate::event::EventStatus::Completed);
        let payment = store.payment(&crate::ports::PaymentRef::new(Provider::Flutterwave, &ids.payment_id)).await;
        assert_eq!(payment.unwrap().unwrap().granted, Some(7), "the payment knows what it paid for");
        let account = AccountRef::new(Provider::Flutterwave, "acct-demo-001");
        assert_eq!(store.account(&account).await.unwrap().unwrap().balance, 7);
    }

    /// Claims, leases and applies a Flutterwave sample.
    async fn apply(store: &Arc<MemoryEventStore>, effects: &BillingEffects, body: String) -> Applied {
        let verified = flutterwave::parse_event(body.as_bytes(), OffsetDateTime::now_utc()).unwrap();
        apply_verified(store, effects, Provider::Flutterwave, verified).await
    }

    pub(super) async fn apply_verified(
        store: &Arc<MemoryEventStore>,
        effects: &BillingEffects,
        provider: Provider,
        verified: crate::providers::VerifiedEvent,
    ) -> Applied {
        let now = OffsetDateTime::now_utc();
        let key = EventKey::new(provider, verified.event_id);
        let new =
            NewEvent { key: key.clone(), fingerprint: verified.fingerprint, event: verified.event, received_at: now };
        store.claim(&new).await.unwrap();
        let LeaseOutcome::Acquired(record) =
            store.lease(&key, "w", now, now + time::Duration::minutes(1)).await.unwrap()
        else {
            panic!("leased");
        };
        effects.apply(&record, "w").await.unwrap()
    }

    #[tokio::test]
    async fn a_refund_that_came_first_does_not_decide_whose_payment_it_is() {
        let store = Arc::new(MemoryEventStore::new());
        let plans = Plans::from_json(r#"{"3807": 100}"#).unwrap();
        let effects = BillingEffects::new(store.clone(), plans, Arc::new(SystemClock));
        let ids = flutterwave::sample_ids();
        // Each refund is 5,000 of the 25,000 paid: a fifth. Flutterwave's
        // refunds name the customer; its charges name the account.
        let refund = |ids: &crate::providers::SampleIds| {
            let ids = crate::providers::SampleIds { event_id: flutterwave::sample_ids().event_id, ..ids.clone() };
            flutterwave::SAMPLES.event("refund.completed", &ids).unwrap()
        };
        apply(&store, &effects, refund(&ids)).await;
        apply(&store, &effects, flutterwave::SAMPLES.event("charge.completed.renewal", &ids).unwrap()).await;
        apply(&store, &effects, refund(&ids)).await;
        let balance = |name: &str| {
            let account = AccountRef::new(Provider::Flutterwave, name);
            let store = store.clone();
            async move { store.account(&account).await.unwrap().map_or(0, |a| a.balance) }
        };
        assert_eq!(balance("acct-demo-001").await, 60, "both refunds claw back from the account granted");
        assert_eq!(balance(&ids.customer_id).await, 0, "the customer id is not an account of its own");
    }

    /// Paystack's `subscription.not_renew` ends access at the period's end
    /// (its `subscription.disable`), not at once; all its subscription
    /// events carry one time, whatever order they come in.
    #[tokio::test]
    async fn a_paystack_subscription_not_renewing_keeps_access_until_it_is_disabled() {
        use crate::adapters::MemoryProvisioner;
        use crate::providers::paystack;

        for disable_first in [false, true] {
            let store = Arc::new(MemoryEventStore::new());
            let provisioner = Arc::new(MemoryProvisioner::new());
            let effects = BillingEffects::new(store.clone(), Plans::default(), Arc::new(SystemClock))
                .with_provisioner(provisioner.clone());
            let ids = paystack::sample_ids();
            let event = |name: &str| {
                let ids = crate::providers::SampleIds { event_id: paystack::sample_ids().event_id, ..ids.clone() };
                let body = paystack::SAMPLES.event(name, &ids).unwrap();
                paystack::parse_event(body.as_bytes(), OffsetDateTime::now_utc()).unwrap()
            };
            let entitlement = || {
                let store = store.clone();
                async move {
                    let account = AccountRef::new(Provider::Paystack, "acct-demo-001");
                    store.account(&account).await.unwrap().and_then(|a| a.entitlement).unwrap()
                }
            };
            let actions = || provisioner.received().into_iter().map(|r| r.action).collect::<Vec<_>>();
            apply_verified(&store, &effects, Provider::Paystack, event("subscription.create")).await;
            if disable_first {
                apply_verified(&store, &effects, Provider::Paystack, event("subscription.disable")).await;
                apply_verified(&store, &effects, Provider::Paystack, event("subscription.not_renew")).await;
            } else {
                apply_verified(&store, &effects, Provider::Paystack, event("subscription.not_renew")).await;
                let state = entitlement().await;
                assert_eq!((state.status.as_str(), state.entitles()), ("non-renewing", true));
                assert_eq!(actions(), [Action::Provision], "not renewing still gives access");
                apply_verified(&store, &effects, Provider::Paystack, event("subscription.disable")).await;
            }
            assert_eq!(entitlement().await.status, crate::ports::ledger::CANCELLED, "disable first: {disable_first}");
            assert_eq!(actions(), [Action::Provision, Action::Deprovision], "disable first: {disable_first}");
        }
    }

    /// Paystack sends no invoice for a subscription's first payment: its
    /// plan's `charge.success` grants the period. A renewal is told by its
    /// charge and its paid `invoice.update`, naming one transaction: granted
    /// once in either order, and its refund claws back from it.
    #[tokio::test]
    async fn a_paystack_first_payment_is_granted_by_its_charge_and_a_renewal_told_twice_once() {
        use crate::providers::paystack;

        for invoice_first in [false, true] {
            let store = Arc::new(MemoryEventStore::new());
            let plans = Plans::from_json(r#"{"PLN_testpro0001": 100}"#).unwrap();
            let effects = BillingEffects::new(store.clone(), plans, Arc::new(SystemClock));
            let ids = paystack::sample_ids();
            let event = |name: &str| {
                let ids = crate::providers::SampleIds { event_id: paystack::sample_ids().event_id, ..ids.clone() };
                let body = paystack::SAMPLES.event(name, &ids).unwrap();
                paystack::parse_event(body.as_bytes(), OffsetDateTime::now_utc()).unwrap()
            };
            let account = AccountRef::new(Provider::Paystack, "acct-demo-001");
            let balance = || {
                let (store, account) = (store.clone(), account.clone());
                async move { store.account(&account).await.unwrap().map_or(0, |a| a.balance) }
            };
            let apply = |name: &'static str| apply_verified(&store, &effects, Provider::Paystack, event(name));
            assert_eq!(apply("charge.success.subscription").await, Applied::Committed);
            apply("subscription.create").await;
            assert_eq!(balance().await, 100, "the first period, paid when subscribing");
            let (first, second) = match invoice_first {
                true => ("invoice.update", "charge.success.renewal"),
                false => ("charge.success.renewal", "invoice.update"),
            };
            assert_eq!(apply(first).await, Applied::Committed, "{first}");
            assert_ne!(apply(second).await, Applied::Committed, "{second} tells the same payment");
            assert_eq!(balance().await, 200, "invoice first: {invoice_first}");
            apply("refund.processed").await;
            assert_eq!(balance().await, 175, "a quarter of the renewal refunded");
            let grants = store.entries(&account).await.unwrap().into_iter().filter(|e| e.delta > 0).count();
            assert_eq!(grants, 2);
        }
    }

    /// Lago tells an up/downgrade as two events stamped alike: the old
    /// Lago subscription terminated (naming the next plan) and the new one
    /// started (naming the previous plan), under one `external_id`. In
    /// either order the subscription ends live on the new plan.
    #[tokio::test]
    async fn a_lago_plan_change_told_at_one_time_ends_on_the_new_plan_in_either_order() {
        use crate::adapters::MemoryProvisioner;
        use crate::providers::lago;

        for terminated_first in [true, false] {
            let store = Arc::new(MemoryEventStore::new());
            let provisioner = Arc::new(MemoryProvisioner::new());
            let effects = BillingEffects::new(store.clone(), Plans::default(), Arc::new(SystemClock))
                .with_provisioner(provisioner.clone());
            let ids = lago::sample_ids();
            let at = "2026-03-01T12:00:00Z";
            let event = |name: &str, edit: &dyn Fn(String) -> String| {
                let ids = crate::providers::SampleIds { event_id: lago::sample_ids().event_id, ..ids.clone() };
                let body = edit(lago::SAMPLES.event(name, &ids).unwrap());
                lago::parse_event(&ids.event_id, body.as_bytes(), OffsetDateTime::now_utc()).unwrap()
            };
            let started = event("subscription.started", &|b| b);
            let old_half = event("subscription.terminated", &|b| {
                b.replace(r#""next_plan_code": null"#, r#""next_plan_code": "team_monthly""#)
                    .replace("2026-04-02T17:45:10Z", at)
            });
            let new_half = event("subscription.started", &|b| {
                b.replace(r#""previous_plan_code": null"#, r#""previous_plan_code": "pro_monthly""#)
                    .replace(r#""plan_code": "pro_monthly""#, r#""plan_code": "team_monthly""#)
                    .replace("2026-01-15T09:30:00.120Z", at)
            });
            assert_eq!(old_half.event.occurred_at, new_half.event.occurred_at, "one time for both halves");
            apply_verified(&store, &effects, Provider::Lago, started).await;
            let halves = if terminated_first { [old_half, new_half] } else { [new_half, old_half] };
            for half in halves {
                apply_verified(&store, &effects, Provider::Lago, half).await;
            }
            let account = AccountRef::new(Provider::Lago, ids.customer_id.clone());
            let state = store.account(&account).await.unwrap().and_then(|a| a.entitlement).unwrap();
            let told = (state.status.as_str(), state.plan.as_deref());
            assert_eq!(told, ("active", Some("team_monthly")), "terminated first: {terminated_first}");
            let actions: Vec<_> = provisioner.received().into_iter().map(|r| r.action).collect();
            assert_eq!(actions, [Action::Provision, Action::ChangePlan], "terminated first: {terminated_first}");
        }
    }

    /// Kill Bill dates subscriptions by the day (its API's `startDate`,
    /// `cancelledDate`, which confirmation stamps them with): a customer who
    /// cancels and subscribes again that day has two subscriptions of one
    /// date, and stays entitled by the new one; one created and cancelled
    /// the same day ends cancelled, in either order.
    #[tokio::test]
    async fn a_kill_bill_cancel_and_resubscribe_on_one_day_leaves_the_new_subscription() {
        use crate::adapters::MemoryProvisioner;
        use crate::providers::killbill;

        let day = OffsetDateTime::from_unix_timestamp(1_769_904_000).unwrap();
        for cancel_first in [true, false] {
            let store = Arc::new(MemoryEventStore::new());
            let provisioner = Arc::new(MemoryProvisioner::new());
            let effects = BillingEffects::new(store.clone(), Plans::default(), Arc::new(SystemClock))
                .with_provisioner(provisioner.clone());
            let ids = killbill::sample_ids();
            // As confirmed: the plan and the day from Kill Bill's API.
            let event = |name: &str, subscription: &str, at: OffsetDateTime| {
                let ids = crate::providers::SampleIds {
                    event_id: killbill::sample_ids().event_id,
                    subscription_id: subscription.to_owned(),
                    ..ids.clone()
                };
                let body = killbill::SAMPLES.event(name, &ids).unwrap();
                let mut verified = killbill::parse_event(body.as_bytes(), OffsetDateTime::now_utc()).unwrap();
                verified.event.occurred_at = at;
                verified.event.plan = Some("pro-monthly".into());
                verified
            };
            let old = ids.subscription_id.clone();
            let new = killbill::sample_ids().subscription_id;
            let earlier = day - time::Duration::days(30);
            apply_verified(&store, &effects, Provider::Killbill, event("SUBSCRIPTION_CREATION", &old, earlier)).await;
            let cancel = event("SUBSCRIPTION_CANCEL", &old, day);
            let again = event("SUBSCRIPTION_CREATION", &new, day);
            let same_day = if cancel_first { [cancel, again] } else { [again, cancel] };
            for verified in same_day {
                apply_verified(&store, &effects, Provider::Killbill, verified).await;
            }
            let account = AccountRef::new(Provider::Killbill, ids.customer_id.clone());
            let state = store.account(&account).await.unwrap().unwrap();
            let statuses: Vec<_> = state.subscriptions.values().map(|e| e.status.as_str()).collect();
            assert_eq!(statuses.len(), 2, "cancel first: {cancel_first}");
            assert!(statuses.contains(&"active") && statuses.contains(&"cancelled"), "{statuses:?}");
            let entitlement = state.entitlement.unwrap();
            assert_eq!(entitlement.subscription.as_deref(), Some(new.as_str()), "cancel first: {cancel_first}");
            // One created and cancelled that day, told in either order.
            let created = event("SUBSCRIPTION_CREATION", "sub-one-day", day);
            let cancelled = event("SUBSCRIPTION_CANCEL", "sub-one-day", day);
            let one_day = if cancel_first { [cancelled, created] } else { [created, cancelled] };
            for verified in one_day {
                apply_verified(&store, &effects, Provider::Killbill, verified).await;
            }
            let state = store.account(&account).await.unwrap().unwrap();
            assert_eq!(state.subscriptions["sub-one-day"].status, crate::ports::ledger::CANCELLED);
        }
    }

    /// Paddle documents no order: a subscription's `past_due` may come in
    /// before the `subscription.created` that preceded it.
    #[tokio::test]
    async fn a_status_that_entitles_provisions_even_before_its_purchase_and_nothing_after_a_cancellation() {
        use crate::adapters::MemoryProvisioner;
        use crate::providers::paddle;

        let store = Arc::new(MemoryEventStore::new());
        let provisioner = Arc::new(MemoryProvisioner::new());
        let effects = BillingEffects::new(store.clone(), Plans::default(), Arc::new(SystemClock))
            .with_provisioner(provisioner.clone());
        let ids = paddle::sample_ids();
        let event = |name: &str| {
            let ids = crate::providers::SampleIds { event_id: paddle::sample_ids().event_id, ..ids.clone() };
            paddle::parse_event(paddle::SAMPLES.event(name, &ids).unwrap().as_bytes()).unwrap()
        };
        let account = AccountRef::new(Provider::Paddle, "acct-demo-001");
        let status = || {
            let store = store.clone();
            let account = account.clone();
            async move { store.account(&account).await.unwrap().and_then(|a| a.entitlement).map(|e| e.status) }
        };
        let actions = || provisioner.received().into_iter().map(|r| r.action).collect::<Vec<_>>();

        apply_verified(&store, &effects, Provider::Paddle, event("subscription.past_due")).await;
        assert_eq!(actions(), [Action::Provision], "past due still gives access: downstream provisions");
        apply_verified(&store, &effects, Provider::Paddle, event("subscription.created")).await;
        assert_eq!(actions(), [Action::Provision], "the late purchase changes nothing");
        assert_eq!(status().await.as_deref(), Some("past_due"), "the account keeps the newer status");

        let mut cancelled = event("subscription.canceled");
        cancelled.event.occurred_at = OffsetDateTime::now_utc();
        apply_verified(&store, &effects, Provider::Paddle, cancelled).await;
        apply_verified(&store, &effects, Provider::Paddle, event("subscription.created")).await;
        assert_eq!(actions(), [Action::Provision, Action::Deprovision], "nothing provisions after a cancellation");
        assert_eq!(status().await.as_deref(), Some(crate::ports::ledger::CANCELLED));
    }
}

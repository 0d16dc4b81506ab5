//! The business effects of each kind of event, on the ledger. Every effect
//! has a business key, so one fact gives one effect however many events
//! carry it and however often they arrive (I4):
//!
//! | kind | business key | change |
//! |---|---|---|
//! | renewal | `grant:{provider}:{account}:{period start}` (or `…:payment:{id}` where the provider names no period) | the plan's credits for the period |
//! | trial started | `trial:{provider}:{account}` | the account's one trial |
//! | payment failed | `payment_failed:{provider}:{event id}` | counted on the account |
//! | purchase | `provision:{provider}:{subscription}` | entitlement active; the provisioner told to provision |
//! | cancellation | `deprovision:{provider}:{subscription}` | entitlement cancelled; the provisioner told to deprovision |
//! | subscription updated (with a status) | `state:{provider}:{event id}` | entitlement status and plan |
//!
//! Entitlements are state: one set by an event older than the one that set
//! it last is stale and changes nothing (I6). Refunds complete with no
//! effect yet; `Other` is recorded as ignored.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::clock::Clock;
use crate::event::{EventKind, EventRecord};
use crate::ports::{
    AccountRef, Action, Applied, Change, CommitOutcome, Effect, EffectError, Effects, Entitlement, Ledger,
    ProvisionRequest, Provisioner,
};

/// Credits per billing period, by the provider's plan or price id.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct Plans(BTreeMap<String, i64>);

#[derive(Debug, thiserror::Error)]
#[error("plans must be a JSON object of plan id to whole credits per period")]
pub struct InvalidPlans(#[source] serde_json::Error);

impl Plans {
    pub fn from_json(json: &str) -> Result<Self, InvalidPlans> {
        serde_json::from_str(json).map_err(InvalidPlans)
    }

    pub fn credits(&self, plan: &str) -> Option<i64> {
        self.0.get(plan).copied()
    }
}

#[derive(Debug)]
pub struct BillingEffects {
    ledger: Arc<dyn Ledger>,
    plans: Plans,
    clock: Arc<dyn Clock>,
    provisioner: Option<Arc<dyn Provisioner>>,
}

impl BillingEffects {
    pub fn new(ledger: Arc<dyn Ledger>, plans: Plans, clock: Arc<dyn Clock>) -> Self {
        Self {
            ledger,
            plans,
            clock,
            provisioner: None,
        }
    }

    /// Tells `provisioner` about purchases and cancellations.
    pub fn with_provisioner(mut self, provisioner: Arc<dyn Provisioner>) -> Self {
        self.provisioner = Some(provisioner);
        self
    }

    /// Calls the provisioner for an entitlement effect that is neither
    /// applied already nor older than the account's state, so a duplicate or
    /// a late event never reaches downstream. Two workers racing past this
    /// check send the same idempotency key.
    async fn provision(&self, record: &EventRecord, effect: &Effect, action: Action) -> Result<Option<Applied>, EffectError> {
        let Some(provisioner) = &self.provisioner else {
            return Ok(None);
        };
        let transient = |e: crate::ports::StoreError| EffectError::Transient(Box::new(e));
        if self.ledger.has_effect(&effect.business_key).await.map_err(transient)? {
            return Ok(Some(Applied::DuplicateEffect));
        }
        let Change::Entitlement(entitlement) = &effect.change else {
            return Ok(None);
        };
        let current = self.ledger.account(&effect.account).await.map_err(transient)?;
        if current
            .and_then(|a| a.entitlement)
            .is_some_and(|e| e.as_of >= entitlement.as_of)
        {
            return Ok(Some(Applied::Stale));
        }
        let request = ProvisionRequest {
            idempotency_key: effect.business_key.clone(),
            action,
            provider: record.provider,
            account: effect.account.account.clone(),
            plan: entitlement.plan.clone(),
            subscription: entitlement.subscription.clone(),
            customer: entitlement.customer.clone(),
            event_id: record.event_id.to_string(),
        };
        provisioner
            .send(&request)
            .await
            .map_err(|e| EffectError::Transient(Box::new(e)))?;
        Ok(None)
    }

    /// The effect of `record`, if its kind has one.
    fn effect(&self, record: &EventRecord) -> Result<Option<Effect>, EffectError> {
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
            Ok(Some(Effect {
                business_key,
                account: account()?,
                change,
                event: record.key(),
            }))
        };
        match event.kind {
            EventKind::Renewal => {
                let account = account()?;
                let plan = event
                    .plan
                    .as_deref()
                    .ok_or_else(|| EffectError::Permanent("the renewal names no plan".into()))?;
                let credits = self
                    .plans
                    .credits(plan)
                    .ok_or_else(|| EffectError::Permanent(format!("unknown plan {plan:?}: add it to the plans")))?;
                // Once per period where the provider names it (two events of
                // one renewal meet here); where it names none, once per
                // payment (its only renewal event names the payment).
                let occasion = match (event.period, event.object.as_deref()) {
                    (Some(period), _) => period.start.unix_timestamp().to_string(),
                    (None, Some(payment)) => format!("payment:{payment}"),
                    (None, None) => {
                        return Err(EffectError::Permanent("the renewal names no billing period or payment".into()));
                    }
                };
                effect(format!("grant:{provider}:{}:{occasion}", account.account), Change::Credit(credits))
            }
            EventKind::TrialStarted => effect(format!("trial:{provider}:{}", account()?.account), Change::Trial),
            EventKind::PaymentFailed => effect(
                format!("payment_failed:{provider}:{}", record.event_id),
                Change::PaymentFailed,
            ),
            EventKind::Purchase | EventKind::Cancellation => {
                let account = account()?;
                let target = event.subscription.clone().unwrap_or_else(|| account.account.clone());
                let (prefix, status) = if event.kind == EventKind::Purchase {
                    ("provision", "active")
                } else {
                    ("deprovision", "cancelled")
                };
                effect(format!("{prefix}:{provider}:{target}"), entitle(event, status))
            }
            EventKind::SubscriptionUpdated => match &event.status {
                Some(status) => effect(
                    format!("state:{provider}:{}", record.event_id),
                    entitle(event, &status.to_ascii_lowercase()),
                ),
                None => Ok(None),
            },
            EventKind::Refund | EventKind::Other => Ok(None),
        }
    }
}

#[async_trait]
impl Effects for BillingEffects {
    async fn apply(&self, record: &EventRecord, owner: &str) -> Result<Applied, EffectError> {
        if record.event.kind == EventKind::Other {
            return Ok(Applied::NoHandler);
        }
        let Some(effect) = self.effect(record)? else {
            return Ok(Applied::Done);
        };
        let action = match record.event.kind {
            EventKind::Purchase => Some(Action::Provision),
            EventKind::Cancellation => Some(Action::Deprovision),
            _ => None,
        };
        if let Some(action) = action
            && let Some(decided) = self.provision(record, &effect, action).await?
        {
            return Ok(decided);
        }
        let now: OffsetDateTime = self.clock.now();
        // A conflicting transaction or throttling surfaces as a store error:
        // transient, retried with backoff.
        let outcome = self
            .ledger
            .commit(&effect, owner, now)
            .await
            .map_err(|e| EffectError::Transient(Box::new(e)))?;
        Ok(match outcome {
            CommitOutcome::Applied => Applied::Committed,
            CommitOutcome::DuplicateEffect => Applied::DuplicateEffect,
            CommitOutcome::LeaseLost => Applied::LeaseLost,
            CommitOutcome::Stale => Applied::Stale,
        })
    }
}

fn entitle(event: &crate::event::DomainEvent, status: &str) -> Change {
    Change::Entitlement(Entitlement {
        status: status.to_owned(),
        plan: event.plan.clone(),
        subscription: event.subscription.clone(),
        customer: event.customer.clone(),
        as_of: event.occurred_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::MemoryEventStore;
    use crate::clock::SystemClock;
    use crate::event::{EventId, EventKey, NewEvent, Provider};
    use crate::ports::{EventStore, LeaseOutcome};
    use crate::providers::flutterwave;

    #[tokio::test]
    async fn a_renewal_without_a_period_is_granted_once_per_payment() {
        let store = Arc::new(MemoryEventStore::new());
        let ids = flutterwave::sample_ids();
        let body = flutterwave::SAMPLES.event("charge.completed.renewal", &ids).unwrap();
        let now = OffsetDateTime::now_utc();
        let verified = flutterwave::parse_event(body.as_bytes(), now).unwrap();
        assert_eq!(verified.event.period, None);
        let plan = verified.event.plan.clone().unwrap();
        let key = EventKey::new(Provider::Flutterwave, EventId::parse(verified.event_id.as_str()).unwrap());
        let new = NewEvent {
            key: key.clone(),
            fingerprint: verified.fingerprint,
            event: verified.event,
            received_at: now,
            expires_at: now + time::Duration::hours(1),
        };
        store.claim(&new).await.unwrap();
        let LeaseOutcome::Acquired(record) = store.lease(&key, "w", now, now + time::Duration::minutes(1)).await.unwrap() else {
            panic!("leased");
        };
        let plans = Plans::from_json(&format!(r#"{{"{plan}": 7}}"#)).unwrap();
        let effects = BillingEffects::new(store.clone(), plans, Arc::new(SystemClock));
        assert_eq!(effects.apply(&record, "w").await.unwrap(), Applied::Committed);
        let account = AccountRef::new(Provider::Flutterwave, "acct-demo-001");
        let entries = store.entries(&account).await.unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].business_key, format!("grant:flutterwave:acct-demo-001:payment:{}", ids.event_id));
        assert_eq!(store.account(&account).await.unwrap().unwrap().balance, 7);
    }
}

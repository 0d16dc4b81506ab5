//! The business effects of each kind of event, on the ledger. Every effect
//! has a business key, so one fact gives one effect however many events
//! carry it and however often they arrive (I4):
//!
//! | kind | business key | change |
//! |---|---|---|
//! | renewal | `grant:{provider}:{account}:{period start}` | the plan's credits for the period |
//! | trial started | `trial:{provider}:{account}` | the account's one trial |
//! | payment failed | `payment_failed:{provider}:{event id}` | counted on the account |
//!
//! Other kinds complete with no effect yet; `Other` is recorded as ignored.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::clock::Clock;
use crate::event::{EventKind, EventRecord};
use crate::ports::{AccountRef, Applied, Change, CommitOutcome, Effect, EffectError, Effects, Ledger};

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
}

impl BillingEffects {
    pub fn new(ledger: Arc<dyn Ledger>, plans: Plans, clock: Arc<dyn Clock>) -> Self {
        Self { ledger, plans, clock }
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
                let period = event
                    .period
                    .ok_or_else(|| EffectError::Permanent("the renewal names no billing period".into()))?;
                let plan = event
                    .plan
                    .as_deref()
                    .ok_or_else(|| EffectError::Permanent("the renewal names no plan".into()))?;
                let credits = self
                    .plans
                    .credits(plan)
                    .ok_or_else(|| EffectError::Permanent(format!("unknown plan {plan:?}: add it to the plans")))?;
                let key = format!("grant:{provider}:{}:{}", account.account, period.start.unix_timestamp());
                effect(key, Change::Credit(credits))
            }
            EventKind::TrialStarted => effect(format!("trial:{provider}:{}", account()?.account), Change::Trial),
            EventKind::PaymentFailed => effect(
                format!("payment_failed:{provider}:{}", record.event_id),
                Change::PaymentFailed,
            ),
            _ => Ok(None),
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
        })
    }
}

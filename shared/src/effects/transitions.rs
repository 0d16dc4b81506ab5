//! Downstream ends where the ledger ends when two events of one
//! subscription interleave: a pause and its resumption, each read before
//! the other commits (Paddle's samples; every provider goes the same way).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{BillingEffects, Plans};
use crate::adapters::{MemoryEventStore, MemoryProvisioner};
use crate::clock::SystemClock;
use crate::event::Provider;
use crate::ports::{
    AccountRef, AccountState, Action, Applied, Balances, CommitOutcome, Effect, LedgerEntry, Payment, PaymentRef,
    Postings, ProvisionError, ProvisionRequest, Provisioner, StoreError,
};
use crate::providers::{SampleIds, paddle};

type Interleaved = Mutex<Option<Pin<Box<dyn Future<Output = ()> + Send>>>>;

/// The memory ledger, where the first read of an account lets another
/// event run to its end before the reader sees what it read.
#[derive(Default)]
struct ReadThenOther {
    store: Arc<MemoryEventStore>,
    other: Interleaved,
}

impl std::fmt::Debug for ReadThenOther {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReadThenOther")
    }
}

#[async_trait]
impl Balances for ReadThenOther {
    async fn account(&self, account: &AccountRef) -> Result<Option<AccountState>, StoreError> {
        let read = self.store.account(account).await;
        let other = self.other.lock().unwrap().take();
        if let Some(other) = other {
            other.await;
        }
        read
    }

    async fn entries(&self, account: &AccountRef) -> Result<Vec<LedgerEntry>, StoreError> {
        self.store.entries(account).await
    }
}

#[async_trait]
impl Postings for ReadThenOther {
    async fn commit(&self, effect: &Effect, owner: &str, now: OffsetDateTime) -> Result<CommitOutcome, StoreError> {
        self.store.commit(effect, owner, now).await
    }

    async fn has_effect(&self, business_key: &str) -> Result<bool, StoreError> {
        self.store.has_effect(business_key).await
    }

    async fn payment(&self, reference: &PaymentRef) -> Result<Option<Payment>, StoreError> {
        self.store.payment(reference).await
    }
}

/// Downstream, where the first request lets another event run to its end
/// before it is answered.
#[derive(Debug, Default)]
struct SendThenOther {
    received: Arc<MemoryProvisioner>,
    other: OtherOnce,
}

#[derive(Default)]
struct OtherOnce(Interleaved);

impl std::fmt::Debug for OtherOnce {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OtherOnce")
    }
}

#[async_trait]
impl Provisioner for SendThenOther {
    async fn send(&self, request: &ProvisionRequest) -> Result<(), ProvisionError> {
        self.received.send(request).await?;
        let other = self.other.0.lock().unwrap().take();
        if let Some(other) = other {
            other.await;
        }
        Ok(())
    }
}

/// The one subscription's ids.
static STORY: std::sync::LazyLock<SampleIds> = std::sync::LazyLock::new(paddle::sample_ids);

/// Paddle's `name` sample for the one subscription, at `at`.
fn event(name: &str, at: &str) -> crate::providers::VerifiedEvent {
    let ids = SampleIds { event_id: paddle::sample_ids().event_id, ..STORY.clone() };
    let body = paddle::SAMPLES.event(name, &ids).unwrap();
    let mut value: serde_json::Value = serde_json::from_str(&body).unwrap();
    value["occurred_at"] = serde_json::json!(at);
    paddle::parse_event(value.to_string().as_bytes()).unwrap()
}

/// Claims, leases and applies `verified` on `store`.
async fn apply(
    store: &Arc<MemoryEventStore>,
    effects: &BillingEffects,
    verified: crate::providers::VerifiedEvent,
) -> Applied {
    super::tests::apply_verified(store, effects, Provider::Paddle, verified).await
}

/// The status the ledger ends on, and what downstream keeps: the request
/// with the newest provider time.
async fn ends(store: &MemoryEventStore, downstream: &MemoryProvisioner) -> (String, Action) {
    let account = AccountRef::new(Provider::Paddle, "acct-demo-001");
    let state = store.account(&account).await.unwrap().unwrap();
    let kept = downstream.received().into_iter().max_by_key(|r| r.as_of).unwrap();
    (state.entitlement.unwrap().status, kept.action)
}

/// Paddle's cancelled subscription has no `current_billing_period`: its
/// state keeps the period before it, which is how long the subscription's
/// periods are (a plan change paid after it is prorated by it).
#[tokio::test]
async fn a_state_that_states_no_period_keeps_the_one_before() {
    let store = Arc::new(MemoryEventStore::new());
    let effects = BillingEffects::new(store.clone(), Plans::default(), Arc::new(SystemClock));
    let created = event("subscription.created", "2026-11-01T10:00:02Z");
    let period = created.event.period.expect("the created subscription's period");
    apply(&store, &effects, created).await;
    let cancelled = event("subscription.canceled", "2026-11-20T10:00:00Z");
    assert_eq!(cancelled.event.period, None);
    assert_eq!(apply(&store, &effects, cancelled).await, Applied::Committed);
    let account = AccountRef::new(Provider::Paddle, "acct-demo-001");
    let state = store.account(&account).await.unwrap().unwrap().entitlement.unwrap();
    assert_eq!((state.status.as_str(), state.period), ("cancelled", Some(period)));
}

const PAUSED_AT: &str = "2026-11-20T09:00:00Z";
const RESUMED_AT: &str = "2026-11-22T09:00:00Z";

/// The resumption reads the subscription active (nothing to tell), then the
/// pause commits and tells downstream: the resumption's commit must not
/// hide that it ends the pause.
#[tokio::test]
async fn a_state_read_before_another_commits_is_decided_again() {
    let store = Arc::new(MemoryEventStore::new());
    let downstream = Arc::new(MemoryProvisioner::new());
    let plain = BillingEffects::new(store.clone(), Plans::default(), Arc::new(SystemClock))
        .with_provisioner(downstream.clone());
    apply(&store, &plain, event("subscription.created", "2026-11-01T10:00:02Z")).await;

    let ledger = Arc::new(ReadThenOther { store: store.clone(), other: Mutex::new(None) });
    let pause = {
        let (store, downstream) = (store.clone(), downstream.clone());
        async move {
            let effects = BillingEffects::new(store.clone(), Plans::default(), Arc::new(SystemClock))
                .with_provisioner(downstream);
            assert_eq!(apply(&store, &effects, event("subscription.paused", PAUSED_AT)).await, Applied::Committed);
        }
    };
    *ledger.other.lock().unwrap() = Some(Box::pin(pause));
    let reading =
        BillingEffects::new(ledger, Plans::default(), Arc::new(SystemClock)).with_provisioner(downstream.clone());
    assert_eq!(apply(&store, &reading, event("subscription.resumed", RESUMED_AT)).await, Applied::Committed);

    assert_eq!(ends(&store, &downstream).await, ("active".to_owned(), Action::Provision));
    let actions: Vec<_> = downstream.received().into_iter().map(|r| r.action).collect();
    assert_eq!(actions, [Action::Provision, Action::Deprovision, Action::Provision]);
}

/// The pause tells downstream, then the resumption commits before it: the
/// pause, stale now, must not leave downstream paused.
#[tokio::test]
async fn a_transition_told_then_overtaken_is_corrected_downstream() {
    let store = Arc::new(MemoryEventStore::new());
    let received = Arc::new(MemoryProvisioner::new());
    let plain =
        BillingEffects::new(store.clone(), Plans::default(), Arc::new(SystemClock)).with_provisioner(received.clone());
    apply(&store, &plain, event("subscription.created", "2026-11-01T10:00:02Z")).await;

    let resume = {
        let (store, received) = (store.clone(), received.clone());
        async move {
            let effects =
                BillingEffects::new(store.clone(), Plans::default(), Arc::new(SystemClock)).with_provisioner(received);
            assert_eq!(apply(&store, &effects, event("subscription.resumed", RESUMED_AT)).await, Applied::Committed);
        }
    };
    let downstream = Arc::new(SendThenOther { received: received.clone(), other: OtherOnce::default() });
    *downstream.other.0.lock().unwrap() = Some(Box::pin(resume));
    let telling =
        BillingEffects::new(store.clone(), Plans::default(), Arc::new(SystemClock)).with_provisioner(downstream);
    assert_eq!(apply(&store, &telling, event("subscription.paused", PAUSED_AT)).await, Applied::Stale);

    assert_eq!(ends(&store, &received).await, ("active".to_owned(), Action::Provision));
}

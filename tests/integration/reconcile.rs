//! Reconciliation finds every account whose balance is not the sum of its
//! ledger, records it for a person and changes nothing; accounts that add up
//! pass, however many pages they fill. On the memory adapters and DynamoDB
//! Local.

use std::sync::Arc;
use std::time::Duration;

use payhooks::adapters::MemoryMetrics;
use payhooks::clock::SystemClock;
use payhooks::event::{DomainEvent, EventId, EventKey, NewEvent, Provider};
use payhooks::ports::{AccountRef, Change, Effect, LeaseOutcome};
use payhooks::reconcile::{ReconcileReport, Reconciler};
use payhooks_tests::Backend;

use crate::support::now;

/// A grant of `credits` to `account`, committed as an effect would be.
async fn grant(backend: &Backend, account: &AccountRef, credits: i64) {
    let key =
        EventKey::new(Provider::Stripe, EventId::parse(&format!("evt_{}", uuid::Uuid::new_v4().simple())).expect("id"));
    let at = now();
    let event = NewEvent {
        key: key.clone(),
        fingerprint: "fp".into(),
        event: DomainEvent::new("invoice.paid", at),
        received_at: at,
    };
    backend.store.claim(&event).await.expect("claim");
    let leased = backend.store.lease(&key, "w", at, at + time::Duration::minutes(1)).await.expect("lease");
    assert!(matches!(leased, LeaseOutcome::Acquired(_)));
    let effect = Effect::new(format!("grant:{key}"), account.clone(), Change::Credit(credits), key);
    backend.ledger.commit(&effect, "w", at).await.expect("commit");
}

#[tokio::test]
async fn a_balance_that_is_not_the_sum_of_its_ledger_is_recorded_and_left_alone() {
    for backend in Backend::all(Duration::from_secs(30)).await {
        let count = if backend.name == "memory" { 250 } else { 30 };
        let accounts: Vec<AccountRef> =
            (0..count).map(|i| AccountRef::new(Provider::ALL[i % Provider::ALL.len()], format!("acct-{i}"))).collect();
        for (i, account) in accounts.iter().enumerate() {
            grant(&backend, account, 100).await;
            if i % 3 == 0 {
                grant(&backend, account, -40).await;
            }
        }
        let metrics = Arc::new(MemoryMetrics::new());
        let reconciler = Reconciler::new(backend.ledger.clone(), metrics.clone(), Arc::new(SystemClock));
        let clean = ReconcileReport { accounts: count as u32, complete: true, ..ReconcileReport::default() };
        assert_eq!(reconciler.reconcile(None).await.expect("reconcile"), clean, "{}", backend.name);

        let broken = &accounts[7];
        backend.corrupt_balance(broken, 5).await;
        let report = reconciler.reconcile(None).await.expect("reconcile");
        assert_eq!((report.accounts, report.mismatched, report.unsettled), (count as u32, 1, 0), "{}", backend.name);
        assert_eq!(metrics.get(broken.provider.as_str(), "reconcile_mismatch"), 1);
        let audits = backend.ledger.audits(broken).await.expect("audits");
        assert_eq!(audits.len(), 1, "{}", backend.name);
        assert_eq!(audits[0].kind, "reconcile_mismatch");
        assert_eq!(audits[0].detail, serde_json::json!({"balance": 105, "ledger_sum": 100, "entries": 1}));
        let state = backend.ledger.account(broken).await.expect("account").expect("account");
        assert_eq!(state.balance, 105, "{}: never fixed by reconciliation", backend.name);
        assert!(backend.ledger.audits(&accounts[8]).await.expect("audits").is_empty());
        assert_eq!(backend.ledger.entries(broken).await.expect("entries").len(), 1, "audits are not entries");
    }
}

#[tokio::test]
async fn a_run_out_of_time_saves_where_it_stopped_and_the_next_goes_on_from_there() {
    for backend in Backend::all(Duration::from_secs(30)).await {
        let name = backend.name;
        // Many pages of twenty, one account wrong.
        let accounts: Vec<AccountRef> =
            (0..230).map(|i| AccountRef::new(Provider::Lago, format!("acct-{i:03}"))).collect();
        for account in &accounts {
            grant(&backend, account, 100).await;
        }
        backend.corrupt_balance(&accounts[150], 5).await;
        let metrics = Arc::new(MemoryMetrics::new());
        let reconciler =
            Reconciler::new(backend.ledger.clone(), metrics.clone(), Arc::new(SystemClock)).with_page_size(20);

        // No time at all: each run checks one page and saves where it stopped.
        let mut runs = Vec::new();
        while runs.last().is_none_or(|r: &ReconcileReport| !r.complete) {
            assert!(runs.len() < 100, "{name}: the walk never ends: {runs:?}");
            runs.push(reconciler.reconcile(Some(Duration::ZERO)).await.expect("reconcile"));
        }
        assert!(runs.len() >= 3, "{name}: a page per run: {runs:?}");
        assert!(!runs[0].resumed && runs[1..].iter().all(|r| r.resumed), "{name}: {runs:?}");
        assert_eq!(runs.iter().map(|r| r.accounts).sum::<u32>(), 230, "{name}: every account once: {runs:?}");
        assert_eq!(runs.iter().map(|r| r.mismatched).sum::<u32>(), 1, "{name}: {runs:?}");
        assert_eq!(metrics.get("lago", "reconcile_mismatch"), 1, "{name}");
        assert_eq!(
            backend.ledger.checkpoint("reconcile").await.expect("checkpoint"),
            None,
            "{name}: cleared at the end"
        );

        // After the last account the walk starts over.
        let again = reconciler.reconcile(Some(Duration::ZERO)).await.expect("reconcile");
        assert!(!again.resumed && again.accounts > 0, "{name}: {again:?}");
    }
}

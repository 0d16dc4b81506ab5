//! What every [`Ledger`] must do: one effect per business key, applied
//! atomically with the event's completion, only under the event's lease;
//! balances that add up under concurrency.

use std::sync::Arc;

use payhooks::event::{DomainEvent, EventId, EventKey, EventKind, EventStatus, NewEvent, Period, Provider};
use payhooks::ports::{
    AccountRef, BalanceGuard, Basis, Change, CommitOutcome, Effect, EventStore, LeaseOutcome, Ledger, Payment,
    PaymentRef, PaymentWrite,
};
use time::OffsetDateTime;

/// A store that is also the ledger, as both adapters are.
pub trait Books: EventStore + Ledger {}
impl<T: EventStore + Ledger> Books for T {}

fn t(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000 + seconds).expect("valid time")
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// An event recorded and leased by `owner`, ready for its effect.
async fn leased_event(books: &dyn Books, owner: &str) -> EventKey {
    let key = EventKey::new(Provider::Stripe, EventId::parse(&unique("evt")).expect("id"));
    let event = NewEvent {
        key: key.clone(),
        fingerprint: "fp".into(),
        event: DomainEvent { kind: EventKind::Renewal, ..DomainEvent::new("invoice.paid", t(0)) },
        received_at: t(0),
    };
    books.claim(&event).await.expect("claim");
    assert!(matches!(books.lease(&key, owner, t(1), t(31)).await.expect("lease"), LeaseOutcome::Acquired(_)));
    key
}

fn grant(account: &AccountRef, business_key: &str, amount: i64, event: &EventKey) -> Effect {
    Effect::new(business_key.to_owned(), account.clone(), Change::Credit(amount), event.clone())
}

pub async fn an_effect_applies_once_and_completes_its_event(books: Arc<dyn Books>) {
    let account = AccountRef::new(Provider::Stripe, unique("acct"));
    let key = unique("grant");
    let first = leased_event(books.as_ref(), "w1").await;
    assert_eq!(
        books.commit(&grant(&account, &key, 100, &first), "w1", t(2)).await.expect("commit"),
        CommitOutcome::Applied
    );
    let record = books.get(&first).await.expect("get").expect("record");
    assert_eq!(record.status, EventStatus::Completed);
    assert_eq!(record.lease_owner, None);
    let retention = time::Duration::try_from(payhooks::ports::event_store::DEFAULT_RETENTION).expect("retention");
    assert_eq!(record.expires_at, Some(t(2) + retention), "completed with its effect: kept for the retention");

    // Another event meaning the same fact: the business key is taken.
    let second = leased_event(books.as_ref(), "w2").await;
    assert_eq!(
        books.commit(&grant(&account, &key, 100, &second), "w2", t(3)).await.expect("commit"),
        CommitOutcome::DuplicateEffect
    );
    assert_eq!(
        books.get(&second).await.expect("get").expect("record").status,
        EventStatus::Processing,
        "left to finish"
    );
    let state = books.account(&account).await.expect("account").expect("an account");
    assert_eq!(state.balance, 100);
    let entries = books.entries(&account).await.expect("entries");
    assert_eq!(entries.len(), 1);
    assert_eq!((entries[0].business_key.as_str(), entries[0].delta, &entries[0].event), (key.as_str(), 100, &first));
}

pub async fn without_the_lease_nothing_changes(books: Arc<dyn Books>) {
    let account = AccountRef::new(Provider::Stripe, unique("acct"));
    let key = unique("grant");
    let event = leased_event(books.as_ref(), "w1").await;
    assert_eq!(
        books.commit(&grant(&account, &key, 100, &event), "someone-else", t(2)).await.expect("commit"),
        CommitOutcome::LeaseLost
    );
    assert_eq!(books.account(&account).await.expect("account"), None);
    assert!(books.entries(&account).await.expect("entries").is_empty());
    assert_eq!(
        books.commit(&grant(&account, &key, 100, &event), "w1", t(3)).await.expect("commit"),
        CommitOutcome::Applied,
        "the business key was not taken by the failed attempt"
    );
}

pub async fn concurrent_commits_of_one_fact_apply_once(books: Arc<dyn Books>) {
    let account = AccountRef::new(Provider::Stripe, unique("acct"));
    let key = unique("grant");
    let mut events = Vec::new();
    for i in 0..8 {
        events.push((leased_event(books.as_ref(), &format!("w{i}")).await, format!("w{i}")));
    }
    let outcomes = futures::future::join_all(events.iter().map(|(event, owner)| {
        let books = books.clone();
        let effect = grant(&account, &key, 100, event);
        async move {
            loop {
                // A conflicting transaction is Raced: tried again at once, as
                // the effects do.
                match books.commit(&effect, owner, t(5)).await.expect("a conflict is not an error") {
                    CommitOutcome::Raced => tokio::task::yield_now().await,
                    outcome => return outcome,
                }
            }
        }
    }))
    .await;
    assert_eq!(outcomes.iter().filter(|o| **o == CommitOutcome::Applied).count(), 1, "{outcomes:?}");
    assert_eq!(books.account(&account).await.expect("account").expect("account").balance, 100);
}

pub async fn concurrent_grants_for_distinct_periods_add_up_exactly(books: Arc<dyn Books>) {
    let account = AccountRef::new(Provider::Stripe, unique("acct"));
    let mut events = Vec::new();
    for i in 0..40 {
        events.push(leased_event(books.as_ref(), &format!("w{i}")).await);
    }
    futures::future::join_all(events.iter().enumerate().map(|(i, event)| {
        let books = books.clone();
        let effect = grant(&account, &format!("grant:{i}"), i as i64 + 1, event);
        async move {
            loop {
                match books.commit(&effect, &format!("w{i}"), t(5)).await.expect("a conflict is not an error") {
                    CommitOutcome::Raced => tokio::task::yield_now().await,
                    outcome => return assert_eq!(outcome, CommitOutcome::Applied),
                }
            }
        }
    }))
    .await;
    let balance = books.account(&account).await.expect("account").expect("account").balance;
    assert_eq!(balance, (1..=40).sum::<i64>(), "no lost update");
    let entries = books.entries(&account).await.expect("entries");
    assert_eq!(entries.len(), 40);
    assert_eq!(entries.iter().map(|e| e.delta).sum::<i64>(), balance, "the balance is the sum of the ledger");
}

pub async fn a_trial_and_a_failed_payment_are_recorded_on_the_account(books: Arc<dyn Books>) {
    let account = AccountRef::new(Provider::Stripe, unique("acct"));
    let trial = leased_event(books.as_ref(), "w1").await;
    let effect = Effect::new(format!("trial:{}", account.account), account.clone(), Change::Trial(0), trial);
    assert_eq!(books.commit(&effect, "w1", t(2)).await.expect("commit"), CommitOutcome::Applied);
    let failed = leased_event(books.as_ref(), "w2").await;
    let effect = Effect::new(unique("payment_failed"), account.clone(), Change::PaymentFailed, failed);
    assert_eq!(books.commit(&effect, "w2", t(3)).await.expect("commit"), CommitOutcome::Applied);
    let state = books.account(&account).await.expect("account").expect("account");
    assert_eq!(state.balance, 0);
    assert_eq!(state.trial_started_at, Some(t(2)));
    assert_eq!(state.failed_payments, 1);
    let entries = books.entries(&account).await.expect("entries");
    assert_eq!(entries.len(), 2);
    assert!(entries[0].at >= entries[1].at, "newest first");
}

pub async fn a_payment_is_written_only_over_the_version_read(books: Arc<dyn Books>) {
    let account = AccountRef::new(Provider::Stripe, unique("acct"));
    let reference = PaymentRef::new(Provider::Stripe, unique("in"));
    let payment = Payment {
        account: account.account.clone(),
        currency: Some("USD".into()),
        paid_minor: Some(2000),
        granted: Some(100),
        ..Payment::default()
    };
    let write =
        |read_version: u64, payment: Payment| PaymentWrite { reference: reference.clone(), read_version, payment };
    let first = leased_event(books.as_ref(), "w1").await;
    let effect = Effect { payments: vec![write(0, payment.clone())], ..grant(&account, &unique("grant"), 100, &first) };
    assert_eq!(books.commit(&effect, "w1", t(2)).await.expect("commit"), CommitOutcome::Applied);
    let stored = books.payment(&reference).await.expect("payment").expect("written");
    assert_eq!(stored, Payment { version: 1, ..payment.clone() });

    // Based on a read of a payment that was absent: raced, nothing changes.
    let refunded = Payment { refunded_minor: 500, clawed_back: 25, ..payment.clone() };
    let second = leased_event(books.as_ref(), "w2").await;
    let stale =
        Effect { payments: vec![write(0, refunded.clone())], ..grant(&account, &unique("refund"), -25, &second) };
    assert_eq!(books.commit(&stale, "w2", t(3)).await.expect("commit"), CommitOutcome::Raced);
    assert_eq!(books.account(&account).await.expect("account").expect("account").balance, 100);
    assert_eq!(books.get(&second).await.expect("get").expect("record").status, EventStatus::Processing);
    let current = Effect { payments: vec![write(1, refunded.clone())], ..stale };
    assert_eq!(books.commit(&current, "w2", t(3)).await.expect("commit"), CommitOutcome::Applied);
    assert_eq!(books.payment(&reference).await.expect("payment"), Some(Payment { version: 2, ..refunded }));
    assert_eq!(books.account(&account).await.expect("account").expect("account").balance, 75);
}

pub async fn a_balance_guard_and_flags_hold_on_the_balance_before_the_change(books: Arc<dyn Books>) {
    let account = AccountRef::new(Provider::Stripe, unique("acct"));
    let first = leased_event(books.as_ref(), "w1").await;
    assert_eq!(
        books.commit(&grant(&account, &unique("grant"), 10, &first), "w1", t(2)).await.expect("commit"),
        CommitOutcome::Applied
    );

    let claw = leased_event(books.as_ref(), "w2").await;
    let guarded = |guard: BalanceGuard| Effect {
        guard: Some(guard),
        flags: vec!["negative_balance".into()],
        ..grant(&account, "refund:contract", -30, &claw)
    };
    // Decided on a balance below 30 (so: flag it): holds at 10.
    let wrong = guarded(BalanceGuard { at_least: Some(30), below: None });
    assert_eq!(books.commit(&wrong, "w2", t(3)).await.expect("commit"), CommitOutcome::Raced);
    assert!(books.account(&account).await.expect("account").expect("account").flags.is_empty());
    let right = guarded(BalanceGuard { at_least: Some(0), below: Some(30) });
    assert_eq!(books.commit(&right, "w2", t(3)).await.expect("commit"), CommitOutcome::Applied);
    let state = books.account(&account).await.expect("account").expect("account");
    assert_eq!(state.balance, -20);
    assert_eq!(state.flags.into_iter().collect::<Vec<_>>(), vec!["negative_balance".to_owned()]);

    // A guard on an account that does not exist reads its balance as zero.
    let nobody = AccountRef::new(Provider::Stripe, unique("acct"));
    let third = leased_event(books.as_ref(), "w3").await;
    let effect = Effect {
        guard: Some(BalanceGuard { at_least: Some(0), below: Some(1) }),
        ..grant(&nobody, &unique("refund"), 0, &third)
    };
    assert_eq!(books.commit(&effect, "w3", t(4)).await.expect("commit"), CommitOutcome::Applied);
}

pub async fn an_effect_without_an_account_records_payments_and_completes(books: Arc<dyn Books>) {
    let reference = PaymentRef::new(Provider::Stripe, unique("pi"));
    let event = leased_event(books.as_ref(), "w1").await;
    let alias = Payment { alias_of: Some(unique("in")), ..Payment::default() };
    let effect = Effect {
        account: None,
        payments: vec![PaymentWrite { reference: reference.clone(), read_version: 0, payment: alias.clone() }],
        ..grant(&AccountRef::new(Provider::Stripe, "unused"), &unique("link"), 0, &event)
    };
    assert_eq!(books.commit(&effect, "w1", t(2)).await.expect("commit"), CommitOutcome::Applied);
    assert_eq!(books.payment(&reference).await.expect("payment"), Some(Payment { version: 1, ..alias }));
    assert_eq!(books.get(&event).await.expect("get").expect("record").status, EventStatus::Completed);
    assert_eq!(books.account(&AccountRef::new(Provider::Stripe, "unused")).await.expect("account"), None);
}

/// An event with two effects (a payment that also states its subscription):
/// the first leaves it processing under its lease, the second completes it;
/// neither commits without the lease.
pub async fn an_effect_may_leave_its_event_for_a_second_one(books: Arc<dyn Books>) {
    let account = AccountRef::new(Provider::Stripe, unique("acct"));
    let event = leased_event(books.as_ref(), "w1").await;
    let first = Effect { completes_event: false, ..grant(&account, &unique("state"), 0, &event) };
    assert_eq!(books.commit(&first, "w2", t(2)).await.expect("commit"), CommitOutcome::LeaseLost, "not its lease");
    assert_eq!(books.commit(&first, "w1", t(2)).await.expect("commit"), CommitOutcome::Applied);
    let record = books.get(&event).await.expect("get").expect("record");
    assert_eq!((record.status, record.lease_owner.as_deref()), (EventStatus::Processing, Some("w1")));
    assert_eq!(
        books.commit(&grant(&account, &unique("grant"), 100, &event), "w1", t(3)).await.expect("commit"),
        CommitOutcome::Applied
    );
    assert_eq!(books.get(&event).await.expect("get").expect("record").status, EventStatus::Completed);
    let state = books.account(&account).await.expect("account").expect("account");
    assert_eq!((state.balance, state.entries), (100, 2));
}

/// Paystack stamps every event of a subscription with its creation time: at
/// one time, a later stage of its life wins (live, changing, cancelled).
pub async fn at_the_same_provider_time_a_later_stage_wins(books: Arc<dyn Books>) {
    let account = AccountRef::new(Provider::Paystack, unique("acct"));
    let entitle = |status: &str| {
        Change::Entitlement(payhooks::ports::Entitlement {
            status: status.to_owned(),
            plan: None,
            subscription: Some("SUB_1".into()),
            customer: None,
            period: None,
            as_of: t(100),
        })
    };
    let commit = |status: &'static str, owner: &'static str| {
        let books = books.clone();
        let account = account.clone();
        let change = entitle(status);
        async move {
            let event = leased_event(books.as_ref(), owner).await;
            books.commit(&Effect::new(unique("state"), account, change, event), owner, t(2)).await.expect("commit")
        }
    };
    assert_eq!(commit("active", "w1").await, CommitOutcome::Applied);
    assert_eq!(commit("trialing", "w2").await, CommitOutcome::Stale, "same time, same stage");
    assert_eq!(commit("non-renewing", "w3").await, CommitOutcome::Applied);
    assert_eq!(commit("past_due", "w4").await, CommitOutcome::Stale, "same time, same stage");
    assert_eq!(commit("active", "w5").await, CommitOutcome::Stale);
    assert_eq!(commit("cancelled", "w6").await, CommitOutcome::Applied);
    assert_eq!(commit("non-renewing", "w7").await, CommitOutcome::Stale);
    assert_eq!(commit("cancelled", "w8").await, CommitOutcome::Stale);
    let state = books.account(&account).await.expect("account").expect("account");
    assert_eq!(state.entitlement.expect("entitlement").status, "cancelled");
}

/// I6 per subscription: each subscription's state is ordered by its own
/// events; the account is entitled while any subscription is.
pub async fn each_subscription_is_ordered_on_its_own(books: Arc<dyn Books>) {
    let account = AccountRef::new(Provider::Stripe, unique("acct"));
    let commit = |subscription: &'static str, status: &'static str, at: i64, owner: &'static str| {
        let books = books.clone();
        let account = account.clone();
        let change = Change::Entitlement(payhooks::ports::Entitlement {
            status: status.to_owned(),
            plan: Some(format!("plan_{subscription}")),
            subscription: Some(subscription.to_owned()),
            customer: None,
            // Each state keeps the period it stated: how long the
            // subscription's periods are.
            period: Some(Period { start: t(at), end: t(at + 1000) }),
            as_of: t(at),
        });
        async move {
            let event = leased_event(books.as_ref(), owner).await;
            books.commit(&Effect::new(unique("state"), account, change, event), owner, t(2)).await.expect("commit")
        }
    };
    assert_eq!(commit("sub_a", "active", 200, "w1").await, CommitOutcome::Applied);
    assert_eq!(commit("sub_b", "active", 100, "w2").await, CommitOutcome::Applied, "older, but another subscription");
    assert_eq!(commit("sub_a", "past_due", 150, "w3").await, CommitOutcome::Stale, "older than sub_a's state");
    assert_eq!(commit("sub_b", "cancelled", 300, "w4").await, CommitOutcome::Applied);
    let state = books.account(&account).await.expect("account").expect("account");
    let statuses: Vec<(&str, &str, Option<&str>)> =
        state.subscriptions.iter().map(|(id, e)| (id.as_str(), e.status.as_str(), e.plan.as_deref())).collect();
    assert_eq!(statuses, [("sub_a", "active", Some("plan_sub_a")), ("sub_b", "cancelled", Some("plan_sub_b"))]);
    let periods: Vec<_> = state.subscriptions.values().map(|e| e.period).collect();
    assert_eq!(periods, [Some(Period { start: t(200), end: t(1200) }), Some(Period { start: t(300), end: t(1300) })]);
    let entitlement = state.entitlement.expect("entitled");
    assert_eq!((entitlement.subscription.as_deref(), entitlement.status.as_str()), (Some("sub_a"), "active"));
    assert_eq!(commit("sub_a", "cancelled", 400, "w5").await, CommitOutcome::Applied);
    assert_eq!(commit("sub_a", "active", 500, "w6").await, CommitOutcome::Applied, "a reactivation is newer");
}

/// An entitlement whose transition was decided from a state (its basis)
/// commits only while that state is stored: a newer state committed since
/// makes it raced, to be decided again, never written over unseen.
pub async fn an_entitlement_commits_only_over_the_state_it_was_decided_from(books: Arc<dyn Books>) {
    let account = AccountRef::new(Provider::Paddle, unique("acct"));
    let state = |status: &str, at: i64| payhooks::ports::Entitlement {
        status: status.to_owned(),
        plan: Some("pri_pro".into()),
        subscription: Some("sub_1".into()),
        customer: None,
        period: None,
        as_of: t(at),
    };
    let commit = |new: payhooks::ports::Entitlement, basis: Basis, owner: &'static str| {
        let books = books.clone();
        let account = account.clone();
        async move {
            let event = leased_event(books.as_ref(), owner).await;
            let effect =
                Effect { basis: Some(basis), ..Effect::new(unique("state"), account, Change::Entitlement(new), event) };
            books.commit(&effect, owner, t(2)).await.expect("commit")
        }
    };
    let active = state("active", 100);
    let stated = |e: &payhooks::ports::Entitlement| Basis::of(Some(e));
    assert_eq!(commit(state("active", 50), stated(&active), "w0").await, CommitOutcome::Raced, "no state yet");
    assert_eq!(commit(active.clone(), Basis::Unknown, "w1").await, CommitOutcome::Applied);
    assert_eq!(commit(state("paused", 600), Basis::Unknown, "w2").await, CommitOutcome::Raced, "a state is there now");
    assert_eq!(commit(state("paused", 600), stated(&active), "w3").await, CommitOutcome::Applied);
    // Decided from `active`, which a pause has replaced since.
    assert_eq!(commit(state("active", 900), stated(&active), "w4").await, CommitOutcome::Raced);
    let same_time_other_status = Basis::Stated { as_of: t(600), status: "active".into() };
    assert_eq!(commit(state("active", 900), same_time_other_status, "w5").await, CommitOutcome::Raced);
    assert_eq!(commit(state("active", 900), stated(&state("paused", 600)), "w6").await, CommitOutcome::Applied);
    let stored = books.account(&account).await.expect("account").expect("account");
    let entitlement = stored.entitlement.expect("entitled");
    assert_eq!((entitlement.status.as_str(), entitlement.as_of), ("active", t(900)));
}

pub async fn a_checkpoint_is_kept_until_replaced_or_cleared(books: Arc<dyn Books>) {
    assert_eq!(books.checkpoint("walk").await.expect("read"), None);
    books.save_checkpoint("walk", Some("account#stripe#a")).await.expect("save");
    books.save_checkpoint("other", Some("account#lago#z")).await.expect("save");
    assert_eq!(books.checkpoint("walk").await.expect("read").as_deref(), Some("account#stripe#a"));
    books.save_checkpoint("walk", Some("account#stripe#b")).await.expect("save");
    assert_eq!(books.checkpoint("walk").await.expect("read").as_deref(), Some("account#stripe#b"));
    books.save_checkpoint("walk", None).await.expect("clear");
    assert_eq!(books.checkpoint("walk").await.expect("read"), None);
    assert_eq!(books.checkpoint("other").await.expect("read").as_deref(), Some("account#lago#z"), "each name its own");
    let page = books.accounts(None, 10).await.expect("accounts");
    assert!(page.accounts.is_empty(), "a checkpoint is not an account: {page:?}");
}

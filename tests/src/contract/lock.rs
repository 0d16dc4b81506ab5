//! What every [`Lock`] must do: one holder at a time, until its lease ends
//! or it lets go.

use std::sync::Arc;

use payhooks::ports::Lock;
use time::OffsetDateTime;

fn t(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000 + seconds).expect("valid time")
}

fn name() -> String {
    format!("contract-{}", uuid::Uuid::new_v4().simple())
}

pub async fn a_lock_keeps_others_out_until_its_lease_ends(lock: Arc<dyn Lock>) {
    let name = name();
    assert!(lock.acquire(&name, "a", t(0), t(10)).await.expect("acquire"));
    assert!(!lock.acquire(&name, "b", t(5), t(15)).await.expect("acquire"), "held by a");
    assert!(!lock.acquire(&name, "a", t(6), t(16)).await.expect("acquire"), "not taken twice, even by its holder");
    assert!(!lock.acquire(&name, "b", t(10), t(20)).await.expect("acquire"), "held through the lease's last instant");
    assert!(lock.acquire(&name, "b", t(11), t(21)).await.expect("acquire"), "the lease ended");
    assert!(!lock.acquire(&name, "a", t(12), t(22)).await.expect("acquire"), "now held by b");
}

pub async fn concurrent_acquires_are_granted_to_exactly_one_owner(lock: Arc<dyn Lock>) {
    let name = name();
    let taken = futures::future::join_all((0..20).map(|i| {
        let (lock, name) = (lock.clone(), name.clone());
        async move { lock.acquire(&name, &format!("owner-{i}"), t(0), t(60)).await.expect("acquire") }
    }))
    .await;
    assert_eq!(taken.iter().filter(|t| **t).count(), 1, "exactly one of 20 concurrent acquires wins");
}

pub async fn a_released_lock_can_be_taken_at_once_but_only_its_holder_releases_it(lock: Arc<dyn Lock>) {
    let name = name();
    assert!(lock.acquire(&name, "a", t(0), t(60)).await.expect("acquire"));
    lock.release(&name, "b").await.expect("release by another owner is a no-op");
    assert!(!lock.acquire(&name, "b", t(1), t(61)).await.expect("acquire"), "still held by a");
    lock.release(&name, "a").await.expect("release");
    assert!(lock.acquire(&name, "b", t(2), t(62)).await.expect("acquire"), "free after release");
    lock.release(&name, "a").await.expect("a late release by the former holder is a no-op");
    assert!(!lock.acquire(&name, "c", t(3), t(63)).await.expect("acquire"), "b still holds it");
}

pub async fn locks_with_different_names_are_independent(lock: Arc<dyn Lock>) {
    let (one, two) = (name(), name());
    assert!(lock.acquire(&one, "a", t(0), t(60)).await.expect("acquire"));
    assert!(lock.acquire(&two, "b", t(0), t(60)).await.expect("acquire"));
    lock.release(&name(), "a").await.expect("releasing a lock nobody took is a no-op");
}

//! Named locks with a lease, so that work which must happen once at a time
//! (registering a provider's callback) is serialized across every copy of a
//! function, and a holder that dies cannot keep the lock past its lease.

use async_trait::async_trait;
use time::OffsetDateTime;

use super::StoreError;

#[async_trait]
pub trait Lock: Send + Sync + std::fmt::Debug {
    /// Takes the lock `name` for `owner` until `until`, if nobody holds it or
    /// the last holder's lease ended before `now`. True for the one caller
    /// that gets it.
    async fn acquire(
        &self,
        name: &str,
        owner: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<bool, StoreError>;

    /// Gives the lock back; a no-op when `owner` no longer holds it (its
    /// lease ended and someone else took it).
    async fn release(&self, name: &str, owner: &str) -> Result<(), StoreError>;
}

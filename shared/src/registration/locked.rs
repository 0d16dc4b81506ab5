//! A registrar that runs only while it holds a lock, so that concurrent
//! deploys (or retried invocations) read and write a provider's callbacks
//! one at a time: the read-then-write of a registration is not atomic at
//! any provider, and racing writers are what leave duplicates behind.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::{Callback, Registered, Registrar, RegistrationError};
use crate::clock::Clock;
use crate::ports::Lock;

#[derive(Debug, Clone, Copy)]
pub struct LockSettings {
    /// How long one holder may keep the lock: longer than any registration
    /// takes (each provider call times out after 10 s), so a live holder is
    /// never overtaken, and short enough that a crashed one does not block
    /// the next deploy for long.
    pub lease: Duration,
    /// How long to wait for another holder before failing.
    pub wait: Duration,
    /// Pause between attempts to take the lock.
    pub retry_every: Duration,
}

impl Default for LockSettings {
    fn default() -> Self {
        Self { lease: Duration::from_secs(90), wait: Duration::from_secs(120), retry_every: Duration::from_millis(250) }
    }
}

#[derive(Debug)]
pub struct Locked {
    inner: Arc<dyn Registrar>,
    lock: Arc<dyn Lock>,
    clock: Arc<dyn Clock>,
    name: String,
    settings: LockSettings,
}

impl Locked {
    /// `inner`, serialized on the lock `name` (one per provider account).
    pub fn new(
        inner: Arc<dyn Registrar>,
        lock: Arc<dyn Lock>,
        clock: Arc<dyn Clock>,
        name: impl Into<String>,
        settings: LockSettings,
    ) -> Self {
        Self { inner, lock, clock, name: name.into(), settings }
    }

    /// Takes the lock, waiting for another holder up to the settings' wait.
    async fn acquire(&self, owner: &str) -> Result<(), RegistrationError> {
        let started = tokio::time::Instant::now();
        loop {
            let now = self.clock.now();
            let taken = self
                .lock
                .acquire(&self.name, owner, now, now + self.settings.lease)
                .await
                .map_err(|source| RegistrationError::Lock { name: self.name.clone(), source })?;
            if taken {
                return Ok(());
            }
            if started.elapsed() >= self.settings.wait {
                return Err(RegistrationError::LockTimeout { name: self.name.clone(), waited: self.settings.wait });
            }
            tokio::time::sleep(self.settings.retry_every).await;
        }
    }

    async fn exclusively<T>(
        &self,
        work: impl Future<Output = Result<T, RegistrationError>>,
    ) -> Result<T, RegistrationError> {
        let owner = format!("register-{}", uuid::Uuid::new_v4().simple());
        self.acquire(&owner).await?;
        let result = work.await;
        // The lease ends by itself; a failed release only delays the next
        // deploy, so it does not turn a done registration into a failure.
        if let Err(error) = self.lock.release(&self.name, &owner).await {
            tracing::warn!(lock = %self.name, error = %error, "registration lock not released; it ends with its lease");
        }
        result
    }
}

#[async_trait]
impl Registrar for Locked {
    async fn ensure(&self, desired: &Callback) -> Result<Registered, RegistrationError> {
        self.exclusively(self.inner.ensure(desired)).await
    }

    async fn remove(&self, registered: &Registered) -> Result<(), RegistrationError> {
        self.exclusively(self.inner.remove(registered)).await
    }
}

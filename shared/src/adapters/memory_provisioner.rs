//! A provisioner that keeps the requests it receives: the local server's
//! (which logs them) and the tests'. It can be told to fail a number of
//! times, like a downstream outage.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use async_trait::async_trait;

use crate::ports::provisioner::{ProvisionError, ProvisionRequest, Provisioner};

#[derive(Debug, Default)]
pub struct MemoryProvisioner {
    received: Mutex<Vec<ProvisionRequest>>,
    failures: AtomicU32,
}

#[derive(Debug, thiserror::Error)]
#[error("the provisioner is down")]
struct Down;

impl MemoryProvisioner {
    pub fn new() -> Self {
        Self::default()
    }

    /// The next `times` requests fail before being received.
    pub fn fail_next(&self, times: u32) {
        self.failures.store(times, Ordering::SeqCst);
    }

    pub fn received(&self) -> Vec<ProvisionRequest> {
        self.received.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[async_trait]
impl Provisioner for MemoryProvisioner {
    async fn send(&self, request: &ProvisionRequest) -> Result<(), ProvisionError> {
        if self.failures.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
            return Err(ProvisionError::Unreachable(Box::new(Down)));
        }
        tracing::info!(action = ?request.action, provider = %request.provider, account = %request.account, "provisioner request");
        self.received.lock().unwrap_or_else(|e| e.into_inner()).push(request.clone());
        Ok(())
    }
}

//! Time as a port, so tolerance windows, leases and TTLs can be tested at
//! chosen instants.

use std::sync::Mutex;

use time::OffsetDateTime;

pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> OffsetDateTime;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        whole_millis(OffsetDateTime::now_utc())
    }
}

/// Drops precision below a millisecond, the precision records are stored
/// with, so a time read back from any store equals the time written.
pub fn whole_millis(at: OffsetDateTime) -> OffsetDateTime {
    at.replace_nanosecond(at.millisecond() as u32 * 1_000_000).unwrap_or(at)
}

/// A clock that only moves when told to.
#[derive(Debug)]
pub struct ManualClock(Mutex<OffsetDateTime>);

impl ManualClock {
    pub fn at(now: OffsetDateTime) -> Self {
        Self(Mutex::new(whole_millis(now)))
    }

    pub fn set(&self, now: OffsetDateTime) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = now;
    }

    pub fn advance(&self, by: time::Duration) {
        let mut guard = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *guard += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

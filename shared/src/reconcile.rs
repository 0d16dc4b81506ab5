//! Reconciliation: every account's balance must equal the sum of its ledger
//! entries (balances change only by ADD in the same transaction as their
//! entry, I5). A mismatch is counted, logged and written to an audit record
//! for a person; it is never fixed here, since either side could be the
//! wrong one.
//!
//! A run checks accounts until every one is checked or its time budget is
//! spent, and saves where it is after each page, so a table too large for
//! one invocation is covered over several, and a run cut short (a timeout)
//! loses one page at most.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tracing::{error, info, warn};

use crate::clock::Clock;
use crate::ports::{AccountRef, Audit, Audits, Metrics, StoreError};

/// Accounts read per page: how often a run saves where it is and looks at
/// its budget.
const PAGE: usize = 100;
/// Reads of one account before it counts as unsettled: the entries index is
/// eventually consistent, and an effect may commit between the two reads.
const READS: u32 = 3;
/// Where the walk over every account stopped.
const CHECKPOINT: &str = "reconcile";
/// Time kept back from an invocation's deadline: the page in hand (a
/// hundred accounts, each read up to three times) and the checkpoint.
const MARGIN: Duration = Duration::from_secs(120);

/// The budget of a run that must end before `deadline` (a Lambda
/// invocation's, in milliseconds since the epoch).
pub fn budget_before(deadline_ms: u64) -> Duration {
    let deadline = SystemTime::UNIX_EPOCH + Duration::from_millis(deadline_ms);
    deadline.duration_since(SystemTime::now()).unwrap_or_default().saturating_sub(MARGIN)
}

#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReconcileReport {
    pub accounts: u32,
    /// Balance and ledger disagree: an audit record each.
    pub mismatched: u32,
    /// The entries read never matched the account's count of them (writes
    /// in flight): looked at again next run.
    pub unsettled: u32,
    /// This run went on from where the last one stopped.
    pub resumed: bool,
    /// Every account up to the last was checked; otherwise the next run
    /// goes on from where this one stopped.
    pub complete: bool,
}

#[derive(Debug)]
pub struct Reconciler {
    ledger: Arc<dyn Audits>,
    metrics: Arc<dyn Metrics>,
    clock: Arc<dyn Clock>,
    settle: Duration,
    page: usize,
}

impl Reconciler {
    pub fn new(ledger: Arc<dyn Audits>, metrics: Arc<dyn Metrics>, clock: Arc<dyn Clock>) -> Self {
        Self { ledger, metrics, clock, settle: Duration::from_millis(200), page: PAGE }
    }

    /// Reads `accounts` per page instead of a hundred.
    pub fn with_page_size(mut self, accounts: usize) -> Self {
        self.page = accounts.max(1);
        self
    }

    /// Checks accounts from where the last run stopped until the last one,
    /// or until `budget` is spent (looked at between pages).
    pub async fn reconcile(&self, budget: Option<Duration>) -> Result<ReconcileReport, StoreError> {
        let started = Instant::now();
        let mut cursor = self.ledger.checkpoint(CHECKPOINT).await?;
        let mut report = ReconcileReport { resumed: cursor.is_some(), ..ReconcileReport::default() };
        loop {
            let page = self.ledger.accounts(cursor, self.page).await?;
            for account in &page.accounts {
                report.accounts += 1;
                self.check(account, &mut report).await?;
            }
            cursor = page.cursor;
            self.ledger.save_checkpoint(CHECKPOINT, cursor.as_deref()).await?;
            report.complete = cursor.is_none();
            if report.complete || budget.is_some_and(|budget| started.elapsed() >= budget) {
                break;
            }
        }
        info!(
            accounts = report.accounts,
            mismatched = report.mismatched,
            unsettled = report.unsettled,
            resumed = report.resumed,
            complete = report.complete,
            "reconciliation run ended"
        );
        Ok(report)
    }

    async fn check(&self, account: &AccountRef, report: &mut ReconcileReport) -> Result<(), StoreError> {
        let provider = account.provider.as_str();
        for read in 1..=READS {
            let Some(state) = self.ledger.account(account).await? else {
                return Ok(());
            };
            let entries = self.ledger.entries(account).await?;
            if entries.len() as u64 != state.entries {
                tokio::time::sleep(self.settle * read).await;
                continue;
            }
            let ledger_sum: i64 = entries.iter().map(|e| e.delta).sum();
            if ledger_sum == state.balance {
                return Ok(());
            }
            report.mismatched += 1;
            self.metrics.count(provider, "reconcile_mismatch");
            error!(
                provider,
                account = %account.account,
                balance = state.balance,
                ledger_sum,
                entries = entries.len(),
                "balance does not equal the sum of the ledger; recorded for review, not changed"
            );
            let audit = Audit {
                kind: "reconcile_mismatch".into(),
                account: account.clone(),
                detail: serde_json::json!({
                    "balance": state.balance,
                    "ledger_sum": ledger_sum,
                    "entries": entries.len(),
                }),
                at: self.clock.now(),
            };
            return self.ledger.record_audit(&audit).await;
        }
        report.unsettled += 1;
        self.metrics.count(provider, "reconcile_unsettled");
        warn!(provider, account = %account.account, "entries kept changing while being read; checked again next run");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_keeps_a_margin_before_the_deadline() {
        let in_ms = |from_now: Duration| {
            (SystemTime::now() + from_now).duration_since(SystemTime::UNIX_EPOCH).unwrap().as_millis() as u64
        };
        let budget = budget_before(in_ms(Duration::from_secs(900)));
        assert!(budget <= Duration::from_secs(780) && budget > Duration::from_secs(770), "{budget:?}");
        assert_eq!(budget_before(in_ms(Duration::from_secs(60))), Duration::ZERO, "less than the margin left");
        assert_eq!(budget_before(0), Duration::ZERO, "a deadline already past");
    }
}

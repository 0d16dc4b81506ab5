//! Reconciliation: every account's balance must equal the sum of its ledger
//! entries (balances change only by ADD in the same transaction as their
//! entry, I5). A mismatch is counted, logged and written to an audit record
//! for a person; it is never fixed here, since either side could be the
//! wrong one.

use std::sync::Arc;
use std::time::Duration;

use tracing::{error, info, warn};

use crate::clock::Clock;
use crate::ports::{AccountRef, Audit, Ledger, Metrics, StoreError};

/// Accounts read per page.
const PAGE: usize = 100;
/// Reads of one account before it counts as unsettled: the entries index is
/// eventually consistent, and an effect may commit between the two reads.
const READS: u32 = 3;

#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReconcileReport {
    pub accounts: u32,
    /// Balance and ledger disagree: an audit record each.
    pub mismatched: u32,
    /// The entries read never matched the account's count of them (writes
    /// in flight): looked at again next run.
    pub unsettled: u32,
}

#[derive(Debug)]
pub struct Reconciler {
    ledger: Arc<dyn Ledger>,
    metrics: Arc<dyn Metrics>,
    clock: Arc<dyn Clock>,
    settle: Duration,
}

impl Reconciler {
    pub fn new(ledger: Arc<dyn Ledger>, metrics: Arc<dyn Metrics>, clock: Arc<dyn Clock>) -> Self {
        Self {
            ledger,
            metrics,
            clock,
            settle: Duration::from_millis(200),
        }
    }

    pub async fn reconcile(&self) -> Result<ReconcileReport, StoreError> {
        let mut report = ReconcileReport::default();
        let mut cursor = None;
        loop {
            let page = self.ledger.accounts(cursor, PAGE).await?;
            for account in &page.accounts {
                report.accounts += 1;
                self.check(account, &mut report).await?;
            }
            cursor = page.cursor;
            if cursor.is_none() {
                break;
            }
        }
        info!(
            accounts = report.accounts,
            mismatched = report.mismatched,
            unsettled = report.unsettled,
            "reconciliation finished"
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

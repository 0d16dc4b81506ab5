//! The ledger on the event store's DynamoDB table: accounts under
//! `account#{provider}#{account}`, business keys under `effect#{key}`, ledger
//! entries under `entry#…` (indexed by account), payments under
//! `payment#{provider}#{id}`. An effect is one `TransactWriteItems`: the
//! business key only if new, the account by ADD, the entry, the payments only
//! if unchanged since read, and the event's completion only under the lease.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Put, TransactWriteItem, Update};
use time::OffsetDateTime;

use super::dynamo_event_store::{
    ACCOUNT_INDEX, DynamoEventStore, INDEX_KEY, INDEX_SORT, Item, LEASE_HELD, PARTITION_KEY, corrupt, get_n, get_s,
    get_time, millis, n, required, s, status,
};
use crate::event::{EventId, EventKey, EventStatus, Period, Provider};
use crate::ports::StoreError;
use crate::ports::ledger::{
    AccountPage, AccountRef, AccountState, Audit, Audits, Balances, Basis, CANCELLED, Change, CommitOutcome, Effect,
    Entitlement, LIVE, LedgerEntry, Payment, PaymentRef, PaymentWrite, Postings, Stage,
};

/// The account's attributes holding its subscriptions' states:
/// `sub#{subscription id}` (`sub#` alone where the provider names none).
const SUBSCRIPTION_PREFIX: &str = "sub#";

fn subscription_attribute(subscription: &str) -> String {
    format!("{SUBSCRIPTION_PREFIX}{subscription}")
}

fn subscription_state(entitlement: &Entitlement) -> AttributeValue {
    let mut state = std::collections::HashMap::from([
        ("status".to_owned(), s(&entitlement.status)),
        ("as_of".to_owned(), millis(entitlement.as_of)),
    ]);
    for (name, value) in [("plan", &entitlement.plan), ("customer", &entitlement.customer)] {
        if let Some(value) = value {
            state.insert(name.to_owned(), s(value));
        }
    }
    if let Some(period) = entitlement.period {
        state.insert("period_start".to_owned(), millis(period.start));
        state.insert("period_end".to_owned(), millis(period.end));
    }
    AttributeValue::M(state)
}

fn effect_key(business_key: &str) -> String {
    format!("effect#{business_key}")
}

fn entry_key(account: &AccountRef, business_key: &str) -> String {
    format!("entry#{}#{}#{business_key}", account.provider, account.account)
}

/// What each item of a commit's transaction is, to read its cancellation
/// reasons.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    BusinessKey,
    Account,
    Entry,
    Payment,
    Completion,
}

type BuildResult<T> = Result<T, StoreError>;

fn build(e: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::unavailable(e)
}

impl DynamoEventStore {
    fn business_key_put(&self, effect: &Effect, business_key: &str, at: &AttributeValue) -> BuildResult<Put> {
        Put::builder()
            .table_name(&self.table)
            .item(PARTITION_KEY, s(effect_key(business_key)))
            .item("provider", s(effect.event.provider.as_str()))
            .item("event_id", s(effect.event.event_id.as_str()))
            .item("at", at.clone())
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(build)
    }

    /// The account's change: ADD for amounts and counters, SET for state,
    /// conditioned on the entitlement being older (I6) and on the guard.
    fn account_update(&self, effect: &Effect, account: &AccountRef, at: &AttributeValue) -> BuildResult<Update> {
        let (mut add, mut set) =
            (vec!["balance :delta"], vec!["updated_at = :at", "#account = :account", "provider = :provider"]);
        let mut names = vec![("#account", "account".to_owned())];
        // The entry count moves with the entries, for reconciliation.
        add.push("entries :one_entry");
        let mut values = vec![
            (":one_entry", n(1)),
            (":delta", n(effect.change.delta())),
            (":at", at.clone()),
            (":account", s(&account.account)),
            (":provider", s(account.provider.as_str())),
        ];
        let mut conditions = Vec::new();
        match &effect.change {
            Change::Credit(_) => {}
            Change::Trial(_) => set.push("trial_started_at = :at"),
            Change::PaymentFailed => {
                add.push("failed_payments :one");
                values.push((":one", n(1)));
            }
            Change::Entitlement(entitlement) => {
                // Each subscription's state is a map attribute of its own on
                // the account, newer than the one there (I6).
                set.push("#subscription = :subscription");
                names.push(("#subscription", subscription_attribute(entitlement.key())));
                names.push(("#as_of", "as_of".to_owned()));
                values.push((":subscription", subscription_state(entitlement)));
                values.push((":as_of", millis(entitlement.as_of)));
                // At the same provider time, a later stage of the
                // subscription's life wins (`Entitlement::supersedes`).
                // DynamoDB refuses a name or value the expressions do not
                // use: these only where the tie-break needs them.
                conditions.push(match entitlement.stage() {
                    Stage::Ended => {
                        names.push(("#status", "status".to_owned()));
                        values.push((":status", s(CANCELLED)));
                        "(attribute_not_exists(#subscription) OR #subscription.#as_of < :as_of \
                         OR (#subscription.#as_of = :as_of AND #subscription.#status <> :status))"
                    }
                    Stage::Changing => {
                        const _: () = assert!(LIVE.len() == 2, "the condition names each live status");
                        names.push(("#status", "status".to_owned()));
                        values.push((":live0", s(LIVE[0])));
                        values.push((":live1", s(LIVE[1])));
                        "(attribute_not_exists(#subscription) OR #subscription.#as_of < :as_of \
                         OR (#subscription.#as_of = :as_of AND #subscription.#status IN (:live0, :live1)))"
                    }
                    Stage::Live => "(attribute_not_exists(#subscription) OR #subscription.#as_of < :as_of)",
                });
                match &effect.basis {
                    None => {}
                    Some(Basis::Unknown) => conditions.push("attribute_not_exists(#subscription)"),
                    Some(Basis::Stated { as_of, status }) => {
                        names.push(("#status", "status".to_owned()));
                        values.push((":basis_as_of", millis(*as_of)));
                        values.push((":basis_status", s(status)));
                        conditions
                            .push("(#subscription.#as_of = :basis_as_of AND #subscription.#status = :basis_status)");
                    }
                }
            }
        }
        if !effect.flags.is_empty() {
            add.push("flags :flags");
            values.push((":flags", AttributeValue::Ss(effect.flags.clone())));
        }
        // An absent balance is zero.
        if let Some(guard) = effect.guard {
            if let Some(floor) = guard.at_least {
                conditions.push(if floor <= 0 {
                    "(attribute_not_exists(balance) OR balance >= :floor)"
                } else {
                    "balance >= :floor"
                });
                values.push((":floor", n(floor)));
            }
            if let Some(ceiling) = guard.below {
                conditions.push(if ceiling > 0 {
                    "(attribute_not_exists(balance) OR balance < :ceiling)"
                } else {
                    "balance < :ceiling"
                });
                values.push((":ceiling", n(ceiling)));
            }
        }
        let expression = format!("ADD {} SET {}", add.join(", "), set.join(", "));
        let condition = (!conditions.is_empty()).then(|| conditions.join(" AND "));
        let mut update = Update::builder()
            .table_name(&self.table)
            .key(PARTITION_KEY, s(account.storage_key()))
            .update_expression(expression)
            .set_condition_expression(condition);
        for (placeholder, name) in names {
            update = update.expression_attribute_names(placeholder, name);
        }
        for (placeholder, value) in values {
            update = update.expression_attribute_values(placeholder, value);
        }
        update.build().map_err(build)
    }

    fn entry_put(&self, effect: &Effect, account: &AccountRef, now: OffsetDateTime) -> BuildResult<Put> {
        Put::builder()
            .table_name(&self.table)
            .item(PARTITION_KEY, s(entry_key(account, &effect.business_key)))
            .item(INDEX_KEY, s(account.storage_key()))
            .item(INDEX_SORT, s(format!("{:015}#{}", now.unix_timestamp_nanos() / 1_000_000, effect.business_key)))
            .item("business_key", s(&effect.business_key))
            .item("delta", n(effect.change.delta()))
            .item("provider", s(effect.event.provider.as_str()))
            .item("event_id", s(effect.event.event_id.as_str()))
            .item("at", millis(now))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(build)
    }

    fn payment_put(&self, write: &PaymentWrite, at: &AttributeValue) -> BuildResult<Put> {
        let payment = &write.payment;
        let mut put = Put::builder()
            .table_name(&self.table)
            .item(PARTITION_KEY, s(write.reference.storage_key()))
            .item("account", s(&payment.account))
            .item("refunded_minor", n(payment.refunded_minor))
            .item("clawed_back", n(payment.clawed_back))
            .item("unclawed", n(payment.unclawed))
            .item("version", n(write.read_version + 1))
            .item("updated_at", at.clone());
        for (name, value) in [
            ("currency", payment.currency.clone().map(s)),
            ("paid_minor", payment.paid_minor.map(n)),
            ("granted", payment.granted.map(n)),
            ("alias_of", payment.alias_of.clone().map(s)),
        ] {
            if let Some(value) = value {
                put = put.item(name, value);
            }
        }
        put = if write.read_version == 0 {
            put.condition_expression("attribute_not_exists(pk)")
        } else {
            put.condition_expression("version = :version")
                .expression_attribute_values(":version", n(write.read_version))
        };
        put.build().map_err(build)
    }

    /// The event still leased by `owner`, for an effect that leaves it
    /// processing (its second effect completes it).
    fn lease_check(&self, effect: &Effect, owner: &str) -> BuildResult<ConditionCheck> {
        ConditionCheck::builder()
            .table_name(&self.table)
            .key(PARTITION_KEY, s(effect.event.storage_key()))
            .condition_expression(LEASE_HELD)
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":processing", status(EventStatus::Processing))
            .expression_attribute_values(":owner", s(owner))
            .build()
            .map_err(build)
    }

    fn completion_update(&self, effect: &Effect, owner: &str, now: OffsetDateTime) -> BuildResult<Update> {
        Update::builder()
            .table_name(&self.table)
            .key(PARTITION_KEY, s(effect.event.storage_key()))
            .update_expression(
                "SET #status = :completed, finished_at = :at, updated_at = :at, expires_at = :expires \
                 REMOVE lease_owner, lease_until, pending_key",
            )
            .condition_expression(LEASE_HELD)
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":completed", status(EventStatus::Completed))
            .expression_attribute_values(":processing", status(EventStatus::Processing))
            .expression_attribute_values(":owner", s(owner))
            .expression_attribute_values(":at", millis(now))
            .expression_attribute_values(":expires", self.expiry(now))
            .build()
            .map_err(build)
    }
}

#[async_trait]
impl Balances for DynamoEventStore {
    async fn account(&self, account: &AccountRef) -> Result<Option<AccountState>, StoreError> {
        let Some(item) = self.read_item(&account.storage_key()).await? else {
            return Ok(None);
        };
        let mut subscriptions = BTreeMap::new();
        for (attribute, value) in &item {
            let Some(key) = attribute.strip_prefix(SUBSCRIPTION_PREFIX) else {
                continue;
            };
            let state = value.as_m().map_err(|_| corrupt(SUBSCRIPTION_PREFIX))?;
            let (Some(status), Some(as_of)) = (get_s(state, "status"), get_time(state, "as_of")?) else {
                return Err(corrupt(SUBSCRIPTION_PREFIX));
            };
            let entitlement = Entitlement {
                status: status.to_owned(),
                plan: get_s(state, "plan").map(str::to_owned),
                subscription: (!key.is_empty()).then(|| key.to_owned()),
                customer: get_s(state, "customer").map(str::to_owned),
                period: match (get_time(state, "period_start")?, get_time(state, "period_end")?) {
                    (Some(start), Some(end)) => Some(Period { start, end }),
                    _ => None,
                },
                as_of,
            };
            subscriptions.insert(key.to_owned(), entitlement);
        }
        let flags = item
            .get("flags")
            .and_then(|v| v.as_ss().ok())
            .map(|flags| flags.iter().cloned().collect())
            .unwrap_or_default();
        Ok(Some(AccountState {
            balance: get_n(&item, "balance").unwrap_or(0),
            trial_started_at: get_time(&item, "trial_started_at")?,
            failed_payments: get_n(&item, "failed_payments").unwrap_or(0),
            entries: get_n(&item, "entries").unwrap_or(0),
            entitlement: AccountState::summary(&subscriptions),
            subscriptions,
            flags,
        }))
    }

    async fn entries(&self, account: &AccountRef) -> Result<Vec<LedgerEntry>, StoreError> {
        let items = self.account_items(account, "entry_sort < :audits").await?;
        items
            .iter()
            .map(|item| {
                let provider: Provider =
                    required(get_s(item, "provider"), "provider")?.parse().map_err(|_| corrupt("provider"))?;
                let event_id =
                    EventId::parse(required(get_s(item, "event_id"), "event_id")?).map_err(|_| corrupt("event_id"))?;
                Ok(LedgerEntry {
                    business_key: required(get_s(item, "business_key"), "business_key")?.to_owned(),
                    delta: required(get_n(item, "delta"), "delta")?,
                    event: EventKey::new(provider, event_id),
                    at: required(get_time(item, "at")?, "at")?,
                })
            })
            .collect()
    }
}

#[async_trait]
impl Postings for DynamoEventStore {
    async fn commit(&self, effect: &Effect, owner: &str, now: OffsetDateTime) -> Result<CommitOutcome, StoreError> {
        let at = millis(now);
        let mut items = Vec::new();
        for key in std::iter::once(&effect.business_key).chain(&effect.also_keys) {
            let put = self.business_key_put(effect, key, &at)?;
            items.push((Part::BusinessKey, TransactWriteItem::builder().put(put).build()));
        }
        if let Some(account) = &effect.account {
            let update = self.account_update(effect, account, &at)?;
            items.push((Part::Account, TransactWriteItem::builder().update(update).build()));
            let entry = self.entry_put(effect, account, now)?;
            items.push((Part::Entry, TransactWriteItem::builder().put(entry).build()));
        }
        for write in &effect.payments {
            items.push((Part::Payment, TransactWriteItem::builder().put(self.payment_put(write, &at)?).build()));
        }
        let completion = if effect.completes_event {
            TransactWriteItem::builder().update(self.completion_update(effect, owner, now)?).build()
        } else {
            TransactWriteItem::builder().condition_check(self.lease_check(effect, owner)?).build()
        };
        items.push((Part::Completion, completion));

        let parts: Vec<Part> = items.iter().map(|(part, _)| *part).collect();
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items.into_iter().map(|(_, item)| item).collect()))
            .send()
            .await;
        let cancelled = match result {
            Ok(_) => return Ok(CommitOutcome::Applied),
            Err(SdkError::ServiceError(service)) => match service.into_err() {
                TransactWriteItemsError::TransactionCanceledException(cancelled) => cancelled,
                other => return Err(StoreError::unavailable(other)),
            },
            Err(other) => return Err(StoreError::unavailable(other)),
        };
        let failed = |wanted: Part| {
            parts
                .iter()
                .zip(cancelled.cancellation_reasons())
                .any(|(part, reason)| *part == wanted && reason.code() == Some("ConditionalCheckFailed"))
        };
        // Another transaction held one of the items: nothing was written, and
        // the effect can be tried again at once (re-read, as after a race).
        let conflicted =
            cancelled.cancellation_reasons().iter().any(|reason| reason.code() == Some("TransactionConflict"));
        Ok(if failed(Part::Completion) {
            CommitOutcome::LeaseLost
        } else if failed(Part::BusinessKey) {
            CommitOutcome::DuplicateEffect
        } else if failed(Part::Account) && matches!(effect.change, Change::Entitlement(_)) && effect.basis.is_none() {
            // With a basis, stale and changed since read look alike: raced,
            // the effect is decided again from what is stored now.
            CommitOutcome::Stale
        } else if failed(Part::Account) || failed(Part::Payment) || conflicted {
            CommitOutcome::Raced
        } else {
            // Throttling or a service error: transient, retried with backoff.
            return Err(StoreError::unavailable(cancelled));
        })
    }

    async fn has_effect(&self, business_key: &str) -> Result<bool, StoreError> {
        Ok(self.read_item(&effect_key(business_key)).await?.is_some())
    }

    async fn payment(&self, reference: &PaymentRef) -> Result<Option<Payment>, StoreError> {
        let Some(item) = self.read_item(&reference.storage_key()).await? else {
            return Ok(None);
        };
        Ok(Some(Payment {
            account: required(get_s(&item, "account"), "account")?.to_owned(),
            currency: get_s(&item, "currency").map(str::to_owned),
            paid_minor: get_n(&item, "paid_minor"),
            granted: get_n(&item, "granted"),
            refunded_minor: get_n(&item, "refunded_minor").unwrap_or(0),
            clawed_back: get_n(&item, "clawed_back").unwrap_or(0),
            unclawed: get_n(&item, "unclawed").unwrap_or(0),
            alias_of: get_s(&item, "alias_of").map(str::to_owned),
            version: required(get_n(&item, "version"), "version")?,
        }))
    }
}

#[async_trait]
impl Audits for DynamoEventStore {
    async fn accounts(&self, cursor: Option<String>, limit: usize) -> Result<AccountPage, StoreError> {
        // A scheduled scan: accounts have no index of their own, and the
        // reconciliation that reads them all runs rarely. Each request reads
        // at most ten items per account asked for (accounts are a fraction
        // of the items: events, entries, payments), so a page stays near
        // `limit` accounts and a run's time budget is looked at often.
        let mut accounts = Vec::new();
        let mut start = cursor.map(|pk| std::collections::HashMap::from([(PARTITION_KEY.to_owned(), s(pk))]));
        loop {
            let output = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("begins_with(pk, :account)")
                .expression_attribute_values(":account", s("account#"))
                .limit(i32::try_from(limit.saturating_mul(10)).unwrap_or(i32::MAX))
                .projection_expression("pk, provider, #account")
                .expression_attribute_names("#account", "account")
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(StoreError::unavailable)?;
            for item in output.items.unwrap_or_default() {
                let provider: Provider =
                    required(get_s(&item, "provider"), "provider")?.parse().map_err(|_| corrupt("provider"))?;
                accounts.push(AccountRef::new(provider, required(get_s(&item, "account"), "account")?));
            }
            start = output.last_evaluated_key;
            if accounts.len() >= limit || start.is_none() {
                let cursor = start.as_ref().and_then(|key| get_s(key, PARTITION_KEY)).map(str::to_owned);
                return Ok(AccountPage { accounts, cursor });
            }
        }
    }

    async fn checkpoint(&self, name: &str) -> Result<Option<String>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PARTITION_KEY, s(checkpoint_key(name)))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::unavailable)?;
        Ok(output.item.as_ref().and_then(|item| get_s(item, "cursor")).map(str::to_owned))
    }

    async fn save_checkpoint(&self, name: &str, cursor: Option<&str>) -> Result<(), StoreError> {
        let key = s(checkpoint_key(name));
        match cursor {
            Some(cursor) => self
                .client
                .put_item()
                .table_name(&self.table)
                .item(PARTITION_KEY, key)
                .item("cursor", s(cursor))
                .send()
                .await
                .map(|_| ())
                .map_err(StoreError::unavailable),
            None => self
                .client
                .delete_item()
                .table_name(&self.table)
                .key(PARTITION_KEY, key)
                .send()
                .await
                .map(|_| ())
                .map_err(StoreError::unavailable),
        }
    }

    async fn record_audit(&self, audit: &Audit) -> Result<(), StoreError> {
        let at = millis(audit.at);
        let sort = format!("{AUDIT_SORT_PREFIX}{:015}#{}", audit.at.unix_timestamp_nanos() / 1_000_000, audit.kind);
        self.client
            .put_item()
            .table_name(&self.table)
            .item(PARTITION_KEY, s(format!("audit#{}#{sort}", audit.account.storage_key())))
            .item(INDEX_KEY, s(audit.account.storage_key()))
            .item(INDEX_SORT, s(sort))
            .item("kind", s(&audit.kind))
            .item("provider", s(audit.account.provider.as_str()))
            .item("account", s(&audit.account.account))
            .item("detail", s(audit.detail.to_string()))
            .item("at", at)
            .send()
            .await
            .map_err(StoreError::unavailable)?;
        Ok(())
    }

    async fn audits(&self, account: &AccountRef) -> Result<Vec<Audit>, StoreError> {
        let items = self.account_items(account, "begins_with(entry_sort, :audits)").await?;
        items
            .iter()
            .map(|item| {
                Ok(Audit {
                    kind: required(get_s(item, "kind"), "kind")?.to_owned(),
                    account: account.clone(),
                    detail: serde_json::from_str(required(get_s(item, "detail"), "detail")?)
                        .map_err(|_| corrupt("detail"))?,
                    at: required(get_time(item, "at")?, "at")?,
                })
            })
            .collect()
    }
}

/// Audit records share the account index with the entries, sorted after
/// them (`~` is above every digit an entry's sort key starts with).
const AUDIT_SORT_PREFIX: &str = "~audit#";

impl DynamoEventStore {
    /// Every item of `account` in the account index whose sort key meets
    /// `sort_condition` (which may use `:audits`), newest first, all pages.
    async fn account_items(&self, account: &AccountRef, sort_condition: &str) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(ACCOUNT_INDEX)
                .key_condition_expression(format!("account_key = :account AND {sort_condition}"))
                .expression_attribute_values(":account", s(account.storage_key()))
                .expression_attribute_values(":audits", s(AUDIT_SORT_PREFIX))
                .scan_index_forward(false)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(StoreError::unavailable)?;
            items.extend(output.items.unwrap_or_default());
            start = output.last_evaluated_key;
            if start.is_none() {
                return Ok(items);
            }
        }
    }

    /// One item by key, read consistently (I9).
    async fn read_item(&self, key: &str) -> Result<Option<Item>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PARTITION_KEY, s(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::unavailable)?;
        Ok(output.item)
    }
}

fn checkpoint_key(name: &str) -> String {
    format!("checkpoint#{name}")
}

//! The event store on DynamoDB: one item per event under `pk` =
//! `{provider}#{event_id}`. Every state change is a single conditional write,
//! so concurrent deliveries and workers are serialized by DynamoDB itself and
//! no read-then-write race exists (I3, I9). Accounts, payments and the
//! ledger share the table (`dynamo_ledger`).

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::{UpdateItemError, UpdateItemOutput};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ReturnValue, ReturnValuesOnConditionCheckFailure, ScalarAttributeType, TimeToLiveSpecification,
};
use time::OffsetDateTime;

use crate::event::{EventId, EventKey, EventRecord, EventStatus, NewEvent, Provider};
use crate::ports::event_store::{
    Claim, DEFAULT_RETENTION, Enqueueing, EventRecords, Finish, FinishOutcome, Intake, LeaseOutcome, Leases, Repairs,
    StoreError,
};

pub const PARTITION_KEY: &str = "pk";
pub const TTL_ATTRIBUTE: &str = "expires_at";
/// Ledger entries by account, newest last by `entry_sort` (`{at ms}#{key}`).
pub const ACCOUNT_INDEX: &str = "by_account";
/// Events not yet final, by provider, oldest change first: a sparse index
/// (`pending_key` is removed when an event reaches a final state) that the
/// sweeper queries.
pub const PENDING_INDEX: &str = "by_pending";
pub(super) const PENDING_KEY: &str = "pending_key";
pub(super) const PENDING_SORT: &str = "updated_at";
pub(super) const INDEX_KEY: &str = "account_key";
pub(super) const INDEX_SORT: &str = "entry_sort";
/// The event is still leased by `:owner` (with `#status` and `:processing`
/// bound): every write a worker makes under its lease is conditioned on it.
pub(super) const LEASE_HELD: &str = "#status = :processing AND lease_owner = :owner";

pub(super) type Item = HashMap<String, AttributeValue>;

/// Last changed at or after `since` and before `before`.
struct Window {
    since: OffsetDateTime,
    before: OffsetDateTime,
}

#[derive(Debug, Clone)]
pub struct DynamoEventStore {
    pub(super) client: Client,
    pub(super) table: String,
    /// How long a record is kept once it may expire (its TTL from then).
    pub(super) retention: std::time::Duration,
}

impl DynamoEventStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into(), retention: DEFAULT_RETENTION }
    }

    /// Keeps final records this long after they finish.
    pub fn with_retention(mut self, retention: std::time::Duration) -> Self {
        self.retention = retention;
        self
    }

    /// The TTL attribute's value for a record finishing at `now`: epoch
    /// seconds, as DynamoDB's TTL reads them.
    pub(super) fn expiry(&self, now: OffsetDateTime) -> AttributeValue {
        n((now + self.retention).unix_timestamp())
    }

    /// Creates a table shaped like the one in `template.yaml`, for tests and
    /// local setups; deployed tables come from the template.
    pub async fn create_table(client: &Client, table: &str) -> Result<(), StoreError> {
        let string_attribute = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(StoreError::unavailable)
        };
        let key = |name: &str, kind: KeyType| {
            KeySchemaElement::builder().attribute_name(name).key_type(kind).build().map_err(StoreError::unavailable)
        };
        client
            .create_table()
            .table_name(table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(string_attribute(PARTITION_KEY)?)
            .attribute_definitions(string_attribute(INDEX_KEY)?)
            .attribute_definitions(string_attribute(INDEX_SORT)?)
            .attribute_definitions(string_attribute(PENDING_KEY)?)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(PENDING_SORT)
                    .attribute_type(ScalarAttributeType::N)
                    .build()
                    .map_err(StoreError::unavailable)?,
            )
            .global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(PENDING_INDEX)
                    .key_schema(key(PENDING_KEY, KeyType::Hash)?)
                    .key_schema(key(PENDING_SORT, KeyType::Range)?)
                    .projection(Projection::builder().projection_type(ProjectionType::All).build())
                    .build()
                    .map_err(StoreError::unavailable)?,
            )
            .global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(ACCOUNT_INDEX)
                    .key_schema(key(INDEX_KEY, KeyType::Hash)?)
                    .key_schema(key(INDEX_SORT, KeyType::Range)?)
                    .projection(Projection::builder().projection_type(ProjectionType::All).build())
                    .build()
                    .map_err(StoreError::unavailable)?,
            )
            .key_schema(key(PARTITION_KEY, KeyType::Hash)?)
            .send()
            .await
            .map_err(StoreError::unavailable)?;
        client
            .update_time_to_live()
            .table_name(table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(TTL_ATTRIBUTE)
                    .enabled(true)
                    .build()
                    .map_err(StoreError::unavailable)?,
            )
            .send()
            .await
            .map_err(StoreError::unavailable)?;
        Ok(())
    }

    /// Records under `partition` of the pending index, oldest change first
    /// (only those last changed within `window`, if given), at most `limit`.
    async fn pending_index(
        &self,
        partition: String,
        window: Option<Window>,
        limit: usize,
    ) -> Result<Vec<EventRecord>, StoreError> {
        let mut records = Vec::new();
        let mut start = None;
        while records.len() < limit {
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(PENDING_INDEX)
                .expression_attribute_values(":partition", s(&partition))
                .limit(i32::try_from(limit - records.len()).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start);
            query = match &window {
                // BETWEEN is inclusive: the last millisecond before `before`.
                Some(window) => query
                    .key_condition_expression("pending_key = :partition AND updated_at BETWEEN :since AND :last")
                    .expression_attribute_values(":since", millis(window.since))
                    .expression_attribute_values(":last", millis(window.before - time::Duration::milliseconds(1))),
                None => query.key_condition_expression("pending_key = :partition"),
            };
            let output = query.send().await.map_err(StoreError::unavailable)?;
            for item in output.items.unwrap_or_default() {
                records.push(from_item(&item)?);
            }
            start = output.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        Ok(records)
    }

    fn update(&self, key: &EventKey) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .key(PARTITION_KEY, AttributeValue::S(key.storage_key()))
            .expression_attribute_names("#status", "status")
    }
}

/// Runs a conditional update; `Ok(Err(old item))` when the condition failed.
async fn conditional(
    request: aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder,
) -> Result<Result<UpdateItemOutput, Option<Item>>, StoreError> {
    match request.return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld).send().await {
        Ok(output) => Ok(Ok(output)),
        Err(SdkError::ServiceError(service)) => match service.into_err() {
            UpdateItemError::ConditionalCheckFailedException(failed) => Ok(Err(failed.item)),
            other => Err(StoreError::unavailable(other)),
        },
        Err(other) => Err(StoreError::unavailable(other)),
    }
}

pub(super) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(super) fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub(super) fn millis(at: OffsetDateTime) -> AttributeValue {
    n(at.unix_timestamp_nanos() / 1_000_000)
}

pub(super) fn status(value: EventStatus) -> AttributeValue {
    s(value.as_str())
}

fn to_item(event: &NewEvent) -> Result<Item, StoreError> {
    let record = EventRecord::from_new(event);
    let json = serde_json::to_string(&record.event).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(HashMap::from([
        (PARTITION_KEY.to_owned(), s(event.key.storage_key())),
        ("provider".to_owned(), s(record.provider.as_str())),
        ("event_id".to_owned(), s(record.event_id.as_str())),
        ("event_type".to_owned(), s(&record.event_type)),
        ("status".to_owned(), status(record.status)),
        ("attempts".to_owned(), n(0)),
        ("conflicts".to_owned(), n(0)),
        ("fingerprint".to_owned(), s(&record.fingerprint)),
        ("received_at".to_owned(), millis(record.received_at)),
        ("updated_at".to_owned(), millis(record.updated_at)),
        // No TTL yet: it is set when the event finishes (I14).
        ("event".to_owned(), s(json)),
        (PENDING_KEY.to_owned(), s(pending_key(record.provider))),
    ]))
}

fn last_success_key(provider: Provider) -> String {
    format!("status#{provider}#last_success")
}

pub(super) fn pending_key(provider: Provider) -> String {
    format!("pending#{provider}")
}

/// Failed events stay in the pending index under their own key, so a
/// replay finds them without a scan and the sweeper never reads them.
pub(super) fn failed_key(provider: Provider) -> String {
    format!("failed#{provider}")
}

pub(super) fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("attribute {what} is missing or malformed"))
}

pub(super) fn get_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str)
}

pub(super) fn get_n<T: std::str::FromStr>(item: &Item, name: &str) -> Option<T> {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok())
}

pub(super) fn get_time(item: &Item, name: &str) -> Result<Option<OffsetDateTime>, StoreError> {
    match get_n::<i128>(item, name) {
        None => Ok(None),
        Some(ms) => OffsetDateTime::from_unix_timestamp_nanos(ms * 1_000_000).map(Some).map_err(|_| corrupt(name)),
    }
}

pub(super) fn required<T>(value: Option<T>, name: &str) -> Result<T, StoreError> {
    value.ok_or_else(|| corrupt(name))
}

fn from_item(item: &Item) -> Result<EventRecord, StoreError> {
    let provider: Provider = required(get_s(item, "provider"), "provider")?.parse().map_err(|_| corrupt("provider"))?;
    let event_id = EventId::parse(required(get_s(item, "event_id"), "event_id")?).map_err(|_| corrupt("event_id"))?;
    let expires_at = get_n(item, TTL_ATTRIBUTE)
        .map(OffsetDateTime::from_unix_timestamp)
        .transpose()
        .map_err(|_| corrupt(TTL_ATTRIBUTE))?;
    Ok(EventRecord {
        provider,
        event_id,
        event_type: required(get_s(item, "event_type"), "event_type")?.to_owned(),
        status: required(get_s(item, "status").and_then(EventStatus::parse), "status")?,
        attempts: get_n(item, "attempts").unwrap_or(0),
        fingerprint: required(get_s(item, "fingerprint"), "fingerprint")?.to_owned(),
        received_at: required(get_time(item, "received_at")?, "received_at")?,
        enqueued_at: get_time(item, "enqueued_at")?,
        updated_at: required(get_time(item, "updated_at")?, "updated_at")?,
        finished_at: get_time(item, "finished_at")?,
        lease_owner: get_s(item, "lease_owner").map(str::to_owned),
        lease_until: get_time(item, "lease_until")?,
        last_error: get_s(item, "last_error").map(str::to_owned),
        conflicts: get_n(item, "conflicts").unwrap_or(0),
        expires_at,
        event: serde_json::from_str(required(get_s(item, "event"), "event")?).map_err(|_| corrupt("event"))?,
    })
}

#[async_trait]
impl EventRecords for DynamoEventStore {
    async fn get(&self, key: &EventKey) -> Result<Option<EventRecord>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PARTITION_KEY, AttributeValue::S(key.storage_key()))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::unavailable)?;
        output.item.as_ref().map(from_item).transpose()
    }
}

#[async_trait]
impl Enqueueing for DynamoEventStore {
    async fn mark_enqueued(&self, key: &EventKey, at: OffsetDateTime) -> Result<(), StoreError> {
        // A worker may already have leased the event (the message can be
        // received before this call lands); its lease records `enqueued_at`.
        let request = self
            .update(key)
            .update_expression("SET #status = :enqueued, enqueued_at = :at, updated_at = :at")
            .condition_expression("#status = :received")
            .expression_attribute_values(":enqueued", status(EventStatus::Enqueued))
            .expression_attribute_values(":received", status(EventStatus::Received))
            .expression_attribute_values(":at", millis(at));
        conditional(request).await.map(|_| ())
    }

    async fn requeue(
        &self,
        key: &EventKey,
        seen_status: EventStatus,
        seen_updated_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        if seen_status.is_final() {
            return Ok(false);
        }
        let request = self
            .update(key)
            .update_expression("SET updated_at = :now REMOVE expires_at")
            .condition_expression(
                "#status = :seen_status AND updated_at = :seen \
                 AND (#status <> :processing OR attribute_not_exists(lease_until) OR lease_until < :now)",
            )
            .expression_attribute_values(":seen_status", status(seen_status))
            .expression_attribute_values(":processing", status(EventStatus::Processing))
            .expression_attribute_values(":seen", millis(seen_updated_at))
            .expression_attribute_values(":now", millis(now));
        Ok(conditional(request).await?.is_ok())
    }
}

#[async_trait]
impl Intake for DynamoEventStore {
    async fn claim(&self, event: &NewEvent) -> Result<Claim, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(event)?))
            .condition_expression("attribute_not_exists(pk)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Claim::Created),
            Err(SdkError::ServiceError(service)) => match service.into_err() {
                PutItemError::ConditionalCheckFailedException(failed) => {
                    let item = failed
                        .item
                        .ok_or_else(|| StoreError::Corrupt("condition failed without the existing item".into()))?;
                    Ok(Claim::Existing(Box::new(from_item(&item)?)))
                }
                other => Err(StoreError::unavailable(other)),
            },
            Err(other) => Err(StoreError::unavailable(other)),
        }
    }

    async fn record_conflict(&self, key: &EventKey, at: OffsetDateTime) -> Result<(), StoreError> {
        let request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PARTITION_KEY, AttributeValue::S(key.storage_key()))
            .update_expression("ADD conflicts :one SET updated_at = :at")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":at", millis(at));
        conditional(request).await.map(|_| ())
    }
}

#[async_trait]
impl Leases for DynamoEventStore {
    async fn lease(
        &self,
        key: &EventKey,
        owner: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<LeaseOutcome, StoreError> {
        let request = self
            .update(key)
            .update_expression(
                "SET #status = :processing, lease_owner = :owner, lease_until = :until, \
                 updated_at = :now, enqueued_at = if_not_exists(enqueued_at, :now) \
                 REMOVE expires_at ADD attempts :one",
            )
            .condition_expression(
                "attribute_exists(pk) AND (#status IN (:received, :enqueued) \
                 OR (#status = :processing AND lease_until < :now))",
            )
            .expression_attribute_values(":processing", status(EventStatus::Processing))
            .expression_attribute_values(":received", status(EventStatus::Received))
            .expression_attribute_values(":enqueued", status(EventStatus::Enqueued))
            .expression_attribute_values(":owner", s(owner))
            .expression_attribute_values(":until", millis(until))
            .expression_attribute_values(":now", millis(now))
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::AllNew);
        match conditional(request).await? {
            Ok(output) => {
                let item =
                    output.attributes.ok_or_else(|| StoreError::Corrupt("lease returned no attributes".into()))?;
                Ok(LeaseOutcome::Acquired(Box::new(from_item(&item)?)))
            }
            Err(None) => Ok(LeaseOutcome::Missing),
            Err(Some(old)) => {
                let record = from_item(&old)?;
                if record.status.is_final() {
                    Ok(LeaseOutcome::Finished(record.status))
                } else {
                    Ok(LeaseOutcome::Held { until: record.lease_until.unwrap_or(now) })
                }
            }
        }
    }

    async fn release(&self, key: &EventKey, owner: &str, now: OffsetDateTime, error: &str) -> Result<(), StoreError> {
        let request = self
            .update(key)
            .update_expression(
                "SET #status = :enqueued, last_error = :error, updated_at = :now \
                 REMOVE lease_owner, lease_until, expires_at",
            )
            .condition_expression(LEASE_HELD)
            .expression_attribute_values(":enqueued", status(EventStatus::Enqueued))
            .expression_attribute_values(":processing", status(EventStatus::Processing))
            .expression_attribute_values(":owner", s(owner))
            .expression_attribute_values(":error", s(error))
            .expression_attribute_values(":now", millis(now));
        conditional(request).await.map(|_| ())
    }

    async fn finish(
        &self,
        key: &EventKey,
        owner: &str,
        finish: &Finish,
        now: OffsetDateTime,
    ) -> Result<FinishOutcome, StoreError> {
        let mut request = self
            .update(key)
            .condition_expression(LEASE_HELD)
            .expression_attribute_values(":final", status(finish.status()))
            .expression_attribute_values(":processing", status(EventStatus::Processing))
            .expression_attribute_values(":owner", s(owner))
            .expression_attribute_values(":now", millis(now));
        request = match finish {
            Finish::Failed { reason } => request
                .update_expression(
                    "SET #status = :final, finished_at = :now, updated_at = :now, last_error = :reason, \
                     pending_key = :failed_key REMOVE lease_owner, lease_until, expires_at",
                )
                .expression_attribute_values(":reason", s(reason))
                .expression_attribute_values(":failed_key", s(failed_key(key.provider))),
            Finish::Completed | Finish::Ignored | Finish::Stale => request
                .update_expression(
                    "SET #status = :final, finished_at = :now, updated_at = :now, expires_at = :expires \
                     REMOVE lease_owner, lease_until, pending_key",
                )
                .expression_attribute_values(":expires", self.expiry(now)),
        };
        Ok(match conditional(request).await? {
            Ok(_) => FinishOutcome::Finished,
            Err(_) => FinishOutcome::LeaseLost,
        })
    }

    async fn note_success(&self, provider: Provider, at: OffsetDateTime) -> Result<(), StoreError> {
        let request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PARTITION_KEY, s(last_success_key(provider)))
            .update_expression("SET last_success = :at")
            .condition_expression("attribute_not_exists(last_success) OR last_success < :at")
            .expression_attribute_values(":at", millis(at));
        match request.send().await {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(service)) if service.err().is_conditional_check_failed_exception() => Ok(()),
            Err(other) => Err(StoreError::unavailable(other)),
        }
    }
}

#[async_trait]
impl Repairs for DynamoEventStore {
    async fn stuck(
        &self,
        provider: Provider,
        since: Option<OffsetDateTime>,
        older_than: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<EventRecord>, StoreError> {
        let window = Window { since: since.unwrap_or(OffsetDateTime::UNIX_EPOCH), before: older_than };
        let mut stuck = self.pending_index(pending_key(provider), Some(window), limit).await?;
        // The index is eventually consistent: drop what has since finished.
        stuck.retain(|r| !r.status.is_final());
        Ok(stuck)
    }

    async fn failed(&self, provider: Provider, limit: usize) -> Result<Vec<EventRecord>, StoreError> {
        let mut failed = self.pending_index(failed_key(provider), None, limit).await?;
        failed.retain(|r| r.status == EventStatus::Failed);
        Ok(failed)
    }

    async fn give_up(
        &self,
        key: &EventKey,
        seen_status: EventStatus,
        seen_updated_at: OffsetDateTime,
        now: OffsetDateTime,
        reason: &str,
    ) -> Result<bool, StoreError> {
        if seen_status.is_final() {
            return Ok(false);
        }
        let request = self
            .update(key)
            .update_expression(
                "SET #status = :failed, last_error = :reason, finished_at = :now, updated_at = :now, \
                 pending_key = :failed_key REMOVE lease_owner, lease_until, expires_at",
            )
            .condition_expression(
                "#status = :seen_status AND updated_at = :seen \
                 AND (attribute_not_exists(lease_until) OR lease_until < :now)",
            )
            .expression_attribute_values(":failed", status(EventStatus::Failed))
            .expression_attribute_values(":failed_key", s(failed_key(key.provider)))
            .expression_attribute_values(":reason", s(reason))
            .expression_attribute_values(":seen_status", status(seen_status))
            .expression_attribute_values(":seen", millis(seen_updated_at))
            .expression_attribute_values(":now", millis(now));
        Ok(conditional(request).await?.is_ok())
    }

    async fn reopen(&self, key: &EventKey, now: OffsetDateTime) -> Result<bool, StoreError> {
        let request = self
            .update(key)
            .update_expression(
                "SET #status = :enqueued, updated_at = :now, pending_key = :pending REMOVE finished_at, expires_at",
            )
            .condition_expression("#status = :failed")
            .expression_attribute_values(":enqueued", status(EventStatus::Enqueued))
            .expression_attribute_values(":failed", status(EventStatus::Failed))
            .expression_attribute_values(":pending", s(pending_key(key.provider)))
            .expression_attribute_values(":now", millis(now));
        Ok(conditional(request).await?.is_ok())
    }

    async fn last_successes(&self) -> Result<std::collections::BTreeMap<Provider, OffsetDateTime>, StoreError> {
        let mut last = std::collections::BTreeMap::new();
        for &provider in Provider::ALL {
            let output = self
                .client
                .get_item()
                .table_name(&self.table)
                .key(PARTITION_KEY, s(last_success_key(provider)))
                .send()
                .await
                .map_err(StoreError::unavailable)?;
            if let Some(at) = output.item.as_ref().map(|item| get_time(item, "last_success")).transpose()?.flatten() {
                last.insert(provider, at);
            }
        }
        Ok(last)
    }
}

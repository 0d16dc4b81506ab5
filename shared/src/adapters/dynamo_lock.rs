//! Locks on the event store's DynamoDB table: one item per lock under
//! `lock#{name}`, taken with a conditional put that succeeds only when the
//! item is absent or its lease has ended, so DynamoDB itself decides who
//! holds it. Items expire through the table's TTL a day after their lease,
//! so an abandoned lock leaves nothing behind.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use time::OffsetDateTime;

use super::dynamo_event_store::{DynamoEventStore, PARTITION_KEY, TTL_ATTRIBUTE, millis, n, s};
use crate::ports::StoreError;
use crate::ports::lock::Lock;

fn lock_key(name: &str) -> String {
    format!("lock#{name}")
}

#[async_trait]
impl Lock for DynamoEventStore {
    async fn acquire(
        &self,
        name: &str,
        owner: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let item = HashMap::from([
            (PARTITION_KEY.to_owned(), s(lock_key(name))),
            ("lease_owner".to_owned(), s(owner)),
            ("lease_until".to_owned(), millis(until)),
            (TTL_ATTRIBUTE.to_owned(), n((until + time::Duration::DAY).unix_timestamp())),
        ]);
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR lease_until < :now")
            .expression_attribute_values(":now", millis(now))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(service)) => match service.into_err() {
                PutItemError::ConditionalCheckFailedException(_) => Ok(false),
                other => Err(StoreError::unavailable(other)),
            },
            Err(other) => Err(StoreError::unavailable(other)),
        }
    }

    async fn release(&self, name: &str, owner: &str) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(PARTITION_KEY, s(lock_key(name)))
            .condition_expression("lease_owner = :owner")
            .expression_attribute_values(":owner", s(owner))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(service)) => match service.into_err() {
                DeleteItemError::ConditionalCheckFailedException(_) => Ok(()),
                other => Err(StoreError::unavailable(other)),
            },
            Err(other) => Err(StoreError::unavailable(other)),
        }
    }
}

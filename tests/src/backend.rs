//! A place to run a test: the in-memory adapters, or the AWS emulators that
//! `scripts/test.sh` starts. The SDK reaches the emulators only through
//! `AWS_ENDPOINT_URL_DYNAMODB` / `AWS_ENDPOINT_URL_SQS`, so the production
//! client set-up (`payhooks::config::aws`) is what runs.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::Select;
use payhooks::adapters::{DynamoEventStore, MemoryEventStore, MemoryQueue, SqsQueue};
use payhooks::ports::{EventStore, Ledger, Lock, Queue};
use tokio::sync::OnceCell;

/// Set by the test script: a missing emulator is then a failure, not a skip.
pub const REQUIRE_EMULATORS: &str = "PAYHOOKS_REQUIRE_EMULATORS";

pub const MAX_RECEIVE_COUNT: u32 = 5;

#[derive(Debug, Clone)]
pub enum Records {
    Memory(Arc<MemoryEventStore>),
    Dynamo { client: aws_sdk_dynamodb::Client, table: String },
}

/// One test's store, queue and dead-letter queue.
#[derive(Debug, Clone)]
pub struct Backend {
    pub name: &'static str,
    pub store: Arc<dyn EventStore>,
    pub queue: Arc<dyn Queue>,
    pub dead_letters: Arc<dyn Queue>,
    /// The same store, as the ledger.
    pub ledger: Arc<dyn Ledger>,
    /// Where the emulators keep it, for a process configured by names.
    pub resources: Option<EmulatorResources>,
    records: Records,
}

/// The emulator table and queues a backend uses.
#[derive(Debug, Clone)]
pub struct EmulatorResources {
    pub table: String,
    pub queue_url: String,
    pub dlq_url: String,
}

static SDK: OnceCell<Option<aws_config::SdkConfig>> = OnceCell::const_new();

fn emulators_configured() -> bool {
    std::env::var_os("AWS_ENDPOINT_URL_DYNAMODB").is_some() && std::env::var_os("AWS_ENDPOINT_URL_SQS").is_some()
}

/// The SDK configuration for the emulators, or `None` (after saying so)
/// when they are not configured and not required.
pub async fn emulator_sdk() -> Option<aws_config::SdkConfig> {
    SDK.get_or_init(|| async {
        if !emulators_configured() {
            assert!(
                std::env::var_os(REQUIRE_EMULATORS).is_none(),
                "{REQUIRE_EMULATORS} is set but AWS_ENDPOINT_URL_DYNAMODB / AWS_ENDPOINT_URL_SQS are not"
            );
            eprintln!("emulators not configured: skipping (run scripts/test.sh for the full suite)");
            return None;
        }
        Some(payhooks::config::aws().await)
    })
    .await
    .clone()
}

/// A store on a fresh table of DynamoDB Local.
async fn emulator_table(prefix: &str) -> Option<DynamoEventStore> {
    let sdk = emulator_sdk().await?;
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    let table = unique(prefix);
    DynamoEventStore::create_table(&dynamo, &table).await.expect("create a table on DynamoDB Local");
    Some(DynamoEventStore::new(dynamo, table))
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

impl Backend {
    /// Memory adapters, with a queue whose visibility timeout is `visibility`.
    pub fn memory(visibility: Duration) -> Self {
        let store = Arc::new(MemoryEventStore::new());
        let dead_letters = Arc::new(MemoryQueue::new(visibility));
        let queue = Arc::new(MemoryQueue::new(visibility).with_dead_letters(dead_letters.clone(), MAX_RECEIVE_COUNT));
        Self {
            name: "memory",
            store: store.clone(),
            queue,
            dead_letters,
            ledger: store.clone(),
            resources: None,
            records: Records::Memory(store),
        }
    }

    /// A fresh table, queue and dead-letter queue on the emulators.
    pub async fn emulators(visibility: Duration) -> Option<Self> {
        let sdk = emulator_sdk().await?;
        let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let table = unique("events");
        DynamoEventStore::create_table(&dynamo, &table).await.expect("create a table on DynamoDB Local");
        let dlq_url =
            SqsQueue::create(&sqs, &unique("dlq"), visibility, None).await.expect("create a dead-letter queue on moto");
        let queue_url = SqsQueue::create(&sqs, &unique("events"), visibility, Some((&dlq_url, MAX_RECEIVE_COUNT)))
            .await
            .expect("create a queue on moto");
        let store = Arc::new(DynamoEventStore::new(dynamo.clone(), table.clone()));
        let resources =
            EmulatorResources { table: table.clone(), queue_url: queue_url.clone(), dlq_url: dlq_url.clone() };
        Some(Self {
            name: "emulators",
            store: store.clone(),
            ledger: store,
            resources: Some(resources),
            queue: Arc::new(SqsQueue::new(sqs.clone(), queue_url)),
            dead_letters: Arc::new(SqsQueue::new(sqs, dlq_url)),
            records: Records::Dynamo { client: dynamo, table },
        })
    }

    /// A fresh table on DynamoDB Local as a store that is also the ledger.
    pub async fn emulator_books() -> Option<Arc<dyn crate::contract::ledger::Books>> {
        Some(Arc::new(emulator_table("books").await?))
    }

    /// A fresh table on DynamoDB Local, for its locks.
    pub async fn emulator_locks() -> Option<Arc<dyn Lock>> {
        Some(Arc::new(emulator_table("locks").await?))
    }

    /// Both backends where available: memory always, emulators when configured.
    pub async fn all(visibility: Duration) -> Vec<Self> {
        let mut all = vec![Self::memory(visibility)];
        all.extend(Self::emulators(visibility).await);
        all
    }

    /// Changes `account`'s balance behind the ledger's back, as a bug or a
    /// hand edit would.
    pub async fn corrupt_balance(&self, account: &payhooks::ports::AccountRef, delta: i64) {
        match &self.records {
            Records::Memory(store) => store.corrupt_balance(account, delta),
            Records::Dynamo { client, table } => {
                client
                    .update_item()
                    .table_name(table)
                    .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(account.storage_key()))
                    .update_expression("ADD balance :delta")
                    .expression_attribute_values(
                        ":delta",
                        aws_sdk_dynamodb::types::AttributeValue::N(delta.to_string()),
                    )
                    .send()
                    .await
                    .expect("update the balance on DynamoDB Local");
            }
        }
    }

    /// How many event records exist.
    pub async fn record_count(&self) -> usize {
        match &self.records {
            Records::Memory(store) => store.all().len(),
            Records::Dynamo { client, table } => {
                client
                    .scan()
                    .table_name(table)
                    .select(Select::Count)
                    .consistent_read(true)
                    .send()
                    .await
                    .expect("scan the table")
                    .count as usize
            }
        }
    }

    /// Receives and deletes every message now visible; returns their bodies.
    pub async fn drain(queue: &dyn Queue) -> Vec<String> {
        let mut bodies = Vec::new();
        loop {
            let batch = queue.receive(10, Duration::ZERO).await.expect("receive");
            if batch.is_empty() {
                return bodies;
            }
            for delivery in batch {
                queue.delete(&delivery.receipt).await.expect("delete");
                bodies.push(delivery.body);
            }
        }
    }
}

//! Implementations of the ports: AWS services for the cloud, memory for the
//! local server and fast tests. The memory adapters are real adapters held to
//! the same contract suite as the AWS ones, not test doubles.

pub mod dynamo_event_store;
pub mod dynamo_ledger;
pub mod dynamo_lock;
pub mod emf_metrics;
pub mod http_provisioner;
pub mod memory_event_store;
pub mod memory_metrics;
pub mod memory_provisioner;
pub mod memory_queue;
pub mod secrets_manager;
pub mod sqs_queue;

pub use dynamo_event_store::DynamoEventStore;
pub use emf_metrics::EmfMetrics;
pub use http_provisioner::HttpProvisioner;
pub use memory_event_store::MemoryEventStore;
pub use memory_metrics::MemoryMetrics;
pub use memory_provisioner::MemoryProvisioner;
pub use memory_queue::MemoryQueue;
pub use secrets_manager::SecretsManagerSource;
pub use sqs_queue::SqsQueue;

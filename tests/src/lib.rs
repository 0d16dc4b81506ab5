//! Support for the contract suites and end-to-end tests: backends (memory,
//! or DynamoDB Local and moto's SQS), fresh tables and queues per test,
//! signed requests, and adapters that fail on purpose.

pub mod backend;
pub mod contract;
pub mod faults;
pub mod requests;

pub use backend::Backend;

//! Support for the contract suites and end-to-end tests: backends (memory,
//! or DynamoDB Local and moto's SQS), fresh tables and queues per test,
//! signed requests, adapters that fail on purpose, a local Lambda Runtime
//! API to run built function binaries against, and the template as SAM
//! transforms it, evaluated for a set of parameters.

pub mod backend;
pub mod chaos;
pub mod contract;
pub mod faults;
pub mod requests;
pub mod runtime_api;
pub mod template;

pub use backend::Backend;

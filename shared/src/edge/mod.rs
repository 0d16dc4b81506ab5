//! Where requests meet the pipelines: HTTP (API Gateway through
//! `lambda_http`, or the local server) and SQS batches.

pub mod http;
pub mod sqs;

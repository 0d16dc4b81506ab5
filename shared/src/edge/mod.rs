//! Where requests meet the pipelines: HTTP (API Gateway through
//! `lambda_http`, or the local server), SQS batches, and CloudFormation's
//! custom resource requests (callback registration at deploy time).

pub mod custom_resource;
pub mod http;
pub mod sqs;

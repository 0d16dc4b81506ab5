//! Where requests meet the pipelines: HTTP (API Gateway through
//! `lambda_http`, or the local server) for webhooks and the operator's
//! routes ([`admin`]), SQS batches, and CloudFormation's custom resource
//! requests (callback registration at deploy time).

pub mod admin;
pub mod custom_resource;
pub mod http;
pub mod sqs;

//! payhooks: payment webhooks on AWS Lambda, processed exactly once.
//!
//! A provider's webhook is verified over its raw bytes, normalized onto the
//! domain's events, recorded once with a conditional put and enqueued; the
//! processor leases each event, applies its effects and finishes it.
//!
//! # Layout
//!
//! - [`event`]: the vocabulary: providers, event ids and keys, domain
//!   events, statuses and the stored record.
//! - [`providers`]: one module per provider: signature verification and the
//!   mapping of its event types onto [`event::DomainEvent`].
//! - [`ports`]: the traits the pipelines talk to (event store, queue,
//!   ledger, effects, confirmation by a provider's API, provisioner,
//!   metrics, locks); [`clock`] and [`secret`] are small ports of their own.
//! - [`adapters`]: DynamoDB, SQS, Secrets Manager, CloudWatch EMF and the
//!   providers' and provisioner's HTTP APIs for the cloud; memory for the
//!   local server and tests.
//! - [`ingest`] and [`process`]: the two pipelines; [`effects`]: what each
//!   kind of event does to accounts, on the ledger; [`sweep`] and
//!   [`reconcile`]: the scheduled re-enqueueing of stuck events and the
//!   check of every balance against its ledger; [`replay`]: moving dead
//!   letters back to the queue.
//! - [`registration`]: provider callbacks registered exactly once, at
//!   deploy time, under a lock.
//! - [`edge`]: HTTP and SQS-batch entry points over the pipelines (the
//!   webhooks, and the operator's health, history and repair routes), and
//!   the CloudFormation custom resource that runs the registration.
//! - [`settings`]: reading settings from a lookup (the environment, or a
//!   map in tests), and naming secrets; [`config`]: each function's
//!   settings and its wiring, built once per cold start.
//! - [`local`]: the local server (every provider route plus the processor,
//!   in memory).
//! - [`telemetry`]: logging set-up.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod adapters;
pub mod clock;
pub mod config;
pub mod edge;
pub mod effects;
pub mod event;
pub mod ingest;
pub mod local;
pub mod ports;
pub mod process;
pub mod providers;
pub mod reconcile;
pub mod registration;
pub mod replay;
pub mod secret;
pub mod settings;
pub mod sweep;
pub mod telemetry;

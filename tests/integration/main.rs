//! One test binary: the contract suites against every adapter, ingest and
//! processing behaviour, the Lambda edges end to end, the cross-checks with
//! Stripe's own SDK, and callback registration against fakes of the
//! providers' APIs. Tests that need the AWS emulators or the SDK skip
//! themselves when run without `scripts/test.sh`, which makes them required.

mod admin;
mod bad_input;
mod chaos;
mod confirmation;
mod contract;
mod effects;
mod end_to_end;
mod ingest;
mod layout;
mod logs;
mod processor;
mod properties;
mod providers;
mod reconcile;
mod refunds;
mod registration;
mod replay;
mod stripe_sdk;
mod support;
mod sweeper;
mod template_contract;

//! Stripe's ingest function: `POST /webhooks/stripe` behind API Gateway.

use lambda_http::{Error, run, service_fn};
use payhooks::event::Provider;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let ingest = payhooks::config::lambda_ingest(Provider::Stripe).await?;
    run(service_fn(|request| payhooks::edge::http::lambda(&ingest, Provider::Stripe, request))).await
}

//! Paddle's ingest function: `POST /webhooks/paddle` behind API Gateway.

use lambda_http::{Error, run, service_fn};
use payhooks::event::Provider;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let ingest = payhooks::config::lambda_ingest(Provider::Paddle).await?;
    run(service_fn(|request| payhooks::edge::http::lambda(&ingest, Provider::Paddle, request))).await
}

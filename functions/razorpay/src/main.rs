//! Razorpay's ingest function: `POST /webhooks/razorpay` behind API Gateway.

use lambda_http::{Error, run, service_fn};
use payhooks::event::Provider;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let ingest = payhooks::config::lambda_ingest(Provider::Razorpay).await?;
    run(service_fn(|request| payhooks::edge::http::lambda(&ingest, Provider::Razorpay, request))).await
}

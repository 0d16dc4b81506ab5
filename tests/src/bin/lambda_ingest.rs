//! An ingest function started as Lambda starts one, exactly as
//! `functions/<provider>/src/main.rs` does, for the provider named by
//! `PAYHOOKS_TEST_PROVIDER`: the logs test runs it against a local Runtime
//! API at every log level the template allows.

use lambda_http::{Error, run, service_fn};
use payhooks::event::Provider;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let provider: Provider = std::env::var("PAYHOOKS_TEST_PROVIDER")?.parse().map_err(|_| "not a provider")?;
    let ingest = payhooks::config::lambda_ingest(provider).await?;
    run(service_fn(|request| payhooks::edge::http::lambda(&ingest, provider, request))).await
}

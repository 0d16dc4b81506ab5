//! The register function: CloudFormation custom resources that register
//! provider callbacks at deploy time. Start-up builds clients only.

use std::sync::Arc;

use lambda_runtime::{Error, run, service_fn};
use payhooks::edge::custom_resource::{CustomResources, lambda};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let resources = CustomResources::new(Arc::new(payhooks::config::lambda_registrars().await?));
    run(service_fn(|event| lambda(&resources, event))).await
}

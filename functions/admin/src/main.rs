//! The admin function: `/admin/...` behind API Gateway's IAM authorization.

use lambda_http::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let admin = payhooks::config::lambda_admin().await?;
    run(service_fn(|request| payhooks::edge::http::lambda_admin(&admin, request))).await
}

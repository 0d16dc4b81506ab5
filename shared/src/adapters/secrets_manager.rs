//! Secrets from AWS Secrets Manager, read once per cold start (I12).

use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;

use crate::ports::{SecretStore, SecretsError};

#[derive(Debug, Clone)]
pub struct SecretsManagerSource {
    client: Client,
}

impl SecretsManagerSource {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

#[async_trait]
impl SecretStore for SecretsManagerSource {
    async fn secret_string(&self, arn: &str) -> Result<String, SecretsError> {
        let output = self
            .client
            .get_secret_value()
            .secret_id(arn)
            .send()
            .await
            .map_err(|e| SecretsError::Unavailable { arn: arn.to_owned(), source: Box::new(e) })?;
        output.secret_string().map(str::to_owned).ok_or_else(|| SecretsError::NotAString { arn: arn.to_owned() })
    }
}

//! Where secrets are kept: read once per cold start (I12), by name.

use async_trait::async_trait;

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("could not read secret {arn}")]
    Unavailable {
        arn: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("secret {arn} has no string value")]
    NotAString { arn: String },
}

#[async_trait]
pub trait SecretStore: Send + Sync + std::fmt::Debug {
    /// A secret's string value as stored (a key, a list of keys, a JSON
    /// document of credentials).
    async fn secret_string(&self, arn: &str) -> Result<String, SecretsError>;
}

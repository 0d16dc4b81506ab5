//! Signing secrets from AWS Secrets Manager, read once per cold start (I12).

use aws_sdk_secretsmanager::Client;

use crate::secret::{EmptySecretSet, SecretSet};

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("could not read secret {arn} from Secrets Manager")]
    Unavailable {
        arn: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("secret {arn} has no string value")]
    NotAString { arn: String },
    #[error("secret {arn} is empty")]
    Empty {
        arn: String,
        #[source]
        source: EmptySecretSet,
    },
}

#[derive(Debug, Clone)]
pub struct SecretsManagerSource {
    client: Client,
}

impl SecretsManagerSource {
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// Reads a secret whose value is one signing secret, or several
    /// separated by commas while a secret is being rotated.
    pub async fn signing_secrets(&self, arn: &str) -> Result<SecretSet, SecretsError> {
        let value = self.secret_string(arn).await?;
        SecretSet::from_comma_separated(&value).map_err(|source| SecretsError::Empty { arn: arn.to_owned(), source })
    }

    /// A secret's string value as stored (a key, or a JSON document of
    /// credentials).
    pub async fn secret_string(&self, arn: &str) -> Result<String, SecretsError> {
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

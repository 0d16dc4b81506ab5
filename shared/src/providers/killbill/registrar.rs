//! Kill Bill's push-notification callback, `PUSH_NOTIFICATION_CB`: one value
//! per tenant, read, replaced and removed through
//! `/1.0/kb/tenants/registerNotificationCallback`.
//!
//! Racing registrations can leave several rows for the key, and Kill Bill
//! then stops delivering altogether, so a registration never adds to what
//! is there: it clears every row and writes one, then reads back to verify
//! that exactly that one is listed.

use std::collections::BTreeSet;

use async_trait::async_trait;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::api::KillbillCredentials;
use crate::event::Provider;
use crate::providers::api::http_client;
use crate::registration::{Callback, Registered, Registrar, RegistrationError, read, send};

const API: &str = "Kill Bill's API";
const PATH: &str = "1.0/kb/tenants/registerNotificationCallback";
/// Kill Bill records who made each change.
const CREATED_BY: &str = "payhooks";

const READ: &str = "read the notification callback";
const CLEAR: &str = "remove the notification callbacks";
const REGISTER: &str = "register the notification callback";

#[derive(Debug, Clone)]
pub struct KillbillRegistrar {
    http: reqwest::Client,
    url: String,
    credentials: KillbillCredentials,
}

/// `{"key": "PUSH_NOTIFICATION_CB", "values": [...]}`.
#[derive(Deserialize)]
struct TenantKeyValue {
    #[serde(default)]
    values: Vec<String>,
}

/// Kill Bill's bodies may quote the callback URL, which holds the token.
fn no_detail(_: &[u8]) -> Option<String> {
    None
}

/// Names a registered URL without revealing its token.
fn id_of(url: &str) -> String {
    format!("sha256:{}", hex::encode(&Sha256::digest(url.as_bytes())[..8]))
}

impl KillbillRegistrar {
    pub fn new(base_url: &str, credentials: KillbillCredentials) -> Self {
        Self { http: http_client(), url: format!("{}/{PATH}", base_url.trim_end_matches('/')), credentials }
    }

    async fn values(&self) -> Result<Vec<String>, RegistrationError> {
        let request = self.credentials.authorize(self.http.get(&self.url));
        match send(API, READ, request, no_detail).await {
            Ok(response) => Ok(read::<TenantKeyValue>(API, READ, response).await?.values),
            // A tenant that never had a callback.
            Err(RegistrationError::Refused { status: 404, .. }) => Ok(Vec::new()),
            Err(other) => Err(other),
        }
    }

    /// Deletes every row of the key, duplicates included.
    async fn clear(&self) -> Result<(), RegistrationError> {
        let request =
            self.credentials.authorize(self.http.delete(&self.url)).header("X-Killbill-CreatedBy", CREATED_BY);
        send(API, CLEAR, request, no_detail).await.map(drop)
    }

    async fn register(&self, url: &str) -> Result<(), RegistrationError> {
        let request = self
            .credentials
            .authorize(self.http.post(&self.url))
            .query(&[("cb", url)])
            .header("X-Killbill-CreatedBy", CREATED_BY);
        send(API, REGISTER, request, no_detail).await.map(drop)
    }
}

#[async_trait]
impl Registrar for KillbillRegistrar {
    async fn ensure(&self, desired: &Callback) -> Result<Registered, RegistrationError> {
        let registered = Registered { provider: Provider::Killbill, id: id_of(desired.url()) };
        let values = self.values().await?;
        if values == [desired.url()] {
            return Ok(registered);
        }
        if !values.is_empty() {
            tracing::info!(listed = values.len(), "replacing Kill Bill's notification callback");
            self.clear().await?;
        }
        self.register(desired.url()).await?;
        let after = self.values().await?;
        if after != [desired.url()] {
            return Err(RegistrationError::NotVerified { api: API, found: after.len() });
        }
        Ok(registered)
    }

    async fn remove(&self, registered: &Registered) -> Result<(), RegistrationError> {
        let values = self.values().await?;
        if !values.iter().any(|v| id_of(v) == registered.id) {
            return Ok(());
        }
        self.clear().await?;
        // Deleting is all or nothing in Kill Bill: put back a callback that
        // was not ours, when there is exactly one to put back.
        let others: Vec<&String> =
            values.iter().filter(|v| id_of(v) != registered.id).collect::<BTreeSet<_>>().into_iter().collect();
        match others.as_slice() {
            [] => {}
            [other] => self.register(other).await?,
            several => {
                tracing::warn!(others = several.len(), "several other Kill Bill callbacks were listed; none put back")
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_names_the_url_without_its_token() {
        let url = "https://example.test/webhooks/killbill/kb-token-test";
        let id = id_of(url);
        assert!(id.starts_with("sha256:") && id.len() == "sha256:".len() + 16, "{id}");
        assert!(!id.contains("kb-token-test"));
        assert_ne!(id, id_of("https://example.test/webhooks/killbill/kb-token-other"));
    }
}

//! Stripe webhook endpoints: one per callback URL, with the enabled events
//! asked for (`/v1/webhook_endpoints`).
//!
//! Of several endpoints with the URL, the oldest is kept: it is the one
//! whose signing secret an operator has most likely stored. A new
//! endpoint's signing secret is returned once, by the create call; it is
//! neither read nor kept here, and is copied from Stripe's dashboard.

use std::collections::BTreeSet;

use async_trait::async_trait;
use serde::Deserialize;

use crate::event::Provider;
use crate::providers::api::http_client;
use crate::registration::{Callback, Registered, Registrar, RegistrationError, read, send};
use crate::secret::Secret;

pub const DEFAULT_API_URL: &str = "https://api.stripe.com";
const API: &str = "Stripe's API";
const DESCRIPTION: &str = "payhooks (registered on deploy)";
/// Stripe's largest page.
const PAGE_SIZE: &str = "100";

#[derive(Debug, Clone)]
pub struct StripeRegistrar {
    http: reqwest::Client,
    endpoints_url: String,
    api_key: Secret,
}

#[derive(Deserialize)]
struct Page {
    data: Vec<Endpoint>,
    #[serde(default)]
    has_more: bool,
}

#[derive(Deserialize)]
struct Endpoint {
    id: String,
    url: String,
    #[serde(default)]
    enabled_events: Vec<String>,
    #[serde(default)]
    status: String,
    #[serde(default)]
    created: i64,
}

impl Endpoint {
    fn serves(&self, desired: &Callback) -> bool {
        let enabled: BTreeSet<&String> = self.enabled_events.iter().collect();
        self.status != "disabled" && enabled == desired.events().iter().collect()
    }
}

/// Only the id of a created endpoint is read; its signing secret is not.
#[derive(Deserialize)]
struct Created {
    id: String,
}

/// Stripe's `error.message`, which explains a refusal (an unknown event
/// type, an invalid key) and masks keys itself.
fn error_message(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let message = value.get("error")?.get("message")?.as_str()?;
    Some(message.chars().take(300).collect())
}

impl StripeRegistrar {
    pub fn new(base_url: &str, api_key: Secret) -> Self {
        Self {
            http: http_client(),
            endpoints_url: format!("{}/v1/webhook_endpoints", base_url.trim_end_matches('/')),
            api_key,
        }
    }

    fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        self.http.request(method, url).bearer_auth(String::from_utf8_lossy(self.api_key.expose()))
    }

    /// Every endpoint of the account, page by page.
    async fn endpoints(&self) -> Result<Vec<Endpoint>, RegistrationError> {
        const ACTION: &str = "list webhook endpoints";
        let mut all = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut request = self.request(reqwest::Method::GET, &self.endpoints_url).query(&[("limit", PAGE_SIZE)]);
            if let Some(id) = &after {
                request = request.query(&[("starting_after", id)]);
            }
            let page: Page = read(API, ACTION, send(API, ACTION, request, error_message).await?).await?;
            after = page.data.last().map(|e| e.id.clone());
            all.extend(page.data);
            if !page.has_more || after.is_none() {
                return Ok(all);
            }
        }
    }

    async fn create(&self, desired: &Callback) -> Result<String, RegistrationError> {
        const ACTION: &str = "create the webhook endpoint";
        let mut form = vec![("url", desired.url()), ("description", DESCRIPTION), ("metadata[managed_by]", "payhooks")];
        form.extend(desired.events().iter().map(|e| ("enabled_events[]", e.as_str())));
        let request = self.request(reqwest::Method::POST, &self.endpoints_url).form(&form);
        let created: Created = read(API, ACTION, send(API, ACTION, request, error_message).await?).await?;
        Ok(created.id)
    }

    async fn update(&self, id: &str, desired: &Callback) -> Result<(), RegistrationError> {
        let mut form = vec![("disabled", "false")];
        form.extend(desired.events().iter().map(|e| ("enabled_events[]", e.as_str())));
        let request = self.request(reqwest::Method::POST, &format!("{}/{id}", self.endpoints_url)).form(&form);
        send(API, format!("update webhook endpoint {id}"), request, error_message).await.map(drop)
    }

    /// Deletes endpoint `id`; one already gone is no error.
    async fn delete(&self, id: &str) -> Result<(), RegistrationError> {
        let request = self.request(reqwest::Method::DELETE, &format!("{}/{id}", self.endpoints_url));
        match send(API, format!("delete webhook endpoint {id}"), request, error_message).await {
            Ok(_) | Err(RegistrationError::Refused { status: 404, .. }) => Ok(()),
            Err(other) => Err(other),
        }
    }
}

#[async_trait]
impl Registrar for StripeRegistrar {
    async fn ensure(&self, desired: &Callback) -> Result<Registered, RegistrationError> {
        let mut matching: Vec<Endpoint> =
            self.endpoints().await?.into_iter().filter(|e| e.url == desired.url()).collect();
        matching.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        let id = match matching.split_first() {
            None => self.create(desired).await?,
            Some((keep, extras)) => {
                for extra in extras {
                    tracing::info!(endpoint = %extra.id, kept = %keep.id, "deleting a duplicate Stripe webhook endpoint");
                    self.delete(&extra.id).await?;
                }
                if !keep.serves(desired) {
                    self.update(&keep.id, desired).await?;
                }
                keep.id.clone()
            }
        };
        Ok(Registered { provider: Provider::Stripe, id })
    }

    async fn remove(&self, registered: &Registered) -> Result<(), RegistrationError> {
        self.delete(&registered.id).await
    }
}

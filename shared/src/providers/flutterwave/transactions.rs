//! Confirms Flutterwave charges with its verify-transaction API
//! (`GET /v3/transactions/{id}/verify`), as Flutterwave advises before value
//! is given: the status, amount and currency must be what the webhook says.

use async_trait::async_trait;
use serde_json::Value;

use crate::event::{EventKind, EventRecord};
use crate::ports::{Confirmation, Confirmer, EffectError};
use crate::providers::api::{ApiError, get_json, http_client};
use crate::providers::money::minor_units;
use crate::secret::Secret;

pub const DEFAULT_API_URL: &str = "https://api.flutterwave.com";
const API: &str = "Flutterwave's verify-transaction API";

#[derive(Debug, Clone)]
pub struct FlutterwaveTransactions {
    http: reqwest::Client,
    base_url: String,
    secret_key: Secret,
}

impl FlutterwaveTransactions {
    pub fn new(base_url: impl Into<String>, secret_key: Secret) -> Self {
        Self { http: http_client(), base_url: base_url.into().trim_end_matches('/').to_owned(), secret_key }
    }
}

#[async_trait]
impl Confirmer for FlutterwaveTransactions {
    async fn confirm(&self, record: &EventRecord) -> Result<Confirmation, EffectError> {
        let event = &record.event;
        let expected_status = match (event.event_type.as_str(), event.kind) {
            ("charge.completed", EventKind::Payment | EventKind::Renewal) => "successful",
            ("charge.completed", EventKind::PaymentFailed) => "failed",
            // Nothing of value hangs on the rest, or the v3 API has no
            // lookup for it (v4 charges have their own API): as received.
            _ => return Ok(Confirmation::Confirmed(Box::new(event.clone()))),
        };
        let Some(id) = event.object.as_deref().filter(|id| id.bytes().all(|b| b.is_ascii_digit())) else {
            return Ok(Confirmation::Confirmed(Box::new(event.clone())));
        };
        let request = self
            .http
            .get(format!("{}/v3/transactions/{id}/verify", self.base_url))
            .bearer_auth(String::from_utf8_lossy(self.secret_key.expose()));
        let Some(answer) = get_json(API, request).await? else {
            return Ok(contradicted(format!("no transaction {id}")));
        };
        let data = answer.get("data").ok_or(ApiError::Body { api: API })?;
        let status = data.get("status").and_then(Value::as_str).unwrap_or_default();
        if status != expected_status {
            return Ok(contradicted(format!("transaction {id} is {status:?}, the webhook says {expected_status:?}")));
        }
        let currency = data.get("currency").and_then(Value::as_str).map(str::to_ascii_uppercase);
        if currency != event.currency {
            return Ok(contradicted(format!("transaction {id} is in {currency:?}, not {:?}", event.currency)));
        }
        let amount = data.get("amount").and_then(|a| minor_units(a, currency.as_deref()));
        if amount != event.amount_minor {
            return Ok(contradicted(format!(
                "transaction {id} is for {amount:?} minor units, the webhook says {:?}",
                event.amount_minor
            )));
        }
        Ok(Confirmation::Confirmed(Box::new(event.clone())))
    }
}

fn contradicted(reason: String) -> Confirmation {
    Confirmation::Contradicted { reason }
}

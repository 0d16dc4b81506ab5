//! Confirms PayPal subscription events by reading the subscription back
//! (`GET /v1/billing/subscriptions/{id}`), which also names what PayPal's
//! sale events lack: the plan. The subscription must exist, belong to the
//! event's payer, and be in the state the event implies.

use async_trait::async_trait;
use serde_json::Value;

use crate::event::{EventKind, EventRecord};
use crate::ports::{Confirmation, Confirmer, EffectError};
use crate::providers::paypal::PaypalApi;

#[derive(Debug)]
pub struct PaypalSubscriptions {
    api: PaypalApi,
}

impl PaypalSubscriptions {
    pub fn new(api: PaypalApi) -> Self {
        Self { api }
    }
}

#[async_trait]
impl Confirmer for PaypalSubscriptions {
    async fn confirm(&self, record: &EventRecord) -> Result<Confirmation, EffectError> {
        let event = &record.event;
        let Some(id) = event.subscription.as_deref() else {
            // One-time captures and their refunds: no subscription to read.
            return Ok(Confirmation::Confirmed(Box::new(event.clone())));
        };
        // Only PayPal's ids, so a body cannot steer the request path.
        if !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Ok(contradicted(format!("{id:?} is not a PayPal subscription id")));
        }
        let subscription = self
            .api
            .get_json(&format!("/v1/billing/subscriptions/{id}"))
            .await
            .map_err(|e| EffectError::Transient(Box::new(e)))?;
        let Some(subscription) = subscription else {
            return Ok(contradicted(format!("no subscription {id}")));
        };
        let text = |path: &str| subscription.pointer(path).and_then(Value::as_str);
        if let (Some(payer), Some(claimed)) = (text("/subscriber/payer_id"), event.customer.as_deref())
            && payer != claimed
        {
            return Ok(contradicted(format!("subscription {id} belongs to another payer")));
        }
        let state = text("/status").unwrap_or_default();
        let consistent = match event.kind {
            EventKind::Purchase => state == "ACTIVE",
            EventKind::Cancellation => matches!(state, "CANCELLED" | "EXPIRED" | "SUSPENDED"),
            _ => true,
        };
        if !consistent {
            return Ok(contradicted(format!("subscription {id} is {state}")));
        }
        let mut confirmed = event.clone();
        confirmed.plan = text("/plan_id").map(str::to_owned).or(confirmed.plan);
        Ok(Confirmation::Confirmed(Box::new(confirmed)))
    }
}

fn contradicted(reason: String) -> Confirmation {
    Confirmation::Contradicted { reason }
}

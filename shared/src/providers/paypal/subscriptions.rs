//! Confirms PayPal subscription events by reading the subscription back
//! (`GET /v1/billing/subscriptions/{id}`), which also names what PayPal's
//! sale events lack: the plan. The subscription must exist, belong to the
//! event's payer, and be in the state the event implies, unless its status
//! changed after the event (then the event is judged at its own time).

use async_trait::async_trait;
use serde_json::Value;

use crate::event::{EventKind, EventRecord};
use crate::ports::{Confirmation, Confirmer, EffectError};
use crate::providers::json::time_at;
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
        let claimed = event.status.as_deref().map(str::to_ascii_uppercase);
        let holds = match event.kind {
            EventKind::Purchase => state == "ACTIVE",
            EventKind::Cancellation => matches!(state, "CANCELLED" | "EXPIRED"),
            EventKind::SubscriptionUpdated => claimed.as_deref().is_none_or(|claimed| claimed == state),
            _ => true,
        };
        // The event is judged at its own time: a subscription whose status
        // changed after it (cancelled after its activation, reactivated
        // after its suspension) says nothing against it, as long as it
        // went live at all.
        let changed_since = time_at(&subscription, &["status_update_time"]).is_some_and(|t| t > event.occurred_at);
        let went_live = !matches!(state, "APPROVAL_PENDING" | "APPROVED");
        let consistent = holds || (changed_since && went_live);
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

//! Lago's samples, and the mapping of its webhook types onto the domain's
//! events.

use http::HeaderMap;
use serde::Deserialize;
use serde_json::Value;
use time::OffsetDateTime;

use crate::event::{DomainEvent, EventId, EventKind, Period};
use crate::providers::json::{at, int_at, str_at, time_at};
use crate::providers::money::partial_share;
use crate::providers::{Rejection, SampleIds, Samples, VerifiedEvent};
use crate::secret::Secret;

use super::*;

/// Events in the shapes of Lago's serializers, with `{{customer_id}}` (the
/// external customer id) and `{{subscription_id}}` (the external
/// subscription id) placeholders. The event id travels in the
/// `X-Lago-Unique-Key` header, so the bodies have no `{{event_id}}`.
pub const SAMPLES: Samples = Samples(&[
    ("subscription.started", include_str!("samples/subscription.started.json")),
    ("invoice.created", include_str!("samples/invoice.created.json")),
    ("invoice.payment_status_updated", include_str!("samples/invoice.payment_status_updated.json")),
    ("invoice.payment_failure", include_str!("samples/invoice.payment_failure.json")),
    ("credit_note.created", include_str!("samples/credit_note.created.json")),
    ("subscription.terminated", include_str!("samples/subscription.terminated.json")),
    // Pro to Team halfway through the period: Lago starts a new subscription
    // under the same external id, bills Team for the days left and credits
    // Pro's unused days.
    ("subscription.started.upgrade", include_str!("samples/subscription.started.upgrade.json")),
    ("invoice.payment_status_updated.upgrade", include_str!("samples/invoice.payment_status_updated.upgrade.json")),
    ("credit_note.created.upgrade", include_str!("samples/credit_note.created.upgrade.json")),
]);

/// Ids for a sample: the unique key is a UUID, as Lago's.
pub fn sample_ids() -> SampleIds {
    SampleIds {
        event_id: uuid::Uuid::new_v4().to_string(),
        payment_id: uuid::Uuid::new_v4().to_string(),
        refund_id: uuid::Uuid::new_v4().to_string(),
        ..SampleIds::random("evt")
    }
}

/// The headers Lago sends in `hmac` mode.
pub fn hmac_headers(
    body: &[u8],
    key: &Secret,
    unique_key: &str,
) -> Result<HeaderMap, http::header::InvalidHeaderValue> {
    let mut headers = HeaderMap::new();
    headers.insert(SIGNATURE_HEADER, hmac_signature(body, key).parse()?);
    headers.insert(ALGORITHM_HEADER, http::HeaderValue::from_static("hmac"));
    headers.insert(UNIQUE_KEY_HEADER, unique_key.parse()?);
    Ok(headers)
}

#[derive(Deserialize)]
struct Envelope {
    webhook_type: Option<String>,
    object_type: Option<String>,
}

/// Parses a verified body into the domain's event, keyed by the
/// `X-Lago-Unique-Key` value. `received_at` stands in for events that carry
/// no time of their own.
pub fn parse_event(unique_key: &str, body: &[u8], received_at: OffsetDateTime) -> Result<VerifiedEvent, Rejection> {
    let event_id = EventId::parse(unique_key)?;
    let value: Value = serde_json::from_slice(body)
        .map_err(|_| Rejection::InvalidPayload { reason: "not a JSON object with Lago's webhook fields" })?;
    let envelope = Envelope::deserialize(&value)
        .map_err(|_| Rejection::InvalidPayload { reason: "not a JSON object with Lago's webhook fields" })?;
    let webhook_type = envelope
        .webhook_type
        .filter(|t| !t.is_empty())
        .ok_or(Rejection::InvalidPayload { reason: "no webhook_type" })?;
    let object_type = envelope.object_type.ok_or(Rejection::InvalidPayload { reason: "no object_type" })?;
    let object = value
        .get(&object_type)
        .filter(|o| o.is_object())
        .ok_or(Rejection::InvalidPayload { reason: "no object under the object_type key" })?;

    let fingerprint = crate::providers::fingerprint(&webhook_type, body);

    Ok(VerifiedEvent { event_id, fingerprint, event: normalize(webhook_type, object, received_at) })
}

fn normalize(event_type: String, o: &Value, received_at: OffsetDateTime) -> DomainEvent {
    let occurred_at = time_at(o, &["updated_at"]).or_else(|| time_at(o, &["created_at"])).unwrap_or(received_at);
    let mut event = DomainEvent {
        currency: str_at(o, &["currency"]),
        object: str_at(o, &["lago_id"]),
        ..DomainEvent::new(event_type, occurred_at)
    };

    match event.event_type.as_str() {
        "subscription.started" | "subscription.terminated" | "subscription.trial_ended" | "subscription.updated" => {
            event.customer = str_at(o, &["external_customer_id"]);
            event.subscription = str_at(o, &["external_id"]);
            event.plan = str_at(o, &["plan_code"]);
            event.status = str_at(o, &["status"]);
            event.currency = str_at(o, &["plan_amount_currency"]);
            event.period = period_at(o, &["current_billing_period_started_at"], &["current_billing_period_ending_at"]);
            let previous_plan = str_at(o, &["previous_plan_code"]);
            let next_plan = str_at(o, &["next_plan_code"]);
            let trial_days = at(o, &["plan", "trial_period"]).and_then(Value::as_f64).unwrap_or(0.0);
            event.kind = match event.event_type.as_str() {
                "subscription.started" => {
                    event.occurred_at = time_at(o, &["started_at"]).unwrap_or(event.occurred_at);
                    if previous_plan.is_some() {
                        EventKind::SubscriptionUpdated
                    } else if trial_days > 0.0 {
                        EventKind::TrialStarted
                    } else {
                        EventKind::Purchase
                    }
                }
                "subscription.terminated" => {
                    event.occurred_at = time_at(o, &["terminated_at"]).unwrap_or(event.occurred_at);
                    if next_plan.is_some() {
                        // The old half of a plan change: the subscription
                        // (its `external_id`) lives on, on the next plan,
                        // as the new half stamped with the same time says.
                        event.plan = next_plan;
                        event.status = Some("active".to_owned());
                        EventKind::SubscriptionUpdated
                    } else {
                        EventKind::Cancellation
                    }
                }
                _ => EventKind::SubscriptionUpdated,
            };
        }
        "invoice.created" | "invoice.payment_status_updated" => {
            event.customer = str_at(o, &["customer", "external_id"]);
            let fee = o
                .get("fees")
                .and_then(Value::as_array)
                .and_then(|fees| {
                    fees.iter().find(|fee| str_at(fee, &["item", "type"]).as_deref() == Some("subscription"))
                })
                .unwrap_or(&Value::Null);
            let billing_period = at(o, &["billing_periods", "0"]).unwrap_or(&Value::Null);
            event.subscription = str_at(fee, &["external_subscription_id"])
                .or_else(|| str_at(billing_period, &["external_subscription_id"]));
            event.plan = str_at(fee, &["item", "code"]);
            event.period = period_at(fee, &["from_date"], &["to_date"])
                .or_else(|| period_at(billing_period, &["subscription_from_datetime"], &["subscription_to_datetime"]));
            event.amount_minor = int_at(o, &["total_amount_cents"]);
            event.period_share = period_share(fee);
            let subscription_invoice = str_at(o, &["invoice_type"]).as_deref() == Some("subscription");
            event.kind = match str_at(o, &["payment_status"]).as_deref() {
                Some("succeeded") if subscription_invoice => {
                    event.payment = str_at(o, &["lago_id"]);
                    EventKind::Renewal
                }
                Some("failed") if event.event_type == "invoice.payment_status_updated" => EventKind::PaymentFailed,
                _ => EventKind::Other,
            };
        }
        "invoice.payment_failure" => {
            event.kind = EventKind::PaymentFailed;
            event.customer = str_at(o, &["external_customer_id"]);
        }
        "credit_note.created" => {
            event.customer = str_at(o, &["customer", "external_id"]);
            event.subscription = str_at(o, &["items", "0", "fee", "external_subscription_id"]);
            // What the note gives back, refunded or credited to the
            // customer's balance (an upgrade's unused days, a termination's):
            // either way time the customer no longer pays for.
            let given_back =
                int_at(o, &["refund_amount_cents"]).unwrap_or(0) + int_at(o, &["credit_amount_cents"]).unwrap_or(0);
            let refund = Some(given_back).filter(|cents| *cents > 0);
            if refund.is_some() {
                event.kind = EventKind::Refund;
                event.amount_minor = refund;
                event.refund_id = str_at(o, &["lago_id"]);
                event.payment = str_at(o, &["lago_invoice_id"]);
            }
        }
        customer_event if customer_event.starts_with("customer.") => {
            event.customer = str_at(o, &["external_id"]);
        }
        _ => {
            event.customer = str_at(o, &["external_customer_id"]).or_else(|| str_at(o, &["customer", "external_id"]));
        }
    }
    event.account = event.customer.clone();
    event
}

/// The share of its plan's whole period a subscription fee bills, in
/// billionths, where it bills less than the plan's price: Lago bills a
/// subscription that starts mid-period (an upgrade's new plan among them)
/// for its days only, and states the plan's price beside the fee
/// (`amount_details.plan_amount_cents`).
fn period_share(fee: &Value) -> Option<i64> {
    partial_share(int_at(fee, &["amount_cents"])?, int_at(fee, &["amount_details", "plan_amount_cents"])?)
}

fn period_at(value: &Value, start: &[&str], end: &[&str]) -> Option<Period> {
    Some(Period { start: time_at(value, start)?, end: time_at(value, end)? })
}

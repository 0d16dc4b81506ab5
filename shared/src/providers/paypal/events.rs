//! PayPal's samples, and the mapping of its event types onto the domain's
//! events.

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::event::{DomainEvent, EventId, EventKind};
use crate::providers::json::{at, str_at};
use crate::providers::{Rejection, SampleIds, Samples, VerifiedEvent};

/// Events in PayPal's documented shapes for the `trigger` command and tests,
/// with `{{event_id}}`, `{{customer_id}}` (payer id) and
/// `{{subscription_id}}` placeholders.
pub const SAMPLES: Samples = Samples(&[
    ("PAYMENT.SALE.COMPLETED", include_str!("samples/PAYMENT.SALE.COMPLETED.json")),
    ("BILLING.SUBSCRIPTION.ACTIVATED", include_str!("samples/BILLING.SUBSCRIPTION.ACTIVATED.json")),
    ("BILLING.SUBSCRIPTION.UPDATED", include_str!("samples/BILLING.SUBSCRIPTION.UPDATED.json")),
    ("BILLING.SUBSCRIPTION.PAYMENT.FAILED", include_str!("samples/BILLING.SUBSCRIPTION.PAYMENT.FAILED.json")),
    ("BILLING.SUBSCRIPTION.CANCELLED", include_str!("samples/BILLING.SUBSCRIPTION.CANCELLED.json")),
    ("BILLING.SUBSCRIPTION.SUSPENDED", include_str!("samples/BILLING.SUBSCRIPTION.SUSPENDED.json")),
    ("BILLING.SUBSCRIPTION.RE-ACTIVATED", include_str!("samples/BILLING.SUBSCRIPTION.RE-ACTIVATED.json")),
    ("PAYMENT.SALE.REFUNDED", include_str!("samples/PAYMENT.SALE.REFUNDED.json")),
    ("PAYMENT.CAPTURE.COMPLETED", include_str!("samples/PAYMENT.CAPTURE.COMPLETED.json")),
    ("PAYMENT.CAPTURE.REFUNDED", include_str!("samples/PAYMENT.CAPTURE.REFUNDED.json")),
    // Pro to Team: PayPal bills the new plan from the next cycle on, and
    // prorates nothing.
    ("BILLING.SUBSCRIPTION.UPDATED.upgrade", include_str!("samples/BILLING.SUBSCRIPTION.UPDATED.upgrade.json")),
    ("PAYMENT.SALE.COMPLETED.upgrade", include_str!("samples/PAYMENT.SALE.COMPLETED.upgrade.json")),
]);

/// Ids in PayPal's shapes: `WH-…` events, 13-character payer ids, `I-…`
/// subscriptions.
pub fn sample_ids() -> SampleIds {
    let token = |n: usize| uuid::Uuid::new_v4().simple().to_string()[..n].to_ascii_uppercase();
    SampleIds {
        event_id: format!("WH-{}-{}", token(17), token(17)),
        customer_id: token(13),
        subscription_id: format!("I-{}", token(12)),
        payment_id: token(17),
        payment_alias_id: token(17),
        refund_id: token(17),
    }
}

#[derive(Deserialize)]
struct Envelope<'a> {
    id: Option<String>,
    event_type: Option<String>,
    create_time: Option<String>,
    #[serde(borrow)]
    resource: Option<&'a RawValue>,
}

/// Parses a verified body into the domain's event. The fingerprint covers
/// the type and the exact bytes of `resource`, the snapshot PayPal took
/// when the event was created.
pub fn parse_event(body: &[u8]) -> Result<VerifiedEvent, Rejection> {
    let envelope: Envelope<'_> = serde_json::from_slice(body)
        .map_err(|_| Rejection::InvalidPayload { reason: "not a JSON object with PayPal's event fields" })?;
    let event_id = EventId::parse(envelope.id.as_deref().unwrap_or_default())?;
    let event_type = envelope.event_type.ok_or(Rejection::InvalidPayload { reason: "no event type" })?;
    let created = envelope
        .create_time
        .and_then(|t| OffsetDateTime::parse(&t, &Rfc3339).ok())
        .ok_or(Rejection::InvalidPayload { reason: "no valid create_time" })?;
    let resource_raw = envelope.resource.ok_or(Rejection::InvalidPayload { reason: "no resource object" })?;
    let resource: Value = serde_json::from_str(resource_raw.get())
        .map_err(|_| Rejection::InvalidPayload { reason: "no resource object" })?;
    if !resource.is_object() {
        return Err(Rejection::InvalidPayload { reason: "no resource object" });
    }

    let fingerprint = crate::providers::fingerprint(&event_type, resource_raw.get().as_bytes());

    Ok(VerifiedEvent { event_id, fingerprint, event: normalize(event_type, created, &resource) })
}

fn normalize(event_type: String, occurred_at: OffsetDateTime, r: &Value) -> DomainEvent {
    let customer = str_at(r, &["subscriber", "payer_id"])
        .or_else(|| str_at(r, &["payer", "payer_id"]))
        .or_else(|| str_at(r, &["payer", "payer_info", "payer_id"]));
    let mut event = DomainEvent {
        customer: customer.clone(),
        object: str_at(r, &["id"]),
        ..DomainEvent::new(event_type, occurred_at)
    };
    match event.event_type.as_str() {
        "BILLING.SUBSCRIPTION.ACTIVATED"
        | "BILLING.SUBSCRIPTION.RE-ACTIVATED"
        | "BILLING.SUBSCRIPTION.UPDATED"
        | "BILLING.SUBSCRIPTION.CANCELLED"
        | "BILLING.SUBSCRIPTION.EXPIRED"
        | "BILLING.SUBSCRIPTION.SUSPENDED"
        | "BILLING.SUBSCRIPTION.PAYMENT.FAILED" => {
            // A suspension (PayPal's own after failed payments, or the
            // merchant's) ends access until its reactivation: statuses of
            // the subscription, where a cancellation is final.
            event.kind = match event.event_type.as_str() {
                "BILLING.SUBSCRIPTION.ACTIVATED" => EventKind::Purchase,
                "BILLING.SUBSCRIPTION.CANCELLED" => EventKind::Cancellation,
                "BILLING.SUBSCRIPTION.PAYMENT.FAILED" => EventKind::PaymentFailed,
                _ => EventKind::SubscriptionUpdated,
            };
            event.subscription = str_at(r, &["id"]);
            event.plan = str_at(r, &["plan_id"]);
            event.status = str_at(r, &["status"]).map(|s| s.to_ascii_lowercase());
            let amount = if event.kind == EventKind::PaymentFailed {
                at(r, &["billing_info", "last_failed_payment", "amount"])
            } else if event.kind == EventKind::Purchase {
                at(r, &["billing_info", "last_payment", "amount"])
            } else {
                None
            };
            if let Some(amount) = amount {
                set_amount(&mut event, amount, "value", "currency_code");
            }
        }
        "PAYMENT.SALE.COMPLETED" => {
            event.kind = EventKind::Renewal;
            event.subscription = str_at(r, &["billing_agreement_id"]);
            event.payment = str_at(r, &["id"]);
            if let Some(amount) = at(r, &["amount"]) {
                set_amount(&mut event, amount, "total", "currency");
            }
        }
        "PAYMENT.CAPTURE.COMPLETED" => {
            event.kind = EventKind::Purchase;
            if let Some(amount) = at(r, &["amount"]) {
                set_amount(&mut event, amount, "value", "currency_code");
            }
        }
        "PAYMENT.SALE.REFUNDED" | "PAYMENT.CAPTURE.REFUNDED" => {
            event.kind = EventKind::Refund;
            event.refund_id = str_at(r, &["id"]);
            event.subscription = str_at(r, &["billing_agreement_id"]);
            // v1 names the sale; v2 links the capture as `up`.
            event.payment = str_at(r, &["sale_id"]).or_else(|| refunded_capture(r));
            if let Some(amount) = at(r, &["amount"]) {
                // v1 refunds carry `total`/`currency`, v2 `value`/`currency_code`.
                if amount.get("total").is_some() {
                    set_amount(&mut event, amount, "total", "currency");
                } else {
                    set_amount(&mut event, amount, "value", "currency_code");
                }
            }
        }
        _ => {}
    }
    event.account = str_at(r, &["custom_id"]).or_else(|| str_at(r, &["custom"])).or(customer);
    event
}

/// The capture a v2 refund refunds: the last path segment of its `up` link.
fn refunded_capture(refund: &Value) -> Option<String> {
    refund
        .get("links")?
        .as_array()?
        .iter()
        .find(|link| link.get("rel").and_then(Value::as_str) == Some("up"))?
        .get("href")?
        .as_str()?
        .rsplit('/')
        .next()
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
}

fn set_amount(event: &mut DomainEvent, amount: &Value, value_key: &str, currency_key: &str) {
    let currency = str_at(amount, &[currency_key]);
    let value = str_at(amount, &[value_key]);
    if let (Some(currency), Some(value)) = (currency, value) {
        event.amount_minor = minor_units(&value, &currency);
        event.currency = Some(currency.to_ascii_uppercase());
    }
}

/// Currencies PayPal takes without decimals (HUF and TWD have minor units
/// in ISO 4217, but not at PayPal).
const ZERO_DECIMAL: &[&str] = &["JPY", "HUF", "TWD"];

/// A PayPal decimal string (`"9.99"`, `"1000"`) in the currency's minor
/// units, exactly.
pub fn minor_units(value: &str, currency: &str) -> Option<i64> {
    let exponent = if ZERO_DECIMAL.contains(&currency.to_ascii_uppercase().as_str()) { 0 } else { 2 };
    crate::providers::money::decimal_to_minor(value, exponent)
}

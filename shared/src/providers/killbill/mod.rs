//! Kill Bill: push notifications carry no signature, no timestamp and no
//! event id. The route is protected by a secret token that is the last
//! segment of the registered callback URL (`/webhooks/killbill/{token}`),
//! compared in constant time and never logged (API Gateway's access log
//! records the route key, not the path). A notification is a hint: its
//! objects are to be read back from Kill Bill's API before value is given.
//!
//! The key is derived from everything the notification says: event type,
//! object type and id, and a digest of the account id and `metaData`, which
//! tells apart two payments on one invoice. Kill Bill retries a failed
//! delivery with the same body, so the same key.

pub mod api;
mod integration;
pub mod registrar;
pub mod sample_api;

pub use api::{KillbillApi, KillbillCredentials};
pub use integration::{API_CREDENTIALS, API_URL, Killbill};
pub use registrar::KillbillRegistrar;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::Choice;
use time::OffsetDateTime;

use super::json::{at, str_at, time_at};
use super::money::minor_units;
use super::{Inbound, Rejection, SampleIds, Samples, VerifiedEvent, Verifier, derived_event_id};
use crate::event::{DomainEvent, EventKind, Provider};
use crate::secret::SecretSet;

#[derive(Debug, Clone)]
pub struct KillbillVerifier {
    tokens: SecretSet,
}

impl KillbillVerifier {
    pub fn new(tokens: SecretSet) -> Self {
        Self { tokens }
    }
}

#[async_trait]
impl Verifier for KillbillVerifier {
    fn provider(&self) -> Provider {
        Provider::Killbill
    }

    async fn verify(&self, inbound: &Inbound<'_>, now: OffsetDateTime) -> Result<VerifiedEvent, Rejection> {
        verify_token(inbound.path_token, &self.tokens)?;
        parse_event(inbound.body, now)
    }
}

/// The token must be in the path (not a header or the query string, which
/// end up in more logs) and equal an active token, in constant time.
pub fn verify_token(token: Option<&str>, tokens: &SecretSet) -> Result<(), Rejection> {
    let token = token.ok_or(Rejection::MissingToken)?;
    let mut matched = Choice::from(0);
    for active in tokens.iter() {
        matched |= Choice::from(u8::from(active.matches(token.as_bytes())));
    }
    if bool::from(matched) { Ok(()) } else { Err(Rejection::TokenMismatch) }
}

/// Kill Bill's `NotificationJson`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Notification {
    event_type: Option<String>,
    object_type: Option<String>,
    object_id: Option<String>,
    account_id: Option<String>,
    /// A string: usually serialized JSON, sometimes a plain word.
    meta_data: Option<String>,
}

pub fn parse_event(body: &[u8], received_at: OffsetDateTime) -> Result<VerifiedEvent, Rejection> {
    let invalid = |reason| Rejection::InvalidPayload { reason };
    let n: Notification = serde_json::from_slice(body).map_err(|_| invalid("not a Kill Bill notification"))?;
    let event_type = n.event_type.filter(|t| !t.is_empty()).ok_or(invalid("no eventType"))?;
    let object_type = n.object_type.unwrap_or_default();
    let object_id = n.object_id.unwrap_or_default();
    let meta_text = n.meta_data.unwrap_or_default();

    let mut hasher = Sha256::new();
    for part in [&event_type, &object_type, &object_id, n.account_id.as_deref().unwrap_or(""), &meta_text] {
        // Length-prefixed, so no two different notifications hash alike.
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    let digest = hex::encode(hasher.finalize());
    let event_id = derived_event_id(&[&event_type, &object_type, &object_id, &digest[..32]]);

    let meta: Value = serde_json::from_str(&meta_text).unwrap_or(Value::Null);
    Ok(VerifiedEvent {
        event_id,
        fingerprint: digest,
        event: normalize(event_type, &object_id, n.account_id, &meta, received_at),
    })
}

fn normalize(
    event_type: String,
    object_id: &str,
    account: Option<String>,
    meta: &Value,
    received_at: OffsetDateTime,
) -> DomainEvent {
    let action = str_at(meta, &["actionType"]);
    let invoice_payment = str_at(meta, &["invoicePaymentType"]);
    let transaction = str_at(meta, &["transactionType"]);
    let kind = match event_type.as_str() {
        "SUBSCRIPTION_CREATION" => EventKind::Purchase,
        "INVOICE_PAYMENT_SUCCESS" if invoice_payment.as_deref() == Some("ATTEMPT") => EventKind::Renewal,
        "INVOICE_PAYMENT_FAILED" => EventKind::PaymentFailed,
        // The refund is counted once, from the payment's own notification.
        "PAYMENT_SUCCESS" if transaction.as_deref() == Some("REFUND") => EventKind::Refund,
        "SUBSCRIPTION_CANCEL" if action.as_deref() == Some("EFFECTIVE") => EventKind::Cancellation,
        "SUBSCRIPTION_CANCEL" | "SUBSCRIPTION_PHASE" | "SUBSCRIPTION_CHANGE" | "SUBSCRIPTION_UNCANCEL" => {
            EventKind::SubscriptionUpdated
        }
        _ => EventKind::Other,
    };
    let object = (!object_id.is_empty()).then(|| object_id.to_owned());
    let currency = str_at(meta, &["currency"]);
    DomainEvent {
        kind,
        occurred_at: time_at(meta, &["paymentDate"])
            .or_else(|| time_at(meta, &["effectiveDate"]))
            // Subscription notifications carry no time.
            .unwrap_or(received_at),
        account: account.clone(),
        customer: account,
        subscription: if event_type.starts_with("SUBSCRIPTION_") { object.clone() } else { None },
        plan: None,
        period: None,
        amount_minor: at(meta, &["amount"]).and_then(|a| minor_units(a, currency.as_deref())),
        currency,
        refund_id: if kind == EventKind::Refund { str_at(meta, &["paymentTransactionId"]) } else { None },
        // A renewal's payment is in its metadata; a refund is about it.
        payment: match kind {
            EventKind::Renewal => str_at(meta, &["paymentId"]),
            EventKind::Refund => object.clone(),
            _ => None,
        },
        payment_alias: None,
        status: None,
        object,
        prorations: Vec::new(),
        period_share: None,
        event_type,
    }
}

pub const SAMPLES: Samples = Samples(&[
    ("SUBSCRIPTION_CREATION", include_str!("samples/SUBSCRIPTION_CREATION.json")),
    ("INVOICE_PAYMENT_SUCCESS", include_str!("samples/INVOICE_PAYMENT_SUCCESS.json")),
    ("INVOICE_PAYMENT_SUCCESS.upgrade", include_str!("samples/INVOICE_PAYMENT_SUCCESS.upgrade.json")),
    ("INVOICE_PAYMENT_FAILED", include_str!("samples/INVOICE_PAYMENT_FAILED.json")),
    ("PAYMENT_SUCCESS.refund", include_str!("samples/PAYMENT_SUCCESS.refund.json")),
    ("SUBSCRIPTION_CHANGE", include_str!("samples/SUBSCRIPTION_CHANGE.json")),
    ("SUBSCRIPTION_CANCEL", include_str!("samples/SUBSCRIPTION_CANCEL.json")),
    ("TENANT_CONFIG_CHANGE", include_str!("samples/TENANT_CONFIG_CHANGE.json")),
]);

/// UUIDs, as Kill Bill's ids are.
pub fn sample_ids() -> SampleIds {
    let uuid = || uuid::Uuid::new_v4().to_string();
    SampleIds {
        event_id: uuid(),
        customer_id: uuid(),
        subscription_id: uuid(),
        payment_id: uuid(),
        payment_alias_id: uuid(),
        refund_id: uuid(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_764_000_000).unwrap()
    }

    fn tokens() -> SecretSet {
        SecretSet::from_comma_separated("kb-token-test-only-0123456789abcdef").unwrap()
    }

    #[test]
    fn the_token_must_be_present_and_exact() {
        assert_eq!(verify_token(Some("kb-token-test-only-0123456789abcdef"), &tokens()), Ok(()));
        assert_eq!(verify_token(None, &tokens()), Err(Rejection::MissingToken));
        for wrong in [
            "kb-token-test-only-0123456789abcdeg",
            "kb-token-test-only-0123456789abcde",
            "kb-token-test-only-0123456789abcdef0",
            "KB-TOKEN-TEST-ONLY-0123456789ABCDEF",
            "",
        ] {
            assert_eq!(verify_token(Some(wrong), &tokens()), Err(Rejection::TokenMismatch), "{wrong:?}");
        }
    }

    #[test]
    fn either_token_passes_while_the_callback_is_being_moved() {
        let both = SecretSet::from_comma_separated("kb-token-old,kb-token-new").unwrap();
        assert_eq!(verify_token(Some("kb-token-old"), &both), Ok(()));
        assert_eq!(verify_token(Some("kb-token-new"), &both), Ok(()));
    }

    #[test]
    fn the_key_is_stable_and_tells_two_payments_on_one_invoice_apart() {
        let ids = sample_ids();
        let body = SAMPLES.event("INVOICE_PAYMENT_SUCCESS", &ids).unwrap();
        let first = parse_event(body.as_bytes(), now()).unwrap();
        assert_eq!(parse_event(body.as_bytes(), now() + time::Duration::hours(2)).unwrap(), first);
        assert!(first.event_id.as_str().starts_with(&format!("INVOICE_PAYMENT_SUCCESS:INVOICE:{}:", ids.event_id)));
        let second_payment = body.replace(&ids.payment_id, "0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e");
        assert_ne!(parse_event(second_payment.as_bytes(), now()).unwrap().event_id, first.event_id);
    }

    #[test]
    fn every_sample_parses_into_the_kind_it_illustrates() {
        let ids = sample_ids();
        for (sample, kind) in [
            ("SUBSCRIPTION_CREATION", EventKind::Purchase),
            ("INVOICE_PAYMENT_SUCCESS", EventKind::Renewal),
            ("INVOICE_PAYMENT_FAILED", EventKind::PaymentFailed),
            ("PAYMENT_SUCCESS.refund", EventKind::Refund),
            ("SUBSCRIPTION_CANCEL", EventKind::Cancellation),
            ("TENANT_CONFIG_CHANGE", EventKind::Other),
        ] {
            let event = parse_event(SAMPLES.event(sample, &ids).unwrap().as_bytes(), now()).unwrap().event;
            assert_eq!(event.kind, kind, "{sample}");
        }
        let renewal =
            parse_event(SAMPLES.event("INVOICE_PAYMENT_SUCCESS", &ids).unwrap().as_bytes(), now()).unwrap().event;
        assert_eq!((renewal.amount_minor, renewal.currency.as_deref()), (Some(1999), Some("EUR")));
        assert_eq!(renewal.account.as_deref(), Some(ids.customer_id.as_str()));
        let refund =
            parse_event(SAMPLES.event("PAYMENT_SUCCESS.refund", &ids).unwrap().as_bytes(), now()).unwrap().event;
        assert_eq!((refund.refund_id.as_deref(), refund.amount_minor), (Some(ids.event_id.as_str()), Some(500)));
        let created =
            parse_event(SAMPLES.event("SUBSCRIPTION_CREATION", &ids).unwrap().as_bytes(), now()).unwrap().event;
        assert_eq!(created.subscription.as_deref(), Some(ids.subscription_id.as_str()));
        assert_eq!(created.occurred_at, now(), "no time in the notification: when it was received");
    }

    #[test]
    fn a_body_without_an_event_type_is_refused() {
        for body in [&b"{}"[..], b"[]", br#"{"eventType":""}"#, br#"{"eventType":5}"#, b"x"] {
            assert!(matches!(parse_event(body, now()), Err(Rejection::InvalidPayload { .. })), "{body:?}");
        }
    }
}

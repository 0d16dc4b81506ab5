//! Flutterwave: the `verif-hash` header carries the secret hash configured
//! on the dashboard, compared in constant time; the v4 `flutterwave-signature`
//! header is accepted either as that hash or as base64(HMAC-SHA256(secret
//! hash, raw body)), because Flutterwave's own pages describe the first and
//! integrations in the field observe the second. Neither binds a time, and
//! `verif-hash` binds not even the body: Flutterwave advises confirming a
//! charge through its verify-transaction API before giving value.
//!
//! v3 events carry no event id: the key is `{event}:{data.id}:{data.status}`.
//! `data.id` is Flutterwave's transaction id, fixed for the transaction, and
//! a charge that changes state (pending → successful) changes the status, so
//! a retry maps to the same key and a new state to a new one. v4 events have
//! their own `id` (`wbk_…`).

mod integration;
pub mod transactions;

pub use integration::{API_URL, Flutterwave, SECRET_KEY, VERIFY_TRANSACTIONS};
pub use transactions::FlutterwaveTransactions;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use serde_json::value::RawValue;
use sha2::Sha256;
use subtle::{Choice, ConstantTimeEq};
use time::OffsetDateTime;

use super::json::{at, str_at, text_at, time_at};
use super::money::minor_units;
use super::{Inbound, Rejection, SampleIds, Samples, VerifiedEvent, Verifier, derived_event_id};
use crate::event::{DomainEvent, EventId, EventKind, Provider};
use crate::secret::{Secret, SecretSet};

/// v3: the secret hash itself.
pub const HASH_HEADER: &str = "verif-hash";
/// v4: the secret hash, or a base64 HMAC-SHA256 of the body keyed with it.
pub const SIGNATURE_HEADER: &str = "flutterwave-signature";

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, Clone)]
pub struct FlutterwaveVerifier {
    secrets: SecretSet,
}

impl FlutterwaveVerifier {
    pub fn new(secrets: SecretSet) -> Self {
        Self { secrets }
    }
}

#[async_trait]
impl Verifier for FlutterwaveVerifier {
    fn provider(&self) -> Provider {
        Provider::Flutterwave
    }

    async fn verify(&self, inbound: &Inbound<'_>, now: OffsetDateTime) -> Result<VerifiedEvent, Rejection> {
        let scheme = if inbound.headers.contains_key(SIGNATURE_HEADER) {
            let header = super::single_header(inbound.headers, SIGNATURE_HEADER)?;
            verify_signature(header, inbound.body, &self.secrets)?
        } else if inbound.headers.contains_key(HASH_HEADER) {
            let header = super::single_header(inbound.headers, HASH_HEADER)?;
            verify_hash(header, &self.secrets)?
        } else {
            return Err(Rejection::MissingSignature { header: HASH_HEADER });
        };
        tracing::debug!(provider = "flutterwave", scheme = scheme.as_str(), "signature accepted");
        parse_event(inbound.body, now)
    }
}

/// Which form of Flutterwave's header matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    SecretHash,
    BodyHmac,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::SecretHash => "secret_hash",
            Scheme::BodyHmac => "body_hmac",
        }
    }
}

/// `verif-hash`: equal, in constant time, to an active secret hash.
pub fn verify_hash(header: &str, secrets: &SecretSet) -> Result<Scheme, Rejection> {
    let mut matched = Choice::from(0);
    for secret in secrets.iter() {
        matched |= Choice::from(u8::from(secret.matches(header.as_bytes())));
    }
    if bool::from(matched) { Ok(Scheme::SecretHash) } else { Err(Rejection::SignatureMismatch) }
}

/// The base64 HMAC-SHA256 form of `flutterwave-signature` for `body`.
pub fn body_signature(body: &[u8], secret: &Secret) -> String {
    let mut mac = HmacSha256::new_from_slice(secret.expose()).expect("HMAC takes any key length");
    mac.update(body);
    BASE64.encode(mac.finalize().into_bytes())
}

/// `flutterwave-signature`: the secret hash, or the body's HMAC.
pub fn verify_signature(header: &str, body: &[u8], secrets: &SecretSet) -> Result<Scheme, Rejection> {
    if verify_hash(header, secrets).is_ok() {
        return Ok(Scheme::SecretHash);
    }
    let Ok(presented) = BASE64.decode(header.trim()) else {
        return Err(Rejection::SignatureMismatch);
    };
    let mut matched = Choice::from(0);
    for secret in secrets.iter() {
        let mut mac = HmacSha256::new_from_slice(secret.expose()).expect("HMAC takes any key length");
        mac.update(body);
        matched |= mac.finalize().into_bytes().as_slice().ct_eq(&presented);
    }
    if bool::from(matched) { Ok(Scheme::BodyHmac) } else { Err(Rejection::SignatureMismatch) }
}

/// Parses a verified body of any of Flutterwave's three shapes: v3
/// (`event` + `data`), v4 (`id` + `type` + `data`) and the flat refund
/// notification (PascalCase fields, no envelope).
pub fn parse_event(body: &[u8], received_at: OffsetDateTime) -> Result<VerifiedEvent, Rejection> {
    let invalid = |reason| Rejection::InvalidPayload { reason };
    let raw: std::collections::BTreeMap<&str, &RawValue> =
        serde_json::from_slice(body).map_err(|_| invalid("not a JSON object"))?;
    let top: Value = serde_json::from_slice(body).map_err(|_| invalid("not a JSON object"))?;

    let (event_type, data_raw) = if let Some(kind) = str_at(&top, &["type"]) {
        (kind, raw.get("data").copied())
    } else if let Some(kind) = str_at(&top, &["event"]) {
        (kind, raw.get("data").copied())
    } else if top.get("AmountRefunded").is_some() {
        ("refund".to_owned(), None)
    } else {
        return Err(invalid("no event type"));
    };
    let data: Value = match data_raw {
        Some(raw) => serde_json::from_str(raw.get()).map_err(|_| invalid("no data"))?,
        None if event_type == "refund" => top.clone(),
        None => return Err(invalid("no data")),
    };
    let content = data_raw.map_or(body, |raw| raw.get().as_bytes());

    let status = text_at(&data, &["status"]).unwrap_or_default();
    let event_id = match str_at(&top, &["id"]).filter(|_| top.get("type").is_some()) {
        Some(id) => EventId::parse(&id)?,
        None => {
            let object = text_at(&data, &["id"]).ok_or(invalid("no transaction id"))?;
            derived_event_id(&[&event_type, &object, &status])
        }
    };

    let fingerprint = super::fingerprint(&event_type, content);
    // A cancellation happened when it was cancelled: its `created_at` is
    // the subscription's creation, older than the charges it ends.
    let cancelled_at = (event_type == "subscription.cancelled").then(|| time_at(&data, &["cancelled_at"])).flatten();
    let occurred_at = cancelled_at
        .or_else(|| time_at(&data, &["created_at"]))
        .or_else(|| time_at(&data, &["created_datetime"]))
        .or_else(|| time_at(&data, &["createdAt"]))
        .or_else(|| {
            at(&top, &["timestamp"])
                .and_then(Value::as_i64)
                .and_then(|ms| OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok())
        })
        .unwrap_or(received_at);
    Ok(VerifiedEvent { event_id, fingerprint, event: normalize(event_type, &status, &data, occurred_at) })
}

fn normalize(event_type: String, status: &str, d: &Value, occurred_at: OffsetDateTime) -> DomainEvent {
    let succeeded = matches!(status, "successful" | "succeeded" | "completed");
    let plan = text_at(d, &["payment_plan"]);
    let kind = match event_type.as_str() {
        "charge.completed" if succeeded && plan.is_some() => EventKind::Renewal,
        // A charge for no plan is a one-off payment: recorded, and worth
        // credits only where its plan is a credit pack (it names none).
        "charge.completed" if succeeded => EventKind::Payment,
        "charge.completed" if status == "failed" => EventKind::PaymentFailed,
        "subscription.cancelled" => EventKind::Cancellation,
        "refund" if succeeded => EventKind::Refund,
        _ => EventKind::Other,
    };
    let customer = text_at(d, &["customer", "id"]).or_else(|| text_at(d, &["CustomerId"]));
    let currency = str_at(d, &["currency"]).map(|c| c.to_ascii_uppercase());
    let amount = at(d, &["amount"]).or_else(|| at(d, &["AmountRefunded"]));
    DomainEvent {
        kind,
        occurred_at,
        account: str_at(d, &["meta", "account_id"]).or_else(|| customer.clone()),
        customer,
        // Flutterwave's charges never name the subscription they pay for,
        // but a customer holds one subscription per payment plan: the plan
        // names it, for its charges and its cancellation alike, so a second
        // plan's subscription outlives the first one's cancellation. A
        // renewal's grant is known by its transaction.
        subscription: match event_type.as_str() {
            "charge.completed" => plan.as_deref().map(plan_subscription),
            "subscription.cancelled" => text_at(d, &["plan", "id"]).as_deref().map(plan_subscription),
            _ => None,
        },
        plan,
        period: None,
        amount_minor: amount.and_then(|a| minor_units(a, currency.as_deref())),
        currency,
        refund_id: if kind == EventKind::Refund { text_at(d, &["id"]) } else { None },
        // The transaction id: a renewal's own, and the one a refund refunds.
        payment: match kind {
            EventKind::Renewal | EventKind::Payment => text_at(d, &["id"]),
            EventKind::Refund => text_at(d, &["TransactionId"]),
            _ => None,
        },
        payment_alias: None,
        // A plan's subscriber is active from a paid plan charge (the first
        // one included): no other event says the subscription started.
        status: (kind == EventKind::Renewal).then(|| "active".to_owned()),
        object: text_at(d, &["id"]),
        prorations: Vec::new(),
        period_share: None,
        event_type,
    }
}

/// The subscription a customer holds to payment plan `plan`.
fn plan_subscription(plan: &str) -> String {
    format!("plan-{plan}")
}

pub const SAMPLES: Samples = Samples(&[
    ("charge.completed", include_str!("samples/charge.completed.json")),
    ("charge.completed.renewal", include_str!("samples/charge.completed.renewal.json")),
    ("charge.completed.failed", include_str!("samples/charge.completed.failed.json")),
    // Flutterwave changes no plan: the customer subscribes to Team (its
    // first paid charge) and cancels Pro.
    ("charge.completed.upgrade", include_str!("samples/charge.completed.upgrade.json")),
    ("subscription.cancelled", include_str!("samples/subscription.cancelled.json")),
    ("refund.completed", include_str!("samples/refund.completed.json")),
    ("v4.charge.completed", include_str!("samples/v4.charge.completed.json")),
]);

/// Numeric ids, as Flutterwave's v3 transactions, customers and plans have.
pub fn sample_ids() -> SampleIds {
    let number = || (uuid::Uuid::new_v4().as_u128() % 9_000_000_000 + 1_000_000_000).to_string();
    SampleIds {
        event_id: number(),
        customer_id: number(),
        subscription_id: number(),
        payment_id: number(),
        payment_alias_id: number(),
        refund_id: number(),
    }
}

/// The header a sample is sent with: the v4 HMAC form for v4 bodies (they
/// carry a `type`), the v3 secret hash otherwise.
pub fn sample_header(body: &[u8], secret: &Secret) -> (&'static str, String) {
    let v4 = serde_json::from_slice::<Value>(body).is_ok_and(|v| v.get("type").is_some());
    if v4 {
        (SIGNATURE_HEADER, body_signature(body, secret))
    } else {
        (HASH_HEADER, String::from_utf8_lossy(secret.expose()).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets(list: &str) -> SecretSet {
        SecretSet::from_comma_separated(list).unwrap()
    }

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_764_000_000).unwrap()
    }

    #[test]
    fn the_secret_hash_header_must_equal_an_active_hash() {
        assert_eq!(verify_hash("my-flw-secret-hash", &secrets("my-flw-secret-hash")), Ok(Scheme::SecretHash));
        assert_eq!(verify_hash("my-flw-secret-hash", &secrets("old-hash,my-flw-secret-hash")), Ok(Scheme::SecretHash));
        for wrong in ["my-flw-secret-has", "my-flw-secret-hashh", "MY-FLW-SECRET-HASH", ""] {
            assert_eq!(
                verify_hash(wrong, &secrets("my-flw-secret-hash")),
                Err(Rejection::SignatureMismatch),
                "{wrong:?}"
            );
        }
    }

    #[test]
    fn the_v4_hmac_form_matches_an_independently_computed_vector() {
        // python3 -c 'import hmac,hashlib,base64;print(base64.b64encode(hmac.new(b"my-flw-secret-hash",b"{\"type\":\"charge.completed\"}",hashlib.sha256).digest()).decode())'
        let body = br#"{"type":"charge.completed"}"#;
        let expected = "JK2yOjLCBjLtL+eTvkFxFSzknnAMJF3W5RRyyD5Y0D8=";
        assert_eq!(body_signature(body, &Secret::new("my-flw-secret-hash")), expected);
        assert_eq!(verify_signature(expected, body, &secrets("my-flw-secret-hash")), Ok(Scheme::BodyHmac));
        assert_eq!(
            verify_signature("my-flw-secret-hash", body, &secrets("my-flw-secret-hash")),
            Ok(Scheme::SecretHash)
        );
        assert_eq!(
            verify_signature(expected, b"{}", &secrets("my-flw-secret-hash")),
            Err(Rejection::SignatureMismatch)
        );
        assert_eq!(
            verify_signature("not base64!", body, &secrets("my-flw-secret-hash")),
            Err(Rejection::SignatureMismatch)
        );
    }

    #[test]
    fn a_v3_key_is_stable_across_retries_and_new_for_a_new_status() {
        let ids = sample_ids();
        let body = SAMPLES.event("charge.completed", &ids).unwrap();
        let first = parse_event(body.as_bytes(), now()).unwrap();
        assert_eq!(first.event_id.as_str(), format!("charge.completed:{}:successful", ids.event_id));
        assert_eq!(parse_event(body.as_bytes(), now() + time::Duration::hours(1)).unwrap(), first);
        let failed = body.replace("\"status\": \"successful\"", "\"status\": \"failed\"");
        assert_ne!(parse_event(failed.as_bytes(), now()).unwrap().event_id, first.event_id);
    }

    /// A cancellation is ordered by when it was cancelled, not by the
    /// subscription's creation, which every charge after it would outdate.
    #[test]
    fn a_cancellation_happened_when_it_was_cancelled() {
        let ids = sample_ids();
        let body = SAMPLES.event("subscription.cancelled", &ids).unwrap();
        let event = parse_event(body.as_bytes(), now()).unwrap().event;
        let at = |text: &str| OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).unwrap();
        assert_eq!(event.occurred_at, at("2026-02-01T09:30:00Z"));
        let renewal = SAMPLES.event("charge.completed.renewal", &ids).unwrap();
        let renewal = parse_event(renewal.as_bytes(), now()).unwrap().event;
        assert!(event.occurred_at > renewal.occurred_at, "the cancellation outdates the charge before it");
        let without = body.replace("\"cancelled_at\": \"2026-02-01T09:30:00.000Z\",\n", "");
        assert_eq!(parse_event(without.as_bytes(), now()).unwrap().event.occurred_at, at("2025-11-24T16:00:04Z"));
    }

    /// A customer holds one subscription per payment plan: a plan's charges
    /// and its cancellation name the same one, another plan's another, and
    /// a one-off charge none.
    #[test]
    fn each_payment_plan_is_a_subscription_of_its_own() {
        let ids = sample_ids();
        let event = |sample: &str| parse_event(SAMPLES.event(sample, &ids).unwrap().as_bytes(), now()).unwrap().event;
        let pro = event("charge.completed.renewal");
        assert_eq!(pro.subscription.as_deref(), Some("plan-3807"));
        assert_eq!(event("subscription.cancelled").subscription, pro.subscription);
        let team = event("charge.completed.upgrade");
        assert_eq!((team.subscription.as_deref(), team.plan.as_deref()), (Some("plan-3808"), Some("3808")));
        assert_ne!(team.payment, pro.payment);
        let one_off = event("charge.completed");
        assert_eq!((one_off.kind, one_off.subscription), (EventKind::Payment, None));
        assert_eq!(one_off.payment.as_deref(), Some(ids.event_id.as_str()), "the transaction");
    }

    #[test]
    fn every_sample_parses_into_the_kind_it_illustrates() {
        let ids = sample_ids();
        for (sample, kind) in [
            ("charge.completed", EventKind::Payment),
            ("charge.completed.renewal", EventKind::Renewal),
            ("charge.completed.upgrade", EventKind::Renewal),
            ("charge.completed.failed", EventKind::PaymentFailed),
            ("subscription.cancelled", EventKind::Cancellation),
            ("refund.completed", EventKind::Refund),
            ("v4.charge.completed", EventKind::Payment),
        ] {
            let body = SAMPLES.event(sample, &ids).unwrap();
            let event = parse_event(body.as_bytes(), now()).unwrap().event;
            assert_eq!(event.kind, kind, "{sample}");
            assert!(event.customer.as_deref().unwrap_or_default().contains(&ids.customer_id), "{sample}");
        }
        let v4 = parse_event(SAMPLES.event("v4.charge.completed", &ids).unwrap().as_bytes(), now()).unwrap();
        assert_eq!(v4.event_id.as_str(), format!("wbk_test_{}", ids.event_id));
        assert_eq!((v4.event.amount_minor, v4.event.currency.as_deref()), (Some(25_050), Some("USD")));
        let renewal =
            parse_event(SAMPLES.event("charge.completed.renewal", &ids).unwrap().as_bytes(), now()).unwrap().event;
        assert_eq!(renewal.amount_minor, Some(2_500_000), "25000 NGN in kobo");
        assert_eq!(renewal.account.as_deref(), Some("acct-demo-001"));
        let refund = parse_event(SAMPLES.event("refund.completed", &ids).unwrap().as_bytes(), now()).unwrap().event;
        assert_eq!((refund.refund_id.as_deref(), refund.amount_minor), (Some(ids.event_id.as_str()), Some(500_000)));
    }

    #[test]
    fn bodies_that_are_not_flutterwave_events_are_refused() {
        for body in [
            &b"[]"[..],
            b"{}",
            br#"{"event":"charge.completed"}"#,
            br#"{"event":"charge.completed","data":{}}"#,
            b"nope",
        ] {
            assert!(parse_event(body, now()).is_err(), "{body:?}");
        }
    }
}

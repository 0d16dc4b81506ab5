//! Paystack: `x-paystack-signature` is the lowercase hex HMAC-SHA512 of the
//! raw body, keyed with the account's secret API key; optionally, only
//! Paystack's published source addresses are accepted. Paystack sends no
//! event id, so one is derived from what makes an occurrence unique.
//!
//! Paystack's own documentation snippet signs `JSON.stringify(req.body)`;
//! that re-serialization is exactly what breaks on key order, spacing or
//! unicode escapes, so the raw bytes are used here.

mod integration;

pub use integration::{Paystack, SOURCE_IPS};

use std::net::IpAddr;

use async_trait::async_trait;
use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256, Sha512};
use subtle::{Choice, ConstantTimeEq};
use time::OffsetDateTime;

use super::json::{at, str_at, text_at, time_at};
use super::{Inbound, Rejection, SampleIds, Samples, VerifiedEvent, Verifier, derived_event_id};
use crate::event::{DomainEvent, EventKind, Period, Provider};
use crate::secret::{Secret, SecretSet};

pub const SIGNATURE_HEADER: &str = "x-paystack-signature";

/// The addresses Paystack documents as its webhook sources (test and live).
pub const PUBLISHED_SOURCE_IPS: [&str; 3] = ["52.31.139.75", "52.49.173.169", "52.214.14.220"];

type HmacSha512 = Hmac<Sha512>;

#[derive(Debug, Clone)]
pub struct PaystackVerifier {
    secrets: SecretSet,
    /// When set, requests from any other address are refused.
    allowed_sources: Option<Vec<IpAddr>>,
}

impl PaystackVerifier {
    pub fn new(secrets: SecretSet, allowed_sources: Option<Vec<IpAddr>>) -> Self {
        Self { secrets, allowed_sources }
    }
}

#[async_trait]
impl Verifier for PaystackVerifier {
    fn provider(&self) -> Provider {
        Provider::Paystack
    }

    async fn verify(&self, inbound: &Inbound<'_>, now: OffsetDateTime) -> Result<VerifiedEvent, Rejection> {
        if let Some(allowed) = &self.allowed_sources
            && !inbound.source_ip.is_some_and(|ip| allowed.contains(&ip))
        {
            return Err(Rejection::SourceNotAllowed);
        }
        let header = super::single_header(inbound.headers, SIGNATURE_HEADER)?;
        verify_signature(header, inbound.body, &self.secrets)?;
        parse_event(inbound.body, now)
    }
}

fn mac(secret: &Secret, body: &[u8]) -> HmacSha512 {
    let mut mac = HmacSha512::new_from_slice(secret.expose()).expect("HMAC takes any key length");
    mac.update(body);
    mac
}

/// The `x-paystack-signature` value for `body`.
pub fn signature(body: &[u8], secret: &Secret) -> String {
    hex::encode(mac(secret, body).finalize().into_bytes())
}

/// Checks the header against every active key in constant time.
pub fn verify_signature(header: &str, body: &[u8], secrets: &SecretSet) -> Result<(), Rejection> {
    let presented = hex::decode(header.trim())
        .map_err(|_| Rejection::MalformedSignature { header: SIGNATURE_HEADER, reason: "not hexadecimal" })?;
    let mut matched = Choice::from(0);
    for secret in secrets.iter() {
        matched |= mac(secret, body).finalize().into_bytes().as_slice().ct_eq(&presented);
    }
    if bool::from(matched) { Ok(()) } else { Err(Rejection::SignatureMismatch) }
}

#[derive(Deserialize)]
struct Envelope<'a> {
    event: Option<String>,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
}

/// Parses a verified body. The derived id is `{event}:{object}:{status}`,
/// where the object is what the event is about: the charge's reference, the
/// invoice code, the subscription code or the refund reference. A retry of
/// the same delivery carries the same three, and a real change (an invoice
/// going from pending to success) changes the status, so it is a new event.
/// Events about no single object fall back to a digest of their data.
pub fn parse_event(body: &[u8], received_at: OffsetDateTime) -> Result<VerifiedEvent, Rejection> {
    let envelope: Envelope<'_> = serde_json::from_slice(body)
        .map_err(|_| Rejection::InvalidPayload { reason: "not a JSON object with Paystack's event fields" })?;
    let event_type =
        envelope.event.filter(|e| !e.is_empty()).ok_or(Rejection::InvalidPayload { reason: "no event type" })?;
    let data_raw = envelope.data.ok_or(Rejection::InvalidPayload { reason: "no data" })?;
    let data: Value =
        serde_json::from_str(data_raw.get()).map_err(|_| Rejection::InvalidPayload { reason: "no data" })?;

    let data_digest = hex::encode(Sha256::digest(data_raw.get().as_bytes()));
    let object = object_id(&event_type, &data).unwrap_or_else(|| format!("sha256:{}", &data_digest[..32]));
    let status = text_at(&data, &["status"]).unwrap_or_default();
    let event_id = derived_event_id(&[&event_type, &object, &status]);

    let fingerprint = super::fingerprint(&event_type, data_raw.get().as_bytes());
    Ok(VerifiedEvent {
        event_id,
        fingerprint,
        event: DomainEvent { object: object_id(&event_type, &data), ..normalize(event_type, &data, received_at) },
    })
}

fn object_id(event_type: &str, data: &Value) -> Option<String> {
    let family = event_type.split('.').next().unwrap_or_default();
    match family {
        "invoice" => text_at(data, &["invoice_code"]),
        "subscription" => text_at(data, &["subscription_code"]),
        "refund" => text_at(data, &["refund_reference"]),
        _ => None,
    }
    .or_else(|| text_at(data, &["reference"]))
    .or_else(|| text_at(data, &["id"]))
}

/// Maps a Paystack event onto the domain.
///
/// A plan's charge is a paid period: Paystack sends no invoice for a
/// subscription's first payment (the customer pays it when subscribing, and
/// `subscription.create` follows), so the charge is the only proof of it.
/// A renewal is told twice, by its charge and by the paid `invoice.update`
/// naming the same transaction: both grant the payment's period, and the
/// payment's record makes the second a duplicate, whichever comes first.
/// A charge without a plan is a one-off payment: recorded, no credits.
fn normalize(event_type: String, d: &Value, received_at: OffsetDateTime) -> DomainEvent {
    let customer = str_at(d, &["customer", "customer_code"]);
    let has_plan = str_at(d, &["plan", "plan_code"]).is_some();
    let charge = event_type == "charge.success";
    // A subscription's events carry the customer's metadata, never the
    // first charge's: a plan's charge takes its account where they do, so a
    // subscription's grants and states land on one account.
    let explicit_account = match charge && has_plan {
        true => None,
        false => str_at(d, &["metadata", "account_id"]),
    }
    .or_else(|| str_at(d, &["customer", "metadata", "account_id"]));
    let paid = at(d, &["paid"]).and_then(Value::as_bool) == Some(true);
    let kind = match event_type.as_str() {
        "charge.success" if has_plan => EventKind::Renewal,
        "charge.success" => EventKind::Payment,
        "subscription.create" => EventKind::Purchase,
        "invoice.create" | "invoice.update" if paid => EventKind::Renewal,
        "invoice.payment_failed" => EventKind::PaymentFailed,
        // Cancelled to end at the period's end: access stays until
        // `subscription.disable` ends it.
        "subscription.not_renew" => EventKind::SubscriptionUpdated,
        "subscription.disable" => EventKind::Cancellation,
        "refund.processed" => EventKind::Refund,
        _ => EventKind::Other,
    };
    let period = match (time_at(d, &["period_start"]), time_at(d, &["period_end"])) {
        (Some(start), Some(end)) => Some(Period { start, end }),
        _ => None,
    };
    let subscription = str_at(d, &["subscription", "subscription_code"]).or_else(|| str_at(d, &["subscription_code"]));
    DomainEvent {
        kind,
        occurred_at: time_at(d, &["paid_at"])
            .or_else(|| time_at(d, &["created_at"]))
            .or_else(|| time_at(d, &["createdAt"]))
            // Refund events carry no time: when payhooks received it.
            .unwrap_or(received_at),
        account: explicit_account.or_else(|| customer.clone()),
        customer,
        subscription,
        plan: str_at(d, &["plan", "plan_code"]),
        period,
        // Subunits (kobo, pesewas); refund samples send the amount as a string.
        amount_minor: text_at(d, &["amount"]).and_then(|a| a.parse().ok()),
        currency: str_at(d, &["currency"])
            .or_else(|| str_at(d, &["transaction", "currency"]))
            .or_else(|| str_at(d, &["plan", "currency"])),
        refund_id: if kind == EventKind::Refund { str_at(d, &["refund_reference"]) } else { None },
        // The transaction's reference: a paid invoice's, and the refunded one.
        payment: match kind {
            _ if charge => str_at(d, &["reference"]),
            EventKind::Renewal => str_at(d, &["transaction", "reference"]),
            EventKind::Refund => str_at(d, &["transaction_reference"]),
            _ => None,
        },
        payment_alias: None,
        status: if event_type.starts_with("subscription.") { str_at(d, &["status"]) } else { None },
        object: None,
        prorations: Vec::new(),
        period_share: None,
        event_type,
    }
}

pub const SAMPLES: Samples = Samples(&[
    ("charge.success", include_str!("samples/charge.success.json")),
    ("charge.success.subscription", include_str!("samples/charge.success.subscription.json")),
    ("charge.success.renewal", include_str!("samples/charge.success.renewal.json")),
    ("charge.success.upgrade", include_str!("samples/charge.success.upgrade.json")),
    ("subscription.create", include_str!("samples/subscription.create.json")),
    ("subscription.create.upgrade", include_str!("samples/subscription.create.upgrade.json")),
    ("invoice.update", include_str!("samples/invoice.update.json")),
    ("invoice.payment_failed", include_str!("samples/invoice.payment_failed.json")),
    ("refund.processed", include_str!("samples/refund.processed.json")),
    ("subscription.not_renew", include_str!("samples/subscription.not_renew.json")),
    ("subscription.disable", include_str!("samples/subscription.disable.json")),
]);

/// Ids in Paystack's shapes; the event id stands in for the reference or
/// code that Paystack's key is derived from.
pub fn sample_ids() -> SampleIds {
    let token = || uuid::Uuid::new_v4().simple().to_string()[..15].to_owned();
    SampleIds {
        event_id: format!("T_test{}", token()),
        customer_id: format!("CUS_test{}", token()),
        subscription_id: format!("SUB_test{}", token()),
        payment_id: format!("T_test{}", token()),
        ..SampleIds::random("evt")
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

    /// Computed independently of this code:
    /// `python3 -c 'import hmac,hashlib;print(hmac.new(b"sk_test_kat_only",b"{\"event\":\"charge.success\",\"data\":{\"reference\":\"ref-1\",\"status\":\"success\"}}",hashlib.sha512).hexdigest())'`
    const KAT_BODY: &[u8] = br#"{"event":"charge.success","data":{"reference":"ref-1","status":"success"}}"#;
    const KAT_SIGNATURE: &str = "bc16466ccd1a99f26e5e3a033b73ac5d08cc0ad82186612ca627a8ef7afaad3c7fb13d060b397d686be1f5392a6f6bde26f0ad8a6253716a26a6232c236ed9aa";

    #[test]
    fn the_signature_is_hex_hmac_sha512_of_the_raw_body() {
        let ours = signature(KAT_BODY, &Secret::new("sk_test_kat_only"));
        assert_eq!(ours.len(), 128);
        assert_eq!(ours, KAT_SIGNATURE);
        assert_eq!(verify_signature(KAT_SIGNATURE, KAT_BODY, &secrets("sk_test_kat_only")), Ok(()));
    }

    #[test]
    fn a_changed_byte_or_another_key_is_refused() {
        let mut changed = KAT_BODY.to_vec();
        changed[10] ^= 1;
        assert_eq!(
            verify_signature(KAT_SIGNATURE, &changed, &secrets("sk_test_kat_only")),
            Err(Rejection::SignatureMismatch)
        );
        assert_eq!(
            verify_signature(KAT_SIGNATURE, KAT_BODY, &secrets("sk_test_other")),
            Err(Rejection::SignatureMismatch)
        );
        assert_eq!(
            verify_signature(&KAT_SIGNATURE[..64], KAT_BODY, &secrets("sk_test_kat_only")),
            Err(Rejection::SignatureMismatch),
            "a truncated signature"
        );
        assert!(matches!(
            verify_signature("not-hex", KAT_BODY, &secrets("sk_test_kat_only")),
            Err(Rejection::MalformedSignature { .. })
        ));
    }

    #[test]
    fn either_key_verifies_while_the_key_is_rotated() {
        let both = secrets("sk_test_old_key,sk_test_kat_only");
        assert_eq!(verify_signature(KAT_SIGNATURE, KAT_BODY, &both), Ok(()));
        assert_eq!(verify_signature(&KAT_SIGNATURE.to_uppercase(), KAT_BODY, &both), Ok(()));
    }

    #[tokio::test]
    async fn only_published_addresses_pass_when_the_allowlist_is_on() {
        let allowed: Vec<IpAddr> = PUBLISHED_SOURCE_IPS.iter().map(|ip| ip.parse().unwrap()).collect();
        let verifier = PaystackVerifier::new(secrets("sk_test_kat_only"), Some(allowed));
        let mut headers = http::HeaderMap::new();
        headers.insert(SIGNATURE_HEADER, KAT_SIGNATURE.parse().unwrap());
        let mut inbound = Inbound::new(&headers, KAT_BODY);
        assert_eq!(verifier.verify(&inbound, now()).await.unwrap_err(), Rejection::SourceNotAllowed);
        inbound.source_ip = Some("192.0.2.1".parse().unwrap());
        assert_eq!(verifier.verify(&inbound, now()).await.unwrap_err(), Rejection::SourceNotAllowed);
        inbound.source_ip = Some("52.49.173.169".parse().unwrap());
        assert!(verifier.verify(&inbound, now()).await.is_ok());
    }

    #[test]
    fn the_derived_id_is_stable_across_retries_and_changes_with_the_status() {
        let ids = sample_ids();
        let body = SAMPLES.event("invoice.update", &ids).unwrap();
        let first = parse_event(body.as_bytes(), now()).unwrap();
        let again = parse_event(body.as_bytes(), now() + time::Duration::hours(1)).unwrap();
        assert_eq!(first.event_id, again.event_id);
        assert_eq!(first.fingerprint, again.fingerprint);
        assert_eq!(first.event_id.as_str(), format!("invoice.update:{}:success", ids.event_id));
        let pending = body
            .replace("\"status\": \"success\",\n    \"paid\": true", "\"status\": \"pending\",\n    \"paid\": false");
        assert_ne!(parse_event(pending.as_bytes(), now()).unwrap().event_id, first.event_id);
    }

    #[test]
    fn every_sample_parses_into_the_kind_it_illustrates() {
        let ids = sample_ids();
        for (event_type, kind) in [
            ("charge.success", EventKind::Payment),
            ("charge.success.subscription", EventKind::Renewal),
            ("charge.success.renewal", EventKind::Renewal),
            ("charge.success.upgrade", EventKind::Renewal),
            ("subscription.create", EventKind::Purchase),
            ("subscription.create.upgrade", EventKind::Purchase),
            ("invoice.update", EventKind::Renewal),
            ("invoice.payment_failed", EventKind::PaymentFailed),
            ("refund.processed", EventKind::Refund),
            ("subscription.not_renew", EventKind::SubscriptionUpdated),
            ("subscription.disable", EventKind::Cancellation),
        ] {
            let body = SAMPLES.event(event_type, &ids).unwrap();
            let event = parse_event(body.as_bytes(), now()).unwrap().event;
            assert_eq!(event.kind, kind, "{event_type}");
            assert_eq!(event.customer.as_deref(), Some(ids.customer_id.as_str()), "{event_type}");
        }
        let renewal = parse_event(SAMPLES.event("invoice.update", &ids).unwrap().as_bytes(), now()).unwrap().event;
        assert_eq!(renewal.subscription.as_deref(), Some(ids.subscription_id.as_str()));
        assert_eq!(renewal.account.as_deref(), Some("acct-demo-001"));
        assert_eq!((renewal.amount_minor, renewal.currency.as_deref()), (Some(500_000), Some("NGN")));
        assert!(renewal.period.is_some());
        let refund = parse_event(SAMPLES.event("refund.processed", &ids).unwrap().as_bytes(), now()).unwrap().event;
        assert_eq!(refund.amount_minor, Some(125_000), "a string amount is read");
        assert_eq!(refund.refund_id.as_deref(), Some(ids.event_id.as_str()));
        assert_eq!(refund.occurred_at, now(), "no time in the event: when it was received");
    }

    #[test]
    fn a_plan_charge_pays_for_its_plan_on_the_subscriptions_account() {
        let ids = sample_ids();
        let body = SAMPLES.event("charge.success.renewal", &ids).unwrap();
        let charge = parse_event(body.as_bytes(), now()).unwrap().event;
        assert_eq!((charge.kind, charge.plan.as_deref()), (EventKind::Renewal, Some("PLN_testpro0001")));
        assert_eq!(charge.payment.as_deref(), Some(ids.payment_id.as_str()), "the transaction its invoice names");
        assert_eq!((charge.subscription, charge.period), (None, None), "a charge names neither");
        // The first charge's own metadata is the merchant's; the
        // subscription's events carry only the customer's.
        let first = SAMPLES
            .event("charge.success.subscription", &ids)
            .unwrap()
            .replace("\"custom_fields\": []", "\"account_id\": \"acct-other\"");
        let first = parse_event(first.as_bytes(), now()).unwrap().event;
        assert_eq!(first.account.as_deref(), Some("acct-demo-001"));
        let one_off = parse_event(SAMPLES.event("charge.success", &ids).unwrap().as_bytes(), now()).unwrap().event;
        assert_eq!((one_off.kind, one_off.payment.as_deref()), (EventKind::Payment, Some(ids.event_id.as_str())));
        assert_eq!(one_off.account.as_deref(), Some("acct-demo-001"), "a one-off charge's own metadata");
    }

    #[test]
    fn bodies_without_an_event_or_data_are_refused() {
        for body in [&b"[]"[..], b"{}", br#"{"event":"charge.success"}"#, br#"{"data":{}}"#, b"nope"] {
            assert!(matches!(parse_event(body, now()), Err(Rejection::InvalidPayload { .. })), "{body:?}");
        }
    }

    #[test]
    fn an_event_about_no_single_object_is_keyed_by_its_data() {
        let body = br#"{"event":"subscription.expiring_cards","data":[{"expiry_date":"12/2021"}]}"#;
        let a = parse_event(body, now()).unwrap().event_id;
        assert!(a.as_str().starts_with("subscription.expiring_cards:sha256:"), "{a}");
        assert_eq!(parse_event(body, now()).unwrap().event_id, a);
    }
}

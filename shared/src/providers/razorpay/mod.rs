//! Razorpay: `X-Razorpay-Signature`, the hex HMAC-SHA256 of the raw body
//! with the webhook's secret, and the mapping of Razorpay's event types
//! onto the domain's events.
//!
//! The signature binds no time and the event id is a header it does not
//! cover (`x-razorpay-event-id`, the same across retries): a replayed body
//! under a new id is a new event to the store, and only the effects'
//! business keys (I4) make it harmless. The signature is compared in
//! constant time against every active secret: Razorpay's automatic retries
//! keep the signature they were first made with, so after a rotation the
//! old secret stays listed for a day (Razorpay retries for 24 hours).
//! razorpay-python's utility test vector is the known-answer test.
//!
//! # Mapping
//!
//! | `event` | kind |
//! | --- | --- |
//! | `subscription.activated` | purchase |
//! | `subscription.charged` | renewal: the subscription's current period, plan and status (stated too), the payment's amount |
//! | `subscription.pending`, `.halted`, `.paused`, `.resumed` | subscription updated (its status) |
//! | `subscription.updated` | subscription updated: its plan, period and status (a plan change; Razorpay bills the new plan from its `subscription.charged`) |
//! | `subscription.cancelled`, `subscription.completed` | cancellation |
//! | `payment.failed` | payment failed |
//! | `refund.processed` | refund of its payment, for its amount |
//! | `payment.dispute.lost` | refund of its payment (keyed by the dispute id), for the `amount_deducted` (else the disputed `amount`) |
//! | `payment.dispute.created`, `.won`, `.closed`, `.under_review`, `.action_required` | other: Razorpay takes nothing until a dispute is lost |
//! | `payment.captured` | other: a subscription's payment is granted by its `subscription.charged`, which names the period; a one-off payment changes no credits |
//! | anything else | other: recorded as ignored |
//!
//! Amounts are in the currency's minor units (paise). The account is the
//! subscription's (or payment's) `notes.account_id` when set, else
//! Razorpay's customer id.

mod integration;

pub use integration::Razorpay;

use async_trait::async_trait;
use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use sha2::Sha256;
use subtle::{Choice, ConstantTimeEq};
use time::OffsetDateTime;

use super::json::{int_at, str_at};
use super::{Inbound, Rejection, SampleIds, Samples, VerifiedEvent, Verifier};
use crate::event::{DomainEvent, EventId, EventKind, Period, Provider};
use crate::secret::{Secret, SecretSet};

pub const SIGNATURE_HEADER: &str = "x-razorpay-signature";
pub const EVENT_ID_HEADER: &str = "x-razorpay-event-id";

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, Clone)]
pub struct RazorpayVerifier {
    secrets: SecretSet,
}

impl RazorpayVerifier {
    pub fn new(secrets: SecretSet) -> Self {
        Self { secrets }
    }
}

#[async_trait]
impl Verifier for RazorpayVerifier {
    fn provider(&self) -> Provider {
        Provider::Razorpay
    }

    async fn verify(&self, inbound: &Inbound<'_>, _now: OffsetDateTime) -> Result<VerifiedEvent, Rejection> {
        let signature = super::single_header(inbound.headers, SIGNATURE_HEADER)?;
        verify_signature(signature, inbound.body, &self.secrets)?;
        let event_id = super::single_header(inbound.headers, EVENT_ID_HEADER)?;
        parse_event(event_id, inbound.body)
    }
}

fn mac(secret: &Secret, body: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret.expose()).expect("HMAC takes any key length");
    mac.update(body);
    mac
}

/// Checks `X-Razorpay-Signature` against the raw body with every active
/// secret, in constant time.
pub fn verify_signature(signature: &str, body: &[u8], secrets: &SecretSet) -> Result<(), Rejection> {
    let presented = hex::decode(signature)
        .map_err(|_| Rejection::MalformedSignature { header: SIGNATURE_HEADER, reason: "the signature is not hex" })?;
    let mut matched = Choice::from(0);
    for secret in secrets.iter() {
        matched |= mac(secret, body).finalize().into_bytes().as_slice().ct_eq(presented.as_slice());
    }
    if bool::from(matched) { Ok(()) } else { Err(Rejection::SignatureMismatch) }
}

/// The `X-Razorpay-Signature` of `body` with `secret`.
pub fn signature(body: &[u8], secret: &Secret) -> String {
    hex::encode(mac(secret, body).finalize().into_bytes())
}

/// Events in the shapes of Razorpay's webhooks, with `{{customer_id}}`,
/// `{{subscription_id}}`, `{{payment_id}}`, `{{payment_alias_id}}` (the
/// invoice) and `{{refund_id}}` placeholders; the event id travels in
/// `x-razorpay-event-id`. Their plan is `plan_test_pro_monthly`.
pub const SAMPLES: Samples = Samples(&[
    ("subscription.activated", include_str!("samples/subscription.activated.json")),
    ("subscription.charged", include_str!("samples/subscription.charged.json")),
    ("subscription.pending", include_str!("samples/subscription.pending.json")),
    ("subscription.halted", include_str!("samples/subscription.halted.json")),
    ("subscription.paused", include_str!("samples/subscription.paused.json")),
    ("subscription.resumed", include_str!("samples/subscription.resumed.json")),
    ("subscription.cancelled", include_str!("samples/subscription.cancelled.json")),
    ("subscription.completed", include_str!("samples/subscription.completed.json")),
    ("payment.captured", include_str!("samples/payment.captured.json")),
    ("payment.failed", include_str!("samples/payment.failed.json")),
    ("refund.processed", include_str!("samples/refund.processed.json")),
    ("payment.dispute.lost", include_str!("samples/payment.dispute.lost.json")),
    // Pro to Team at the cycle's end: the change, then the first cycle on Team.
    ("subscription.updated", include_str!("samples/subscription.updated.json")),
    ("subscription.charged.upgrade", include_str!("samples/subscription.charged.upgrade.json")),
]);

/// Ids in Razorpay's shapes (a prefix and 14 characters; event ids have
/// no prefix).
pub fn sample_ids() -> SampleIds {
    let token = || uuid::Uuid::new_v4().simple().to_string()[..14].to_owned();
    SampleIds {
        event_id: token(),
        customer_id: format!("cust_{}", token()),
        subscription_id: format!("sub_{}", token()),
        payment_id: format!("pay_{}", token()),
        payment_alias_id: format!("inv_{}", token()),
        refund_id: format!("rfnd_{}", token()),
    }
}

#[derive(Deserialize)]
struct Envelope<'a> {
    event: Option<String>,
    created_at: Option<i64>,
    #[serde(borrow)]
    payload: Option<&'a RawValue>,
}

/// Parses a verified body, delivered under `event_id`, into the domain's
/// event. The fingerprint covers the event type and the exact bytes of
/// `payload`.
pub fn parse_event(event_id: &str, body: &[u8]) -> Result<VerifiedEvent, Rejection> {
    let event_id = EventId::parse(event_id)?;
    let envelope: Envelope<'_> = serde_json::from_slice(body)
        .map_err(|_| Rejection::InvalidPayload { reason: "not a JSON object with Razorpay's event fields" })?;
    let event_type = envelope.event.ok_or(Rejection::InvalidPayload { reason: "no event type" })?;
    let created = envelope
        .created_at
        .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
        .ok_or(Rejection::InvalidPayload { reason: "no valid created_at" })?;
    let payload = envelope.payload.ok_or(Rejection::InvalidPayload { reason: "no payload" })?;
    let value: Value =
        serde_json::from_str(payload.get()).map_err(|_| Rejection::InvalidPayload { reason: "no payload" })?;
    let fingerprint = super::fingerprint(&event_type, payload.get().as_bytes());
    Ok(VerifiedEvent { event_id, fingerprint, event: normalize(event_type, created, &value) })
}

fn unix_at(value: &Value, path: &[&str]) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(int_at(value, path)?).ok()
}

fn normalize(event_type: String, occurred_at: OffsetDateTime, payload: &Value) -> DomainEvent {
    let subscription = payload.pointer("/subscription/entity").unwrap_or(&Value::Null);
    let payment = payload.pointer("/payment/entity").unwrap_or(&Value::Null);
    let refund = payload.pointer("/refund/entity").unwrap_or(&Value::Null);
    let customer = str_at(subscription, &["customer_id"]).or_else(|| str_at(payment, &["customer_id"]));
    let explicit_account =
        str_at(subscription, &["notes", "account_id"]).or_else(|| str_at(payment, &["notes", "account_id"]));
    let mut event = DomainEvent { customer: customer.clone(), ..DomainEvent::new(event_type, occurred_at) };
    let subscription_fields = |event: &mut DomainEvent| {
        event.subscription = str_at(subscription, &["id"]);
        event.plan = str_at(subscription, &["plan_id"]);
        event.status = str_at(subscription, &["status"]);
        event.period = unix_at(subscription, &["current_start"])
            .zip(unix_at(subscription, &["current_end"]))
            .map(|(start, end)| Period { start, end });
        event.object = str_at(subscription, &["id"]);
    };
    match event.event_type.as_str() {
        "subscription.activated" => {
            event.kind = EventKind::Purchase;
            subscription_fields(&mut event);
        }
        "subscription.charged" => {
            event.kind = EventKind::Renewal;
            subscription_fields(&mut event);
            event.amount_minor = int_at(payment, &["amount"]);
            event.currency = str_at(payment, &["currency"]).map(|c| c.to_ascii_uppercase());
            event.payment = str_at(payment, &["id"]);
            event.payment_alias = str_at(payment, &["invoice_id"]);
        }
        "subscription.pending"
        | "subscription.halted"
        | "subscription.paused"
        | "subscription.resumed"
        | "subscription.updated" => {
            event.kind = EventKind::SubscriptionUpdated;
            subscription_fields(&mut event);
        }
        "subscription.cancelled" | "subscription.completed" => {
            event.kind = EventKind::Cancellation;
            subscription_fields(&mut event);
        }
        "payment.failed" => {
            event.kind = EventKind::PaymentFailed;
            event.amount_minor = int_at(payment, &["amount"]);
            event.currency = str_at(payment, &["currency"]).map(|c| c.to_ascii_uppercase());
            event.object = str_at(payment, &["id"]);
        }
        "refund.processed" => {
            event.kind = EventKind::Refund;
            event.refund_id = str_at(refund, &["id"]);
            event.amount_minor = int_at(refund, &["amount"]);
            event.currency = str_at(refund, &["currency"]).map(|c| c.to_ascii_uppercase());
            event.payment = str_at(refund, &["payment_id"]);
            event.object = str_at(refund, &["id"]);
        }
        // A dispute moves money only when lost: Razorpay deducts then what
        // it says it deducted (the disputed amount, until then 0). Won,
        // closed or still open, nothing was taken.
        "payment.dispute.lost" => {
            let dispute = payload.pointer("/dispute/entity").unwrap_or(&Value::Null);
            event.kind = EventKind::Refund;
            event.refund_id = str_at(dispute, &["id"]);
            event.amount_minor =
                int_at(dispute, &["amount_deducted"]).filter(|a| *a > 0).or_else(|| int_at(dispute, &["amount"]));
            event.currency = str_at(dispute, &["currency"]).map(|c| c.to_ascii_uppercase());
            event.payment = str_at(dispute, &["payment_id"]);
            event.object = str_at(dispute, &["id"]);
        }
        _ => {}
    }
    event.account = explicit_account.or(customer);
    event
}

#[cfg(test)]
mod tests {
    use super::*;

    /// razorpay-python's `test_verify_webhook_signature`: the mock body with
    /// its trailing newline, the client's secret `key_secret`.
    const KAT_BODY: &[u8] =
        include_bytes!("../../../../tests/fixtures/razorpay-python-fake_payment_authorized_webhook.json");
    const KAT_SIGNATURE: &str = "d60e67fd884556c045e9be7dad57903e33efc7172c17c6e3ef77db42d2b366e9";

    fn secrets(list: &str) -> SecretSet {
        SecretSet::from_comma_separated(list).unwrap()
    }

    #[test]
    fn razorpays_own_vector_verifies_with_its_trailing_newline_only() {
        verify_signature(KAT_SIGNATURE, KAT_BODY, &secrets("key_secret")).unwrap();
        let trimmed = KAT_BODY.strip_suffix(b"\n").unwrap();
        assert_eq!(verify_signature(KAT_SIGNATURE, trimmed, &secrets("key_secret")), Err(Rejection::SignatureMismatch));
        assert_eq!(verify_signature(KAT_SIGNATURE, KAT_BODY, &secrets("other")), Err(Rejection::SignatureMismatch));
        assert_eq!(signature(KAT_BODY, &Secret::new("key_secret")), KAT_SIGNATURE);
    }

    #[test]
    fn after_a_rotation_a_retry_signed_with_the_old_secret_still_verifies() {
        verify_signature(KAT_SIGNATURE, KAT_BODY, &secrets("new_secret,key_secret")).unwrap();
    }

    #[test]
    fn a_signature_that_is_not_hex_is_malformed() {
        assert_eq!(
            verify_signature("not-hex", KAT_BODY, &secrets("key_secret")),
            Err(Rejection::MalformedSignature { header: SIGNATURE_HEADER, reason: "the signature is not hex" })
        );
    }

    fn sample(name: &str) -> (SampleIds, VerifiedEvent) {
        let ids = sample_ids();
        let body = SAMPLES.event(name, &ids).unwrap();
        (ids.clone(), parse_event(&ids.event_id, body.as_bytes()).unwrap())
    }

    #[test]
    fn the_samples_map_as_documented() {
        let (ids, activated) = sample("subscription.activated");
        assert_eq!(activated.event_id.as_str(), ids.event_id);
        let e = activated.event;
        assert_eq!((e.kind, e.plan.as_deref()), (EventKind::Purchase, Some("plan_test_pro_monthly")));
        assert_eq!(
            (e.account.as_deref(), e.customer.as_deref()),
            (Some("acct-demo-001"), Some(ids.customer_id.as_str()))
        );

        let (ids, charged) = sample("subscription.charged");
        let e = charged.event;
        assert_eq!((e.kind, e.amount_minor, e.currency.as_deref()), (EventKind::Renewal, Some(200_000), Some("INR")));
        assert_eq!(
            (e.subscription.as_deref(), e.payment.as_deref()),
            (Some(ids.subscription_id.as_str()), Some(ids.payment_id.as_str()))
        );
        assert!(e.period.is_some_and(|p| p.end > p.start));

        let (ids, refund) = sample("refund.processed");
        let e = refund.event;
        assert_eq!((e.kind, e.amount_minor), (EventKind::Refund, Some(50_000)));
        assert_eq!(
            (e.refund_id.as_deref(), e.payment.as_deref()),
            (Some(ids.refund_id.as_str()), Some(ids.payment_id.as_str()))
        );
        assert_eq!(sample("payment.failed").1.event.kind, EventKind::PaymentFailed);
        assert_eq!(sample("payment.captured").1.event.kind, EventKind::Other);

        // A lost dispute is what Razorpay deducted, keyed by the dispute;
        // before it is lost (created, won, closed) nothing was taken.
        let (ids, lost) = sample("payment.dispute.lost");
        let e = lost.event;
        assert_eq!((e.kind, e.amount_minor), (EventKind::Refund, Some(200_000)));
        let dispute = format!("disp_{}", ids.event_id);
        assert_eq!(
            (e.refund_id.as_deref(), e.payment.as_deref()),
            (Some(dispute.as_str()), Some(ids.payment_id.as_str()))
        );
        for other in ["payment.dispute.created", "payment.dispute.won", "payment.dispute.closed"] {
            let body = SAMPLES.event("payment.dispute.lost", &ids).unwrap().replace("payment.dispute.lost", other);
            assert_eq!(parse_event(&ids.event_id, body.as_bytes()).unwrap().event.kind, EventKind::Other, "{other}");
        }
        for name in ["subscription.cancelled", "subscription.completed"] {
            assert_eq!(sample(name).1.event.kind, EventKind::Cancellation, "{name}");
        }
        for name in ["subscription.pending", "subscription.halted", "subscription.paused", "subscription.resumed"] {
            let e = sample(name).1.event;
            assert_eq!(e.kind, EventKind::SubscriptionUpdated, "{name}");
            assert!(e.status.is_some(), "{name}");
        }
    }

    /// A plan change at the cycle's end: `subscription.updated` states the
    /// new plan and the cycle it starts; that cycle's `subscription.charged`
    /// names the plan it paid for.
    #[test]
    fn a_plan_change_states_the_plan_and_the_next_charge_pays_for_it() {
        let (_, updated) = sample("subscription.updated");
        let e = updated.event;
        assert_eq!(
            (e.kind, e.plan.as_deref(), e.status.as_deref()),
            (EventKind::SubscriptionUpdated, Some("plan_test_team_monthly"), Some("active"))
        );
        let (ids, charged) = sample("subscription.charged.upgrade");
        let next = charged.event;
        assert_eq!((next.kind, next.plan.as_deref()), (EventKind::Renewal, Some("plan_test_team_monthly")));
        assert_eq!(next.period, e.period, "the cycle the change starts");
        assert_eq!(next.payment, Some(format!("{}_upgrade", ids.payment_id)));
        let first = sample("subscription.charged").1.event;
        assert_eq!(first.period.unwrap().end, next.period.unwrap().start);
        let cancelled = sample("subscription.cancelled").1.event;
        assert!(e.occurred_at < next.occurred_at && next.occurred_at < cancelled.occurred_at);
    }

    /// Razorpay's subscription docs: `subscription.authenticated` on the
    /// first payment or authorisation, `.activated`, then `.charged` on
    /// every successful charge (the first included), each with its
    /// `payment.captured`; a failed charge: `payment.failed` and
    /// `subscription.pending`, after the last retry `.halted`. Only
    /// `subscription.charged` grants.
    #[test]
    fn razorpays_documented_sequence_grants_only_the_charges() {
        let ids = sample_ids();
        let kind = |sample: &str, event: &str| {
            let mut value: Value = serde_json::from_str(&SAMPLES.event(sample, &ids).unwrap()).unwrap();
            value["event"] = Value::String(event.to_owned());
            parse_event(&sample_ids().event_id, value.to_string().as_bytes()).unwrap().event.kind
        };
        use EventKind::{Other, PaymentFailed, Purchase, Renewal, SubscriptionUpdated};
        let lifecycle = [
            kind("subscription.activated", "subscription.authenticated"),
            kind("subscription.activated", "subscription.activated"),
            kind("payment.captured", "payment.captured"),
            kind("subscription.charged", "subscription.charged"),
            kind("payment.failed", "payment.failed"),
            kind("subscription.pending", "subscription.pending"),
            kind("subscription.halted", "subscription.halted"),
        ];
        assert_eq!(
            lifecycle,
            [Other, Purchase, Other, Renewal, PaymentFailed, SubscriptionUpdated, SubscriptionUpdated]
        );
    }

    #[test]
    fn the_event_id_comes_from_its_header_and_must_be_a_key() {
        let body = SAMPLES.event("subscription.charged", &sample_ids()).unwrap();
        assert!(matches!(parse_event("", body.as_bytes()), Err(Rejection::InvalidEventId(_))));
        assert!(matches!(parse_event("has space", body.as_bytes()), Err(Rejection::InvalidEventId(_))));
    }
}

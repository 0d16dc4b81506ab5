//! Stripe: `Stripe-Signature: t=…,v1=…[,v1=…]`, HMAC-SHA256 over
//! `"{t}.{raw body}"` in hex, and the mapping of Stripe's event types onto
//! the domain's events.
//!
//! Verification follows Stripe's SDKs where they agree and is stricter where
//! they differ: the timestamp window is checked in both directions (as
//! stripe-dotnet does), every `v1` is compared against every active secret in
//! constant time, `v0` and unknown schemes are ignored.

mod integration;
pub mod registrar;

pub use integration::{API_KEY, API_URL, Stripe, TRUST_CLIENT_REFERENCE_ID};
pub use registrar::{DEFAULT_API_URL, StripeRegistrar};

use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use time::OffsetDateTime;

use super::json::{at as json_at, id_at, int_at, str_at};
use super::timestamped_hmac::TimestampedHmac;
use super::{Inbound, Rejection, Samples, VerifiedEvent, Verifier};
use crate::event::{DomainEvent, EventId, EventKind, Period, Proration, Provider};
use crate::secret::{Secret, SecretSet};

pub const SIGNATURE_HEADER: &str = "stripe-signature";
/// Stripe's SDKs default to five minutes.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

#[derive(Debug, Clone)]
pub struct StripeVerifier {
    secrets: SecretSet,
    tolerance: Duration,
    attribution: Attribution,
}

impl StripeVerifier {
    pub fn new(secrets: SecretSet, tolerance: Duration) -> Self {
        Self { secrets, tolerance, attribution: Attribution::default() }
    }

    /// Takes a checkout's `client_reference_id` as its account when its
    /// metadata names none: only where every checkout is created by the
    /// merchant's server, never with Payment Links, whose customers choose
    /// it in the URL.
    pub fn trusting_client_reference(mut self, trusted: bool) -> Self {
        self.attribution.client_reference = trusted;
        self
    }
}

/// Which fields of an event may name its account, beyond the merchant's
/// metadata and Stripe's customer id.
#[derive(Debug, Clone, Copy, Default)]
pub struct Attribution {
    pub client_reference: bool,
}

#[async_trait]
impl Verifier for StripeVerifier {
    fn provider(&self) -> Provider {
        Provider::Stripe
    }

    async fn verify(&self, inbound: &Inbound<'_>, now: OffsetDateTime) -> Result<VerifiedEvent, Rejection> {
        let header = super::single_header(inbound.headers, SIGNATURE_HEADER)?;
        verify_signature(header, inbound.body, &self.secrets, now, self.tolerance)?;
        parse_event_with(inbound.body, self.attribution)
    }
}

/// `t=…,v1=…` over `"{t}.{body}"`; `v0` (a legacy test-mode scheme) and
/// unknown schemes are ignored, as Stripe's SDKs ignore them.
const SCHEME: TimestampedHmac = TimestampedHmac {
    header: SIGNATURE_HEADER,
    separator: ',',
    timestamp_key: "t",
    signature_key: "v1",
    joiner: ".",
    no_timestamp: "no timestamp (t=)",
    no_signature: "no v1 signature",
};

/// Checks a `Stripe-Signature` header against the raw body: the signature
/// first (as Stripe's SDKs do), then the timestamp window in both directions.
pub fn verify_signature(
    header: &str,
    body: &[u8],
    secrets: &SecretSet,
    now: OffsetDateTime,
    tolerance: Duration,
) -> Result<(), Rejection> {
    SCHEME.verify(header, body, secrets, now, tolerance)
}

/// A `Stripe-Signature` value for `body` at `timestamp`, one `v1` per secret,
/// as Stripe sends while a secret is rolled.
pub fn signature_header(body: &[u8], secrets: &[&Secret], timestamp: i64) -> String {
    SCHEME.sign(body, secrets, timestamp)
}

/// The event types the mapping gives a meaning: what a registered endpoint
/// subscribes to (the template's `StripeEnabledEvents` default).
pub const MAPPED_TYPES: &[&str] = &[
    "charge.dispute.funds_reinstated",
    "charge.dispute.funds_withdrawn",
    "checkout.session.async_payment_failed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.completed",
    "customer.subscription.created",
    "customer.subscription.deleted",
    "customer.subscription.updated",
    "invoice.paid",
    "invoice.payment_failed",
    "invoice.payment_succeeded",
    "invoice_payment.paid",
    "refund.created",
    "refund.failed",
    "refund.updated",
];

/// Realistic events (API version 2025-03-31.basil) for the `trigger`
/// command and tests, with `{{event_id}}`, `{{customer_id}}` and
/// `{{subscription_id}}` placeholders.
pub const SAMPLES: Samples = Samples(&[
    ("invoice.payment_succeeded", include_str!("samples/invoice.payment_succeeded.json")),
    ("invoice.paid", include_str!("samples/invoice.paid.json")),
    ("invoice.paid.upgrade", include_str!("samples/invoice.paid.upgrade.json")),
    ("invoice.payment_failed", include_str!("samples/invoice.payment_failed.json")),
    ("customer.subscription.created", include_str!("samples/customer.subscription.created.json")),
    ("customer.subscription.updated", include_str!("samples/customer.subscription.updated.json")),
    // Halfway through the period, Pro (2,000) becomes Team (5,000), and
    // the prorations are invoiced at once (`always_invoice`).
    ("customer.subscription.updated.upgrade", include_str!("samples/customer.subscription.updated.upgrade.json")),
    ("customer.subscription.deleted", include_str!("samples/customer.subscription.deleted.json")),
    ("checkout.session.completed", include_str!("samples/checkout.session.completed.json")),
    ("charge.refunded", include_str!("samples/charge.refunded.json")),
    ("invoice_payment.paid", include_str!("samples/invoice_payment.paid.json")),
    ("refund.created", include_str!("samples/refund.created.json")),
    ("refund.failed", include_str!("samples/refund.failed.json")),
    ("charge.dispute.funds_withdrawn", include_str!("samples/charge.dispute.funds_withdrawn.json")),
    ("charge.dispute.funds_reinstated", include_str!("samples/charge.dispute.funds_reinstated.json")),
]);

#[derive(Deserialize)]
struct Envelope<'a> {
    id: Option<String>,
    #[serde(rename = "type")]
    event_type: Option<String>,
    created: Option<i64>,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Data {
    object: Value,
}

/// Parses a verified body into the domain's event. The fingerprint covers
/// the type and the exact bytes of `data`, which Stripe snapshots when the
/// event is created, so every retry of one event has the same fingerprint
/// while envelope fields that change between deliveries (`pending_webhooks`)
/// do not count.
pub fn parse_event(body: &[u8]) -> Result<VerifiedEvent, Rejection> {
    parse_event_with(body, Attribution::default())
}

/// [`parse_event`], taking the account from the fields `attribution` trusts.
pub fn parse_event_with(body: &[u8], attribution: Attribution) -> Result<VerifiedEvent, Rejection> {
    let envelope: Envelope<'_> = serde_json::from_slice(body)
        .map_err(|_| Rejection::InvalidPayload { reason: "not a JSON object with Stripe's event fields" })?;
    let event_id = EventId::parse(envelope.id.as_deref().unwrap_or_default())?;
    let event_type = envelope.event_type.ok_or(Rejection::InvalidPayload { reason: "no event type" })?;
    let created = envelope
        .created
        .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
        .ok_or(Rejection::InvalidPayload { reason: "no valid created timestamp" })?;
    let data = envelope.data.ok_or(Rejection::InvalidPayload { reason: "no data object" })?;
    let Data { object } =
        serde_json::from_str::<Data>(data.get()).map_err(|_| Rejection::InvalidPayload { reason: "no data object" })?;

    let fingerprint = super::fingerprint(&event_type, data.get().as_bytes());

    Ok(VerifiedEvent { event_id, fingerprint, event: normalize(event_type, created, &object, attribution) })
}

/// Maps a Stripe event onto the domain. Field locations follow API version
/// 2025-03-31.basil and later, with the older locations as fallbacks
/// (basil moved `invoice.subscription` under `parent` and subscription
/// periods onto items).
fn normalize(event_type: String, occurred_at: OffsetDateTime, o: &Value, attribution: Attribution) -> DomainEvent {
    let customer = id_at(o, &["customer"]);
    let mut event = DomainEvent {
        customer: customer.clone(),
        // Stripe writes ISO codes in lower case; the domain in upper.
        currency: str_at(o, &["currency"]).map(|c| c.to_ascii_uppercase()),
        object: str_at(o, &["id"]),
        ..DomainEvent::new(event_type, occurred_at)
    };
    let mut explicit_account = str_at(o, &["metadata", "account_id"]);

    match event.event_type.as_str() {
        "invoice.paid" | "invoice.payment_succeeded" | "invoice.payment_failed" => {
            event.subscription =
                id_at(o, &["parent", "subscription_details", "subscription"]).or_else(|| id_at(o, &["subscription"]));
            let failed = event.event_type == "invoice.payment_failed";
            let line = period_line(o);
            event.kind = match (failed, &event.subscription, line) {
                (true, _, _) => EventKind::PaymentFailed,
                (false, Some(_), Some(_)) => EventKind::Renewal,
                // A one-off invoice, or one that bills only prorations:
                // paid, but for no subscription period.
                (false, _, _) => EventKind::Payment,
            };
            explicit_account =
                explicit_account.or_else(|| str_at(o, &["parent", "subscription_details", "metadata", "account_id"]));
            if let Some(line) = line {
                event.period = period_at(line, &["period", "start"], &["period", "end"]);
                event.plan = line_price(line);
            } else if event.subscription.is_none() {
                // A one-off invoice is for what its largest item's price is
                // (a credit pack, where the plans say so).
                event.plan = largest_line(o, |line| !is_proration(line)).and_then(line_price);
            }
            event.amount_minor = if failed { int_at(o, &["amount_due"]) } else { int_at(o, &["amount_paid"]) };
            if !failed {
                event.prorations = prorations(o);
                // Refunds name the payment intent: before basil the invoice
                // names it too; since, `invoice_payment.paid` links them.
                event.payment = str_at(o, &["id"]);
                event.payment_alias = id_at(o, &["payment_intent"])
                    .or_else(|| id_at(o, &["payments", "data", "0", "payment", "payment_intent"]));
            }
        }
        "customer.subscription.created" | "customer.subscription.updated" | "customer.subscription.deleted" => {
            let status = str_at(o, &["status"]);
            event.kind = match event.event_type.as_str() {
                "customer.subscription.deleted" => EventKind::Cancellation,
                "customer.subscription.created" if status.as_deref() == Some("trialing") => EventKind::TrialStarted,
                _ => EventKind::SubscriptionUpdated,
            };
            event.subscription = str_at(o, &["id"]);
            event.status = status;
            let item = o.pointer("/items/data/0").unwrap_or(&Value::Null);
            event.period = period_at(item, &["current_period_start"], &["current_period_end"])
                .or_else(|| period_at(o, &["current_period_start"], &["current_period_end"]));
            event.plan = id_at(item, &["price"]);
        }
        "checkout.session.completed"
        | "checkout.session.async_payment_succeeded"
        | "checkout.session.async_payment_failed" => {
            let paid = matches!(str_at(o, &["payment_status"]).as_deref(), Some("paid" | "no_payment_required"));
            // An unpaid session (bank debits, vouchers) provisions nothing
            // until its async_payment_succeeded event; its failure is a
            // failed payment.
            event.kind = match event.event_type.as_str() {
                "checkout.session.async_payment_failed" => EventKind::PaymentFailed,
                _ if paid => EventKind::Purchase,
                _ => EventKind::Other,
            };
            event.subscription = id_at(o, &["subscription"]);
            event.amount_minor = int_at(o, &["amount_total"]);
            if attribution.client_reference {
                explicit_account = explicit_account.or_else(|| str_at(o, &["client_reference_id"]));
            }
        }
        "invoice_payment.paid" => {
            event.kind = EventKind::PaymentLinked;
            event.payment = id_at(o, &["invoice"]);
            event.payment_alias = id_at(o, &["payment", "payment_intent"]).or_else(|| id_at(o, &["payment", "charge"]));
            event.amount_minor = int_at(o, &["amount_paid"]);
        }
        // Since basil a charge no longer lists its refunds; without the list
        // the event cannot say which refund it is, and `refund.created`
        // carries the same refund: recorded as ignored.
        "charge.refunded" => {
            if let Some(refund) = o.pointer("/refunds/data/0") {
                event.kind = EventKind::Refund;
                event.refund_id = str_at(refund, &["id"]);
                event.amount_minor = int_at(refund, &["amount"]);
                event.payment = id_at(o, &["payment_intent"]).or_else(|| str_at(o, &["id"]));
            }
        }
        // A refund claws back when it is created, pending or not; one that
        // fails or is cancelled later gives it back.
        "refund.created" | "refund.updated" | "refund.failed" => {
            let reversed = event.event_type == "refund.failed"
                || matches!(str_at(o, &["status"]).as_deref(), Some("failed" | "canceled"));
            event.kind = if reversed { EventKind::RefundReversed } else { EventKind::Refund };
            event.refund_id = str_at(o, &["id"]);
            event.amount_minor = int_at(o, &["amount"]);
            event.payment = id_at(o, &["payment_intent"]).or_else(|| id_at(o, &["charge"]));
        }
        // A dispute takes the disputed amount when its funds are withdrawn,
        // and gives it back if they are reinstated (a dispute won); the
        // dispute's id names it as a refund's would.
        "charge.dispute.funds_withdrawn" | "charge.dispute.funds_reinstated" => {
            event.kind = if event.event_type == "charge.dispute.funds_withdrawn" {
                EventKind::Refund
            } else {
                EventKind::RefundReversed
            };
            event.refund_id = str_at(o, &["id"]);
            event.amount_minor = int_at(o, &["amount"]);
            event.payment = id_at(o, &["payment_intent"]).or_else(|| id_at(o, &["charge"]));
        }
        _ => {}
    }
    event.account = explicit_account.or(customer);
    event
}

/// The invoice line that pays for the subscription's period: a
/// subscription item's line that is not a proration, with the largest
/// amount when there are several (line order is not a contract: on an
/// upgrade the first line is often the credit for the old price). `None`
/// for an invoice of one-off items or of prorations only.
fn period_line(invoice: &Value) -> Option<&Value> {
    largest_line(invoice, |line| is_subscription_item(line) && !is_proration(line))
}

/// The invoice's line with the largest amount among those `wanted` (ties by
/// price id, so the choice never depends on order).
fn largest_line(invoice: &Value, wanted: impl Fn(&Value) -> bool) -> Option<&Value> {
    let lines = invoice.pointer("/lines/data")?.as_array()?;
    lines
        .iter()
        .filter(|line| wanted(line))
        .max_by_key(|line| (int_at(line, &["amount"]).unwrap_or(0), line_price(line)))
}

/// Since basil a line says what it is under `parent`; before, in `type`.
fn is_subscription_item(line: &Value) -> bool {
    match str_at(line, &["parent", "type"]) {
        Some(kind) => kind == "subscription_item_details",
        None => str_at(line, &["type"]).as_deref() == Some("subscription"),
    }
}

fn is_proration(line: &Value) -> bool {
    let flag = |path: &[&str]| json_at(line, path).and_then(Value::as_bool);
    flag(&["parent", "subscription_item_details", "proration"])
        .or_else(|| flag(&["parent", "invoice_item_details", "proration"]))
        .or_else(|| flag(&["proration"]))
        .unwrap_or(false)
}

/// What the invoice bills for plan changes mid-period, in any order: each
/// proration line's price, the time it covers (from the change to the
/// period's end) and whether it gives unused time back.
fn prorations(invoice: &Value) -> Vec<Proration> {
    let lines = invoice.pointer("/lines/data").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    lines
        .iter()
        .filter(|line| is_proration(line))
        .filter_map(|line| {
            Some(Proration {
                plan: line_price(line)?,
                period: period_at(line, &["period", "start"], &["period", "end"])?,
                credit: int_at(line, &["amount"])? < 0,
                share: None,
            })
        })
        .collect()
}

fn line_price(line: &Value) -> Option<String> {
    str_at(line, &["pricing", "price_details", "price"]).or_else(|| id_at(line, &["price"]))
}

fn period_at(value: &Value, start: &[&str], end: &[&str]) -> Option<Period> {
    let start = OffsetDateTime::from_unix_timestamp(int_at(value, start)?).ok()?;
    let end = OffsetDateTime::from_unix_timestamp(int_at(value, end)?).ok()?;
    Some(Period { start, end })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::SampleIds;

    /// stripe-dotnet's `EventUtilityTest` vector (the body includes its
    /// trailing newline).
    const KAT_BODY: &[u8] = include_bytes!("../../../../tests/fixtures/stripe-dotnet-event_test_signature.json");
    const KAT_HEADER: &str = "t=1533204620,v1=2220f87ef101a04665f11cdf770523143f875572008577fa0f20882ddb9cc3c7,v0=63f3a72374a733066c4be69ed7f8e5ac85c22c9f0a6a612ab9a025a9e4ee7eef";
    const KAT_T: i64 = 1_533_204_620;

    fn at_unix(t: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(t).unwrap()
    }

    fn secrets(list: &str) -> SecretSet {
        SecretSet::from_comma_separated(list).unwrap()
    }

    #[test]
    fn stripe_dotnet_vector_verifies_within_tolerance() {
        let result =
            verify_signature(KAT_HEADER, KAT_BODY, &secrets("webhook_secret"), at_unix(KAT_T + 100), DEFAULT_TOLERANCE);
        assert_eq!(result, Ok(()));
    }

    #[test]
    fn stripe_dotnet_vector_is_too_old_after_400_seconds() {
        let result =
            verify_signature(KAT_HEADER, KAT_BODY, &secrets("webhook_secret"), at_unix(KAT_T + 400), DEFAULT_TOLERANCE);
        assert_eq!(result, Err(Rejection::TimestampOutOfTolerance { tolerance_secs: 300 }));
    }

    #[test]
    fn a_timestamp_from_the_future_beyond_tolerance_is_refused() {
        let result =
            verify_signature(KAT_HEADER, KAT_BODY, &secrets("webhook_secret"), at_unix(KAT_T - 400), DEFAULT_TOLERANCE);
        assert!(matches!(result, Err(Rejection::TimestampOutOfTolerance { .. })));
    }

    #[test]
    fn stripe_dotnet_vector_fails_when_the_body_changes() {
        let mut body = KAT_BODY.to_vec();
        body.extend_from_slice(b"this_changes_the_json");
        let result =
            verify_signature(KAT_HEADER, &body, &secrets("webhook_secret"), at_unix(KAT_T + 100), DEFAULT_TOLERANCE);
        assert_eq!(result, Err(Rejection::SignatureMismatch));
    }

    #[test]
    fn the_trailing_newline_is_part_of_the_signed_bytes() {
        let trimmed = &KAT_BODY[..KAT_BODY.len() - 1];
        let result =
            verify_signature(KAT_HEADER, trimmed, &secrets("webhook_secret"), at_unix(KAT_T), DEFAULT_TOLERANCE);
        assert_eq!(result, Err(Rejection::SignatureMismatch));
    }

    #[test]
    fn during_a_roll_either_secret_verifies_a_header_with_two_signatures() {
        // Derived vector (PROVIDERS.md §1.2): the same body signed with `whsec_rolled`.
        let header = "t=1533204620,v1=73737cb7bd43cb6fa7f05d087fa151a1adbbe5ba6916829a209328ccc3740296,v1=2220f87ef101a04665f11cdf770523143f875572008577fa0f20882ddb9cc3c7";
        for secret in ["webhook_secret", "whsec_rolled", "unrelated, whsec_rolled"] {
            assert_eq!(
                verify_signature(header, KAT_BODY, &secrets(secret), at_unix(KAT_T), DEFAULT_TOLERANCE),
                Ok(()),
                "{secret}"
            );
        }
        assert_eq!(
            verify_signature(header, KAT_BODY, &secrets("another"), at_unix(KAT_T), DEFAULT_TOLERANCE),
            Err(Rejection::SignatureMismatch)
        );
    }

    #[test]
    fn signature_header_reproduces_the_published_vector() {
        let secret = Secret::new("webhook_secret");
        let header = signature_header(KAT_BODY, &[&secret], KAT_T);
        assert_eq!(header, "t=1533204620,v1=2220f87ef101a04665f11cdf770523143f875572008577fa0f20882ddb9cc3c7");
    }

    #[test]
    fn hmac_matches_stripe_node_helper_vectors() {
        // stripe-node test/crypto/helpers.ts: HMAC-SHA256 with `test_secret`.
        let cases: [(&[u8], &str); 3] = [
            (b"", "f7f9bd47fb987337b5796fdc1fdb9ba221d0d5396814bfcaf9521f43fd8927fd"),
            (br#"{"obj1":"hello","obj2":"world"}"#, "bebb1a643997f419b315ddba19e6f5411e1ce7f810ba6d3617ce72823092f363"),
            ("\u{1F600}".as_bytes(), "837da296d05c4fe31f61d5d7ead035099d9585a5bcde87de952012a78f0b0c43"),
        ];
        for (message, expected) in cases {
            use hmac::{KeyInit, Mac};
            let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"test_secret").unwrap();
            mac.update(message);
            assert_eq!(hex::encode(mac.finalize().into_bytes()), expected);
        }
    }

    #[test]
    fn malformed_headers_are_told_apart_from_wrong_signatures() {
        let s = secrets("webhook_secret");
        let now = at_unix(KAT_T);
        for header in [
            "",
            "garbage",
            "v1=2220f87ef101a04665f11cdf770523143f875572008577fa0f20882ddb9cc3c7",
            "t=1533204620",
            "t=1533204620,v0=63f3a723",
            "t=abc,v1=00",
            "t=-1,v1=00",
            "t=1,t=2,v1=00",
        ] {
            assert!(
                matches!(
                    verify_signature(header, KAT_BODY, &s, now, DEFAULT_TOLERANCE),
                    Err(Rejection::MalformedSignature { .. })
                ),
                "{header:?}"
            );
        }
        assert_eq!(
            verify_signature("t=1533204620,v1=zz", KAT_BODY, &s, now, DEFAULT_TOLERANCE),
            Err(Rejection::SignatureMismatch)
        );
    }

    #[test]
    fn uppercase_hex_is_decoded_before_comparing() {
        let upper = KAT_HEADER.replace(
            "2220f87ef101a04665f11cdf770523143f875572008577fa0f20882ddb9cc3c7",
            "2220F87EF101A04665F11CDF770523143F875572008577FA0F20882DDB9CC3C7",
        );
        assert_eq!(
            verify_signature(&upper, KAT_BODY, &secrets("webhook_secret"), at_unix(KAT_T), DEFAULT_TOLERANCE),
            Ok(())
        );
    }

    #[test]
    fn the_kat_event_parses_with_its_id_and_type() {
        let verified = parse_event(KAT_BODY).unwrap();
        assert_eq!(verified.event_id.as_str(), "evt_123");
        assert_eq!(verified.event.event_type, "customer.created");
        assert_eq!(verified.event.kind, EventKind::Other);
    }

    #[test]
    fn bodies_without_a_usable_id_or_json_are_refused() {
        assert!(matches!(parse_event(b"not json"), Err(Rejection::InvalidPayload { .. })));
        assert!(matches!(parse_event(b"[1,2]"), Err(Rejection::InvalidPayload { .. })));
        assert!(matches!(
            parse_event(br#"{"type":"x","created":1,"data":{"object":{}}}"#),
            Err(Rejection::InvalidEventId(_))
        ));
        assert!(matches!(
            parse_event(br#"{"id":"evt_1","id":"evt_2","type":"x","created":1,"data":{"object":{}}}"#),
            Err(Rejection::InvalidPayload { .. })
        ));
    }

    #[test]
    fn the_fingerprint_ignores_envelope_fields_that_change_between_deliveries() {
        let a =
            br#"{"id":"evt_1","type":"invoice.paid","created":1,"pending_webhooks":2,"data":{"object":{"id":"in_1"}}}"#;
        let b =
            br#"{"id":"evt_1","type":"invoice.paid","created":1,"pending_webhooks":1,"data":{"object":{"id":"in_1"}}}"#;
        let c =
            br#"{"id":"evt_1","type":"invoice.paid","created":1,"pending_webhooks":1,"data":{"object":{"id":"in_2"}}}"#;
        let fp = |body: &[u8]| parse_event(body).unwrap().fingerprint;
        assert_eq!(fp(a), fp(b));
        assert_ne!(fp(b), fp(c));
    }

    #[test]
    fn every_sample_parses_into_the_kind_it_illustrates() {
        let ids = SampleIds::random("evt");
        let expected = [
            ("invoice.payment_succeeded", EventKind::Renewal),
            ("invoice.paid", EventKind::Renewal),
            ("invoice.payment_failed", EventKind::PaymentFailed),
            ("customer.subscription.created", EventKind::TrialStarted),
            // The period roll comes about an hour before the charge: a
            // status, never proof of payment.
            ("customer.subscription.updated", EventKind::SubscriptionUpdated),
            ("customer.subscription.updated.upgrade", EventKind::SubscriptionUpdated),
            // Prorations only: a payment for no period, topping one up.
            ("invoice.paid.upgrade", EventKind::Payment),
            ("customer.subscription.deleted", EventKind::Cancellation),
            ("checkout.session.completed", EventKind::Purchase),
            // Basil's charge no longer lists its refunds: refund.created counts.
            ("charge.refunded", EventKind::Other),
            ("invoice_payment.paid", EventKind::PaymentLinked),
            ("refund.created", EventKind::Refund),
            ("refund.failed", EventKind::RefundReversed),
            ("charge.dispute.funds_withdrawn", EventKind::Refund),
            ("charge.dispute.funds_reinstated", EventKind::RefundReversed),
        ];
        assert_eq!(SAMPLES.types().count(), expected.len());
        for (sample, kind) in expected {
            let event_type = sample_type(sample);
            let body = SAMPLES.event(sample, &ids).unwrap();
            assert!(!body.contains("{{"), "{sample} keeps a placeholder");
            let verified = parse_event(body.as_bytes()).unwrap();
            assert_eq!(verified.event_id.as_str(), ids.event_id);
            assert_eq!(verified.event.event_type, event_type);
            assert_eq!(verified.event.kind, kind, "{event_type}");
            // Invoice payments, refunds and disputes name no customer.
            let nameless = ["invoice_payment.paid", "refund.created", "refund.failed"];
            let customer = (!nameless.contains(&event_type) && !event_type.starts_with("charge.dispute"))
                .then_some(ids.customer_id.as_str());
            assert_eq!(verified.event.customer.as_deref(), customer, "{event_type}");
        }
    }

    #[test]
    fn every_mapped_type_has_a_meaning_and_every_sample_of_one_is_listed() {
        let ids = SampleIds::random("evt");
        let retyped = |sample: &str, event_type: &str| {
            let body =
                SAMPLES.event(sample, &ids).unwrap().replace(&format!("\"{sample}\""), &format!("\"{event_type}\""));
            parse_event(body.as_bytes()).unwrap().event.kind
        };
        for event_type in MAPPED_TYPES {
            let sample = match *event_type {
                t if SAMPLES.event(t, &ids).is_some() => t,
                t if t.starts_with("checkout.session") => "checkout.session.completed",
                t if t.starts_with("refund") => "refund.created",
                t => panic!("{t}: no sample to read it with"),
            };
            assert_ne!(retyped(sample, event_type), EventKind::Other, "{event_type}");
        }
        for sample in SAMPLES.types() {
            let mapped = MAPPED_TYPES.contains(&sample_type(sample));
            assert_eq!(mapped, retyped(sample, sample_type(sample)) != EventKind::Other, "{sample}");
        }
    }

    /// The type a sample is of: its name, less the variant it illustrates.
    fn sample_type(sample: &str) -> &str {
        sample.strip_suffix(".upgrade").unwrap_or(sample)
    }

    #[test]
    fn an_upgrade_invoiced_at_once_bills_the_time_left_at_both_plans() {
        let ids = SampleIds::random("evt");
        let event = |sample: &str| parse_event(SAMPLES.event(sample, &ids).unwrap().as_bytes()).unwrap().event;
        let change = event("customer.subscription.updated.upgrade");
        assert_eq!((change.status.as_deref(), change.plan.as_deref()), (Some("active"), Some("price_1TestPlanTeam")));
        let invoice = event("invoice.paid.upgrade");
        assert_eq!(invoice.subscription.as_deref(), Some(ids.subscription_id.as_str()));
        assert_eq!(invoice.payment, Some(format!("{}_upgrade", ids.payment_id)), "an invoice of its own");
        assert_eq!(invoice.amount_minor, Some(1500));
        let lines: Vec<_> = invoice.prorations.iter().map(|p| (p.plan.as_str(), p.credit, p.period)).collect();
        let left = change.period.map(|p| Period { start: change.occurred_at, end: p.end }).unwrap();
        assert_eq!(lines, [("price_1TestPlanPro", true, left), ("price_1TestPlanTeam", false, left)]);
        assert_eq!((left.end - left.start) * 2, change.period.map(|p| p.end - p.start).unwrap(), "halfway");
    }

    #[test]
    fn a_refund_finds_its_invoice_through_the_invoice_payment() {
        let ids = SampleIds::random("evt");
        let event = |event_type: &str| parse_event(SAMPLES.event(event_type, &ids).unwrap().as_bytes()).unwrap().event;
        let renewal = event("invoice.payment_succeeded");
        let link = event("invoice_payment.paid");
        let refund = event("refund.created");
        assert_eq!(renewal.payment.as_deref(), Some(ids.payment_id.as_str()));
        assert_eq!((link.payment, link.payment_alias), (renewal.payment, Some(ids.payment_alias_id.clone())));
        assert_eq!(refund.payment.as_deref(), Some(ids.payment_alias_id.as_str()));
        assert_eq!((refund.refund_id.as_deref(), refund.amount_minor), (Some(ids.refund_id.as_str()), Some(500)));
        // Before basil the invoice names its payment intent itself.
        let older = SAMPLES.event("invoice.payment_succeeded", &ids).unwrap().replacen(
            "\"amount_due\"",
            &format!("\"payment_intent\": \"{}\", \"amount_due\"", ids.payment_alias_id),
            1,
        );
        let older = parse_event(older.as_bytes()).unwrap().event;
        assert_eq!(older.payment_alias.as_deref(), Some(ids.payment_alias_id.as_str()));
    }

    #[test]
    fn a_renewal_carries_its_subscription_period_amount_and_account() {
        let ids = SampleIds::random("evt");
        let body = SAMPLES.event("invoice.payment_succeeded", &ids).unwrap();
        let event = parse_event(body.as_bytes()).unwrap().event;
        assert_eq!(event.subscription.as_deref(), Some(ids.subscription_id.as_str()));
        assert_eq!(event.account.as_deref(), Some("acct-demo-001"));
        assert_eq!(event.amount_minor, Some(2000));
        assert_eq!(event.currency.as_deref(), Some("USD"));
        let period = event.period.unwrap();
        assert!(period.end > period.start);
    }

    /// The invoice sample with its lines replaced, as Stripe writes them
    /// (basil) for an invoice of `lines`: (price, amount, proration).
    fn invoice_with_lines(ids: &SampleIds, lines: &[(&str, i64, bool)]) -> DomainEvent {
        let mut body: Value = serde_json::from_str(&SAMPLES.event("invoice.paid", ids).unwrap()).unwrap();
        let template = body.pointer("/data/object/lines/data/0").unwrap().clone();
        let lines: Vec<Value> = lines
            .iter()
            .enumerate()
            .map(|(i, (price, amount, proration))| {
                let mut line = template.clone();
                line["id"] = format!("il_test_{i}").into();
                line["amount"] = (*amount).into();
                line["pricing"]["price_details"]["price"] = (*price).into();
                line["parent"]["subscription_item_details"]["proration"] = (*proration).into();
                line["period"]["start"] = (1_764_000_000 + i64::from(*proration) * 86_400).into();
                line
            })
            .collect();
        body["data"]["object"]["lines"]["data"] = lines.into();
        parse_event(body.to_string().as_bytes()).unwrap().event
    }

    #[test]
    fn an_upgrade_invoice_is_read_by_what_its_lines_are_not_their_order() {
        let ids = SampleIds::random("evt");
        // Stripe's upgrade invoice: the unused time on the old price
        // credited first, the remaining time on the new one, then the next
        // period of the new price.
        let event = invoice_with_lines(
            &ids,
            &[("price_old", -1000, true), ("price_new", 1500, true), ("price_new", 4000, false)],
        );
        assert_eq!(event.kind, EventKind::Renewal);
        assert_eq!(event.plan.as_deref(), Some("price_new"));
        assert_eq!(event.period.unwrap().start.unix_timestamp(), 1_764_000_000, "the period of the new price's line");
        let prorated: Vec<_> = event.prorations.iter().map(|p| (p.plan.as_str(), p.credit)).collect();
        assert_eq!(prorated, [("price_old", true), ("price_new", false)], "what the change billed, for a top-up");
        assert!(event.prorations.iter().all(|p| p.period.start.unix_timestamp() == 1_764_086_400));
    }

    #[test]
    fn an_invoice_for_no_subscription_period_is_a_payment_for_no_period() {
        let ids = SampleIds::random("evt");
        // Prorations only (an upgrade invoiced at once).
        let prorations = invoice_with_lines(&ids, &[("price_old", -1000, true), ("price_new", 1500, true)]);
        assert_eq!((prorations.kind, prorations.plan), (EventKind::Payment, None));
        assert_eq!(prorations.prorations.len(), 2);
        assert_eq!(prorations.payment.as_deref(), Some(ids.payment_id.as_str()));
        // A one-off invoice: no subscription, an invoice item's line.
        let mut body: Value = serde_json::from_str(&SAMPLES.event("invoice.paid", &ids).unwrap()).unwrap();
        body["data"]["object"]["parent"] = Value::Null;
        body["data"]["object"]["lines"]["data"][0]["parent"] =
            serde_json::json!({"type": "invoice_item_details", "invoice_item_details": {"invoice_item": "ii_1"}});
        let one_off = parse_event(body.to_string().as_bytes()).unwrap().event;
        assert_eq!((one_off.kind, one_off.subscription), (EventKind::Payment, None));
        assert_eq!(
            one_off.plan.as_deref(),
            Some("price_1TestPlanPro"),
            "its item's price: a credit pack if configured"
        );
        assert_eq!(one_off.amount_minor, Some(2000));
        assert!(one_off.prorations.is_empty());
    }

    #[test]
    fn lines_before_basil_say_what_they_are_in_their_type() {
        let ids = SampleIds::random("evt");
        let mut body: Value = serde_json::from_str(&SAMPLES.event("invoice.paid", &ids).unwrap()).unwrap();
        let line = |price: &str, amount: i64, proration: bool| {
            serde_json::json!({"type": "subscription", "amount": amount, "proration": proration,
                "price": {"id": price}, "period": {"start": 1_764_000_000, "end": 1_766_592_000}})
        };
        body["data"]["object"]["lines"]["data"] =
            serde_json::json!([line("price_old", -1000, true), line("price_new", 4000, false)]);
        let event = parse_event(body.to_string().as_bytes()).unwrap().event;
        assert_eq!((event.kind, event.plan.as_deref()), (EventKind::Renewal, Some("price_new")));
    }

    #[test]
    fn delayed_payment_methods_provision_when_the_payment_succeeds() {
        let ids = SampleIds::random("evt");
        let session = |event_type: &str, payment_status: &str| {
            let body = SAMPLES
                .event("checkout.session.completed", &ids)
                .unwrap()
                .replace("\"checkout.session.completed\"", &format!("\"{event_type}\""))
                .replace("\"payment_status\": \"paid\"", &format!("\"payment_status\": \"{payment_status}\""));
            parse_event(body.as_bytes()).unwrap().event
        };
        assert_eq!(session("checkout.session.completed", "unpaid").kind, EventKind::Other);
        let succeeded = session("checkout.session.async_payment_succeeded", "paid");
        assert_eq!(succeeded.kind, EventKind::Purchase);
        assert_eq!(succeeded.subscription.as_deref(), Some(ids.subscription_id.as_str()));
        assert_eq!(session("checkout.session.async_payment_failed", "unpaid").kind, EventKind::PaymentFailed);
    }

    /// Payment Links take `client_reference_id` from the URL: the customer
    /// chooses it, so it names the account only when trusted.
    #[test]
    fn a_client_reference_names_the_account_only_when_trusted() {
        let ids = SampleIds::random("evt");
        let body = SAMPLES
            .event("checkout.session.completed", &ids)
            .unwrap()
            .replace("\"client_reference_id\": \"acct-demo-001\"", "\"client_reference_id\": \"acct-someone-else\"")
            .replace("\"account_id\": \"acct-demo-001\"", "\"note\": \"none\"");
        let account = |trusted: bool| {
            let attribution = Attribution { client_reference: trusted };
            parse_event_with(body.as_bytes(), attribution).unwrap().event.account
        };
        assert_eq!(account(false), Some(ids.customer_id.clone()), "untrusted: the customer");
        assert_eq!(account(true).as_deref(), Some("acct-someone-else"));
    }

    #[test]
    fn rejection_messages_never_quote_the_body() {
        let body = br#"{"id": 12345, "secret_marker": "zzz-payload-zzz"}"#;
        let rejection = parse_event(body).unwrap_err();
        assert!(!rejection.to_string().contains("zzz-payload-zzz"));
        assert!(!rejection.to_string().contains("12345"));
    }
}

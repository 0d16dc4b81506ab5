//! Paddle Billing: `Paddle-Signature: ts=<unix>;h1=<hex>[;h1=<hex>…]`,
//! HMAC-SHA256 over `"{ts}:{raw body}"` with the notification destination's
//! secret key, and the mapping of Paddle's event types onto the domain's
//! events.
//!
//! Every `h1` is compared in constant time against every active secret
//! (Paddle sends one per secret while a secret is rotated); keys other than
//! `ts` and `h1` are ignored, so a new scheme cannot break delivery, but a
//! repeated `ts` is refused. `ts` must be within the tolerance of now, both
//! ways: Paddle's SDKs allow 5 s after it, payhooks `PAYHOOKS_TOLERANCE_SECS`
//! (300 by default) either side, since a Lambda can be throttled for longer
//! than that and a rejected delivery only comes back later.
//!
//! The event id is the envelope's `event_id` (`evt_…`), the same across
//! Paddle's retries; the fingerprint covers the type and the exact bytes of
//! `data`. Paddle's SDK test vectors are the known-answer tests.
//!
//! # Mapping
//!
//! | `event_type` | condition | kind |
//! | --- | --- | --- |
//! | `subscription.created` | `status` `trialing` | trial started |
//! | `subscription.created`, `subscription.activated` | otherwise | purchase |
//! | `subscription.updated`, `.past_due`, `.paused`, `.resumed` | | subscription updated (its status) |
//! | `subscription.canceled` | | cancellation |
//! | `transaction.paid`, `transaction.completed` | names a subscription and bills a recurring price not prorated | renewal: the billing period, the recurring price, the grand total, any prorations billed with it |
//! | `transaction.paid`, `transaction.completed` | names a subscription, bills only prorations (a change billed at once) | payment: the grand total, the prorated lines (price, time covered, credit or charge) |
//! | `transaction.payment_failed` | | payment failed |
//! | `adjustment.created`, `adjustment.updated` | `action` refund, `status` approved | refund of its transaction, for its total (keyed by the adjustment) |
//! | `adjustment.created`, `adjustment.updated` | `action` chargeback, `status` approved | refund of its transaction, for its total (keyed `chargeback:{transaction}`: the reversal names no adjustment) |
//! | `adjustment.created`, `adjustment.updated` | `action` chargeback_reverse, `status` approved (Paddle won the dispute) | the transaction's chargeback undone |
//! | anything else (a pending adjustment, a one-off transaction) | | other: recorded as ignored |
//!
//! `transaction.paid` and `transaction.completed` of one transaction name
//! one subscription and period, so they make one grant. The account is the
//! object's `custom_data.account_id` when set, else Paddle's customer id.

mod integration;

pub use integration::Paddle;

use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use time::OffsetDateTime;

use super::json::{at, str_at, time_at};
use super::money::decimal_to_minor;
use super::timestamped_hmac::TimestampedHmac;
use super::{Inbound, Rejection, SampleIds, Samples, VerifiedEvent, Verifier};
use crate::event::{DomainEvent, EventId, EventKind, Period, Proration, Provider};
use crate::secret::{Secret, SecretSet};

pub const SIGNATURE_HEADER: &str = "paddle-signature";

#[derive(Debug, Clone)]
pub struct PaddleVerifier {
    secrets: SecretSet,
    tolerance: Duration,
}

impl PaddleVerifier {
    pub fn new(secrets: SecretSet, tolerance: Duration) -> Self {
        Self { secrets, tolerance }
    }
}

#[async_trait]
impl Verifier for PaddleVerifier {
    fn provider(&self) -> Provider {
        Provider::Paddle
    }

    async fn verify(&self, inbound: &Inbound<'_>, now: OffsetDateTime) -> Result<VerifiedEvent, Rejection> {
        let header = super::single_header(inbound.headers, SIGNATURE_HEADER)?;
        verify_signature(header, inbound.body, &self.secrets, now, self.tolerance)?;
        parse_event(inbound.body)
    }
}

/// `ts=…;h1=…` over `"{ts}:{body}"`.
const SCHEME: TimestampedHmac = TimestampedHmac {
    header: SIGNATURE_HEADER,
    separator: ';',
    timestamp_key: "ts",
    signature_key: "h1",
    joiner: ":",
    no_timestamp: "no timestamp (ts=)",
    no_signature: "no h1 signature",
};

/// Checks a `Paddle-Signature` header against the raw body: the signature
/// first, then the timestamp window in both directions.
pub fn verify_signature(
    header: &str,
    body: &[u8],
    secrets: &SecretSet,
    now: OffsetDateTime,
    tolerance: Duration,
) -> Result<(), Rejection> {
    SCHEME.verify(header, body, secrets, now, tolerance)
}

/// A `Paddle-Signature` value for `body` at `timestamp`, one `h1` per
/// secret, as Paddle sends while a secret is rotated.
pub fn signature_header(body: &[u8], secrets: &[&Secret], timestamp: i64) -> String {
    SCHEME.sign(body, secrets, timestamp)
}

/// Events in the shapes of Paddle's (API version 1) notifications, with
/// `{{event_id}}`, `{{customer_id}}`, `{{subscription_id}}`,
/// `{{payment_id}}` (the transaction) and `{{refund_id}}` (the adjustment)
/// placeholders; their price is `pri_test_pro_monthly`.
pub const SAMPLES: Samples = Samples(&[
    ("subscription.created", include_str!("samples/subscription.created.json")),
    ("subscription.activated", include_str!("samples/subscription.activated.json")),
    ("subscription.updated", include_str!("samples/subscription.updated.json")),
    ("subscription.updated.upgrade", include_str!("samples/subscription.updated.upgrade.json")),
    ("subscription.past_due", include_str!("samples/subscription.past_due.json")),
    ("subscription.paused", include_str!("samples/subscription.paused.json")),
    ("subscription.resumed", include_str!("samples/subscription.resumed.json")),
    ("subscription.canceled", include_str!("samples/subscription.canceled.json")),
    ("transaction.paid", include_str!("samples/transaction.paid.json")),
    ("transaction.completed", include_str!("samples/transaction.completed.json")),
    ("transaction.completed.upgrade", include_str!("samples/transaction.completed.upgrade.json")),
    ("transaction.payment_failed", include_str!("samples/transaction.payment_failed.json")),
    ("adjustment.created", include_str!("samples/adjustment.created.json")),
    ("adjustment.updated", include_str!("samples/adjustment.updated.json")),
    // A chargeback of the whole transaction, then Paddle contests it and wins.
    ("adjustment.created.chargeback", include_str!("samples/adjustment.created.chargeback.json")),
    ("adjustment.created.chargeback_reverse", include_str!("samples/adjustment.created.chargeback_reverse.json")),
]);

/// Ids in Paddle's shapes (a prefix and 26 characters).
pub fn sample_ids() -> SampleIds {
    let id = |prefix: &str| format!("{prefix}_{}", &uuid::Uuid::new_v4().simple().to_string()[..26]);
    SampleIds {
        event_id: id("evt"),
        customer_id: id("ctm"),
        subscription_id: id("sub"),
        payment_id: id("txn"),
        payment_alias_id: id("inv"),
        refund_id: id("adj"),
    }
}

#[derive(Deserialize)]
struct Envelope<'a> {
    event_id: Option<String>,
    event_type: Option<String>,
    occurred_at: Option<String>,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
}

/// Parses a verified body into the domain's event.
pub fn parse_event(body: &[u8]) -> Result<VerifiedEvent, Rejection> {
    let envelope: Envelope<'_> = serde_json::from_slice(body)
        .map_err(|_| Rejection::InvalidPayload { reason: "not a JSON object with Paddle's event fields" })?;
    let event_id = EventId::parse(envelope.event_id.as_deref().unwrap_or_default())?;
    let event_type = envelope.event_type.ok_or(Rejection::InvalidPayload { reason: "no event_type" })?;
    let occurred_at = envelope
        .occurred_at
        .and_then(|t| time_at(&Value::String(t), &[]))
        .ok_or(Rejection::InvalidPayload { reason: "no valid occurred_at" })?;
    let data = envelope.data.ok_or(Rejection::InvalidPayload { reason: "no data object" })?;
    let object: Value =
        serde_json::from_str(data.get()).map_err(|_| Rejection::InvalidPayload { reason: "no data object" })?;
    let fingerprint = super::fingerprint(&event_type, data.get().as_bytes());
    Ok(VerifiedEvent { event_id, fingerprint, event: normalize(event_type, occurred_at, &object) })
}

/// An amount in minor units, as Paddle writes them: a string of digits.
fn amount_at(value: &Value, path: &[&str]) -> Option<i64> {
    decimal_to_minor(at(value, path)?.as_str()?, 0)
}

fn period_at(value: &Value, path: &str) -> Option<Period> {
    Some(Period { start: time_at(value, &[path, "starts_at"])?, end: time_at(value, &[path, "ends_at"])? })
}

/// The recurring price a subscription or transaction bills for a whole
/// period: the first item whose price has a billing cycle (one-off add-ons
/// have none) and that is not a proration, whatever its position.
fn recurring_price(o: &Value) -> Option<String> {
    o.get("items")?.as_array()?.iter().find_map(|item| {
        if item.get("proration").is_some_and(|p| !p.is_null()) {
            return None;
        }
        let price = item.get("price")?;
        price.get("billing_cycle").filter(|cycle| !cycle.is_null())?;
        str_at(price, &["id"])
    })
}

/// A transaction's prorated lines (a subscription's items changed within
/// its period): each line's price, the time it covers (from the change to
/// the period's end), the share of the period that is (its `rate`) and
/// whether it gives unused time back (a negative total or quantity), read
/// from `details.line_items`.
fn prorations(o: &Value) -> Vec<Proration> {
    let lines = o.pointer("/details/line_items").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    lines
        .iter()
        .filter_map(|line| {
            let proration = line.get("proration").filter(|p| !p.is_null())?;
            let negative_total = str_at(line, &["totals", "total"]).is_some_and(|t| t.starts_with('-'));
            let negative_quantity = line.get("quantity").and_then(Value::as_i64).is_some_and(|q| q < 0);
            Some(Proration {
                plan: str_at(line, &["price_id"])?,
                period: period_at(proration, "billing_period")?,
                credit: negative_total || negative_quantity,
                share: str_at(proration, &["rate"]).and_then(|rate| decimal_to_minor(&rate, 9)),
            })
        })
        .collect()
}

fn normalize(event_type: String, occurred_at: OffsetDateTime, o: &Value) -> DomainEvent {
    let customer = str_at(o, &["customer_id"]);
    let mut event = DomainEvent {
        customer: customer.clone(),
        currency: str_at(o, &["currency_code"]).map(|c| c.to_ascii_uppercase()),
        object: str_at(o, &["id"]),
        ..DomainEvent::new(event_type, occurred_at)
    };
    match event.event_type.as_str() {
        name @ ("subscription.created"
        | "subscription.activated"
        | "subscription.updated"
        | "subscription.past_due"
        | "subscription.paused"
        | "subscription.resumed"
        | "subscription.canceled") => {
            let status = str_at(o, &["status"]);
            event.kind = match name {
                "subscription.created" if status.as_deref() == Some("trialing") => EventKind::TrialStarted,
                "subscription.created" | "subscription.activated" => EventKind::Purchase,
                "subscription.canceled" => EventKind::Cancellation,
                _ => EventKind::SubscriptionUpdated,
            };
            event.subscription = str_at(o, &["id"]);
            event.status = status;
            event.plan = recurring_price(o);
            event.period = period_at(o, "current_billing_period");
        }
        "transaction.paid" | "transaction.completed" => {
            // A one-off transaction pays for no period: recorded only.
            if let Some(subscription) = str_at(o, &["subscription_id"]) {
                event.subscription = Some(subscription);
                event.plan = recurring_price(o);
                event.amount_minor = amount_at(o, &["details", "totals", "grand_total"]);
                event.payment = str_at(o, &["id"]);
                event.payment_alias = str_at(o, &["invoice_id"]);
                event.prorations = prorations(o);
                // A change billed at once (`prorated_immediately`) bills
                // only prorations: paid, but for no new period, whatever
                // its `billing_period` says.
                if event.plan.is_none() && !event.prorations.is_empty() {
                    event.kind = EventKind::Payment;
                } else {
                    event.kind = EventKind::Renewal;
                    event.period = period_at(o, "billing_period");
                }
            }
        }
        "transaction.payment_failed" => {
            event.kind = EventKind::PaymentFailed;
            event.subscription = str_at(o, &["subscription_id"]);
            event.plan = recurring_price(o);
            event.amount_minor = amount_at(o, &["details", "totals", "grand_total"]);
        }
        "adjustment.created" | "adjustment.updated" => {
            let transaction = str_at(o, &["transaction_id"]);
            // A chargeback and its reversal are separate adjustments that
            // name only the transaction: the one chargeback of a
            // transaction is what a reversal undoes.
            let chargeback = transaction.as_deref().map(|t| format!("chargeback:{t}"));
            let (kind, refund_id) = match str_at(o, &["action"]).as_deref() {
                Some("refund") => (EventKind::Refund, str_at(o, &["id"])),
                Some("chargeback") => (EventKind::Refund, chargeback),
                // Paddle contested the chargeback and won: the money is back.
                Some("chargeback_reverse") => (EventKind::RefundReversed, chargeback),
                _ => (EventKind::Other, None),
            };
            // A refund waits for Paddle's approval: pending or rejected, it
            // moves no money.
            if kind != EventKind::Other && str_at(o, &["status"]).as_deref() == Some("approved") {
                event.kind = kind;
                event.refund_id = refund_id;
                event.amount_minor = amount_at(o, &["totals", "total"]);
                event.payment = transaction;
                event.subscription = str_at(o, &["subscription_id"]);
            }
            event.status = str_at(o, &["status"]);
        }
        _ => {}
    }
    event.account = str_at(o, &["custom_data", "account_id"]).or(customer);
    event
}

#[cfg(test)]
mod tests {
    use super::*;

    /// paddle-python-sdk's `test_Verifier` vectors: exact bytes (the SDK
    /// strips the fixture's trailing newline before signing).
    const KAT_SECRET: &str = "pdl_ntfset_01hs0t3tw21j988db1pam5xg8m_GrOWLNef+vmtjJYq4mSnHNzvc8uWoJ1I";
    const KAT_STANDARD: &[u8] = include_bytes!("../../../../tests/fixtures/paddle-python-sdk-standard_payload.json");
    const KAT_STANDARD_HEADER: &str =
        "ts=1710498758;h1=558bf93944dbeb4790c7a8af6cb2ea435c8ca9c8396aafc1a4e37424ac132744";
    const KAT_SPECIAL: &[u8] =
        include_bytes!("../../../../tests/fixtures/paddle-python-sdk-special_chars_payload.json");
    const KAT_SPECIAL_HEADER: &str =
        "ts=1710498288;h1=38219b3ba1578184e625c29d201a27cd25bd69e2ec9c3ab87dcb90d87ff73a41";
    const WINDOW: Duration = Duration::from_secs(300);

    fn at_unix(t: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(t).unwrap()
    }

    fn secrets(list: &str) -> SecretSet {
        SecretSet::from_comma_separated(list).unwrap()
    }

    #[test]
    fn paddles_own_vectors_verify() {
        for (body, header, t) in
            [(KAT_STANDARD, KAT_STANDARD_HEADER, 1_710_498_758), (KAT_SPECIAL, KAT_SPECIAL_HEADER, 1_710_498_288)]
        {
            verify_signature(header, body, &secrets(KAT_SECRET), at_unix(t + 3), WINDOW).unwrap();
            let mut changed = body.to_vec();
            changed.push(b' ');
            assert_eq!(
                verify_signature(header, &changed, &secrets(KAT_SECRET), at_unix(t + 3), WINDOW),
                Err(Rejection::SignatureMismatch)
            );
        }
    }

    /// The SDK's rotation vector: two `h1`, three secrets, one pair matches.
    #[test]
    fn during_a_rotation_any_h1_from_any_secret_verifies() {
        let header = "ts=1696195954;h1=dummy;h1=d96299976a6eb066f484d7fde011ac56fc32b38fc9940bc419d6e537fdc6ef02";
        let rotating = secrets(
            "pdl_ntf_01hbpjmytsa32fhr36nqgc3kgb_TjIG2BXbm83HPXqNfziwe506sBEdqL/4,\
             pdl_ntf_01hbpjmytsa32fhr36nqgc3kgb_vB/yIOnTOCWIvpBadM5jzBZPHc7OmdSo,\
             pdl_ntf_01hbpjmytsa32fhr36nqgc3kgb_WvRO0eL4Bj9rgYYIBZY6wZhG4EHy9jzh",
        );
        verify_signature(header, b"hello-world", &rotating, at_unix(1_696_195_954), WINDOW).unwrap();
        let only_old = secrets("pdl_ntf_01hbpjmytsa32fhr36nqgc3kgb_TjIG2BXbm83HPXqNfziwe506sBEdqL/4");
        assert_eq!(
            verify_signature(header, b"hello-world", &only_old, at_unix(1_696_195_954), WINDOW),
            Err(Rejection::SignatureMismatch)
        );
    }

    #[test]
    fn the_timestamp_must_be_inside_the_window_both_ways() {
        let t = 1_710_498_758;
        let check =
            |now| verify_signature(KAT_STANDARD_HEADER, KAT_STANDARD, &secrets(KAT_SECRET), at_unix(now), WINDOW);
        assert!(check(t + 300).is_ok());
        assert_eq!(check(t + 301), Err(Rejection::TimestampOutOfTolerance { tolerance_secs: 300 }));
        assert_eq!(check(t - 301), Err(Rejection::TimestampOutOfTolerance { tolerance_secs: 300 }));
    }

    #[test]
    fn a_malformed_header_is_refused_with_its_reason() {
        let body = b"{}";
        let now = at_unix(1_700_000_000);
        for (header, reason) in [
            ("h1=00", "no timestamp (ts=)"),
            ("ts=1700000000", "no h1 signature"),
            ("ts=1700000000;ts=1700000000;h1=00", "the timestamp appears more than once"),
            ("ts=soon;h1=00", "the timestamp is not a number of seconds"),
            ("ts", "an item has no '='"),
        ] {
            assert_eq!(
                verify_signature(header, body, &secrets("s"), now, WINDOW),
                Err(Rejection::MalformedSignature { header: SIGNATURE_HEADER, reason }),
                "{header}"
            );
        }
    }

    #[test]
    fn what_this_module_signs_it_verifies() {
        let body = br#"{"event_id":"evt_1"}"#;
        let (a, b) = (Secret::new("old"), Secret::new("new"));
        let header = signature_header(body, &[&a, &b], 1_700_000_000);
        verify_signature(&header, body, &secrets("new"), at_unix(1_700_000_000), WINDOW).unwrap();
    }

    fn sample(name: &str) -> (SampleIds, VerifiedEvent) {
        let ids = sample_ids();
        let body = SAMPLES.event(name, &ids).unwrap();
        (ids, parse_event(body.as_bytes()).unwrap())
    }

    #[test]
    fn the_samples_map_as_documented() {
        let (ids, created) = sample("subscription.created");
        assert_eq!(created.event_id.as_str(), ids.event_id);
        let e = created.event;
        assert_eq!(
            (e.kind, e.subscription.as_deref(), e.plan.as_deref()),
            (EventKind::Purchase, Some(ids.subscription_id.as_str()), Some("pri_test_pro_monthly"))
        );
        assert_eq!(e.account.as_deref(), Some("acct-demo-001"));
        assert_eq!(e.customer.as_deref(), Some(ids.customer_id.as_str()));

        for name in ["transaction.paid", "transaction.completed"] {
            let (ids, renewal) = sample(name);
            let e = renewal.event;
            assert_eq!(e.kind, EventKind::Renewal, "{name}");
            assert_eq!((e.amount_minor, e.currency.as_deref()), (Some(2000), Some("USD")));
            assert_eq!(e.payment.as_deref(), Some(ids.payment_id.as_str()));
            assert_eq!(e.plan.as_deref(), Some("pri_test_pro_monthly"));
            assert!(e.period.is_some_and(|p| p.end > p.start));
        }
        let (ids, refund) = sample("adjustment.updated");
        let e = refund.event;
        assert_eq!((e.kind, e.amount_minor), (EventKind::Refund, Some(500)));
        assert_eq!(
            (e.refund_id.as_deref(), e.payment.as_deref()),
            (Some(ids.refund_id.as_str()), Some(ids.payment_id.as_str()))
        );
        assert_eq!(
            sample("adjustment.created").1.event.kind,
            EventKind::Other,
            "a refund pending approval moves no money"
        );
        assert_eq!(sample("subscription.canceled").1.event.kind, EventKind::Cancellation);
        assert_eq!(sample("transaction.payment_failed").1.event.kind, EventKind::PaymentFailed);
        for name in ["subscription.past_due", "subscription.paused", "subscription.resumed", "subscription.updated"] {
            let e = sample(name).1.event;
            assert_eq!(e.kind, EventKind::SubscriptionUpdated, "{name}");
            assert!(e.status.is_some(), "{name}");
        }
    }

    /// Paddle records a chargeback as an adjustment of its own, and a won
    /// contest as another (`chargeback_reverse`) naming only the
    /// transaction: both are keyed by the transaction, so the reversal
    /// undoes the chargeback whichever adjustment ids they carry.
    #[test]
    fn a_chargeback_reversal_undoes_the_transactions_chargeback() {
        let ids = SampleIds::random("evt");
        let event = |sample: &str| parse_event(SAMPLES.event(sample, &ids).unwrap().as_bytes()).unwrap().event;
        let chargeback = event("adjustment.created.chargeback");
        let reversal = event("adjustment.created.chargeback_reverse");
        let key = Some(format!("chargeback:{}", ids.payment_id));
        assert_eq!((chargeback.kind, &chargeback.refund_id), (EventKind::Refund, &key));
        assert_eq!((reversal.kind, &reversal.refund_id), (EventKind::RefundReversed, &key));
        assert_eq!((chargeback.amount_minor, reversal.amount_minor), (Some(2000), Some(2000)));
        assert_eq!(reversal.payment.as_deref(), Some(ids.payment_id.as_str()));
        assert!(chargeback.occurred_at < reversal.occurred_at);
        // Pending, a reversal moves nothing; a warning never does.
        let pending = SAMPLES
            .event("adjustment.created.chargeback_reverse", &ids)
            .unwrap()
            .replace(r#""status": "approved""#, r#""status": "pending_approval""#);
        assert_eq!(parse_event(pending.as_bytes()).unwrap().event.kind, EventKind::Other);
        let warning = SAMPLES
            .event("adjustment.created.chargeback", &ids)
            .unwrap()
            .replace(r#""action": "chargeback""#, r#""action": "chargeback_warning""#);
        assert_eq!(parse_event(warning.as_bytes()).unwrap().event.kind, EventKind::Other);
    }

    /// Paddle's upgrade with `proration_billing_mode: prorated_immediately`:
    /// `subscription.updated` names the new price at once; the transaction
    /// it creates (`origin: subscription_update`) bills the unused time of
    /// the old price back (a negative line) and the rest of the period on
    /// the new one, each line with its `proration`. That transaction is a
    /// payment for no new period; its lines are read by what they are.
    #[test]
    fn an_upgrade_billed_at_once_is_a_payment_of_prorations() {
        let (_, change) = sample("subscription.updated.upgrade");
        let e = change.event;
        assert_eq!((e.kind, e.plan.as_deref()), (EventKind::SubscriptionUpdated, Some("pri_test_team_monthly")));
        let (ids, paid) = sample("transaction.completed.upgrade");
        let e = paid.event;
        assert_eq!((e.kind, e.plan.as_deref(), e.period), (EventKind::Payment, None, None));
        assert_eq!((e.amount_minor, e.payment), (Some(1500), Some(format!("{}_upgrade", ids.payment_id))));
        let lines: Vec<_> = e.prorations.iter().map(|p| (p.plan.as_str(), p.credit)).collect();
        assert_eq!(lines, [("pri_test_pro_monthly", true), ("pri_test_team_monthly", false)]);
        let half = time_at(&Value::String("2026-11-16T10:00:00Z".into()), &[]).unwrap();
        let end = time_at(&Value::String("2026-12-01T10:00:00Z".into()), &[]).unwrap();
        assert!(e.prorations.iter().all(|p| p.period == Period { start: half, end }));
        assert!(e.prorations.iter().all(|p| p.share == Some(500_000_000)), "half the period");
        let month = 30 * 86_400;
        assert_eq!(e.prorations[0].implied_period_secs(), Some(month));

        // `prorated_next_billing_period`: the prorations ride on the next
        // renewal, which still bills its whole period on the new price.
        let renewal = as_sent("transaction.completed.upgrade", "transaction.completed", &ids, |data| {
            let mut whole = data["items"][1].clone();
            whole["proration"] = Value::Null;
            data["items"].as_array_mut().unwrap().push(whole);
        });
        assert_eq!((renewal.kind, renewal.plan.as_deref()), (EventKind::Renewal, Some("pri_test_team_monthly")));
        assert_eq!(renewal.prorations.len(), 2);
    }

    /// One sample, sent as `event_type` with `edit` applied to its data.
    fn as_sent(sample: &str, event_type: &str, ids: &SampleIds, edit: impl FnOnce(&mut Value)) -> DomainEvent {
        let mut value: Value = serde_json::from_str(&SAMPLES.event(sample, ids).unwrap()).unwrap();
        value["event_type"] = Value::String(event_type.to_owned());
        edit(&mut value["data"]);
        parse_event(value.to_string().as_bytes()).unwrap().event
    }

    /// Paddle's webhook simulator, "subscription renewed": the roll
    /// (`subscription.updated`), `transaction.created` and `.billed`, then
    /// on payment `transaction.updated`, `.paid`, `.updated`, `.completed`.
    /// Only the paid transaction grants, once for its period (its two
    /// events carry one period, so one grant key); on a failed payment,
    /// `transaction.payment_failed` and `subscription.past_due` grant nothing.
    #[test]
    fn paddles_documented_renewal_grants_only_when_paid() {
        let ids = sample_ids();
        let status = |status: &'static str| move |data: &mut Value| data["status"] = Value::String(status.into());
        let sequence = [
            as_sent("subscription.updated", "subscription.updated", &ids, |_| {}),
            as_sent("transaction.paid", "transaction.created", &ids, status("billed")),
            as_sent("transaction.paid", "transaction.billed", &ids, status("billed")),
            as_sent("transaction.paid", "transaction.updated", &ids, status("paid")),
            as_sent("transaction.paid", "transaction.paid", &ids, |_| {}),
            as_sent("transaction.completed", "transaction.updated", &ids, |_| {}),
            as_sent("transaction.completed", "transaction.completed", &ids, |_| {}),
        ];
        let kinds: Vec<_> = sequence.iter().map(|e| e.kind).collect();
        use EventKind::{Other, Renewal, SubscriptionUpdated};
        assert_eq!(kinds, [SubscriptionUpdated, Other, Other, Other, Renewal, Other, Renewal]);
        assert_eq!((sequence[4].period, &sequence[4].payment), (sequence[6].period, &sequence[6].payment));

        let failed = [
            as_sent("transaction.payment_failed", "transaction.payment_failed", &ids, |_| {}),
            as_sent("transaction.payment_failed", "transaction.past_due", &ids, status("past_due")),
            as_sent("subscription.past_due", "subscription.past_due", &ids, |_| {}),
        ];
        let kinds: Vec<_> = failed.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, [EventKind::PaymentFailed, Other, SubscriptionUpdated]);
    }

    /// "Subscription created": the checkout's transaction is paid before
    /// Paddle creates the subscription, so `transaction.paid` names none;
    /// `transaction.completed`, after `subscription.created`, names it and
    /// grants the first period.
    #[test]
    fn paddles_documented_checkout_grants_the_first_period_once() {
        let ids = sample_ids();
        let paid = as_sent("transaction.paid", "transaction.paid", &ids, |data| data["subscription_id"] = Value::Null);
        let created = as_sent("subscription.created", "subscription.created", &ids, |_| {});
        let completed = as_sent("transaction.completed", "transaction.completed", &ids, |_| {});
        assert_eq!(
            (paid.kind, created.kind, completed.kind),
            (EventKind::Other, EventKind::Purchase, EventKind::Renewal)
        );
    }

    #[test]
    fn a_one_off_transaction_grants_nothing_and_the_recurring_price_is_found_wherever_it_is() {
        let body = SAMPLES.event("transaction.completed", &sample_ids()).unwrap();
        let mut value: Value = serde_json::from_str(&body).unwrap();
        value["data"]["subscription_id"] = Value::Null;
        let one_off = parse_event(value.to_string().as_bytes()).unwrap();
        assert_eq!(one_off.event.kind, EventKind::Other);

        let mut value: Value = serde_json::from_str(&body).unwrap();
        let addon = serde_json::json!({"price": {"id": "pri_test_addon", "billing_cycle": null}, "quantity": 1});
        value["data"]["items"].as_array_mut().unwrap().insert(0, addon);
        let with_addon = parse_event(value.to_string().as_bytes()).unwrap();
        assert_eq!(with_addon.event.plan.as_deref(), Some("pri_test_pro_monthly"));
    }

    #[test]
    fn a_retry_has_the_same_fingerprint_and_other_content_another() {
        let ids = sample_ids();
        let body = SAMPLES.event("transaction.completed", &ids).unwrap();
        let first = parse_event(body.as_bytes()).unwrap();
        let again =
            parse_event(body.replace("ntf_test_01notification0000", "ntf_test_01notification0001").as_bytes()).unwrap();
        assert_eq!(first.fingerprint, again.fingerprint, "the notification id is not the event's content");
        let other = parse_event(body.replace("\"2000\"", "\"2001\"").as_bytes()).unwrap();
        assert_ne!(first.fingerprint, other.fingerprint);
    }
}

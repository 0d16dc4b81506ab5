//! The domain's vocabulary: which provider sent an event, how it is keyed,
//! what it means, and where it is in its life.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// A payment provider that payhooks accepts webhooks from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Stripe,
    Paystack,
    Flutterwave,
    Killbill,
    Lago,
    Paypal,
    Paddle,
    Razorpay,
}

impl Provider {
    pub const ALL: &'static [Provider] = &[
        Provider::Stripe,
        Provider::Paystack,
        Provider::Flutterwave,
        Provider::Killbill,
        Provider::Lago,
        Provider::Paypal,
        Provider::Paddle,
        Provider::Razorpay,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Stripe => "stripe",
            Provider::Paystack => "paystack",
            Provider::Flutterwave => "flutterwave",
            Provider::Killbill => "killbill",
            Provider::Lago => "lago",
            Provider::Paypal => "paypal",
            Provider::Paddle => "paddle",
            Provider::Razorpay => "razorpay",
        }
    }

    /// Prefix of this provider's environment variables (`STRIPE_WEBHOOK_SECRET`).
    pub fn env_prefix(self) -> &'static str {
        match self {
            Provider::Stripe => "STRIPE",
            Provider::Paystack => "PAYSTACK",
            Provider::Flutterwave => "FLUTTERWAVE",
            Provider::Killbill => "KILLBILL",
            Provider::Lago => "LAGO",
            Provider::Paypal => "PAYPAL",
            Provider::Paddle => "PADDLE",
            Provider::Razorpay => "RAZORPAY",
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown provider")]
pub struct UnknownProvider;

impl FromStr for Provider {
    type Err = UnknownProvider;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Provider::ALL.iter().copied().find(|p| p.as_str() == s).ok_or(UnknownProvider)
    }
}

/// A provider's own identifier for an event (`evt_…` for Stripe).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EventId(String);

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum InvalidEventId {
    #[error("the event id is empty")]
    Empty,
    #[error("the event id is longer than {max} characters")]
    TooLong { max: usize },
    #[error("the event id contains characters outside printable ASCII")]
    BadCharacters,
}

impl EventId {
    pub const MAX_LEN: usize = 255;

    /// Accepts what providers actually send; refuses what could not be a key
    /// (empty, huge, control characters) so a hostile body cannot shape the
    /// table's keys or the logs.
    pub fn parse(raw: &str) -> Result<Self, InvalidEventId> {
        if raw.is_empty() {
            return Err(InvalidEventId::Empty);
        }
        if raw.len() > Self::MAX_LEN {
            return Err(InvalidEventId::TooLong { max: Self::MAX_LEN });
        }
        if !raw.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(InvalidEventId::BadCharacters);
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for EventId {
    type Error = InvalidEventId;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        EventId::parse(&value)
    }
}

impl From<EventId> for String {
    fn from(id: EventId) -> Self {
        id.0
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Provider + id: what makes an event unique, and the record's key. Two
/// providers may use the same id without colliding.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EventKey {
    pub provider: Provider,
    pub event_id: EventId,
}

impl EventKey {
    pub fn new(provider: Provider, event_id: EventId) -> Self {
        Self { provider, event_id }
    }

    /// The partition key in the events table.
    pub fn storage_key(&self) -> String {
        format!("{}#{}", self.provider, self.event_id)
    }

    /// The message put on the queue: just the key. The record is the source
    /// of truth (I9), so a message can be replayed at any time.
    pub fn message_body(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The key a queue message carries; `None` for anything else.
    pub fn from_message(body: &str) -> Option<Self> {
        serde_json::from_str(body).ok()
    }
}

impl fmt::Display for EventKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.provider, self.event_id)
    }
}

/// What an event means to the billing backend, whatever the provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A first purchase or activation: the account should be provisioned.
    Purchase,
    /// A paid billing period.
    Renewal,
    /// A payment for no subscription period (a one-off invoice, a setup
    /// fee, an invoice of prorations only): recorded, so its refunds find
    /// it; it grants no credits.
    Payment,
    /// The subscription changed (period roll, plan or status change).
    SubscriptionUpdated,
    /// A refund of (part of) a payment, named by `payment`; also funds
    /// withdrawn for a dispute (named by the dispute's id).
    Refund,
    /// A refund that failed or was cancelled, or a dispute's funds
    /// reinstated: what it clawed back is given back.
    RefundReversed,
    Cancellation,
    PaymentFailed,
    TrialStarted,
    /// Two of the provider's ids name one payment (Stripe: an invoice and
    /// its payment intent), so a refund naming one finds what the other
    /// granted.
    PaymentLinked,
    /// Anything payhooks has no handler for; recorded as ignored (I8).
    Other,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    #[serde(with = "time::serde::rfc3339")]
    pub start: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub end: OffsetDateTime,
}

/// A part of a period billed again at another plan after the plan changed
/// mid-period (Stripe's proration lines, Paddle's prorated items): the new
/// plan's remaining time charged, or the old plan's unused time credited.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proration {
    pub plan: String,
    /// The time it covers: from the change to the period's end.
    pub period: Period,
    /// Unused time given back (a negative line), not time charged.
    pub credit: bool,
    /// The share of the whole period it covers, in billionths, where the
    /// provider says (Paddle's `rate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share: Option<i64>,
}

impl Proration {
    /// The whole period's length, implied by the share the line covers.
    pub fn implied_period_secs(&self) -> Option<i64> {
        let secs = i128::from((self.period.end - self.period.start).whole_seconds());
        let share = i128::from(self.share.filter(|share| *share > 0)?);
        i64::try_from(secs * 1_000_000_000 / share).ok().filter(|secs| *secs > 0)
    }
}

/// A provider's event normalized onto the domain: what the processor acts on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainEvent {
    pub kind: EventKind,
    /// The provider's own type name (`invoice.paid`), kept for the history.
    pub event_type: String,
    /// When the provider says the event happened.
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    /// The account it belongs to: an explicit account id from the event's
    /// metadata, else the provider's customer id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<Period>,
    /// Amount in the currency's minor units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_minor: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_id: Option<String>,
    /// The provider's id of the payment a renewal was paid by or a refund
    /// refunds: where the two meet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment: Option<String>,
    /// Another id of the same payment, which refunds may name instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_alias: Option<String>,
    /// The subscription's status as the provider states it (`active`,
    /// `past_due`, `canceled`, …), for events that set it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// The provider's id of the object the event is about (invoice,
    /// transaction, payment, subscription): what confirmation looks up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    /// What a paid invoice bills for a plan change mid-period.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prorations: Vec<Proration>,
    /// The share of a whole period a renewal pays for, in billionths, where
    /// the provider bills less than one (Lago's first fee of a subscription
    /// that starts mid-period, an upgrade's among them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_share: Option<i64>,
}

impl DomainEvent {
    /// An event of `event_type` that nothing is known about yet: kind
    /// `Other`, every field empty. Providers' mappings fill it in.
    pub fn new(event_type: impl Into<String>, occurred_at: OffsetDateTime) -> Self {
        Self {
            kind: EventKind::Other,
            event_type: event_type.into(),
            occurred_at,
            account: None,
            customer: None,
            subscription: None,
            plan: None,
            period: None,
            amount_minor: None,
            currency: None,
            refund_id: None,
            payment: None,
            payment_alias: None,
            status: None,
            object: None,
            prorations: Vec::new(),
            period_share: None,
        }
    }
}

/// Where an event is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventStatus {
    /// Recorded; not yet known to be in the queue.
    Received,
    Enqueued,
    /// Leased by a worker until `lease_until`.
    Processing,
    Completed,
    /// No handler for its type (I8).
    Ignored,
    /// Older than the state already applied: changed nothing (I6).
    Stale,
    /// Can never succeed; sent to the dead-letter queue.
    Failed,
}

impl EventStatus {
    pub const ALL: [EventStatus; 7] = [
        EventStatus::Received,
        EventStatus::Enqueued,
        EventStatus::Processing,
        EventStatus::Completed,
        EventStatus::Ignored,
        EventStatus::Stale,
        EventStatus::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventStatus::Received => "received",
            EventStatus::Enqueued => "enqueued",
            EventStatus::Processing => "processing",
            EventStatus::Completed => "completed",
            EventStatus::Ignored => "ignored",
            EventStatus::Stale => "stale",
            EventStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == s)
    }

    pub fn is_final(self) -> bool {
        matches!(self, EventStatus::Completed | EventStatus::Ignored | EventStatus::Stale | EventStatus::Failed)
    }

    /// Whether a record in this state may expire: done with for good. A
    /// failed event waits for a person to replay it, so it stays.
    pub fn may_expire(self) -> bool {
        matches!(self, EventStatus::Completed | EventStatus::Ignored | EventStatus::Stale)
    }
}

impl fmt::Display for EventStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What ingest writes on first sight of an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEvent {
    pub key: EventKey,
    /// Fingerprint of the event's content, to tell a retry (same content)
    /// from a conflicting reuse of the id (I10).
    pub fingerprint: String,
    pub event: DomainEvent,
    pub received_at: OffsetDateTime,
}

/// The stored record of one event: the source of truth for its state (I9).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRecord {
    pub provider: Provider,
    pub event_id: EventId,
    pub event_type: String,
    pub status: EventStatus,
    /// Leases taken so far (processing attempts).
    pub attempts: u32,
    pub fingerprint: String,
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub enqueued_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease_owner: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub lease_until: Option<OffsetDateTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Deliveries that reused this id with different content (I10).
    pub conflicts: u32,
    /// When the table may forget the record (DynamoDB TTL): set only when
    /// the event reaches a final state other than failed, so a record with
    /// work left to do never expires (I14).
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    pub event: DomainEvent,
}

impl EventRecord {
    pub fn key(&self) -> EventKey {
        EventKey::new(self.provider, self.event_id.clone())
    }

    /// The record as first written by ingest.
    pub fn from_new(new: &NewEvent) -> Self {
        Self {
            provider: new.key.provider,
            event_id: new.key.event_id.clone(),
            event_type: new.event.event_type.clone(),
            status: EventStatus::Received,
            attempts: 0,
            fingerprint: new.fingerprint.clone(),
            received_at: new.received_at,
            enqueued_at: None,
            updated_at: new.received_at,
            finished_at: None,
            lease_owner: None,
            lease_until: None,
            last_error: None,
            conflicts: 0,
            expires_at: None,
            event: new.event.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_refuse_what_cannot_be_a_key() {
        assert!(EventId::parse("evt_1N").is_ok());
        assert_eq!(EventId::parse(""), Err(InvalidEventId::Empty));
        assert_eq!(EventId::parse("evt 1"), Err(InvalidEventId::BadCharacters));
        assert_eq!(EventId::parse("evt\n1"), Err(InvalidEventId::BadCharacters));
        assert!(matches!(EventId::parse(&"x".repeat(256)), Err(InvalidEventId::TooLong { .. })));
    }

    #[test]
    fn keys_are_scoped_by_provider() {
        let key = EventKey::new(Provider::Stripe, EventId::parse("evt_1").unwrap());
        assert_eq!(key.storage_key(), "stripe#evt_1");
        assert_eq!("stripe".parse::<Provider>(), Ok(Provider::Stripe));
        assert_eq!("lago".parse::<Provider>(), Ok(Provider::Lago));
        assert_eq!(Provider::Lago.env_prefix(), "LAGO");
        assert_eq!("strip".parse::<Provider>(), Err(UnknownProvider));
    }

    #[test]
    fn statuses_round_trip_through_their_names() {
        for status in EventStatus::ALL {
            assert_eq!(EventStatus::parse(status.as_str()), Some(status));
        }
    }
}

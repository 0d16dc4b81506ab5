//! Confirms Kill Bill notifications by reading back the object they name
//! (`/1.0/kb/invoices/{id}`, `/payments/{id}`, `/subscriptions/{id}`) with
//! payhooks' own API credentials. The notification is only a hint: the
//! object must exist, belong to the notification's account, and be in the
//! state the notification implies. The objects add what notifications
//! lack: an invoice its billing period and plan, a subscription its plan
//! and the dates it started and was cancelled.

use async_trait::async_trait;
use serde_json::Value;
use time::{Date, OffsetDateTime, Time};

use crate::event::{DomainEvent, EventKind, EventRecord, Period};
use crate::ports::{Confirmation, Confirmer, EffectError};
use crate::providers::api::{ApiError, get_json, http_client};
use crate::providers::money::minor_units;
use crate::secret::Secret;

const API: &str = "Kill Bill's API";

/// A tenant's API key and secret, and the user payhooks reads as.
#[derive(Debug, Clone)]
pub struct KillbillCredentials {
    pub api_key: String,
    pub api_secret: Secret,
    pub username: String,
    pub password: Secret,
}

impl KillbillCredentials {
    /// Every Kill Bill call names the tenant by its key and secret and the
    /// user by basic auth.
    pub fn authorize(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        request
            .header("X-Killbill-ApiKey", &self.api_key)
            .header("X-Killbill-ApiSecret", String::from_utf8_lossy(self.api_secret.expose()).as_ref())
            .basic_auth(&self.username, Some(String::from_utf8_lossy(self.password.expose())))
    }
}

#[derive(Debug, Clone)]
pub struct KillbillApi {
    http: reqwest::Client,
    base_url: String,
    credentials: KillbillCredentials,
}

impl KillbillApi {
    pub fn new(base_url: impl Into<String>, credentials: KillbillCredentials) -> Self {
        Self { http: http_client(), base_url: base_url.into().trim_end_matches('/').to_owned(), credentials }
    }

    async fn get(&self, path: &str) -> Result<Option<Value>, ApiError> {
        let request = self.http.get(format!("{}/1.0/kb/{path}", self.base_url));
        get_json(API, self.credentials.authorize(request)).await
    }
}

#[async_trait]
impl Confirmer for KillbillApi {
    async fn confirm(&self, record: &EventRecord) -> Result<Confirmation, EffectError> {
        let event = &record.event;
        match what_to_read(event) {
            Ok((object, path)) => Ok(judge(event, object, self.get(&path).await?.as_ref())),
            Err(answer) => Ok(answer),
        }
    }
}

/// The kinds of object a notification names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillbillObject {
    Invoice,
    Payment,
    Subscription,
}

impl KillbillObject {
    fn name(self) -> &'static str {
        match self {
            Self::Invoice => "invoice",
            Self::Payment => "payment",
            Self::Subscription => "subscription",
        }
    }
}

/// What confirming `event` reads: the object it names and that object's
/// path under `/1.0/kb/`. `Err` is the answer when nothing needs reading.
pub fn what_to_read(event: &DomainEvent) -> Result<(KillbillObject, String), Confirmation> {
    let Some(id) = event.object.as_deref() else {
        return Err(contradicted("the notification names no object".into()));
    };
    match event.kind {
        EventKind::Renewal | EventKind::Payment | EventKind::PaymentFailed => {
            Ok((KillbillObject::Invoice, format!("invoices/{id}?withItems=true")))
        }
        EventKind::Refund | EventKind::RefundReversed => Ok((KillbillObject::Payment, format!("payments/{id}"))),
        EventKind::Purchase | EventKind::Cancellation | EventKind::SubscriptionUpdated | EventKind::TrialStarted => {
            Ok((KillbillObject::Subscription, format!("subscriptions/{id}")))
        }
        EventKind::PaymentLinked | EventKind::Other => Err(Confirmation::Confirmed(Box::new(event.clone()))),
    }
}

/// The verdict on `event` given what Kill Bill answered for the object it
/// names (`None`: no such object).
pub fn judge(event: &DomainEvent, kind: KillbillObject, object: Option<&Value>) -> Confirmation {
    let id = event.object.as_deref().unwrap_or_default();
    let what = kind.name();
    let Some(object) = object else {
        return contradicted(format!("no {what} {id}"));
    };
    let owner = object.get("accountId").and_then(Value::as_str);
    if owner != event.account.as_deref() {
        return contradicted(format!("{what} {id} belongs to another account"));
    }
    match kind {
        KillbillObject::Invoice => confirm_invoice(event, object),
        KillbillObject::Payment => confirm_refund(event, object),
        KillbillObject::Subscription => confirm_subscription(event, object),
    }
}

fn contradicted(reason: String) -> Confirmation {
    Confirmation::Contradicted { reason }
}

fn text<'v>(value: &'v Value, key: &str) -> Option<&'v str> {
    value.get(key).and_then(Value::as_str)
}

fn day(value: &Value, key: &str) -> Option<OffsetDateTime> {
    let date = Date::parse(text(value, key)?, &time::format_description::well_known::Iso8601::DATE).ok()?;
    Some(date.with_time(Time::MIDNIGHT).assume_utc())
}

fn confirm_invoice(event: &DomainEvent, invoice: &Value) -> Confirmation {
    let balance = invoice.get("balance").and_then(|b| minor_units(b, event.currency.as_deref()));
    if event.kind == EventKind::Renewal && balance != Some(0) {
        return contradicted(format!("the invoice is not paid (balance {balance:?} minor units)"));
    }
    let items = invoice.get("items").and_then(Value::as_array).cloned().unwrap_or_default();
    let recurring = items.iter().find(|item| text(item, "itemType") == Some("RECURRING")).or_else(|| items.first());
    let mut confirmed = event.clone();
    if let Some(item) = recurring {
        if let (Some(start), Some(end)) = (day(item, "startDate"), day(item, "endDate")) {
            confirmed.period = Some(Period { start, end });
        }
        confirmed.plan = text(item, "planName").map(str::to_owned).or(confirmed.plan);
        confirmed.subscription = text(item, "subscriptionId").map(str::to_owned).or(confirmed.subscription);
    }
    Confirmation::Confirmed(Box::new(confirmed))
}

fn confirm_refund(event: &DomainEvent, payment: &Value) -> Confirmation {
    let transactions = payment.get("transactions").and_then(Value::as_array).cloned().unwrap_or_default();
    let refund = transactions.iter().find(|t| {
        text(t, "transactionId") == event.refund_id.as_deref() && text(t, "transactionType") == Some("REFUND")
    });
    match refund {
        None => contradicted("the payment has no such refund".into()),
        Some(t) if text(t, "status") != Some("SUCCESS") => {
            contradicted(format!("the refund's status is {:?}", text(t, "status")))
        }
        Some(t) => {
            let mut confirmed = event.clone();
            let currency = text(t, "currency").map(str::to_owned).or(confirmed.currency);
            confirmed.amount_minor = t.get("amount").and_then(|a| minor_units(a, currency.as_deref()));
            confirmed.currency = currency;
            Confirmation::Confirmed(Box::new(confirmed))
        }
    }
}

fn confirm_subscription(event: &DomainEvent, subscription: &Value) -> Confirmation {
    let state = text(subscription, "state").unwrap_or_default();
    let started = day(subscription, "startDate");
    let consistent = match event.kind {
        // A subscription that has since been cancelled was still created:
        // the creation is a fact, and its date orders it before the
        // cancellation.
        EventKind::Purchase | EventKind::TrialStarted => {
            state == "ACTIVE" || (matches!(state, "CANCELLED" | "EXPIRED") && started.is_some())
        }
        EventKind::Cancellation => state == "CANCELLED",
        _ => true,
    };
    if !consistent {
        return contradicted(format!("the subscription is {state}"));
    }
    let mut confirmed = event.clone();
    confirmed.plan = text(subscription, "planName").map(str::to_owned).or(confirmed.plan);
    // Subscription notifications carry no time, so they would be ordered by
    // when they arrived; the API's dates order them as they happened.
    let happened = match event.kind {
        EventKind::Purchase | EventKind::TrialStarted => started,
        EventKind::Cancellation => day(subscription, "cancelledDate"),
        _ => None,
    };
    confirmed.occurred_at = happened.unwrap_or(confirmed.occurred_at);
    Confirmation::Confirmed(Box::new(confirmed))
}

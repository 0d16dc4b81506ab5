//! Confirms Kill Bill notifications by reading back the object they name
//! (`/1.0/kb/invoices/{id}`, `/payments/{id}`, `/subscriptions/{id}`) with
//! payhooks' own API credentials. The notification is only a hint: the
//! object must exist, belong to the notification's account, and be in the
//! state the notification implies. The objects add what notifications
//! lack: an invoice its billing period and plan (and, for a plan change,
//! the items it repairs, read by `/invoices/byItemId/{id}`), a
//! subscription its plan and the dates it started and was cancelled.

use async_trait::async_trait;
use serde_json::Value;
use time::{Date, OffsetDateTime, Time};

use crate::event::{DomainEvent, EventKind, EventRecord, Period, Proration};
use crate::ports::{Confirmation, Confirmer, EffectError};
use crate::providers::api::{ApiError, get_json, http_client};
use crate::providers::money::{decimal_to_minor, minor_units, partial_share};
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
impl KillbillObjects for KillbillApi {
    async fn read(&self, path: &str) -> Result<Option<Value>, EffectError> {
        Ok(self.get(path).await?)
    }
}

#[async_trait]
impl Confirmer for KillbillApi {
    async fn confirm(&self, record: &EventRecord) -> Result<Confirmation, EffectError> {
        confirm(self, &record.event).await
    }
}

/// Where Kill Bill's objects are read from: its API, or a simulation of it.
#[async_trait]
pub trait KillbillObjects: Send + Sync {
    /// The object at `path` under `/1.0/kb/`; `None` when there is none.
    async fn read(&self, path: &str) -> Result<Option<Value>, EffectError>;
}

/// Confirms `event` against the objects it names: the object itself and,
/// for an invoice that repairs items of earlier invoices (a plan change),
/// each repaired item, read from the invoice that holds it.
pub async fn confirm(objects: &dyn KillbillObjects, event: &DomainEvent) -> Result<Confirmation, EffectError> {
    let (kind, path) = match what_to_read(event) {
        Ok(read) => read,
        Err(answer) => return Ok(answer),
    };
    let object = objects.read(&path).await?;
    let mut repaired = Vec::new();
    if let (KillbillObject::Invoice, Some(invoice)) = (kind, &object) {
        for id in items_of(invoice, "REPAIR_ADJ").filter_map(|item| text(item, "linkedInvoiceItemId")) {
            let holder = objects.read(&format!("invoices/byItemId/{id}")).await?;
            let items = holder.as_ref().and_then(|h| h.get("items")).and_then(Value::as_array);
            if let Some(item) = items.and_then(|items| items.iter().find(|i| text(i, "invoiceItemId") == Some(id))) {
                repaired.push(item.clone());
            }
        }
    }
    Ok(judge(event, kind, object.as_ref(), &repaired))
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
/// names (`None`: no such object) and, for an invoice, the earlier items it
/// repairs.
pub fn judge(event: &DomainEvent, kind: KillbillObject, object: Option<&Value>, repaired: &[Value]) -> Confirmation {
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
        KillbillObject::Invoice => confirm_invoice(event, object, repaired),
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

/// A date (an invoice item's `startDate`: a `LocalDate`) as its midnight
/// in UTC, or an instant (a subscription's `startDate`, `cancelledDate` and
/// its events' `effectiveDate`: Joda `DateTime`s, written in ISO 8601).
fn day(value: &Value, key: &str) -> Option<OffsetDateTime> {
    let text = text(value, key)?;
    if let Ok(instant) = OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339) {
        return Some(instant);
    }
    let date = Date::parse(text, &time::format_description::well_known::Iso8601::DATE).ok()?;
    Some(date.with_time(Time::MIDNIGHT).assume_utc())
}

/// The plan the subscription was on at `at`: that of its latest event in
/// effect by then that names one.
fn plan_at(subscription: &Value, at: OffsetDateTime) -> Option<&str> {
    let events = subscription.get("events")?.as_array()?;
    events
        .iter()
        .filter_map(|e| Some((day(e, "effectiveDate")?, text(e, "plan")?)))
        .filter(|(effective, _)| *effective <= at)
        .max_by_key(|(effective, _)| *effective)
        .map(|(_, plan)| plan)
}

/// When the plan change a `SUBSCRIPTION_CHANGE` tells took effect: the
/// latest `CHANGE` among the subscription's events in effect when the
/// notification arrived (`by`). A change planned for later (at the term's
/// end) is not one yet: Kill Bill notifies it again when it takes effect.
fn change_in_effect(subscription: &Value, by: OffsetDateTime) -> Option<OffsetDateTime> {
    let events = subscription.get("events")?.as_array()?;
    events
        .iter()
        .filter(|e| text(e, "eventType") == Some("CHANGE"))
        .filter_map(|e| day(e, "effectiveDate"))
        .filter(|at| *at <= by)
        .max()
}

fn items_of<'v>(invoice: &'v Value, item_type: &'static str) -> impl Iterator<Item = &'v Value> {
    let items = invoice.get("items").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    items.iter().filter(move |item| text(item, "itemType") == Some(item_type))
}

fn period_of(item: &Value) -> Option<Period> {
    Some(Period { start: day(item, "startDate")?, end: day(item, "endDate")? })
}

/// `part` of `whole` (decimal amounts, either sign), in billionths, where
/// it is less than the whole.
fn share(part: &Value, whole: &Value) -> Option<i64> {
    partial_share(scaled(part)?, scaled(whole)?)
}

/// The magnitude of a decimal amount, in millionths: exact for any price
/// Kill Bill states, and only ever compared with another.
fn scaled(amount: &Value) -> Option<i64> {
    let text = match amount {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_owned(),
        _ => return None,
    };
    decimal_to_minor(text.strip_prefix('-').unwrap_or(&text), 6)
}

/// A paid invoice: the period its recurring item bills (Kill Bill prorates
/// a period that starts off the billing day: the item's `amount` is then
/// that share of its plan's `rate`). An invoice with repairs is a plan
/// change billed at once (Kill Bill's `REPAIR_ADJ` gives back the unused
/// time of an earlier item, on this invoice): its prorated items are what
/// it tops up, the new plan's time charged and the repaired plans' time
/// credited; it pays for no period of its own unless an item bills a whole
/// one.
fn confirm_invoice(event: &DomainEvent, invoice: &Value, repaired: &[Value]) -> Confirmation {
    let balance = invoice.get("balance").and_then(|b| minor_units(b, event.currency.as_deref()));
    if event.kind == EventKind::Renewal && balance != Some(0) {
        return contradicted(format!("the invoice is not paid (balance {balance:?} minor units)"));
    }
    let mut confirmed = event.clone();
    let items = invoice.get("items").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let recurring: Vec<&Value> = items_of(invoice, "RECURRING").collect();
    let repairs: Vec<&Value> = items_of(invoice, "REPAIR_ADJ").collect();
    let partial = |item: &Value| share(item.get("amount")?, item.get("rate")?);
    if !repairs.is_empty() {
        for item in recurring.iter().filter(|item| partial(item).is_some()) {
            if let (Some(plan), Some(period)) = (text(item, "planName"), period_of(item)) {
                let charged = Proration { plan: plan.to_owned(), period, credit: false, share: partial(item) };
                confirmed.prorations.push(charged);
            }
        }
        for repair in &repairs {
            let linked = text(repair, "linkedInvoiceItemId");
            let old = repaired.iter().find(|item| text(item, "invoiceItemId") == linked);
            let given_back = old.and_then(|item| share(repair.get("amount")?, item.get("amount")?));
            if let (Some(plan), Some(period)) = (old.and_then(|item| text(item, "planName")), period_of(repair)) {
                confirmed.prorations.push(Proration { plan: plan.to_owned(), period, credit: true, share: given_back });
            }
        }
    }
    // The period the invoice pays for: its recurring item; on a plan
    // change, only one that bills a whole period.
    let paid_for = if repairs.is_empty() {
        recurring.first().copied().or_else(|| items.first())
    } else {
        recurring.iter().copied().find(|item| partial(item).is_none())
    };
    match paid_for {
        Some(item) => {
            confirmed.period = period_of(item).or(confirmed.period);
            confirmed.plan = text(item, "planName").map(str::to_owned).or(confirmed.plan);
            confirmed.subscription = text(item, "subscriptionId").map(str::to_owned).or(confirmed.subscription);
            confirmed.period_share = partial(item);
        }
        None => {
            let item = recurring.first().copied();
            confirmed.subscription =
                item.and_then(|i| text(i, "subscriptionId")).map(str::to_owned).or(confirmed.subscription);
            // Only prorations: paid, but for no period of its own.
            if event.kind == EventKind::Renewal {
                confirmed.kind = EventKind::Payment;
            }
        }
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
    // Subscription notifications carry no time, so they would be ordered by
    // when they arrived; the API's dates order them as they happened.
    let happened = match event.kind {
        EventKind::Purchase | EventKind::TrialStarted => started,
        EventKind::Cancellation => day(subscription, "cancelledDate"),
        _ => None,
    };
    confirmed.occurred_at = happened.unwrap_or(confirmed.occurred_at);
    // A plan change states the subscription live on the new plan as of the
    // change, whatever became of it since (a later cancellation is newer).
    // A change not in effect states nothing.
    if event.event_type == "SUBSCRIPTION_CHANGE" {
        confirmed.plan = None;
        let Some(at) = change_in_effect(subscription, event.occurred_at) else {
            return Confirmation::Confirmed(Box::new(confirmed));
        };
        confirmed.status = Some("active".to_owned());
        confirmed.occurred_at = at;
    }
    // The plan as of what the event tells: a purchase on the plan it
    // started on, even when the subscription has changed plans since.
    confirmed.plan = plan_at(subscription, confirmed.occurred_at)
        .or_else(|| text(subscription, "planName"))
        .map(str::to_owned)
        .or(confirmed.plan);
    Confirmation::Confirmed(Box::new(confirmed))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use serde_json::json;

    use super::*;
    use crate::effects::{PlanChanges, Plans};
    use crate::providers::killbill::{SAMPLES, parse_event, sample_ids};

    struct Objects(HashMap<String, Value>);

    #[async_trait]
    impl KillbillObjects for Objects {
        async fn read(&self, path: &str) -> Result<Option<Value>, EffectError> {
            Ok(self.0.get(path).cloned())
        }
    }

    const ACCOUNT: &str = "4b3c2d1e-0f9a-4b8c-9d7e-6f5a4b3c2d1e";

    /// The sample payment of invoice `invoice`, for the sample's account.
    fn payment(invoice: &str) -> DomainEvent {
        let ids = crate::providers::SampleIds { event_id: invoice.to_owned(), ..sample_ids() };
        let body = SAMPLES.event("INVOICE_PAYMENT_SUCCESS", &ids).unwrap();
        let event = parse_event(body.as_bytes(), OffsetDateTime::now_utc()).unwrap().event;
        DomainEvent { account: Some(ACCOUNT.to_owned()), ..event }
    }

    fn item(item_type: &str, plan: Option<&str>, start: &str, end: &str, amount: &str, rate: Option<&str>) -> Value {
        json!({"invoiceItemId": format!("{item_type}-{start}-{amount}"), "itemType": item_type, "planName": plan,
               "subscriptionId": "sub-1", "startDate": start, "endDate": end, "amount": amount, "rate": rate})
    }

    async fn confirmed(objects: Objects, event: &DomainEvent) -> DomainEvent {
        match confirm(&objects, event).await.unwrap() {
            Confirmation::Confirmed(event) => *event,
            other => panic!("not confirmed: {other:?}"),
        }
    }

    /// Kill Bill changes a plan at once by repairing the old item's unused
    /// time (`REPAIR_ADJ`, linked to the item on the invoice that billed
    /// it) and billing the new plan from the change (`RECURRING`, prorated
    /// from its `rate`), both on the change's invoice.
    #[tokio::test]
    async fn a_plan_change_invoice_tops_up_the_new_plans_time_less_the_old_ones() {
        let old = item("RECURRING", Some("pro-monthly"), "2026-01-01", "2026-01-31", "20.00", Some("20.00"));
        let mut repair = item("REPAIR_ADJ", None, "2026-01-16", "2026-01-31", "-10.00", None);
        repair["linkedInvoiceItemId"] = old["invoiceItemId"].clone();
        let team = item("RECURRING", Some("team-monthly"), "2026-01-16", "2026-01-31", "25.00", Some("50.00"));
        let change = json!({"accountId": ACCOUNT, "balance": 0, "items": [repair, team]});
        let earlier = json!({"accountId": ACCOUNT, "balance": 0, "items": [old]});
        let event = payment("inv-change");
        let objects = Objects(HashMap::from([
            ("invoices/inv-change?withItems=true".to_owned(), change),
            (format!("invoices/byItemId/{}", old["invoiceItemId"].as_str().unwrap()), earlier),
        ]));
        let e = confirmed(objects, &event).await;
        assert_eq!(e.kind, EventKind::Payment, "paid, but for no period of its own");
        assert_eq!((e.period, e.plan.as_deref()), (None, None));
        let lines: Vec<_> = e.prorations.iter().map(|p| (p.plan.as_str(), p.credit, p.share)).collect();
        assert_eq!(lines, [("team-monthly", false, Some(500_000_000)), ("pro-monthly", true, Some(500_000_000))]);
        let plans = Plans::from_json(r#"{"pro-monthly": 100, "team-monthly": 250}"#).unwrap();
        let implied = e.prorations.iter().find_map(Proration::implied_period_secs);
        assert_eq!(PlanChanges::Prorate.top_up(&e.prorations, &plans, implied), Ok(75));
    }

    /// A period that starts off the billing day is billed for its share
    /// of the plan's rate, and pays for that share only.
    #[tokio::test]
    async fn a_prorated_period_pays_for_its_share_and_a_whole_one_for_all_of_it() {
        let event = payment("inv-first");
        let first = item("RECURRING", Some("pro-monthly"), "2026-01-16", "2026-01-31", "10.00", Some("20.00"));
        let invoice = json!({"accountId": ACCOUNT, "balance": 0, "items": [first]});
        let objects = Objects(HashMap::from([("invoices/inv-first?withItems=true".to_owned(), invoice)]));
        let e = confirmed(objects, &event).await;
        assert_eq!(
            (e.kind, e.plan.as_deref(), e.period_share),
            (EventKind::Renewal, Some("pro-monthly"), Some(500_000_000))
        );
        assert!(e.prorations.is_empty());

        let whole = item("RECURRING", Some("pro-monthly"), "2026-02-01", "2026-03-01", "20.00", Some("20.00"));
        let invoice = json!({"accountId": ACCOUNT, "balance": 0, "items": [whole]});
        let objects = Objects(HashMap::from([("invoices/inv-first?withItems=true".to_owned(), invoice)]));
        let e = confirmed(objects, &event).await;
        assert_eq!((e.kind, e.period_share), (EventKind::Renewal, None));
    }

    /// The subscription's notification, for the sample's account, arriving
    /// at `arrived`.
    fn notified(event_type: &str, arrived: &str) -> DomainEvent {
        let ids = crate::providers::SampleIds { subscription_id: "sub-1".to_owned(), ..sample_ids() };
        let body = SAMPLES.event(event_type, &ids).unwrap();
        let arrived = OffsetDateTime::parse(arrived, &time::format_description::well_known::Rfc3339).unwrap();
        DomainEvent { account: Some(ACCOUNT.to_owned()), ..parse_event(body.as_bytes(), arrived).unwrap().event }
    }

    fn at(instant: &str) -> OffsetDateTime {
        OffsetDateTime::parse(instant, &time::format_description::well_known::Rfc3339).unwrap()
    }

    /// Kill Bill writes a subscription's dates as instants. A plan change
    /// (`SUBSCRIPTION_CHANGE`, no plan or time of its own) states the
    /// subscription live on the new plan as of its `CHANGE` event; the
    /// creation keeps the plan it started on; a change planned for the
    /// term's end states nothing until it is in effect.
    #[tokio::test]
    async fn a_plan_change_states_the_new_plan_as_of_its_change_and_the_creation_the_first() {
        let subscription = json!({"accountId": ACCOUNT, "state": "ACTIVE", "planName": "team-monthly",
            "startDate": "2026-01-01T09:30:00.000Z", "events": [
                {"eventType": "START_ENTITLEMENT", "effectiveDate": "2026-01-01T09:30:00.000Z", "plan": null},
                {"eventType": "START_BILLING", "effectiveDate": "2026-01-01T09:30:00.000Z", "plan": "pro-monthly"},
                {"eventType": "CHANGE", "effectiveDate": "2026-01-16T12:00:00.000Z", "plan": "team-monthly"},
                {"eventType": "CHANGE", "effectiveDate": "2026-02-01T09:30:00.000Z", "plan": "basic-monthly"}]});
        let objects = || Objects(HashMap::from([("subscriptions/sub-1".to_owned(), subscription.clone())]));

        let created = confirmed(objects(), &notified("SUBSCRIPTION_CREATION", "2026-01-20T00:00:00Z")).await;
        assert_eq!((created.plan.as_deref(), created.occurred_at), (Some("pro-monthly"), at("2026-01-01T09:30:00Z")));

        let change = confirmed(objects(), &notified("SUBSCRIPTION_CHANGE", "2026-01-16T12:00:05Z")).await;
        assert_eq!((change.kind, change.status.as_deref()), (EventKind::SubscriptionUpdated, Some("active")));
        assert_eq!((change.plan.as_deref(), change.occurred_at), (Some("team-monthly"), at("2026-01-16T12:00:00Z")));

        // The downgrade at the term's end, requested before it is in
        // effect, and a notification that arrived before any change.
        let requested = confirmed(objects(), &notified("SUBSCRIPTION_CHANGE", "2026-01-20T00:00:00Z")).await;
        assert_eq!(requested.plan.as_deref(), Some("team-monthly"), "the change in effect, not the planned one");
        let early = confirmed(objects(), &notified("SUBSCRIPTION_CHANGE", "2026-01-10T00:00:00Z")).await;
        assert_eq!((early.status, early.plan), (None, None), "no change in effect: nothing stated");
    }
}

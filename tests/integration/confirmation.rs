//! Confirmation with the provider's API before value is given: Flutterwave's
//! verify-transaction API and Kill Bill's read-back, each against a local
//! fake of the provider's API on 127.0.0.1 (never the network).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use payhooks::event::{EventKey, EventKind, EventStatus, NewEvent, Provider};
use payhooks::ingest::IngestSettings;
use payhooks::providers::flutterwave::FlutterwaveTransactions;
use payhooks::providers::killbill::{KillbillApi, KillbillCredentials};
use payhooks::providers::{self, flutterwave, killbill};
use payhooks::secret::Secret;
use payhooks_tests::Backend;
use payhooks_tests::faults::RecordingEffects;
use serde_json::{Value, json};

use crate::support::{Rig, VISIBILITY};

/// A fake provider API: canned answers by path, and the requests it saw.
#[derive(Clone, Default)]
struct FakeApi {
    answers: Arc<Mutex<HashMap<String, (StatusCode, Value)>>>,
    seen: Arc<Mutex<Vec<(String, HeaderMap)>>>,
}

impl FakeApi {
    fn answer(&self, path: &str, status: StatusCode, body: Value) {
        self.answers.lock().expect("lock").insert(path.to_owned(), (status, body));
    }

    fn seen(&self) -> Vec<(String, HeaderMap)> {
        self.seen.lock().expect("lock").clone()
    }

    async fn serve(&self) -> SocketAddr {
        async fn any(State(api): State<FakeApi>, Path(path): Path<String>, headers: HeaderMap) -> impl IntoResponse {
            api.seen.lock().expect("lock").push((format!("/{path}"), headers));
            match api.answers.lock().expect("lock").get(&format!("/{path}")) {
                Some((status, body)) => (*status, axum::Json(body.clone())),
                None => (StatusCode::NOT_FOUND, axum::Json(json!({"message": "not found"}))),
            }
        }
        let router = Router::new().route("/{*path}", axum::routing::get(any)).with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, router).await });
        addr
    }
}

/// Records `body` of `provider` as ingest would, and enqueues it.
async fn record_and_enqueue(rig: &Rig, provider: Provider, body: &[u8]) -> EventKey {
    let verified = match provider {
        Provider::Flutterwave => flutterwave::parse_event(body, rig.now()),
        Provider::Killbill => killbill::parse_event(body, rig.now()),
        Provider::Paypal => payhooks::providers::paypal::parse_event(body),
        other => panic!("no parser wired for {other}"),
    }
    .expect("parses");
    let key = EventKey::new(provider, verified.event_id);
    let new =
        NewEvent { key: key.clone(), fingerprint: verified.fingerprint, event: verified.event, received_at: rig.now() };
    rig.backend.store.claim(&new).await.expect("claim");
    rig.backend.queue.send(&key.message_body()).await.expect("send");
    key
}

fn rig_with(confirmer: impl payhooks::ports::Confirmer + 'static, provider: Provider) -> (Rig, Arc<RecordingEffects>) {
    let backend = Backend::memory(VISIBILITY);
    let effects = Arc::new(RecordingEffects::default());
    let (store, queue) = (backend.store.clone(), backend.queue.clone());
    let rig = Rig::with(backend, store, queue, effects.clone(), IngestSettings::default())
        .confirmed_by(provider, Arc::new(confirmer));
    (rig, effects)
}

async fn process(rig: &Rig, key: &EventKey) -> payhooks::event::EventRecord {
    rig.processor.poll_once(Duration::from_secs(1)).await.expect("poll");
    rig.backend.store.get(key).await.expect("get").expect("record")
}

const FLW_KEY: &str = "FLWSECK_TEST-only-not-a-real-key";

#[tokio::test]
async fn a_flutterwave_charge_the_api_confirms_is_processed() {
    let api = FakeApi::default();
    let addr = api.serve().await;
    let (rig, effects) =
        rig_with(FlutterwaveTransactions::new(format!("http://{addr}"), Secret::new(FLW_KEY)), Provider::Flutterwave);
    let ids = providers::sample_ids(Provider::Flutterwave);
    api.answer(
        &format!("/v3/transactions/{}/verify", ids.event_id),
        StatusCode::OK,
        json!({"status": "success", "data": {"id": ids.event_id.parse::<u64>().expect("numeric"), "status": "successful", "amount": 25000, "currency": "NGN"}}),
    );
    let body = flutterwave::SAMPLES.event("charge.completed", &ids).expect("sample");
    let key = record_and_enqueue(&rig, Provider::Flutterwave, body.as_bytes()).await;

    assert_eq!(process(&rig, &key).await.status, EventStatus::Completed);
    assert_eq!(effects.seen.lock().expect("lock").len(), 1);
    let seen = api.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].1["authorization"], format!("Bearer {FLW_KEY}").as_str());
}

#[tokio::test]
async fn a_flutterwave_charge_the_api_contradicts_gives_nothing_and_goes_to_the_dlq() {
    let api = FakeApi::default();
    let addr = api.serve().await;
    let (rig, effects) =
        rig_with(FlutterwaveTransactions::new(format!("http://{addr}"), Secret::new(FLW_KEY)), Provider::Flutterwave);
    let cases = [
        ("failed", json!({"status": "failed", "amount": 25000, "currency": "NGN"}), "\"failed\""),
        ("smaller", json!({"status": "successful", "amount": 250, "currency": "NGN"}), "minor units"),
        ("other currency", json!({"status": "successful", "amount": 25000, "currency": "USD"}), "USD"),
    ];
    for (case, data, reason) in cases {
        let ids = providers::sample_ids(Provider::Flutterwave);
        api.answer(
            &format!("/v3/transactions/{}/verify", ids.event_id),
            StatusCode::OK,
            json!({"status": "success", "data": data}),
        );
        let body = flutterwave::SAMPLES.event("charge.completed", &ids).expect("sample");
        let key = record_and_enqueue(&rig, Provider::Flutterwave, body.as_bytes()).await;
        let record = process(&rig, &key).await;
        assert_eq!(record.status, EventStatus::Failed, "{case}");
        let error = record.last_error.unwrap_or_default();
        assert!(error.contains("contradicts") && error.contains(reason), "{case}: {error}");
    }
    // Unknown to the API: a forged transaction id.
    let ids = providers::sample_ids(Provider::Flutterwave);
    let key = record_and_enqueue(
        &rig,
        Provider::Flutterwave,
        flutterwave::SAMPLES.event("charge.completed", &ids).expect("sample").as_bytes(),
    )
    .await;
    assert_eq!(process(&rig, &key).await.status, EventStatus::Failed);

    assert!(effects.seen.lock().expect("lock").is_empty(), "no value given");
    assert_eq!(Backend::drain(rig.backend.dead_letters.as_ref()).await.len(), 4);
    assert_eq!(rig.metrics.get("flutterwave", "contradicted"), 4);
}

#[tokio::test]
async fn an_unreachable_or_failing_api_is_retried_not_trusted() {
    let api = FakeApi::default();
    let addr = api.serve().await;
    let (rig, effects) =
        rig_with(FlutterwaveTransactions::new(format!("http://{addr}"), Secret::new(FLW_KEY)), Provider::Flutterwave);
    let ids = providers::sample_ids(Provider::Flutterwave);
    api.answer(&format!("/v3/transactions/{}/verify", ids.event_id), StatusCode::BAD_GATEWAY, json!({}));
    let key = record_and_enqueue(
        &rig,
        Provider::Flutterwave,
        flutterwave::SAMPLES.event("charge.completed", &ids).expect("sample").as_bytes(),
    )
    .await;
    let report = rig.processor.poll_once(Duration::from_secs(1)).await.expect("poll");
    assert_eq!(report.retry_message_ids.len(), 1);
    let record = rig.backend.store.get(&key).await.expect("get").expect("record");
    assert_eq!(record.status, EventStatus::Enqueued, "released for a retry");
    assert!(record.last_error.unwrap_or_default().contains("HTTP 502"));
    assert!(effects.seen.lock().expect("lock").is_empty());
}

fn killbill_api(addr: SocketAddr) -> KillbillApi {
    KillbillApi::new(
        format!("http://{addr}"),
        KillbillCredentials {
            api_key: "test-tenant".into(),
            api_secret: Secret::new("test-tenant-secret"),
            username: "payhooks-reader".into(),
            password: Secret::new("test-only-password"),
        },
    )
}

#[tokio::test]
async fn a_kill_bill_renewal_is_confirmed_by_its_paid_invoice_which_adds_the_period() {
    let api = FakeApi::default();
    let addr = api.serve().await;
    let (rig, effects) = rig_with(killbill_api(addr), Provider::Killbill);
    let ids = providers::sample_ids(Provider::Killbill);
    api.answer(
        &format!("/1.0/kb/invoices/{}", ids.event_id),
        StatusCode::OK,
        json!({"invoiceId": ids.event_id, "accountId": ids.customer_id, "balance": 0, "currency": "EUR",
               "items": [{"itemType": "RECURRING", "startDate": "2025-12-24", "endDate": "2026-01-24",
                          "planName": "pro-monthly", "subscriptionId": ids.subscription_id}]}),
    );
    let body = killbill::SAMPLES.event("INVOICE_PAYMENT_SUCCESS", &ids).expect("sample");
    let key = record_and_enqueue(&rig, Provider::Killbill, body.as_bytes()).await;
    assert_eq!(process(&rig, &key).await.status, EventStatus::Completed);

    let seen = effects.seen.lock().expect("lock").clone();
    assert_eq!(seen.len(), 1);
    let period = seen[0].period.expect("the invoice's period");
    assert_eq!(
        (period.start.date().to_string(), period.end.date().to_string()),
        ("2025-12-24".into(), "2026-01-24".into())
    );
    assert_eq!(seen[0].plan.as_deref(), Some("pro-monthly"));
    assert_eq!(seen[0].subscription.as_deref(), Some(ids.subscription_id.as_str()));

    let (path, headers) = &api.seen()[0];
    assert!(path.starts_with("/1.0/kb/invoices/"));
    assert_eq!(headers["x-killbill-apikey"], "test-tenant");
    assert_eq!(headers["x-killbill-apisecret"], "test-tenant-secret");
    assert!(headers["authorization"].to_str().expect("ascii").starts_with("Basic "));
}

#[tokio::test]
async fn kill_bill_notifications_the_api_contradicts_give_nothing() {
    let api = FakeApi::default();
    let addr = api.serve().await;
    let (rig, effects) = rig_with(killbill_api(addr), Provider::Killbill);

    // An invoice of another account.
    let ids = providers::sample_ids(Provider::Killbill);
    api.answer(
        &format!("/1.0/kb/invoices/{}", ids.event_id),
        StatusCode::OK,
        json!({"accountId": "someone-else", "balance": 0}),
    );
    let key = record_and_enqueue(
        &rig,
        Provider::Killbill,
        killbill::SAMPLES.event("INVOICE_PAYMENT_SUCCESS", &ids).expect("s").as_bytes(),
    )
    .await;
    assert!(process(&rig, &key).await.last_error.unwrap_or_default().contains("another account"));

    // An unpaid invoice.
    let ids = providers::sample_ids(Provider::Killbill);
    api.answer(
        &format!("/1.0/kb/invoices/{}", ids.event_id),
        StatusCode::OK,
        json!({"accountId": ids.customer_id, "balance": 19.99}),
    );
    let key = record_and_enqueue(
        &rig,
        Provider::Killbill,
        killbill::SAMPLES.event("INVOICE_PAYMENT_SUCCESS", &ids).expect("s").as_bytes(),
    )
    .await;
    assert!(process(&rig, &key).await.last_error.unwrap_or_default().contains("not paid"));

    // A cancellation of a subscription that is still active.
    let ids = providers::sample_ids(Provider::Killbill);
    api.answer(
        &format!("/1.0/kb/subscriptions/{}", ids.subscription_id),
        StatusCode::OK,
        json!({"accountId": ids.customer_id, "state": "ACTIVE"}),
    );
    let key = record_and_enqueue(
        &rig,
        Provider::Killbill,
        killbill::SAMPLES.event("SUBSCRIPTION_CANCEL", &ids).expect("s").as_bytes(),
    )
    .await;
    assert!(process(&rig, &key).await.last_error.unwrap_or_default().contains("ACTIVE"));

    // A refund the payment does not have.
    let ids = providers::sample_ids(Provider::Killbill);
    api.answer(
        &format!("/1.0/kb/payments/{}", ids.payment_id),
        StatusCode::OK,
        json!({"accountId": ids.customer_id, "transactions": [{"transactionId": "other", "transactionType": "REFUND", "status": "SUCCESS", "amount": 5.0, "currency": "EUR"}]}),
    );
    let key = record_and_enqueue(
        &rig,
        Provider::Killbill,
        killbill::SAMPLES.event("PAYMENT_SUCCESS.refund", &ids).expect("s").as_bytes(),
    )
    .await;
    assert!(process(&rig, &key).await.last_error.unwrap_or_default().contains("no such refund"));

    assert!(effects.seen.lock().expect("lock").is_empty(), "no value given or taken");
    assert_eq!(rig.metrics.get("killbill", "contradicted"), 4);
}

#[tokio::test]
async fn a_kill_bill_subscription_is_ordered_by_the_api_dates_not_by_arrival() {
    let api = FakeApi::default();
    let addr = api.serve().await;
    let (rig, effects) = rig_with(killbill_api(addr), Provider::Killbill);
    let ids = providers::sample_ids(Provider::Killbill);
    api.answer(
        &format!("/1.0/kb/subscriptions/{}", ids.subscription_id),
        StatusCode::OK,
        json!({"accountId": ids.customer_id, "state": "CANCELLED", "planName": "pro-monthly",
               "startDate": "2025-11-24", "cancelledDate": "2026-02-01"}),
    );
    // The cancellation arrives first, the creation after it: both carry no
    // time, and the creation's notification is only confirmed now, when
    // the subscription is already cancelled.
    for sample in ["SUBSCRIPTION_CANCEL", "SUBSCRIPTION_CREATION"] {
        let key =
            record_and_enqueue(&rig, Provider::Killbill, killbill::SAMPLES.event(sample, &ids).expect("s").as_bytes())
                .await;
        assert_eq!(process(&rig, &key).await.status, EventStatus::Completed, "{sample}");
    }
    let seen = effects.seen.lock().expect("lock").clone();
    let dates: Vec<_> = seen.iter().map(|e| (e.kind, e.occurred_at.date().to_string(), e.plan.clone())).collect();
    assert_eq!(
        dates,
        vec![
            (payhooks::event::EventKind::Cancellation, "2026-02-01".into(), Some("pro-monthly".into())),
            (payhooks::event::EventKind::Purchase, "2025-11-24".into(), Some("pro-monthly".into())),
        ],
        "each at the date Kill Bill gives, so the creation is the older"
    );

    // A creation whose subscription never started is not confirmed.
    let ids = providers::sample_ids(Provider::Killbill);
    api.answer(
        &format!("/1.0/kb/subscriptions/{}", ids.subscription_id),
        StatusCode::OK,
        json!({"accountId": ids.customer_id, "state": "CANCELLED"}),
    );
    let key = record_and_enqueue(
        &rig,
        Provider::Killbill,
        killbill::SAMPLES.event("SUBSCRIPTION_CREATION", &ids).expect("s").as_bytes(),
    )
    .await;
    assert!(process(&rig, &key).await.last_error.unwrap_or_default().contains("CANCELLED"));
}

#[tokio::test]
async fn a_kill_bill_refund_takes_its_amount_from_the_api() {
    let api = FakeApi::default();
    let addr = api.serve().await;
    let (rig, effects) = rig_with(killbill_api(addr), Provider::Killbill);
    let ids = providers::sample_ids(Provider::Killbill);
    api.answer(
        &format!("/1.0/kb/payments/{}", ids.payment_id),
        StatusCode::OK,
        json!({"accountId": ids.customer_id, "transactions": [
            {"transactionId": "t-capture", "transactionType": "PURCHASE", "status": "SUCCESS", "amount": 19.99, "currency": "EUR"},
            {"transactionId": ids.event_id, "transactionType": "REFUND", "status": "SUCCESS", "amount": 4.5, "currency": "EUR"}]}),
    );
    let key = record_and_enqueue(
        &rig,
        Provider::Killbill,
        killbill::SAMPLES.event("PAYMENT_SUCCESS.refund", &ids).expect("s").as_bytes(),
    )
    .await;
    assert_eq!(process(&rig, &key).await.status, EventStatus::Completed);
    assert_eq!(
        effects.seen.lock().expect("lock")[0].amount_minor,
        Some(450),
        "the API's amount, not the notification's"
    );
}

#[tokio::test]
async fn the_http_provisioner_signs_its_request_and_sends_the_idempotency_key() {
    use axum::body::Bytes;
    use payhooks::adapters::HttpProvisioner;
    use payhooks::adapters::http_provisioner::{IDEMPOTENCY_HEADER, SIGNATURE_HEADER};
    use payhooks::ports::{Action, ProvisionRequest, Provisioner};

    type Seen = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;
    let seen: Seen = Arc::default();
    let status = Arc::new(Mutex::new(StatusCode::OK));
    let router = Router::new()
        .route(
            "/provision",
            axum::routing::post(
                |State((seen, status)): State<(Seen, Arc<Mutex<StatusCode>>)>, headers: HeaderMap, body: Bytes| async move {
                    seen.lock().expect("lock").push((headers, body));
                    *status.lock().expect("lock")
                },
            ),
        )
        .with_state((seen.clone(), status.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await });

    let provisioner = HttpProvisioner::new(format!("http://{addr}/provision"), Secret::new("provisioner-test-secret"));
    let request = ProvisionRequest {
        idempotency_key: "provision:stripe:sub_1:new".into(),
        action: Action::Provision,
        status: "active".into(),
        provider: Provider::Stripe,
        account: "acct-1".into(),
        plan: Some("price_1".into()),
        subscription: Some("sub_1".into()),
        customer: Some("cus_1".into()),
        event_id: "evt_1".into(),
        as_of: time::OffsetDateTime::from_unix_timestamp(1_769_270_407).expect("a time"),
    };
    provisioner.send(&request).await.expect("sent");
    let (headers, body) = seen.lock().expect("lock")[0].clone();
    assert_eq!(headers[IDEMPOTENCY_HEADER], "provision:stripe:sub_1:new");
    let signature = headers[SIGNATURE_HEADER].to_str().expect("ascii");
    payhooks::providers::stripe::verify_signature(
        signature,
        &body,
        &payhooks::secret::SecretSet::from_comma_separated("provisioner-test-secret").expect("secret"),
        time::OffsetDateTime::now_utc(),
        payhooks::providers::stripe::DEFAULT_TOLERANCE,
    )
    .expect("a receiver verifies it like a Stripe signature");
    let json: Value = serde_json::from_slice(&body).expect("JSON");
    assert_eq!((&json["action"], &json["status"]), (&json!("provision"), &json!("active")));
    assert_eq!(json["account"], "acct-1");
    assert_eq!(json["subscription"], "sub_1");
    assert_eq!(json["as_of"], "2026-01-24T16:00:07Z");

    *status.lock().expect("lock") = StatusCode::SERVICE_UNAVAILABLE;
    let error = provisioner.send(&request).await.expect_err("a 503 is a failure");
    assert!(error.to_string().contains("503"));
}

/// A fake PayPal API: OAuth tokens and one subscription.
async fn fake_paypal(subscription: Value) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let router = Router::new()
        .route(
            "/v1/oauth2/token",
            axum::routing::post(|| async { axum::Json(json!({"access_token": "test-token", "expires_in": 3600})) }),
        )
        .route(
            "/v1/billing/subscriptions/{id}",
            axum::routing::get(
                |State((subscription, seen)): State<(Value, Arc<Mutex<Vec<String>>>)>,
                 Path(id): Path<String>,
                 headers: HeaderMap| async move {
                    seen.lock()
                        .expect("lock")
                        .push(format!("{id} {}", headers["authorization"].to_str().unwrap_or("")));
                    if subscription["id"] == id.as_str() {
                        (StatusCode::OK, axum::Json(subscription))
                    } else {
                        (StatusCode::NOT_FOUND, axum::Json(json!({"name": "RESOURCE_NOT_FOUND"})))
                    }
                },
            ),
        )
        .with_state((subscription, seen.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await });
    (addr, seen)
}

#[tokio::test]
async fn a_paypal_sale_is_confirmed_by_its_subscription_which_names_the_plan() {
    use payhooks::providers::paypal::PaypalSubscriptions;
    use payhooks::providers::paypal::{self, PaypalApi};

    let ids = providers::sample_ids(Provider::Paypal);
    let (addr, seen) = fake_paypal(json!({
        "id": ids.subscription_id, "status": "ACTIVE", "plan_id": "P-TESTPLAN",
        "subscriber": {"payer_id": ids.customer_id}
    }))
    .await;
    let api = PaypalApi::new(
        url::Url::parse(&format!("http://{addr}")).expect("url"),
        "test-client".into(),
        Secret::new("test-client-secret"),
    );
    let (rig, effects) = rig_with(PaypalSubscriptions::new(api), Provider::Paypal);
    let body = paypal::SAMPLES.event("PAYMENT.SALE.COMPLETED", &ids).expect("sample");
    assert_eq!(paypal::parse_event(body.as_bytes()).expect("parses").event.plan, None, "the sale names no plan");
    let key = record_and_enqueue(&rig, Provider::Paypal, body.as_bytes()).await;
    assert_eq!(process(&rig, &key).await.status, EventStatus::Completed);
    assert_eq!(effects.seen.lock().expect("lock")[0].plan.as_deref(), Some("P-TESTPLAN"));
    assert_eq!(seen.lock().expect("lock").as_slice(), [format!("{} Bearer test-token", ids.subscription_id)]);

    // A cancellation of a subscription PayPal still shows as active is refused.
    let body = paypal::SAMPLES.event("BILLING.SUBSCRIPTION.CANCELLED", &ids.next_event("WH")).expect("sample");
    let key = record_and_enqueue(&rig, Provider::Paypal, body.as_bytes()).await;
    let record = process(&rig, &key).await;
    assert_eq!(record.status, EventStatus::Failed);
    assert!(record.last_error.unwrap_or_default().contains("is ACTIVE"));
}

/// PayPal's read-back judges an event at its own time: an activation
/// processed after the subscription was cancelled (or replayed from the
/// DLQ later) is still the activation it was.
#[tokio::test]
async fn a_paypal_activation_read_back_after_a_cancellation_is_judged_at_its_time() {
    use payhooks::providers::paypal::PaypalSubscriptions;
    use payhooks::providers::paypal::{self, PaypalApi};

    let ids = providers::sample_ids(Provider::Paypal);
    // Cancelled on 2025-12-02, after the sample's activation of 2025-10-24.
    let (addr, _) = fake_paypal(json!({
        "id": ids.subscription_id, "status": "CANCELLED", "plan_id": "P-TESTPLAN",
        "status_update_time": "2025-12-02T16:40:10Z",
        "subscriber": {"payer_id": ids.customer_id}
    }))
    .await;
    let api = PaypalApi::new(
        url::Url::parse(&format!("http://{addr}")).expect("url"),
        "test-client".into(),
        Secret::new("test-client-secret"),
    );
    let (rig, _) = rig_with(PaypalSubscriptions::new(api), Provider::Paypal);
    let body = paypal::SAMPLES.event("BILLING.SUBSCRIPTION.ACTIVATED", &ids).expect("sample");
    let key = record_and_enqueue(&rig, Provider::Paypal, body.as_bytes()).await;
    assert_eq!(process(&rig, &key).await.status, EventStatus::Completed);

    // A suspension told after the cancellation that followed it is judged
    // at its time too; one that is newer than the subscription's last
    // change, and not what PayPal shows, is refused.
    let suspended = |create_time: &str| {
        let body = paypal::SAMPLES
            .event("BILLING.SUBSCRIPTION.CANCELLED", &ids.next_event("WH"))
            .expect("sample")
            .replace("BILLING.SUBSCRIPTION.CANCELLED", "BILLING.SUBSCRIPTION.SUSPENDED")
            .replace("\"status\": \"CANCELLED\"", "\"status\": \"SUSPENDED\"")
            .replace("\"create_time\": \"2026-01-02T16:40:11.000Z\"", &format!("\"create_time\": \"{create_time}\""));
        let event = paypal::parse_event(body.as_bytes()).expect("parses").event;
        assert_eq!((event.kind, event.status.as_deref()), (EventKind::SubscriptionUpdated, Some("suspended")));
        body
    };
    let key = record_and_enqueue(&rig, Provider::Paypal, suspended("2025-11-20T10:00:00.000Z").as_bytes()).await;
    assert_eq!(process(&rig, &key).await.status, EventStatus::Completed);
    let key = record_and_enqueue(&rig, Provider::Paypal, suspended("2025-12-03T10:00:00.000Z").as_bytes()).await;
    let record = process(&rig, &key).await;
    assert_eq!(record.status, EventStatus::Failed);
    assert!(record.last_error.unwrap_or_default().contains("is CANCELLED"));
}

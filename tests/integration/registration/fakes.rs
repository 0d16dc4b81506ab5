//! Local fakes, on 127.0.0.1, of the APIs registration talks to: Kill
//! Bill's tenant callback, Stripe's webhook endpoints, and CloudFormation's
//! response URL. Each records every call it receives and behaves as the
//! real API does where registration depends on it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post, put};
use base64::Engine;
use payhooks::providers::killbill::KillbillCredentials;
use payhooks::secret::Secret;
use serde_json::{Value, json};

pub const KB_API_KEY: &str = "kb-api-key-test";
pub const KB_API_SECRET: &str = "kb-api-secret-test";
pub const KB_USER: &str = "kb-user-test";
pub const KB_PASSWORD: &str = "kb-password-test";
pub const STRIPE_KEY: &str = "sk_test_fake_registration_key";
/// What the fake returns, once, as a new endpoint's signing secret.
pub const STRIPE_ENDPOINT_SECRET: &str = "whsec_test_fake_endpoint_secret";

pub fn killbill_credentials(password: &str) -> KillbillCredentials {
    KillbillCredentials {
        api_key: KB_API_KEY.into(),
        api_secret: Secret::new(KB_API_SECRET),
        username: KB_USER.into(),
        password: Secret::new(password),
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Serves `router` on a free local port; its base URL.
async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

/// A local URL where nothing listens: connections are refused.
pub fn refusing_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    format!("http://{addr}")
}

/// Kill Bill's `/1.0/kb/tenants/registerNotificationCallback`. Like the
/// tenant-KV store under racing writers, a POST adds a row rather than
/// replacing the value, and a DELETE removes every row.
#[derive(Clone, Default)]
pub struct FakeKillbill(Arc<Mutex<KillbillState>>);

#[derive(Default)]
struct KillbillState {
    values: Vec<String>,
    calls: Vec<String>,
    failure: Option<StatusCode>,
    read_delay: Duration,
}

impl FakeKillbill {
    pub fn with_values(values: &[&str]) -> Self {
        let fake = Self::default();
        lock(&fake.0).values = values.iter().map(|v| v.to_string()).collect();
        fake
    }

    pub fn values(&self) -> Vec<String> {
        lock(&self.0).values.clone()
    }

    pub fn set_values(&self, values: &[&str]) {
        lock(&self.0).values = values.iter().map(|v| v.to_string()).collect();
    }

    /// Every call so far, by method: `GET`, `POST`, `DELETE`.
    pub fn calls(&self) -> Vec<String> {
        lock(&self.0).calls.clone()
    }

    pub fn fail_with(&self, status: StatusCode) {
        lock(&self.0).failure = Some(status);
    }

    /// Answers reads only after `delay`, with the rows as they are then:
    /// widens the window in which racing registrations all read nothing.
    pub fn slow_reads(&self, delay: Duration) {
        lock(&self.0).read_delay = delay;
    }

    pub async fn serve(&self) -> String {
        // The rest of Kill Bill's API is down: what a confirmation meets.
        let router = Router::new()
            .route("/1.0/kb/tenants/registerNotificationCallback", any(killbill_callback))
            .fallback(|| async { StatusCode::SERVICE_UNAVAILABLE })
            .with_state(self.clone());
        serve(router).await
    }
}

fn killbill_authorized(headers: &HeaderMap) -> bool {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let basic =
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{KB_USER}:{KB_PASSWORD}")));
    header("x-killbill-apikey") == Some(KB_API_KEY)
        && header("x-killbill-apisecret") == Some(KB_API_SECRET)
        && header("authorization") == Some(basic.as_str())
}

async fn killbill_callback(
    State(fake): State<FakeKillbill>,
    method: Method,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let (failure, read_delay) = {
        let mut state = lock(&fake.0);
        state.calls.push(method.to_string());
        (state.failure, state.read_delay)
    };
    if let Some(status) = failure {
        return (status, "unavailable").into_response();
    }
    if !killbill_authorized(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let writes_named = headers.contains_key("x-killbill-createdby");
    match method {
        Method::GET => {
            tokio::time::sleep(read_delay).await;
            let values = fake.values();
            axum::Json(json!({"key": "PUSH_NOTIFICATION_CB", "values": values})).into_response()
        }
        Method::POST if writes_named => match query.get("cb") {
            Some(cb) => {
                lock(&fake.0).values.push(cb.clone());
                StatusCode::CREATED.into_response()
            }
            None => StatusCode::BAD_REQUEST.into_response(),
        },
        Method::DELETE if writes_named => {
            lock(&fake.0).values.clear();
            StatusCode::NO_CONTENT.into_response()
        }
        Method::POST | Method::DELETE => StatusCode::BAD_REQUEST.into_response(),
        _ => StatusCode::METHOD_NOT_ALLOWED.into_response(),
    }
}

/// One of the fake Stripe account's webhook endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub id: String,
    pub url: String,
    pub enabled_events: Vec<String>,
    pub status: String,
    created: u64,
}

/// Stripe's `/v1/webhook_endpoints`: list (newest first, paginated),
/// create, update and delete, behind a bearer key.
#[derive(Clone)]
pub struct FakeStripe(Arc<Mutex<StripeState>>);

struct StripeState {
    endpoints: Vec<Endpoint>,
    created: u64,
    page_size: usize,
    calls: Vec<String>,
    forms: Vec<Vec<(String, String)>>,
    failure: Option<StatusCode>,
}

/// The event types the fake account's API version knows.
const KNOWN_EVENTS: &[&str] = &[
    "checkout.session.completed",
    "customer.subscription.created",
    "customer.subscription.deleted",
    "customer.subscription.updated",
    "invoice.paid",
    "invoice.payment_failed",
    "refund.created",
];

fn stripe_error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({"error": {"type": "invalid_request_error", "message": message}}))).into_response()
}

impl FakeStripe {
    pub fn new() -> Self {
        Self::with_page_size(100)
    }

    /// Pages hold at most `page_size` endpoints, whatever limit is asked.
    pub fn with_page_size(page_size: usize) -> Self {
        Self(Arc::new(Mutex::new(StripeState {
            endpoints: Vec::new(),
            created: 0,
            page_size,
            calls: Vec::new(),
            forms: Vec::new(),
            failure: None,
        })))
    }

    /// Adds an endpoint as if made elsewhere; its id.
    pub fn add(&self, url: &str, events: &[&str]) -> String {
        let mut state = lock(&self.0);
        insert(&mut state, url, events.iter().map(|e| e.to_string()).collect())
    }

    pub fn disable(&self, id: &str) {
        for endpoint in lock(&self.0).endpoints.iter_mut().filter(|e| e.id == id) {
            endpoint.status = "disabled".into();
        }
    }

    pub fn endpoints(&self) -> Vec<Endpoint> {
        lock(&self.0).endpoints.clone()
    }

    pub fn endpoints_for(&self, url: &str) -> Vec<Endpoint> {
        self.endpoints().into_iter().filter(|e| e.url == url).collect()
    }

    /// Every call so far: `METHOD path[?query]`.
    pub fn calls(&self) -> Vec<String> {
        lock(&self.0).calls.clone()
    }

    /// The form of every create and update, in order.
    pub fn forms(&self) -> Vec<Vec<(String, String)>> {
        lock(&self.0).forms.clone()
    }

    pub fn fail_with(&self, status: StatusCode) {
        lock(&self.0).failure = Some(status);
    }

    pub async fn serve(&self) -> String {
        let router = Router::new()
            .route("/v1/webhook_endpoints", get(stripe_list).post(stripe_create))
            .route("/v1/webhook_endpoints/{id}", post(stripe_update).delete(stripe_delete))
            .with_state(self.clone());
        serve(router).await
    }

    /// Records the call; the answer to give instead of the real one, if any.
    fn enter(&self, call: String, headers: &HeaderMap) -> Option<Response> {
        let mut state = lock(&self.0);
        state.calls.push(call);
        if let Some(status) = state.failure {
            return Some(stripe_error(status, "Stripe is having trouble"));
        }
        let bearer = format!("Bearer {STRIPE_KEY}");
        if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(bearer.as_str()) {
            return Some(stripe_error(StatusCode::UNAUTHORIZED, "Invalid API Key provided: sk_test_****_key"));
        }
        None
    }
}

fn insert(state: &mut StripeState, url: &str, enabled_events: Vec<String>) -> String {
    state.created += 1;
    let id = format!("we_test_{}", state.created);
    state.endpoints.push(Endpoint {
        id: id.clone(),
        url: url.to_owned(),
        enabled_events,
        status: "enabled".into(),
        created: state.created,
    });
    id
}

fn form(body: &Bytes) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

fn events_of(form: &[(String, String)]) -> Vec<String> {
    form.iter().filter(|(k, _)| k == "enabled_events[]").map(|(_, v)| v.clone()).collect()
}

fn unknown_event(events: &[String]) -> Option<Response> {
    let unknown = events.iter().find(|e| !KNOWN_EVENTS.contains(&e.as_str()))?;
    Some(stripe_error(StatusCode::BAD_REQUEST, &format!("Invalid enabled_events: {unknown} is not a valid event type")))
}

fn endpoint_json(endpoint: &Endpoint) -> Value {
    json!({
        "id": endpoint.id, "object": "webhook_endpoint", "url": endpoint.url,
        "enabled_events": endpoint.enabled_events, "status": endpoint.status, "created": endpoint.created,
    })
}

async fn stripe_list(State(fake): State<FakeStripe>, headers: HeaderMap, RawQuery(raw): RawQuery) -> Response {
    let call = format!("GET /v1/webhook_endpoints{}", raw.as_deref().map(|q| format!("?{q}")).unwrap_or_default());
    if let Some(refused) = fake.enter(call, &headers) {
        return refused;
    }
    let query: HashMap<String, String> =
        url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()).into_owned().collect();
    let state = lock(&fake.0);
    let limit = query.get("limit").and_then(|l| l.parse().ok()).unwrap_or(10).min(state.page_size);
    let newest_first: Vec<&Endpoint> = state.endpoints.iter().rev().collect();
    let start = match query.get("starting_after") {
        Some(id) => newest_first.iter().position(|e| &e.id == id).map_or(newest_first.len(), |p| p + 1),
        None => 0,
    };
    let page: Vec<Value> = newest_first.iter().skip(start).take(limit).map(|e| endpoint_json(e)).collect();
    let has_more = start + page.len() < newest_first.len();
    axum::Json(json!({"object": "list", "url": "/v1/webhook_endpoints", "data": page, "has_more": has_more}))
        .into_response()
}

async fn stripe_create(State(fake): State<FakeStripe>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(refused) = fake.enter("POST /v1/webhook_endpoints".into(), &headers) {
        return refused;
    }
    let form = form(&body);
    let events = events_of(&form);
    lock(&fake.0).forms.push(form.clone());
    let Some(url) = form.iter().find(|(k, _)| k == "url").map(|(_, v)| v.clone()) else {
        return stripe_error(StatusCode::BAD_REQUEST, "Missing required param: url.");
    };
    if events.is_empty() {
        return stripe_error(StatusCode::BAD_REQUEST, "Missing required param: enabled_events.");
    }
    if let Some(refused) = unknown_event(&events) {
        return refused;
    }
    let mut state = lock(&fake.0);
    insert(&mut state, &url, events);
    let mut created = endpoint_json(state.endpoints.last().expect("just inserted"));
    created["secret"] = json!(STRIPE_ENDPOINT_SECRET);
    axum::Json(created).into_response()
}

async fn stripe_update(
    State(fake): State<FakeStripe>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refused) = fake.enter(format!("POST /v1/webhook_endpoints/{id}"), &headers) {
        return refused;
    }
    let form = form(&body);
    let events = events_of(&form);
    lock(&fake.0).forms.push(form.clone());
    if let Some(refused) = unknown_event(&events) {
        return refused;
    }
    let mut state = lock(&fake.0);
    let Some(endpoint) = state.endpoints.iter_mut().find(|e| e.id == id) else {
        return stripe_error(StatusCode::NOT_FOUND, &format!("No such webhook endpoint: '{id}'"));
    };
    if !events.is_empty() {
        endpoint.enabled_events = events;
    }
    match form.iter().find(|(k, _)| k == "disabled").map(|(_, v)| v.as_str()) {
        Some("false") => endpoint.status = "enabled".into(),
        Some("true") => endpoint.status = "disabled".into(),
        _ => {}
    }
    axum::Json(endpoint_json(endpoint)).into_response()
}

async fn stripe_delete(State(fake): State<FakeStripe>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if let Some(refused) = fake.enter(format!("DELETE /v1/webhook_endpoints/{id}"), &headers) {
        return refused;
    }
    let mut state = lock(&fake.0);
    let before = state.endpoints.len();
    state.endpoints.retain(|e| e.id != id);
    if state.endpoints.len() == before {
        return stripe_error(StatusCode::NOT_FOUND, &format!("No such webhook endpoint: '{id}'"));
    }
    axum::Json(json!({"id": id, "object": "webhook_endpoint", "deleted": true})).into_response()
}

/// One answer CloudFormation received.
#[derive(Debug, Clone)]
pub struct Answer {
    pub content_type: Option<String>,
    pub body: Value,
}

/// The pre-signed S3 URL CloudFormation hands out for the answer.
#[derive(Clone, Default)]
pub struct FakeResponseUrl {
    answers: Arc<Mutex<Vec<Answer>>>,
    refuse: Arc<Mutex<Option<StatusCode>>>,
}

impl FakeResponseUrl {
    pub fn answers(&self) -> Vec<Answer> {
        lock(&self.answers).clone()
    }

    pub fn refuse_with(&self, status: StatusCode) {
        *lock(&self.refuse) = Some(status);
    }

    /// The URL to put in a request's `ResponseURL`.
    pub async fn serve(&self) -> String {
        async fn answer(State(fake): State<FakeResponseUrl>, headers: HeaderMap, body: Bytes) -> StatusCode {
            if let Some(status) = *lock(&fake.refuse) {
                return status;
            }
            let content_type = headers.get("content-type").map(|v| v.to_str().unwrap_or("<not text>").to_owned());
            let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
            lock(&fake.answers).push(Answer { content_type, body });
            StatusCode::OK
        }
        let base = serve(Router::new().route("/cfn-response/{key}", put(answer)).with_state(self.clone())).await;
        format!("{base}/cfn-response/stack-resource?X-Amz-Signature=test-signature")
    }
}

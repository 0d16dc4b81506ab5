//! Callback registration (I11), against local fakes of Kill Bill's and
//! Stripe's APIs that record every call: concurrent deploys register once,
//! duplicates are removed, a correct registration costs one read, a failing
//! API fails the deploy with its reason, and a delete removes only its own.
//! The call counts asserted here are the ones docs/architecture.md reports.

pub(crate) mod fakes;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use aws_lambda_events::event::cloudformation::CloudFormationCustomResourceResponseStatus as Status;
use axum::http::StatusCode;
use payhooks::adapters::MemoryEventStore;
use payhooks::clock::{Clock, SystemClock};
use payhooks::edge::custom_resource::{CustomResourceError, CustomResources, explain};
use payhooks::event::Provider;
use payhooks::ports::{Lock, StoreError};
use payhooks::providers::killbill::KillbillRegistrar;
use payhooks::providers::stripe::StripeRegistrar;
use payhooks::registration::{Callback, LockSettings, Locked, Registered, Registrar, Registrars, RegistrationError};
use payhooks::secret::Secret;
use payhooks_tests::Backend;
use serde_json::{Value, json};
use time::OffsetDateTime;

use fakes::{
    FakeKillbill, FakeResponseUrl, FakeStripe, KB_PASSWORD, STRIPE_ENDPOINT_SECRET, STRIPE_KEY, killbill_credentials,
    refusing_url,
};

const API_BASE: &str = "https://abc123.execute-api.us-east-1.amazonaws.com";
const KB_TOKEN: &str = "kb-token-test";
const KB_ROUTE: &str = "https://abc123.execute-api.us-east-1.amazonaws.com/webhooks/killbill/";
const KB_URL: &str = "https://abc123.execute-api.us-east-1.amazonaws.com/webhooks/killbill/kb-token-test";
const STRIPE_URL: &str = "https://abc123.execute-api.us-east-1.amazonaws.com/webhooks/stripe";
const EVENTS: &[&str] = &["invoice.paid", "customer.subscription.deleted", "refund.created"];
const CONCURRENT_DEPLOYS: usize = 8;
const LOCK_NAME: &str = "register-test";

fn killbill(api: &str) -> Arc<dyn Registrar> {
    Arc::new(KillbillRegistrar::new(api, killbill_credentials(KB_PASSWORD)))
}

fn stripe(api: &str) -> Arc<dyn Registrar> {
    Arc::new(StripeRegistrar::new(api, Secret::new(STRIPE_KEY)))
}

fn stripe_callback(url: &str) -> Callback {
    Callback::new(url).with_events(EVENTS.iter().copied())
}

fn settings() -> LockSettings {
    LockSettings {
        lease: Duration::from_secs(30),
        wait: Duration::from_secs(20),
        retry_every: Duration::from_millis(10),
    }
}

/// `inner` as each deploy's function runs it: behind the shared lock.
fn locked(inner: Arc<dyn Registrar>, lock: Arc<dyn Lock>) -> Locked {
    Locked::new(inner, lock, Arc::new(SystemClock), LOCK_NAME, settings())
}

fn count(calls: &[String], prefix: &str) -> usize {
    calls.iter().filter(|c| c.starts_with(prefix)).count()
}

/// A lock that counts the store requests made for it (DynamoDB: one
/// conditional `PutItem` per acquire, one `DeleteItem` per release).
#[derive(Debug)]
struct CountingLock {
    inner: Arc<dyn Lock>,
    acquires: AtomicUsize,
    releases: AtomicUsize,
}

impl CountingLock {
    fn new(inner: Arc<dyn Lock>) -> Arc<Self> {
        Arc::new(Self { inner, acquires: AtomicUsize::new(0), releases: AtomicUsize::new(0) })
    }

    fn counts(&self) -> (usize, usize) {
        (self.acquires.load(Ordering::SeqCst), self.releases.load(Ordering::SeqCst))
    }
}

#[async_trait]
impl Lock for CountingLock {
    async fn acquire(
        &self,
        name: &str,
        owner: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        self.acquires.fetch_add(1, Ordering::SeqCst);
        self.inner.acquire(name, owner, now, until).await
    }

    async fn release(&self, name: &str, owner: &str) -> Result<(), StoreError> {
        self.releases.fetch_add(1, Ordering::SeqCst);
        self.inner.release(name, owner).await
    }
}

/// Runs `ensure` as `CONCURRENT_DEPLOYS` deploys at once, each with its own
/// registrar over the shared lock, as separate Lambda invocations would.
async fn concurrent_ensures(
    registrar: impl Fn() -> Arc<dyn Registrar>,
    callback: &Callback,
) -> Vec<Result<Registered, RegistrationError>> {
    futures::future::join_all((0..CONCURRENT_DEPLOYS).map(|_| {
        let registrar = registrar();
        async move { registrar.ensure(callback).await }
    }))
    .await
}

// --- Kill Bill ---------------------------------------------------------------

async fn concurrent_killbill_deploys_register_one_callback(lock: Arc<dyn Lock>) {
    let fake = FakeKillbill::default();
    fake.slow_reads(Duration::from_millis(20));
    let api = fake.serve().await;

    let results = concurrent_ensures(|| Arc::new(locked(killbill(&api), lock.clone())), &Callback::new(KB_URL)).await;

    let ids: Vec<Registered> = results.into_iter().map(|r| r.expect("every deploy succeeds")).collect();
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "every deploy names the same registration");
    assert_eq!(fake.values(), [KB_URL], "exactly one callback registered");
    let calls = fake.calls();
    assert_eq!(count(&calls, "POST"), 1, "{calls:?}");
    assert_eq!(count(&calls, "DELETE"), 0, "{calls:?}");
    assert_eq!(count(&calls, "GET"), CONCURRENT_DEPLOYS + 1, "one read per deploy and one read-back: {calls:?}");
}

#[tokio::test]
async fn concurrent_deploys_register_one_killbill_callback_under_the_memory_lock() {
    concurrent_killbill_deploys_register_one_callback(Arc::new(MemoryEventStore::new())).await;
}

#[tokio::test]
async fn concurrent_deploys_register_one_killbill_callback_under_the_dynamodb_lock() {
    let Some(lock) = Backend::emulator_locks().await else { return };
    concurrent_killbill_deploys_register_one_callback(lock).await;
}

/// The fake reproduces the race the lock exists for: without it, deploys
/// that read at the same time all register, and Kill Bill lists duplicates.
#[tokio::test]
async fn without_the_lock_concurrent_deploys_leave_duplicate_killbill_rows() {
    let fake = FakeKillbill::default();
    fake.slow_reads(Duration::from_millis(100));
    let api = fake.serve().await;

    let results = concurrent_ensures(|| killbill(&api), &Callback::new(KB_URL)).await;

    assert!(count(&fake.calls(), "POST") > 1, "{:?}", fake.calls());
    assert!(fake.values().len() > 1, "{:?}", fake.values());
    assert!(
        results.iter().any(|r| matches!(r, Err(RegistrationError::NotVerified { .. }))),
        "the read-back notices the duplicates"
    );
}

#[tokio::test]
async fn a_killbill_callback_already_registered_costs_one_read_and_no_write() {
    let fake = FakeKillbill::with_values(&[KB_URL]);
    let api = fake.serve().await;
    let lock = CountingLock::new(Arc::new(MemoryEventStore::new()));

    locked(killbill(&api), lock.clone()).ensure(&Callback::new(KB_URL)).await.expect("ensure");

    assert_eq!(fake.calls(), ["GET"]);
    assert_eq!(lock.counts(), (1, 1), "one acquire, one release");
}

#[tokio::test]
async fn a_missing_killbill_callback_is_registered_and_read_back() {
    let fake = FakeKillbill::default();
    let api = fake.serve().await;
    let lock = CountingLock::new(Arc::new(MemoryEventStore::new()));

    let registered = locked(killbill(&api), lock.clone()).ensure(&Callback::new(KB_URL)).await.expect("ensure");

    assert_eq!(fake.values(), [KB_URL]);
    assert_eq!(fake.calls(), ["GET", "POST", "GET"]);
    assert_eq!(lock.counts(), (1, 1));
    assert_eq!(registered.provider, Provider::Killbill);
    assert!(registered.id.starts_with("sha256:"), "{}", registered.id);
    assert!(!registered.physical_id().contains(KB_TOKEN), "the physical id never holds the token");
}

#[tokio::test]
async fn duplicate_or_stale_killbill_rows_are_replaced_by_exactly_one() {
    let other = format!("{API_BASE}/webhooks/killbill/kb-token-old");
    for before in [vec![KB_URL, KB_URL], vec![KB_URL, other.as_str()], vec![other.as_str()]] {
        let fake = FakeKillbill::with_values(&before);
        let api = fake.serve().await;

        killbill(&api).ensure(&Callback::new(KB_URL)).await.expect("ensure");

        assert_eq!(fake.values(), [KB_URL], "from {} rows", before.len());
        assert_eq!(fake.calls(), ["GET", "DELETE", "POST", "GET"]);
    }
}

#[tokio::test]
async fn killbill_registration_needs_the_tenant_credentials() {
    let fake = FakeKillbill::default();
    let api = fake.serve().await;
    let wrong = KillbillRegistrar::new(&api, killbill_credentials("kb-password-wrong"));

    let error = wrong.ensure(&Callback::new(KB_URL)).await.expect_err("refused");

    assert!(matches!(error, RegistrationError::Refused { status: 401, .. }), "{error}");
    assert!(fake.values().is_empty());
}

#[tokio::test]
async fn killbill_down_fails_with_a_reason_that_names_it() {
    let error = killbill(&refusing_url()).ensure(&Callback::new(KB_URL)).await.expect_err("no API");
    let reason = explain(&error);
    assert!(reason.starts_with("Kill Bill's API could not be reached"), "{reason}");
    assert!(reason.to_lowercase().contains("connection refused"), "{reason}");
    assert!(!reason.contains(KB_TOKEN), "the URL (and its token) is not quoted: {reason}");

    let fake = FakeKillbill::default();
    fake.fail_with(StatusCode::INTERNAL_SERVER_ERROR);
    let api = fake.serve().await;
    let error = killbill(&api).ensure(&Callback::new(KB_URL)).await.expect_err("API failing");
    assert_eq!(error.to_string(), "Kill Bill's API answered HTTP 500 to read the notification callback");
    assert_eq!(fake.calls(), ["GET"], "nothing written after a failed read");
}

#[tokio::test]
async fn removing_a_killbill_registration_removes_only_that_callback() {
    let fake = FakeKillbill::default();
    let api = fake.serve().await;
    let registrar = killbill(&api);
    let registered = registrar.ensure(&Callback::new(KB_URL)).await.expect("ensure");
    let elsewhere = "https://billing.example.test/callbacks/kb";

    // Someone pointed the tenant elsewhere since: left alone.
    fake.set_values(&[elsewhere]);
    let before = fake.calls().len();
    registrar.remove(&registered).await.expect("remove");
    assert_eq!(fake.values(), [elsewhere]);
    assert_eq!(fake.calls()[before..], ["GET"]);

    // Ours and another row: ours goes, the other is put back.
    fake.set_values(&[KB_URL, elsewhere]);
    let before = fake.calls().len();
    registrar.remove(&registered).await.expect("remove");
    assert_eq!(fake.values(), [elsewhere]);
    assert_eq!(fake.calls()[before..], ["GET", "DELETE", "POST"]);

    // Only ours.
    fake.set_values(&[KB_URL]);
    let before = fake.calls().len();
    registrar.remove(&registered).await.expect("remove");
    assert!(fake.values().is_empty());
    assert_eq!(fake.calls()[before..], ["GET", "DELETE"]);
}

// --- Stripe ------------------------------------------------------------------

async fn concurrent_stripe_deploys_create_one_endpoint(lock: Arc<dyn Lock>) {
    let fake = FakeStripe::new();
    let api = fake.serve().await;

    let results =
        concurrent_ensures(|| Arc::new(locked(stripe(&api), lock.clone())), &stripe_callback(STRIPE_URL)).await;

    let ids: Vec<Registered> = results.into_iter().map(|r| r.expect("every deploy succeeds")).collect();
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "every deploy names the same endpoint");
    let endpoints = fake.endpoints();
    assert_eq!(endpoints.len(), 1, "{endpoints:?}");
    assert_eq!(ids[0].id, endpoints[0].id);
    let calls = fake.calls();
    assert_eq!(count(&calls, "POST"), 1, "{calls:?}");
    assert_eq!(count(&calls, "GET /v1/webhook_endpoints?limit=100"), CONCURRENT_DEPLOYS, "{calls:?}");
    assert_eq!(count(&calls, "DELETE"), 0, "{calls:?}");
}

#[tokio::test]
async fn concurrent_deploys_create_one_stripe_endpoint_under_the_memory_lock() {
    concurrent_stripe_deploys_create_one_endpoint(Arc::new(MemoryEventStore::new())).await;
}

#[tokio::test]
async fn concurrent_deploys_create_one_stripe_endpoint_under_the_dynamodb_lock() {
    let Some(lock) = Backend::emulator_locks().await else { return };
    concurrent_stripe_deploys_create_one_endpoint(lock).await;
}

#[tokio::test]
async fn a_stripe_endpoint_is_created_with_the_enabled_events_and_marked_as_payhooks() {
    let fake = FakeStripe::new();
    let api = fake.serve().await;
    let lock = CountingLock::new(Arc::new(MemoryEventStore::new()));

    let registered = locked(stripe(&api), lock.clone()).ensure(&stripe_callback(STRIPE_URL)).await.expect("ensure");

    assert_eq!(fake.calls(), ["GET /v1/webhook_endpoints?limit=100", "POST /v1/webhook_endpoints"]);
    assert_eq!(lock.counts(), (1, 1));
    let form = &fake.forms()[0];
    let field = |name: &str| form.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect::<Vec<_>>();
    assert_eq!(field("url"), [STRIPE_URL]);
    assert_eq!(field("enabled_events[]"), EVENTS);
    assert_eq!(field("metadata[managed_by]"), ["payhooks"]);
    assert_eq!(field("description").len(), 1);
    let endpoint = &fake.endpoints()[0];
    assert_eq!((registered.provider, registered.id.as_str()), (Provider::Stripe, endpoint.id.as_str()));
    assert_eq!(endpoint.enabled_events, EVENTS);
}

#[tokio::test]
async fn a_stripe_endpoint_already_registered_costs_one_list_and_no_write() {
    let fake = FakeStripe::new();
    let id = fake.add(STRIPE_URL, &["refund.created", "invoice.paid", "customer.subscription.deleted"]);
    fake.add("https://elsewhere.example.test/hooks", &["invoice.paid"]);
    let api = fake.serve().await;

    let registered = stripe(&api).ensure(&stripe_callback(STRIPE_URL)).await.expect("ensure");

    assert_eq!(registered.id, id, "the same events in another order are the same");
    assert_eq!(fake.calls(), ["GET /v1/webhook_endpoints?limit=100"]);
}

#[tokio::test]
async fn duplicate_stripe_endpoints_are_reduced_to_the_oldest_across_pages() {
    let fake = FakeStripe::with_page_size(2);
    let elsewhere = fake.add("https://elsewhere.example.test/hooks", &["invoice.paid"]);
    let oldest = fake.add(STRIPE_URL, EVENTS);
    let second = fake.add(STRIPE_URL, &["invoice.paid"]);
    let third = fake.add(STRIPE_URL, EVENTS);
    let api = fake.serve().await;

    let registered = stripe(&api).ensure(&stripe_callback(STRIPE_URL)).await.expect("ensure");

    assert_eq!(registered.id, oldest);
    let left: Vec<String> = fake.endpoints().into_iter().map(|e| e.id).collect();
    assert_eq!(left, [elsewhere, oldest], "one left for the URL; other URLs untouched");
    // Newest first, two per page: [third, second], then [oldest, elsewhere].
    assert_eq!(
        fake.calls(),
        [
            "GET /v1/webhook_endpoints?limit=100".to_owned(),
            format!("GET /v1/webhook_endpoints?limit=100&starting_after={second}"),
            format!("DELETE /v1/webhook_endpoints/{second}"),
            format!("DELETE /v1/webhook_endpoints/{third}"),
        ]
    );
}

#[tokio::test]
async fn a_stripe_endpoint_with_other_events_or_disabled_is_updated_in_place() {
    let fake = FakeStripe::new();
    let id = fake.add(STRIPE_URL, &["invoice.paid"]);
    let api = fake.serve().await;
    let registrar = stripe(&api);

    registrar.ensure(&stripe_callback(STRIPE_URL)).await.expect("ensure");
    assert_eq!(fake.endpoints_for(STRIPE_URL)[0].enabled_events, EVENTS);

    fake.disable(&id);
    registrar.ensure(&stripe_callback(STRIPE_URL)).await.expect("ensure");
    let endpoints = fake.endpoints();
    assert_eq!((endpoints.len(), endpoints[0].status.as_str()), (1, "enabled"));
    assert_eq!(
        fake.calls(),
        [
            "GET /v1/webhook_endpoints?limit=100".to_owned(),
            format!("POST /v1/webhook_endpoints/{id}"),
            "GET /v1/webhook_endpoints?limit=100".to_owned(),
            format!("POST /v1/webhook_endpoints/{id}"),
        ]
    );
}

#[tokio::test]
async fn stripe_failures_fail_with_a_reason_that_names_stripe() {
    let error = stripe(&refusing_url()).ensure(&stripe_callback(STRIPE_URL)).await.expect_err("no API");
    assert!(error.to_string().starts_with("Stripe's API could not be reached to list webhook endpoints"), "{error}");

    let fake = FakeStripe::new();
    let api = fake.serve().await;
    let unknown = Callback::new(STRIPE_URL).with_events(["invoice.paid", "invoice.bogus"]);
    let error = stripe(&api).ensure(&unknown).await.expect_err("refused");
    assert_eq!(
        error.to_string(),
        "Stripe's API answered HTTP 400 to create the webhook endpoint: \
         Invalid enabled_events: invoice.bogus is not a valid event type"
    );
    assert!(fake.endpoints().is_empty());

    fake.fail_with(StatusCode::INTERNAL_SERVER_ERROR);
    let error = stripe(&api).ensure(&stripe_callback(STRIPE_URL)).await.expect_err("API failing");
    assert!(error.to_string().starts_with("Stripe's API answered HTTP 500 to list webhook endpoints"), "{error}");
}

#[tokio::test]
async fn removing_a_stripe_registration_deletes_only_its_endpoint() {
    let fake = FakeStripe::new();
    let elsewhere = fake.add("https://elsewhere.example.test/hooks", &["invoice.paid"]);
    let api = fake.serve().await;
    let registrar = stripe(&api);
    let registered = registrar.ensure(&stripe_callback(STRIPE_URL)).await.expect("ensure");
    let before = fake.calls().len();

    registrar.remove(&registered).await.expect("remove");
    registrar.remove(&registered).await.expect("removing what is gone is no error");

    let left: Vec<String> = fake.endpoints().into_iter().map(|e| e.id).collect();
    assert_eq!(left, [elsewhere]);
    let delete = format!("DELETE /v1/webhook_endpoints/{}", registered.id);
    assert_eq!(fake.calls()[before..], [delete.clone(), delete]);
}

// --- The lock ----------------------------------------------------------------

#[tokio::test]
async fn a_deploy_that_cannot_get_the_lock_fails_without_calling_the_provider() {
    let fake = FakeKillbill::default();
    let api = fake.serve().await;
    let lock = Arc::new(MemoryEventStore::new());
    let now = SystemClock.now();
    assert!(lock.acquire(LOCK_NAME, "another-deploy", now, now + Duration::from_secs(600)).await.expect("acquire"));
    let impatient = Locked::new(
        killbill(&api),
        lock,
        Arc::new(SystemClock),
        LOCK_NAME,
        LockSettings { wait: Duration::from_millis(200), ..settings() },
    );

    let error = impatient.ensure(&Callback::new(KB_URL)).await.expect_err("lock held");

    assert_eq!(
        error.to_string(),
        "another deploy held the registration lock register-test for more than 200ms; nothing was changed"
    );
    assert!(fake.calls().is_empty());
}

// --- The CloudFormation custom resource --------------------------------------

/// The registrars of a deployment whose APIs are the fakes.
#[derive(Debug)]
struct FakeRegistrars {
    killbill_api: String,
    stripe_api: String,
    lock: Arc<dyn Lock>,
}

#[async_trait]
impl Registrars for FakeRegistrars {
    async fn registrar(&self, provider: Provider) -> Result<Arc<dyn Registrar>, RegistrationError> {
        let inner = match provider {
            Provider::Killbill => killbill(&self.killbill_api),
            Provider::Stripe => stripe(&self.stripe_api),
            other => return Err(RegistrationError::Unsupported(other)),
        };
        Ok(Arc::new(locked(inner, self.lock.clone())))
    }

    async fn url_token(&self, provider: Provider) -> Result<Option<Secret>, RegistrationError> {
        Ok((provider == Provider::Killbill).then(|| Secret::new(KB_TOKEN)))
    }
}

struct Deployment {
    killbill: FakeKillbill,
    stripe: FakeStripe,
    cloudformation: FakeResponseUrl,
    response_url: String,
    resources: CustomResources,
    lock: Arc<dyn Lock>,
}

impl Deployment {
    async fn new() -> Self {
        Self::with_killbill_api(None).await
    }

    /// A deployment whose Kill Bill API is at `api` (the fake when `None`).
    async fn with_killbill_api(api: Option<String>) -> Self {
        let (killbill, stripe, cloudformation) =
            (FakeKillbill::default(), FakeStripe::new(), FakeResponseUrl::default());
        let killbill_api = match api {
            Some(api) => api,
            None => killbill.serve().await,
        };
        let lock: Arc<dyn Lock> = Arc::new(MemoryEventStore::new());
        let registrars = FakeRegistrars { killbill_api, stripe_api: stripe.serve().await, lock: lock.clone() };
        Self {
            response_url: cloudformation.serve().await,
            killbill,
            stripe,
            cloudformation,
            resources: CustomResources::new(Arc::new(registrars)),
            lock,
        }
    }

    /// A CloudFormation request as the service sends it.
    fn request(&self, kind: &str, logical_id: &str, physical_id: Option<&str>, properties: Value) -> Value {
        let mut properties = properties;
        properties["ServiceToken"] = json!("arn:aws:lambda:us-east-1:123456789012:function:payhooks-register");
        let mut request = json!({
            "RequestType": kind,
            "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:payhooks-register",
            "ResponseURL": self.response_url,
            "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/payhooks/0a1b2c3d",
            "RequestId": uuid::Uuid::new_v4().to_string(),
            "ResourceType": "Custom::ProviderCallback",
            "LogicalResourceId": logical_id,
            "ResourceProperties": properties,
        });
        if let Some(id) = physical_id {
            request["PhysicalResourceId"] = json!(id);
        }
        if kind == "Update" {
            request["OldResourceProperties"] = request["ResourceProperties"].clone();
        }
        request
    }

    async fn send(&self, request: Value) -> Value {
        let answered = self.resources.handle(request.clone(), Duration::from_secs(300)).await.expect("answered");
        let answers = self.cloudformation.answers();
        let sent = answers.last().expect("an answer was PUT").clone();
        assert_eq!(sent.content_type.as_deref(), Some(""), "CloudFormation's URL is signed for an empty Content-Type");
        assert_eq!(sent.body["PhysicalResourceId"], answered.physical_resource_id.as_str());
        for field in ["StackId", "RequestId", "LogicalResourceId"] {
            assert_eq!(sent.body[field], request[field], "{field} is repeated");
        }
        sent.body
    }
}

fn killbill_properties() -> Value {
    json!({"Provider": "killbill", "CallbackUrl": KB_ROUTE})
}

fn stripe_properties(url: &str) -> Value {
    json!({"Provider": "stripe", "CallbackUrl": url, "EnabledEvents": EVENTS})
}

#[tokio::test]
async fn a_create_registers_the_killbill_route_with_its_token_and_answers_success() {
    let deployment = Deployment::new().await;
    let (logs, _guard) = crate::logs::capture_logs();

    let answer = deployment
        .send(deployment.request("Create", "KillbillCallbackRegistration", None, killbill_properties()))
        .await;

    assert_eq!(answer["Status"], "SUCCESS", "{answer}");
    assert_eq!(deployment.killbill.values(), [KB_URL], "the token is appended to the route");
    let physical_id = answer["PhysicalResourceId"].as_str().expect("a physical id");
    assert!(physical_id.starts_with("killbill:sha256:"), "{physical_id}");
    assert!(!answer.to_string().contains(KB_TOKEN), "the answer never holds the token: {answer}");
    let logs = logs.text();
    assert!(logs.contains("custom resource answered"), "{logs}");
    for secret in [KB_TOKEN, KB_PASSWORD, "test-signature"] {
        assert!(!logs.contains(secret), "{secret} leaked into the logs");
    }
}

#[tokio::test]
async fn a_stripe_create_answers_with_the_endpoint_id_and_never_its_signing_secret() {
    let deployment = Deployment::new().await;
    let (logs, _guard) = crate::logs::capture_logs();

    let answer = deployment
        .send(deployment.request("Create", "StripeWebhookRegistration", None, stripe_properties(STRIPE_URL)))
        .await;

    assert_eq!(answer["Status"], "SUCCESS", "{answer}");
    let endpoint = &deployment.stripe.endpoints()[0];
    assert_eq!(answer["PhysicalResourceId"], format!("stripe:{}", endpoint.id));
    assert_eq!(endpoint.enabled_events, EVENTS);
    assert!(!answer.to_string().contains(STRIPE_ENDPOINT_SECRET));
    let logs = logs.text();
    for secret in [STRIPE_ENDPOINT_SECRET, STRIPE_KEY] {
        assert!(!logs.contains(secret), "{secret} leaked into the logs");
    }
}

#[tokio::test]
async fn a_provider_api_that_is_down_fails_the_deploy_with_the_reason() {
    // Refused connections.
    let deployment = Deployment::with_killbill_api(Some(refusing_url())).await;
    let answer = deployment
        .send(deployment.request("Create", "KillbillCallbackRegistration", None, killbill_properties()))
        .await;
    assert_eq!(answer["Status"], "FAILED");
    let reason = answer["Reason"].as_str().expect("a reason");
    assert!(reason.starts_with("Kill Bill's API could not be reached to read the notification callback"), "{reason}");
    assert!(reason.to_lowercase().contains("connection refused"), "{reason}");
    assert_eq!(answer["PhysicalResourceId"], "KillbillCallbackRegistration-not-registered");

    // Errors.
    let deployment = Deployment::new().await;
    deployment.stripe.fail_with(StatusCode::SERVICE_UNAVAILABLE);
    let answer = deployment
        .send(deployment.request("Create", "StripeWebhookRegistration", None, stripe_properties(STRIPE_URL)))
        .await;
    assert_eq!(answer["Status"], "FAILED");
    assert_eq!(answer["Reason"], "Stripe's API answered HTTP 503 to list webhook endpoints: Stripe is having trouble");
}

#[tokio::test]
async fn the_delete_that_rolls_back_a_failed_create_removes_nothing_and_succeeds() {
    let deployment = Deployment::new().await;
    deployment.killbill.set_values(&["https://billing.example.test/callbacks/kb"]);

    let answer = deployment
        .send(deployment.request(
            "Delete",
            "KillbillCallbackRegistration",
            Some("KillbillCallbackRegistration-not-registered"),
            killbill_properties(),
        ))
        .await;

    assert_eq!(answer["Status"], "SUCCESS");
    assert!(deployment.killbill.calls().is_empty(), "no call for what was never registered");
    assert_eq!(deployment.killbill.values().len(), 1);
}

#[tokio::test]
async fn an_update_to_a_new_url_registers_it_and_the_cleanup_delete_removes_the_old_endpoint() {
    let deployment = Deployment::new().await;
    let old_url = format!("{API_BASE}/webhooks/stripe-old");
    let created = deployment
        .send(deployment.request("Create", "StripeWebhookRegistration", None, stripe_properties(&old_url)))
        .await;
    let old_id = created["PhysicalResourceId"].as_str().expect("id").to_owned();

    let updated = deployment
        .send(deployment.request("Update", "StripeWebhookRegistration", Some(&old_id), stripe_properties(STRIPE_URL)))
        .await;
    assert_eq!(updated["Status"], "SUCCESS");
    let new_id = updated["PhysicalResourceId"].as_str().expect("id").to_owned();
    assert_ne!(new_id, old_id, "a new physical id: CloudFormation then deletes the old one");
    assert_eq!(deployment.stripe.endpoints().len(), 2);

    let deleted = deployment
        .send(deployment.request("Delete", "StripeWebhookRegistration", Some(&old_id), stripe_properties(&old_url)))
        .await;
    assert_eq!(deleted["Status"], "SUCCESS");
    let left = deployment.stripe.endpoints();
    assert_eq!(left.len(), 1);
    assert_eq!((format!("stripe:{}", left[0].id), left[0].url.as_str()), (new_id, STRIPE_URL));
}

#[tokio::test]
async fn a_stack_delete_unregisters_the_killbill_callback_it_registered() {
    let deployment = Deployment::new().await;
    let created = deployment
        .send(deployment.request("Create", "KillbillCallbackRegistration", None, killbill_properties()))
        .await;
    let id = created["PhysicalResourceId"].as_str().expect("id");

    let deleted = deployment
        .send(deployment.request("Delete", "KillbillCallbackRegistration", Some(id), killbill_properties()))
        .await;

    assert_eq!(deleted["Status"], "SUCCESS");
    assert!(deployment.killbill.values().is_empty());
}

#[tokio::test]
async fn a_failed_update_keeps_the_old_physical_id() {
    let deployment = Deployment::new().await;
    deployment.stripe.fail_with(StatusCode::INTERNAL_SERVER_ERROR);

    let answer = deployment
        .send(deployment.request(
            "Update",
            "StripeWebhookRegistration",
            Some("stripe:we_test_9"),
            stripe_properties(STRIPE_URL),
        ))
        .await;

    assert_eq!(answer["Status"], "FAILED");
    assert_eq!(answer["PhysicalResourceId"], "stripe:we_test_9", "a new id would make CloudFormation delete the old");
}

#[tokio::test]
async fn invalid_properties_and_unknown_requests_are_answered_failed() {
    let deployment = Deployment::new().await;
    let cases = [
        (json!({"Provider": "killbill"}), "the resource's properties are invalid: missing field `CallbackUrl`"),
        (
            json!({"Provider": "nobody", "CallbackUrl": KB_ROUTE}),
            "the resource's properties are invalid: Provider \"nobody\" is not a provider",
        ),
        (
            json!({"Provider": "paypal", "CallbackUrl": format!("{API_BASE}/webhooks/paypal")}),
            "payhooks registers no paypal callbacks (only killbill and stripe)",
        ),
    ];
    for (properties, reason) in cases {
        let answer = deployment.send(deployment.request("Create", "Registration", None, properties)).await;
        assert_eq!((answer["Status"].as_str(), answer["Reason"].as_str()), (Some("FAILED"), Some(reason)));
    }

    let mut unknown = deployment.request("Create", "Registration", None, killbill_properties());
    unknown["RequestType"] = json!("Replace");
    let answer = deployment.send(unknown).await;
    assert_eq!(answer["Status"], "FAILED");
    assert!(answer["Reason"].as_str().unwrap_or_default().starts_with("the request could not be read"), "{answer}");
    assert!(deployment.killbill.calls().is_empty() && deployment.stripe.calls().is_empty());
}

#[tokio::test]
async fn work_that_outlasts_the_invocation_is_answered_failed_in_time() {
    let deployment = Deployment::new().await;
    let now = SystemClock.now();
    let held = deployment
        .lock
        .acquire(LOCK_NAME, "another-deploy", now, now + Duration::from_secs(600))
        .await
        .expect("acquire");
    assert!(held);

    // 20 s are kept for the answer: one second of work is left.
    let request = deployment.request("Create", "KillbillCallbackRegistration", None, killbill_properties());
    let answer = deployment.resources.handle(request, Duration::from_secs(21)).await.expect("answered");

    assert_eq!(answer.status, Status::Failed);
    assert_eq!(
        answer.reason.as_deref(),
        Some("the registration did not finish within the 1s this invocation had left")
    );
    assert_eq!(deployment.cloudformation.answers().len(), 1);
}

#[tokio::test]
async fn an_answer_cloudformation_refuses_is_an_error_so_lambda_retries() {
    let deployment = Deployment::new().await;
    deployment.cloudformation.refuse_with(StatusCode::FORBIDDEN);
    let request = deployment.request("Create", "StripeWebhookRegistration", None, stripe_properties(STRIPE_URL));

    let error = deployment.resources.handle(request, Duration::from_secs(300)).await.expect_err("not answered");

    assert!(matches!(error, CustomResourceError::Refused(403)), "{error}");
    assert_eq!(deployment.stripe.endpoints().len(), 1, "the registration itself is done, and idempotent on retry");
}

#[tokio::test]
async fn an_event_without_a_response_url_cannot_be_answered() {
    let deployment = Deployment::new().await;
    let error = deployment.resources.handle(json!({"RequestType": "Create"}), Duration::from_secs(300)).await;
    assert!(matches!(error, Err(CustomResourceError::Malformed(_))), "{error:?}");
}

/// An update that clears a registration's parameters leaves the register
/// function without its settings; the delete that follows cannot reach the
/// provider, and a FAILED answer would keep the stack from ever finishing.
/// It succeeds and says what was left, while a create still fails.
#[tokio::test]
async fn a_delete_the_function_is_no_longer_configured_for_succeeds_and_says_so() {
    use payhooks::config::{Cloud, Env, RegisterConfig};
    let (logs, _guard) = crate::logs::capture_logs();
    let cloudformation = FakeResponseUrl::default();
    let response_url = cloudformation.serve().await;
    let sdk = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .build();
    let registrars = RegisterConfig::read(&Env::from_pairs([("PAYHOOKS_EVENTS_TABLE", "events")]))
        .expect("config")
        .build(&Cloud::new(sdk));
    let resources = CustomResources::new(Arc::new(registrars));
    let request = |kind: &str, physical_id: Option<&str>| {
        let mut request = json!({
            "RequestType": kind,
            "ResponseURL": response_url,
            "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/payhooks/1",
            "RequestId": format!("request-{kind}"),
            "ResourceType": "Custom::StripeWebhookEndpoint",
            "LogicalResourceId": "StripeWebhookRegistration",
            "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:register",
            "ResourceProperties": stripe_properties(STRIPE_URL),
        });
        if let Some(id) = physical_id {
            request["PhysicalResourceId"] = json!(id);
        }
        request
    };

    let created = resources.handle(request("Create", None), Duration::from_secs(300)).await.expect("answered");
    assert_eq!(created.status, Status::Failed, "nothing can be registered without the settings");

    let deleted = resources
        .handle(request("Delete", Some("stripe:we_test_left")), Duration::from_secs(300))
        .await
        .expect("answered");
    assert_eq!(deleted.status, Status::Success);
    let reason = deleted.reason.unwrap_or_default();
    assert!(
        reason.contains("stripe:we_test_left was left registered")
            && reason.contains("stripe's callback registration is not configured"),
        "{reason}"
    );
    assert_eq!(cloudformation.answers().last().expect("answered").body["Status"], "SUCCESS");
    assert!(logs.text().contains("was left registered"), "the delete is logged as a warning");
}

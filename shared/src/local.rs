//! The local server: every provider route and the processor in one process,
//! on the in-memory adapters. No AWS account needed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use tracing::{info, warn};

use crate::adapters::{MemoryEventStore, MemoryMetrics, MemoryProvisioner, MemoryQueue};
use crate::clock::SystemClock;
use crate::edge::admin::Admin;
use crate::edge::http::{JsonResponse, webhook};
use crate::effects::{BillingEffects, NegativeBalances, PlanChanges, Plans};
use crate::event::{EventId, EventKey, EventRecord, Provider};
use crate::ingest::{Ingest, IngestSettings};
use crate::ports::{AccountRef, Balances, Confirmation, Confirmer, EffectError, Effects, EventRecords};
use crate::process::{Processor, ProcessorPorts, ProcessorSettings, RecordOnlyEffects};
use crate::providers::killbill::api::KillbillObjects;
use crate::providers::{self, Inbound, Verifier, VerifierSettings};
use crate::secret::SecretSet;
use crate::sweep::{SweepSettings, Sweeper};

/// SQS's default redrive setting in `template.yaml`.
pub const MAX_RECEIVE_COUNT: u32 = crate::sweep::DEFAULT_MAX_RECEIVE_COUNT;

/// How the local server's effects apply money: the plans, and the
/// settings the processor reads (`PAYHOOKS_PLAN_CHANGES`,
/// `PAYHOOKS_NEGATIVE_BALANCES`).
#[derive(Debug, Clone)]
pub struct Billing {
    pub plans: Plans,
    pub plan_changes: PlanChanges,
    pub negative_balances: NegativeBalances,
    /// Confirm Kill Bill's notifications against a stand-in for its API
    /// (its plans and periods come only from there), answering with the
    /// objects put to `PUT /killbill-api/1.0/kb/{path}`.
    pub killbill_stand_in: bool,
}

impl From<Plans> for Billing {
    fn from(plans: Plans) -> Self {
        Self {
            plans,
            plan_changes: PlanChanges::default(),
            negative_balances: NegativeBalances::default(),
            killbill_stand_in: false,
        }
    }
}

/// A stand-in for Kill Bill's API: the objects put to it, by path (with
/// its query) under `/1.0/kb/`.
#[derive(Debug, Default)]
pub struct LocalKillbill {
    objects: std::sync::Mutex<std::collections::HashMap<String, serde_json::Value>>,
}

impl LocalKillbill {
    pub fn put(&self, path: &str, object: serde_json::Value) {
        self.objects.lock().expect("not poisoned").insert(path.to_owned(), object);
    }
}

#[async_trait::async_trait]
impl KillbillObjects for LocalKillbill {
    async fn read(&self, path: &str) -> Result<Option<serde_json::Value>, EffectError> {
        Ok(self.objects.lock().expect("not poisoned").get(path).cloned())
    }
}

#[async_trait::async_trait]
impl Confirmer for LocalKillbill {
    async fn confirm(&self, record: &EventRecord) -> Result<Confirmation, EffectError> {
        crate::providers::killbill::api::confirm(self, &record.event).await
    }
}

/// Everything the local server runs, shared by its routes and its worker.
#[derive(Debug, Clone)]
pub struct LocalApp {
    pub ingest: Arc<Ingest>,
    pub processor: Arc<Processor>,
    pub store: Arc<MemoryEventStore>,
    pub queue: Arc<MemoryQueue>,
    pub dead_letters: Arc<MemoryQueue>,
    pub metrics: Arc<MemoryMetrics>,
    /// What the processor told the downstream provisioner (logged as it goes).
    pub provisioner: Arc<MemoryProvisioner>,
    /// Kill Bill's API stand-in, when billing asked for one.
    pub killbill: Option<Arc<LocalKillbill>>,
}

impl LocalApp {
    /// Wires every given provider to one in-memory store and queue.
    pub fn new(
        secrets: Vec<(Provider, SecretSet)>,
        verifier_settings: &VerifierSettings,
        ingest_settings: IngestSettings,
        processor_settings: ProcessorSettings,
    ) -> Self {
        let verifiers =
            secrets.into_iter().map(|(provider, set)| providers::verifier(provider, set, verifier_settings)).collect();
        Self::with_verifiers(verifiers, None, ingest_settings, processor_settings)
    }

    /// Wires verifiers built by the caller (a PayPal verifier whose
    /// certificates come from memory, for one) to one in-memory store and queue.
    /// With `plans`, the processor applies effects on the in-memory ledger;
    /// without, it only records events.
    pub fn with_verifiers(
        verifiers: Vec<Arc<dyn Verifier>>,
        billing: Option<Billing>,
        ingest_settings: IngestSettings,
        processor_settings: ProcessorSettings,
    ) -> Self {
        // The processor fails an event on the receive the queue's redrive
        // would dead-letter it after.
        let processor_settings = ProcessorSettings { max_receive_count: MAX_RECEIVE_COUNT, ..processor_settings };
        let store = Arc::new(MemoryEventStore::new());
        let dead_letters = Arc::new(MemoryQueue::new(processor_settings.lease));
        let queue = Arc::new(
            MemoryQueue::new(processor_settings.lease).with_dead_letters(dead_letters.clone(), MAX_RECEIVE_COUNT),
        );
        let metrics = Arc::new(MemoryMetrics::new());
        let clock = Arc::new(SystemClock);
        let ingest =
            Ingest::new(verifiers, store.clone(), queue.clone(), metrics.clone(), clock.clone(), ingest_settings);
        let provisioner = Arc::new(MemoryProvisioner::new());
        let killbill = billing.as_ref().filter(|b| b.killbill_stand_in).map(|_| Arc::new(LocalKillbill::default()));
        let effects: Arc<dyn Effects> = match billing {
            Some(billing) => Arc::new(
                BillingEffects::new(store.clone(), billing.plans, clock.clone())
                    .with_plan_changes(billing.plan_changes)
                    .with_negative_balances(billing.negative_balances)
                    .with_provisioner(provisioner.clone()),
            ),
            None => Arc::new(RecordOnlyEffects),
        };
        let mut processor = Processor::new(
            ProcessorPorts {
                store: store.clone(),
                queue: queue.clone(),
                dead_letters: dead_letters.clone(),
                metrics: metrics.clone(),
                clock,
            },
            effects,
            processor_settings,
        );
        if let Some(killbill) = &killbill {
            processor = processor.with_confirmer(Provider::Killbill, killbill.clone());
        }
        Self {
            ingest: Arc::new(ingest),
            processor: Arc::new(processor),
            store,
            queue,
            dead_letters,
            metrics,
            provisioner,
            killbill,
        }
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/webhooks/{provider}", axum::routing::any(webhook_route))
            .route("/webhooks/{provider}/{token}", axum::routing::any(webhook_with_token_route))
            .route("/events/{provider}/{event_id}", axum::routing::get(event_route))
            .route("/accounts/{provider}/{account}", axum::routing::get(account_route))
            .route("/accounts/{provider}/{account}/ledger", axum::routing::get(ledger_route))
            .route("/admin/{*path}", axum::routing::any(admin_route))
            .route("/killbill-api/1.0/kb/{*path}", axum::routing::put(killbill_api_route))
            .fallback(|| async { json(JsonResponse::not_found("route")) })
            .with_state(self.clone())
    }

    /// Polls the queue and processes what arrives, as Lambda's SQS trigger
    /// would, until the task is dropped.
    pub async fn run_worker(&self) {
        loop {
            if let Err(error) = self.processor.poll_once(Duration::from_secs(1)).await {
                warn!(error = %error, "queue receive failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }

    /// Sweeps stuck events every minute, as the scheduled function does.
    pub async fn run_sweeper(&self) {
        let sweeper = self.sweeper();
        loop {
            tokio::time::sleep(Duration::from_secs(60)).await;
            if let Err(error) = sweeper.sweep().await {
                warn!(error = %error, "sweep failed");
            }
        }
    }

    /// The operator's routes over the local store and queues.
    pub fn admin(&self) -> Admin {
        Admin {
            store: self.store.clone(),
            ledger: self.store.clone(),
            queue: self.queue.clone(),
            dead_letters: self.dead_letters.clone(),
            metrics: self.metrics.clone(),
            clock: Arc::new(SystemClock),
            sweep: SweepSettings { max_receive_count: MAX_RECEIVE_COUNT, ..SweepSettings::default() },
        }
    }

    /// The sweeper over the local store and queue.
    pub fn sweeper(&self) -> Sweeper {
        let settings = SweepSettings { max_receive_count: MAX_RECEIVE_COUNT, ..SweepSettings::default() };
        Sweeper::new(self.store.clone(), self.queue.clone(), self.metrics.clone(), Arc::new(SystemClock), settings)
    }

    /// Serves on `addr` with the worker running beside the routes.
    pub async fn serve(self, addr: SocketAddr) -> std::io::Result<()> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        info!(addr = %listener.local_addr()?, "payhooks local server listening");
        let worker = tokio::spawn({
            let app = self.clone();
            async move { app.run_worker().await }
        });
        let sweeper = tokio::spawn({
            let app = self.clone();
            async move { app.run_sweeper().await }
        });
        let served = axum::serve(listener, self.router().into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await;
        worker.abort();
        sweeper.abort();
        served
    }
}

fn json(response: JsonResponse) -> Response {
    (response.status, axum::Json(response.body)).into_response()
}

/// The admin routes, open on the local server (it listens on loopback).
async fn admin_route(State(app): State<LocalApp>, request: axum::extract::Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024).await else {
        return json(JsonResponse::error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "admin bodies are small"));
    };
    json(app.admin().handle(&parts.method, parts.uri.path(), &bytes).await)
}

/// Puts an object into Kill Bill's API stand-in, at its path and query.
async fn killbill_api_route(
    State(app): State<LocalApp>,
    Path(path): Path<String>,
    RawQuery(query): RawQuery,
    axum::Json(object): axum::Json<serde_json::Value>,
) -> Response {
    let Some(killbill) = &app.killbill else {
        return json(JsonResponse::not_found(
            "Kill Bill stand-in (the local server confirms Kill Bill with it when it applies effects)",
        ));
    };
    let path = match query {
        Some(query) => format!("{path}?{query}"),
        None => path,
    };
    killbill.put(&path, object);
    json(JsonResponse::ok(serde_json::json!({ "put": path })))
}

async fn webhook_route(
    State(app): State<LocalApp>,
    Path(provider): Path<String>,
    request: axum::extract::Request,
) -> Response {
    serve_webhook(&app, &provider, None, request).await
}

async fn webhook_with_token_route(
    State(app): State<LocalApp>,
    Path((provider, token)): Path<(String, String)>,
    request: axum::extract::Request,
) -> Response {
    serve_webhook(&app, &provider, Some(&token), request).await
}

async fn serve_webhook(
    app: &LocalApp,
    provider: &str,
    token: Option<&str>,
    request: axum::extract::Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let source_ip = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(addr)| addr.ip());
    let limit = app.ingest.settings().max_body_bytes;
    // Read one byte past the limit so an oversized body gets the same 413
    // JSON answer as in the cloud.
    let Ok(bytes) = axum::body::to_bytes(body, limit.saturating_add(1)).await else {
        return json(JsonResponse::error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the body is larger than {limit} bytes"),
        ));
    };
    let inbound = Inbound { headers: &parts.headers, body: &bytes, source_ip, path_token: token };
    json(webhook(&app.ingest, &parts.method, provider, &inbound).await)
}

async fn event_route(State(app): State<LocalApp>, Path((provider, event_id)): Path<(String, String)>) -> Response {
    let (Ok(provider), Ok(event_id)) = (provider.parse::<Provider>(), EventId::parse(&event_id)) else {
        return json(JsonResponse::not_found("such event"));
    };
    match app.store.get(&EventKey::new(provider, event_id)).await {
        Ok(Some(record)) => json(JsonResponse::ok(serde_json::to_value(record).unwrap_or_default())),
        Ok(None) => json(JsonResponse::not_found("such event")),
        Err(error) => json(JsonResponse::error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", error)),
    }
}

fn account_ref(provider: &str, account: String) -> Option<AccountRef> {
    provider.parse::<Provider>().ok().map(|p| AccountRef::new(p, account))
}

async fn account_route(State(app): State<LocalApp>, Path((provider, account)): Path<(String, String)>) -> Response {
    let Some(account) = account_ref(&provider, account) else {
        return json(JsonResponse::not_found("such account"));
    };
    match app.store.account(&account).await {
        Ok(Some(state)) => json(JsonResponse::ok(serde_json::json!({
            "provider": account.provider,
            "account": account.account,
            "balance": state.balance,
            "trial_started_at": state.trial_started_at.and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok()),
            "failed_payments": state.failed_payments,
            "entitlement": state.entitlement,
            "subscriptions": state.subscriptions,
            "flags": state.flags,
        }))),
        Ok(None) => json(JsonResponse::not_found("such account")),
        Err(error) => json(JsonResponse::error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", error)),
    }
}

async fn ledger_route(State(app): State<LocalApp>, Path((provider, account)): Path<(String, String)>) -> Response {
    let Some(account) = account_ref(&provider, account) else {
        return json(JsonResponse::not_found("such account"));
    };
    match app.store.entries(&account).await {
        Ok(entries) => json(JsonResponse::ok(serde_json::json!({ "entries": entries }))),
        Err(error) => json(JsonResponse::error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", error)),
    }
}

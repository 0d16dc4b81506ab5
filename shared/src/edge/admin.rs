//! The operator's view and repair operations, one router for the local
//! server and the admin Lambda (behind IAM authorization, never open):
//!
//! | Method and path | What |
//! |---|---|
//! | `GET /admin/health` | queue and DLQ depth; per provider, events stuck and the last success |
//! | `GET /admin/events/{provider}/{event_id}` | one event's record: its whole history |
//! | `GET /admin/accounts/{provider}/{account}` | balance, entitlement, subscriptions, flags, ledger, audits |
//! | `POST /admin/replay` | DLQ → queue: `{"provider"?, "event_id"?, "dry_run"?, "limit"?}` |
//! | `POST /admin/sweep` | re-enqueue stuck events now |
//! | `POST /admin/reconcile` | check balances against their ledgers now, for up to 20 s; again goes on |

use std::sync::Arc;

use http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::json;

use super::http::JsonResponse;
use crate::clock::Clock;
use crate::event::{EventId, EventKey, Provider};
use crate::ports::{AccountRef, Audits, Metrics, Queue, Repairs};
use crate::reconcile::Reconciler;
use crate::replay::{ReplayFilter, Replayer};
use crate::sweep::{SweepSettings, Sweeper};

/// A reconciliation asked for here stops after this long (the admin
/// function times out at 29 s); calling again goes on where it stopped.
const ADMIN_RECONCILE_BUDGET: std::time::Duration = std::time::Duration::from_secs(20);

/// Stuck events counted per provider in a health check, at most.
const STUCK_SAMPLE: usize = 100;

#[derive(Debug, Clone)]
pub struct Admin {
    pub store: Arc<dyn Repairs>,
    pub ledger: Arc<dyn Audits>,
    pub queue: Arc<dyn Queue>,
    pub dead_letters: Arc<dyn Queue>,
    pub metrics: Arc<dyn Metrics>,
    pub clock: Arc<dyn Clock>,
    pub sweep: SweepSettings,
}

/// The body of `POST /admin/replay`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    pub provider: Option<String>,
    pub event_id: Option<String>,
    #[serde(default)]
    pub dry_run: bool,
    /// Matched messages per request, at most (default 100): a large DLQ is
    /// replayed by repeating the request while `more` is true, well within
    /// API Gateway's time limit.
    pub limit: Option<usize>,
}

impl Admin {
    /// Answers one admin request; `body` is the raw request body.
    pub async fn handle(&self, method: &Method, path: &str, body: &[u8]) -> JsonResponse {
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let answer = match (method, segments.as_slice()) {
            (&Method::GET, ["admin", "health"]) => self.health().await,
            (&Method::GET, ["admin", "events", provider, event_id]) => self.event(provider, event_id).await,
            (&Method::GET, ["admin", "accounts", provider, account]) => self.account(provider, account).await,
            (&Method::POST, ["admin", "replay"]) => self.replay(body).await,
            (&Method::POST, ["admin", "sweep"]) => self.sweeper().sweep().await.map_err(unavailable).and_then(to_json),
            (&Method::POST, ["admin", "reconcile"]) => {
                self.reconciler().reconcile(Some(ADMIN_RECONCILE_BUDGET)).await.map_err(unavailable).and_then(to_json)
            }
            _ => return JsonResponse::not_found("admin route"),
        };
        answer.unwrap_or_else(|response| response)
    }

    fn sweeper(&self) -> Sweeper {
        Sweeper::new(
            self.store.clone(),
            self.queue.clone(),
            self.metrics.clone(),
            self.clock.clone(),
            self.sweep.clone(),
        )
    }

    fn reconciler(&self) -> Reconciler {
        Reconciler::new(self.ledger.clone(), self.metrics.clone(), self.clock.clone())
    }

    async fn health(&self) -> Result<JsonResponse, JsonResponse> {
        let queue = self.queue.counts().await.map_err(unavailable)?;
        let dead_letters = self.dead_letters.counts().await.map_err(unavailable)?;
        let older_than = self.clock.now() - self.sweep.older_than;
        let last_success = self.store.last_successes().await.map_err(unavailable)?;
        let mut stuck = serde_json::Map::new();
        for &provider in Provider::ALL {
            let events = self.store.stuck(provider, None, older_than, STUCK_SAMPLE).await.map_err(unavailable)?;
            let oldest = events.first().map(|r| r.updated_at.unix_timestamp());
            let last = last_success.get(&provider).map(|at| at.unix_timestamp());
            stuck.insert(
                provider.to_string(),
                json!({ "stuck": events.len(), "oldest_stuck_updated_at": oldest, "last_success": last }),
            );
        }
        let healthy = dead_letters.visible + dead_letters.in_flight == 0 && stuck.values().all(|s| s["stuck"] == 0);
        Ok(JsonResponse::ok(json!({
            "healthy": healthy,
            "queue": queue,
            "dead_letters": dead_letters,
            "stuck_after_secs": self.sweep.older_than.as_secs(),
            "providers": stuck,
        })))
    }

    async fn event(&self, provider: &str, event_id: &str) -> Result<JsonResponse, JsonResponse> {
        let (Ok(provider), Ok(event_id)) = (provider.parse::<Provider>(), EventId::parse(event_id)) else {
            return Err(JsonResponse::not_found("such event"));
        };
        match self.store.get(&EventKey::new(provider, event_id)).await.map_err(unavailable)? {
            Some(record) => to_json(record),
            None => Err(JsonResponse::not_found("such event")),
        }
    }

    async fn account(&self, provider: &str, account: &str) -> Result<JsonResponse, JsonResponse> {
        let Ok(provider) = provider.parse::<Provider>() else {
            return Err(JsonResponse::not_found("such account"));
        };
        let account = AccountRef::new(provider, account);
        let Some(state) = self.ledger.account(&account).await.map_err(unavailable)? else {
            return Err(JsonResponse::not_found("such account"));
        };
        let entries = self.ledger.entries(&account).await.map_err(unavailable)?;
        let audits = self.ledger.audits(&account).await.map_err(unavailable)?;
        Ok(JsonResponse::ok(json!({
            "provider": provider,
            "account": account.account,
            "state": state,
            "ledger": entries,
            "audits": audits,
        })))
    }

    async fn replay(&self, body: &[u8]) -> Result<JsonResponse, JsonResponse> {
        let request: ReplayRequest = if body.iter().all(u8::is_ascii_whitespace) {
            ReplayRequest::default()
        } else {
            serde_json::from_slice(body)
                .map_err(|e| bad_request(format!("the body must be {{provider?, event_id?, dry_run?}}: {e}")))?
        };
        let provider = match request.provider.as_deref() {
            Some(name) => {
                Some(name.parse::<Provider>().map_err(|_| bad_request(format!("unknown provider {name:?}")))?)
            }
            None => None,
        };
        let filter = match (provider, request.event_id) {
            (Some(provider), Some(id)) => {
                let id = EventId::parse(&id).map_err(|e| bad_request(e.to_string()))?;
                ReplayFilter::Event(EventKey::new(provider, id))
            }
            (None, Some(_)) => return Err(bad_request("an event_id needs its provider".into())),
            (Some(provider), None) => ReplayFilter::Provider(provider),
            (None, None) => ReplayFilter::All,
        };
        let replayer = Replayer::new(
            self.store.clone(),
            self.queue.clone(),
            self.dead_letters.clone(),
            self.metrics.clone(),
            self.clock.clone(),
        );
        let limit = request.limit.unwrap_or(100).clamp(1, 1000);
        let report = replayer.replay(&filter, request.dry_run, Some(limit), &|_| {}).await.map_err(unavailable)?;
        to_json(report)
    }
}

fn to_json(value: impl serde::Serialize) -> Result<JsonResponse, JsonResponse> {
    serde_json::to_value(value)
        .map(JsonResponse::ok)
        .map_err(|e| JsonResponse::error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e))
}

fn unavailable(error: impl std::fmt::Display) -> JsonResponse {
    JsonResponse::error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", error)
}

fn bad_request(message: String) -> JsonResponse {
    JsonResponse::error(StatusCode::BAD_REQUEST, "bad_request", message)
}

//! A local Lambda Runtime API: what a function's bootstrap talks to
//! (`GET /2018-06-01/runtime/invocation/next`, `POST …/{id}/response`,
//! `…/{id}/error`, `POST …/init/error`), serving queued events and recording
//! when each answer came back. With it a built function binary runs as it
//! would in Lambda, so its cold start (process start → first handled
//! invocation) can be measured.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use tokio::sync::Notify;

/// What the function answered to one invocation.
#[derive(Debug, Clone)]
pub struct Answer {
    pub request_id: String,
    /// `true` for `/response`, `false` for `/error` or `/init/error`.
    pub ok: bool,
    pub body: Bytes,
    pub at: Instant,
}

#[derive(Debug, Default)]
struct Inner {
    events: Mutex<VecDeque<(String, Bytes)>>,
    answers: Mutex<Vec<Answer>>,
    first_poll: Mutex<Option<Instant>>,
    arrived: Notify,
    answered: Notify,
}

#[derive(Debug, Clone, Default)]
pub struct RuntimeApi {
    inner: Arc<Inner>,
}

impl RuntimeApi {
    /// Serves on a free port of 127.0.0.1; the address goes into the
    /// function's `AWS_LAMBDA_RUNTIME_API`.
    pub async fn start() -> std::io::Result<(Self, SocketAddr)> {
        let api = Self::default();
        let router = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(api.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move { axum::serve(listener, router).await });
        Ok((api, addr))
    }

    /// Queues an invocation; returns its request id.
    pub fn invoke(&self, event: impl Into<Bytes>) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        self.lock_events().push_back((id.clone(), event.into()));
        self.inner.arrived.notify_waiters();
        id
    }

    /// Waits until `count` answers have come back; returns them all.
    pub async fn answers(&self, count: usize) -> Vec<Answer> {
        loop {
            let answered = self.inner.answered.notified();
            {
                let answers = self.inner.answers.lock().unwrap_or_else(|e| e.into_inner());
                if answers.len() >= count {
                    return answers.clone();
                }
            }
            answered.await;
        }
    }

    /// When the function first asked for work: its initialization is done.
    pub fn first_poll(&self) -> Option<Instant> {
        *self.inner.first_poll.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_events(&self) -> std::sync::MutexGuard<'_, VecDeque<(String, Bytes)>> {
        self.inner.events.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn record(&self, request_id: String, ok: bool, body: Bytes) {
        let answer = Answer { request_id, ok, body, at: Instant::now() };
        self.inner.answers.lock().unwrap_or_else(|e| e.into_inner()).push(answer);
        self.inner.answered.notify_waiters();
    }
}

async fn next(State(api): State<RuntimeApi>) -> Response {
    api.inner.first_poll.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert_with(Instant::now);
    loop {
        let arrived = api.inner.arrived.notified();
        let queued = api.lock_events().pop_front();
        if let Some((id, event)) = queued {
            let mut headers = HeaderMap::new();
            let deadline = (time::OffsetDateTime::now_utc().unix_timestamp() + 30) * 1000;
            for (name, value) in [
                // As Lambda sends it: runtime clients decode JSON only then.
                ("content-type", "application/json".to_owned()),
                ("lambda-runtime-aws-request-id", id),
                ("lambda-runtime-deadline-ms", deadline.to_string()),
                (
                    "lambda-runtime-invoked-function-arn",
                    "arn:aws:lambda:us-east-1:000000000000:function:payhooks-local".to_owned(),
                ),
                ("lambda-runtime-trace-id", "Root=1-00000000-000000000000000000000000;Sampled=0".to_owned()),
            ] {
                if let Ok(value) = HeaderValue::from_str(&value) {
                    headers.insert(name, value);
                }
            }
            return (StatusCode::OK, headers, event).into_response();
        }
        arrived.await;
    }
}

async fn response(State(api): State<RuntimeApi>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    api.record(id, true, body);
    StatusCode::ACCEPTED
}

async fn error(State(api): State<RuntimeApi>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    api.record(id, false, body);
    StatusCode::ACCEPTED
}

async fn init_error(State(api): State<RuntimeApi>, body: Bytes) -> StatusCode {
    api.record("init".to_owned(), false, body);
    StatusCode::ACCEPTED
}

/// An API Gateway HTTP API (payload 2.0) event, as Lambda hands it to a
/// function behind a route.
pub fn http_event(method: &str, path: &str, headers: serde_json::Value, body: &str) -> serde_json::Value {
    serde_json::json!({
        "version": "2.0",
        "routeKey": format!("{method} {path}"),
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": "local.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "local",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "payhooks-tests"},
            "requestId": "payhooks-tests",
            "routeKey": format!("{method} {path}"),
            "stage": "$default",
            "time": "24/Nov/2026:00:00:00 +0000",
            "timeEpoch": 0
        },
        "body": body,
        "isBase64Encoded": false
    })
}

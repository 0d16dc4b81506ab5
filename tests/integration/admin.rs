//! The admin routes, as the local server serves them and the admin Lambda
//! answers them: health, one event's history, one account, replay with a
//! dry run, sweep and reconcile; unknown routes and bad bodies are refused.

use std::time::Duration;

use axum::body::Body;
use http::{Request, StatusCode};
use payhooks::event::Provider;
use payhooks::ingest::IngestSettings;
use payhooks::local::LocalApp;
use payhooks::ports::Queue;
use payhooks::process::ProcessorSettings;
use payhooks::providers::VerifierSettings;
use payhooks::secret::SecretSet;
use payhooks_tests::requests::{SECRET, stripe_event, stripe_headers};
use serde_json::Value;
use tower::ServiceExt;

fn local_app() -> LocalApp {
    let secrets = vec![(Provider::Stripe, SecretSet::from_comma_separated(SECRET).expect("secret"))];
    LocalApp::new(secrets, &VerifierSettings::default(), IngestSettings::default(), ProcessorSettings::default())
}

async fn call(app: &LocalApp, method: &str, path: &str, body: &str) -> (StatusCode, Value) {
    let request = Request::builder().method(method).uri(path).body(Body::from(body.to_owned())).expect("request");
    let response = app.router().oneshot(request).await.expect("infallible");
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
    (status, serde_json::from_slice(&bytes).expect("JSON"))
}

/// Delivers a Stripe sample; returns its event id.
async fn deliver(app: &LocalApp) -> String {
    let (ids, body) = stripe_event("invoice.paid");
    let headers = stripe_headers(&body, SECRET, time::OffsetDateTime::now_utc().unix_timestamp());
    let mut request = Request::post("/webhooks/stripe").body(Body::from(body)).expect("request");
    request.headers_mut().extend(headers);
    let response = app.router().oneshot(request).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
    ids.event_id
}

#[tokio::test]
async fn health_history_replay_sweep_and_reconcile_answer_as_documented() {
    let app = local_app();
    let (status, health) = call(&app, "GET", "/admin/health", "").await;
    assert_eq!(status, StatusCode::OK, "{health}");
    assert_eq!((health["healthy"].as_bool(), health["queue"]["visible"].as_u64()), (Some(true), Some(0)));
    assert_eq!(health["stuck"]["stripe"]["count"], 0);

    let id = deliver(&app).await;
    let event_path = format!("/admin/events/stripe/{id}");
    let (_, health) = call(&app, "GET", "/admin/health", "").await;
    assert_eq!(health["queue"]["visible"], 1, "{health}");
    let (status, event) = call(&app, "GET", &event_path, "").await;
    assert_eq!((status, event["status"].as_str()), (StatusCode::OK, Some("enqueued")), "{event}");
    assert_eq!(call(&app, "GET", "/admin/events/stripe/evt_nobody", "").await.0, StatusCode::NOT_FOUND);

    // A dead letter: listed by a dry run, moved by a replay, processed.
    let message = app.queue.receive(1, Duration::ZERO).await.expect("receive").remove(0);
    app.queue.delete(&message.receipt).await.expect("delete");
    app.dead_letters.send(&message.body).await.expect("send");
    let (_, health) = call(&app, "GET", "/admin/health", "").await;
    assert_eq!((health["healthy"].as_bool(), health["dead_letters"]["visible"].as_u64()), (Some(false), Some(1)));
    let (status, listed) = call(&app, "POST", "/admin/replay", r#"{"provider": "stripe", "dry_run": true}"#).await;
    assert_eq!((status, listed["moved"].as_u64(), listed["matched"][0]["event_id"].as_str()), (StatusCode::OK, Some(0), Some(id.as_str())));
    let (status, moved) = call(&app, "POST", "/admin/replay", "").await;
    assert_eq!((status, moved["moved"].as_u64(), moved["more"].as_bool()), (StatusCode::OK, Some(1), Some(false)), "{moved}");
    while app.processor.poll_once(Duration::ZERO).await.expect("poll").processed > 0 {}
    let (_, event) = call(&app, "GET", &event_path, "").await;
    assert_eq!(event["status"], "completed", "{event}");

    let (status, swept) = call(&app, "POST", "/admin/sweep", "").await;
    assert_eq!((status, swept["requeued_unsent"].as_u64()), (StatusCode::OK, Some(0)));
    let (status, reconciled) = call(&app, "POST", "/admin/reconcile", "").await;
    assert_eq!((status, reconciled["mismatched"].as_u64()), (StatusCode::OK, Some(0)));
}

#[tokio::test]
async fn admin_requests_that_make_no_sense_are_refused_with_a_reason() {
    let app = local_app();
    for (method, path, body, status, code) in [
        ("GET", "/admin/nothing-here", "", StatusCode::NOT_FOUND, "not_found"),
        ("DELETE", "/admin/health", "", StatusCode::NOT_FOUND, "not_found"),
        ("POST", "/admin/replay", "{not json", StatusCode::BAD_REQUEST, "bad_request"),
        ("POST", "/admin/replay", r#"{"provider": "acme"}"#, StatusCode::BAD_REQUEST, "bad_request"),
        ("POST", "/admin/replay", r#"{"event_id": "evt_1"}"#, StatusCode::BAD_REQUEST, "bad_request"),
        ("POST", "/admin/replay", r#"{"dry_run": true, "surprise": 1}"#, StatusCode::BAD_REQUEST, "bad_request"),
        ("GET", "/admin/accounts/stripe/nobody", "", StatusCode::NOT_FOUND, "not_found"),
    ] {
        let (answer_status, answer) = call(&app, method, path, body).await;
        assert_eq!((answer_status, answer["error"].as_str()), (status, Some(code)), "{method} {path} {body}: {answer}");
    }
}

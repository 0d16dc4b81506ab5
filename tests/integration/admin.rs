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
    assert_eq!(health["providers"]["stripe"]["stuck"], 0);

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
    assert_eq!(
        (status, listed["moved"].as_u64(), listed["matched"][0]["event_id"].as_str()),
        (StatusCode::OK, Some(0), Some(id.as_str()))
    );
    let (status, moved) = call(&app, "POST", "/admin/replay", "").await;
    assert_eq!(
        (status, moved["moved"].as_u64(), moved["more"].as_bool()),
        (StatusCode::OK, Some(1), Some(false)),
        "{moved}"
    );
    while app.processor.poll_once(Duration::ZERO).await.expect("poll").processed > 0 {}
    let (_, event) = call(&app, "GET", &event_path, "").await;
    assert_eq!(event["status"], "completed", "{event}");
    let (_, health) = call(&app, "GET", "/admin/health", "").await;
    assert!(health["providers"]["stripe"]["last_success"].as_i64().is_some(), "{health}");
    assert!(health["providers"]["paystack"]["last_success"].is_null(), "{health}");

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

/// The store, queue and ledger calls each repair operation makes, counted
/// at the ports (each is one AWS request on the DynamoDB and SQS adapters).
#[tokio::test]
async fn the_calls_each_repair_operation_makes() {
    use std::sync::Arc;

    use payhooks::adapters::{MemoryEventStore, MemoryMetrics, MemoryQueue};
    use payhooks::clock::{Clock, ManualClock};
    use payhooks::event::{DomainEvent, EventId, EventKey, NewEvent};
    use payhooks::ports::{AccountRef, Change, Effect, Finish, Intake, LeaseOutcome, Leases, Postings};
    use payhooks::reconcile::Reconciler;
    use payhooks::replay::{ReplayFilter, Replayer};
    use payhooks::sweep::{SweepSettings, Sweeper};
    use payhooks_tests::faults::{FaultyLedger, FaultyQueue, FaultyStore};

    let memory = Arc::new(MemoryEventStore::new());
    let store = Arc::new(FaultyStore::new(memory.clone()));
    let ledger = Arc::new(FaultyLedger::new(memory.clone()));
    let queue = Arc::new(FaultyQueue::new(Arc::new(MemoryQueue::new(Duration::from_secs(30)))));
    let dead_letters = Arc::new(FaultyQueue::new(Arc::new(MemoryQueue::new(Duration::from_secs(30)))));
    let start = time::OffsetDateTime::now_utc();
    let clock = Arc::new(ManualClock::at(start));
    let metrics = Arc::new(MemoryMetrics::new());
    let event = |id: &str| {
        let key = EventKey::new(Provider::Stripe, EventId::parse(id).expect("id"));
        let new = NewEvent {
            key: key.clone(),
            fingerprint: "fp".into(),
            event: DomainEvent::new("invoice.paid", start),
            received_at: start,
        };
        (key, new)
    };

    // Sweep: one event recorded, never sent.
    let (_, new) = event("evt_calls_unsent");
    memory.claim(&new).await.expect("claim");
    clock.advance(time::Duration::hours(1));
    let sweeper = Sweeper::new(store.clone(), queue.clone(), metrics.clone(), clock.clone(), SweepSettings::default());
    assert_eq!(sweeper.sweep().await.expect("sweep").requeued_unsent, 1);
    let counted = |calls: &payhooks_tests::faults::Faults, names: &[&str]| {
        names.iter().map(|n| calls.count(n)).collect::<Vec<_>>()
    };
    let providers = u32::try_from(Provider::ALL.len()).expect("a few");
    assert_eq!(counted(&store.faults, &["stuck", "requeue", "mark_enqueued"]), vec![providers, 1, 1]);
    assert_eq!(queue.faults.count("send"), 1);

    // Replay: one failed event in the DLQ.
    let (failed, new) = event("evt_calls_failed");
    memory.claim(&new).await.expect("claim");
    let now = clock.now();
    assert!(matches!(
        memory.lease(&failed, "w", now, now + time::Duration::minutes(1)).await.expect("lease"),
        LeaseOutcome::Acquired(_)
    ));
    memory.finish(&failed, "w", &Finish::Failed { reason: "unknown plan".into() }, now).await.expect("finish");
    dead_letters.send(&failed.message_body()).await.expect("send");
    for calls in [&store.faults, &queue.faults, &dead_letters.faults] {
        calls.reset();
    }
    let replayer = Replayer::new(store.clone(), queue.clone(), dead_letters.clone(), metrics.clone(), clock.clone());
    let report = replayer.replay(&ReplayFilter::All, false, None, &|_| {}).await.expect("replay");
    assert_eq!((report.moved, report.reopened), (1, 1));
    assert_eq!(counted(&store.faults, &["get", "reopen"]), vec![1, 1]);
    assert_eq!(queue.faults.count("send"), 1);
    assert_eq!(counted(&dead_letters.faults, &["receive", "delete", "change_visibility"]), vec![2, 1, 0]);

    // Reconcile: one account.
    let (granted, new) = event("evt_calls_grant");
    memory.claim(&new).await.expect("claim");
    assert!(matches!(
        memory.lease(&granted, "w", now, now + time::Duration::minutes(1)).await.expect("lease"),
        LeaseOutcome::Acquired(_)
    ));
    let account = AccountRef::new(Provider::Stripe, "acct-calls");
    memory
        .commit(&Effect::new("grant:calls".into(), account, Change::Credit(5), granted), "w", now)
        .await
        .expect("commit");
    let reconciler = Reconciler::new(ledger.clone(), metrics.clone(), clock.clone());
    assert_eq!(reconciler.reconcile(None).await.expect("reconcile").accounts, 1);
    // The account read and its entries; the checkpoint read, and cleared at the end.
    assert_eq!(counted(&ledger.faults, &["Scan", "GetItem", "Query", "PutItem", "DeleteItem"]), vec![1, 2, 1, 0, 1]);
}

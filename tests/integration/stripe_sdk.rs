//! Cross-checks with Stripe's official Node library (npm `stripe`, pinned and
//! installed by `scripts/test.sh`): headers it generates are accepted, and
//! tampered ones are refused; headers payhooks generates pass its checks.

use std::io::Write;
use std::process::{Command, Stdio};

use http::{HeaderMap, HeaderValue, Method, StatusCode};
use payhooks::edge::http::webhook;
use payhooks::providers::Inbound;
use payhooks::providers::stripe;
use payhooks::secret::Secret;
use payhooks_tests::Backend;
use payhooks_tests::backend::REQUIRE_EMULATORS;
use payhooks_tests::requests::{SECRET, stripe_event};
use serde_json::{Value, json};

use crate::support::{Rig, VISIBILITY};

const NODE_MODULES: &str = "PAYHOOKS_STRIPE_NODE_MODULES";

/// Runs the Node helper, or `None` when the library is not installed (and
/// the test script, which installs it, is not the one running).
fn stripe_node(request: Value) -> Option<Value> {
    let Some(modules) = std::env::var_os(NODE_MODULES) else {
        assert!(
            std::env::var_os(REQUIRE_EMULATORS).is_none(),
            "{NODE_MODULES} must point at the installed stripe package"
        );
        eprintln!("{NODE_MODULES} not set: skipping the cross-check with Stripe's library");
        return None;
    };
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/stripe_sdk/webhooks.js");
    let mut child = Command::new("node")
        .arg(script)
        .env("NODE_PATH", modules)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node runs");
    child.stdin.take().expect("stdin").write_all(request.to_string().as_bytes()).expect("write the request");
    let output = child.wait_with_output().expect("node finishes");
    assert!(output.status.success(), "node failed: {}", String::from_utf8_lossy(&output.stderr));
    Some(serde_json::from_slice(&output.stdout).expect("a JSON answer"))
}

fn header(value: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(stripe::SIGNATURE_HEADER, HeaderValue::from_str(value).expect("ascii"));
    headers
}

#[tokio::test]
async fn headers_from_stripes_library_are_accepted_and_tampering_is_refused() {
    let rig = Rig::new(Backend::memory(VISIBILITY));
    let (_, body) = stripe_event("invoice.payment_succeeded");
    let payload = String::from_utf8(body.clone()).expect("utf-8");
    let now = rig.now().unix_timestamp();
    let Some(signed) = stripe_node(json!({"op": "sign", "payload": payload, "secret": SECRET, "timestamp": now}))
    else {
        return;
    };
    let official = signed["header"].as_str().expect("a header").to_owned();
    assert!(official.starts_with(&format!("t={now},v1=")), "{official}");

    // A changed byte.
    let mut changed = body.clone();
    let at = changed.iter().position(|b| *b == b'2').expect("a digit to change");
    changed[at] = b'3';
    let response = webhook(&rig.ingest, &Method::POST, "stripe", &Inbound::new(&header(&official), &changed)).await;
    assert_eq!(
        (response.status, response.body["error"].clone()),
        (StatusCode::UNAUTHORIZED, json!("invalid_signature"))
    );

    // A changed timestamp, signature kept.
    let shifted = official.replacen(&format!("t={now}"), &format!("t={}", now + 1), 1);
    let response = webhook(&rig.ingest, &Method::POST, "stripe", &Inbound::new(&header(&shifted), &body)).await;
    assert_eq!(
        (response.status, response.body["error"].clone()),
        (StatusCode::UNAUTHORIZED, json!("invalid_signature"))
    );

    // Another secret.
    let other = stripe_node(
        json!({"op": "sign", "payload": payload, "secret": "whsec_test_another_endpoint", "timestamp": now}),
    )
    .expect("node");
    let other = header(other["header"].as_str().expect("header"));
    let response = webhook(&rig.ingest, &Method::POST, "stripe", &Inbound::new(&other, &body)).await;
    assert_eq!(
        (response.status, response.body["error"].clone()),
        (StatusCode::UNAUTHORIZED, json!("invalid_signature"))
    );

    assert_eq!(rig.backend.record_count().await, 0, "nothing written for a refused request");

    // The untouched request is accepted.
    let response = webhook(&rig.ingest, &Method::POST, "stripe", &Inbound::new(&header(&official), &body)).await;
    assert_eq!(response.body, json!({"status": "accepted"}));
}

#[test]
fn headers_payhooks_generates_pass_stripes_own_check() {
    let (_, body) = stripe_event("checkout.session.completed");
    let payload = String::from_utf8(body).expect("utf-8");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let ours = stripe::signature_header(payload.as_bytes(), &[&Secret::new(SECRET)], now);
    let verify = |payload: &str, header: &str, secret: &str| {
        stripe_node(json!({"op": "verify", "payload": payload, "header": header, "secret": secret, "tolerance": 300}))
    };
    let Some(answer) = verify(&payload, &ours, SECRET) else {
        return;
    };
    assert_eq!(answer, json!({"ok": true}));
    let tampered = payload.replacen("paid", "unpaid", 1);
    assert_eq!(verify(&tampered, &ours, SECRET).expect("node")["ok"], false);
    assert_eq!(verify(&payload, &ours, "whsec_test_another_endpoint").expect("node")["ok"], false);
}

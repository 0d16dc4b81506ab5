//! Every provider has everything a provider needs: its folder, a function
//! crate, a route in `template.yaml`, a docs page, and a route on the local
//! server; every function crate
//! is a thin binary that the workspace builds and the template deploys. And
//! the local server's event route answers as documented.

use std::time::Duration;

use axum::body::Body;
use http::{Request, StatusCode};
use payhooks::event::Provider;
use payhooks::ingest::IngestSettings;
use payhooks::local::LocalApp;
use payhooks::process::ProcessorSettings;
use payhooks::providers::VerifierSettings;
use payhooks::secret::SecretSet;
use payhooks_tests::requests::{SECRET, stripe_event, stripe_headers};
use tower::ServiceExt;

fn repo_file(path: &str) -> String {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    std::fs::read_to_string(format!("{root}/{path}")).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn local_app() -> LocalApp {
    let secrets =
        Provider::ALL.iter().map(|p| (*p, SecretSet::from_comma_separated(SECRET).expect("secret"))).collect();
    LocalApp::new(secrets, &VerifierSettings::default(), IngestSettings::default(), ProcessorSettings::default())
}

async fn call(app: &LocalApp, request: Request<Body>) -> (StatusCode, serde_json::Value) {
    let response = app.router().oneshot(request).await.expect("infallible");
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
    (status, serde_json::from_slice(&bytes).expect("a JSON body"))
}

#[test]
fn every_provider_has_a_function_crate_and_a_template_route() {
    let template = repo_file("template.yaml");
    let workspace = repo_file("Cargo.toml");
    let readme = repo_file("README.md");
    for provider in Provider::ALL {
        let manifest = repo_file(&format!("functions/{provider}/Cargo.toml"));
        assert!(manifest.contains(&format!("name = \"ingest-{provider}\"")), "{provider}: binary ingest-{provider}");
        assert!(workspace.contains(&format!("\"functions/{provider}\"")), "{provider}: a workspace member");
        assert!(template.contains(&format!("Binary: ingest-{provider}\n")), "{provider}: a function in template.yaml");
        assert!(template.contains(&format!("Path: /webhooks/{provider}")), "{provider}: a route in template.yaml");
        let folder = format!("{}/../shared/src/providers/{provider}", env!("CARGO_MANIFEST_DIR"));
        assert!(std::path::Path::new(&format!("{folder}/mod.rs")).is_file(), "{provider}: its folder, {folder}");
        let page = repo_file(&format!("docs/providers/{provider}.md"));
        assert!(page.contains("## Mapping"), "{provider}: its docs page shows its mapping");
        assert!(readme.contains(&format!("(docs/providers/{provider}.md)")), "{provider}: listed in the README");
    }
}

/// The README leads a newcomer to a running server and the tests in two
/// commands and stays short; the rest is in docs/.
#[test]
fn the_readme_is_short_and_starts_with_the_two_commands() {
    let readme = repo_file("README.md");
    assert!(readme.len() < 15 * 1024, "README.md is {} bytes", readme.len());
    let run = readme.find("cargo run --bin payhooks -- dev").expect("the command that runs it");
    let test = readme.find("scripts/test.sh").expect("the command that tests it");
    assert!(run < test, "run first, then test");
    for link in readme.match_indices("](docs/").map(|(at, _)| &readme[at + 2..]) {
        let path = &link[..link.find(')').expect("a closed link")];
        let path = path.split('#').next().unwrap_or(path);
        assert!(std::path::Path::new(&format!("{}/../{path}", env!("CARGO_MANIFEST_DIR"))).exists(), "{path}");
    }
    let cargo = repo_file("Cargo.toml");
    assert!(cargo.contains("license = \"Apache-2.0\""));
    assert!(repo_file("LICENSE").contains("Apache License"), "a LICENSE matching Cargo.toml");
}

/// The `[[bin]]` name of a function crate's manifest.
fn binary_name(manifest: &str) -> Option<&str> {
    let after_bin = manifest.split("[[bin]]").nth(1)?;
    let line = after_bin.lines().find(|l| l.trim_start().starts_with("name"))?;
    line.split('"').nth(1)
}

#[test]
fn every_function_crate_is_built_by_default_and_deployed_by_the_template() {
    let template = repo_file("template.yaml");
    let workspace = repo_file("Cargo.toml");
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../functions");
    let mut crates: Vec<String> = std::fs::read_dir(root)
        .expect("functions/")
        .map(|entry| entry.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    crates.sort();
    for expected in ["processor", "register", "sweeper", "reconciler", "admin"] {
        assert!(crates.iter().any(|c| c == expected), "{expected}: {crates:?}");
    }
    for name in crates {
        let manifest = repo_file(&format!("functions/{name}/Cargo.toml"));
        let binary = binary_name(&manifest).unwrap_or_else(|| panic!("functions/{name}: a [[bin]] with a name"));
        let member = format!("\"functions/{name}\"");
        assert_eq!(workspace.matches(&member).count(), 2, "functions/{name}: in members and default-members");
        // `sam build` reads the binary from Metadata.BuildProperties.Binary.
        assert!(template.contains(&format!("Binary: {binary}\n")), "functions/{name}: {binary} built by template.yaml");
        assert!(!template.contains("BinaryName:"), "SAM does not read Metadata.BinaryName");
        let main = repo_file(&format!("functions/{name}/src/main.rs"));
        assert!(main.contains("run(service_fn("), "functions/{name}: glue around the Lambda runtime");
        assert!(main.lines().count() <= 20, "functions/{name}: wiring only, the logic lives in the library");
    }
}

#[tokio::test]
async fn every_provider_has_a_local_route() {
    let app = local_app();
    for provider in Provider::ALL {
        let request = Request::post(format!("/webhooks/{provider}")).body(Body::from("{}")).expect("request");
        let (status, body) = call(&app, request).await;
        // Routed (not 404) and refused for its missing signature or token.
        assert!(status == StatusCode::BAD_REQUEST || status == StatusCode::UNAUTHORIZED, "{provider}: {status} {body}");
        assert!(
            ["missing_signature", "missing_token"].contains(&body["error"].as_str().unwrap_or_default()),
            "{provider}: {body}"
        );
    }
    let (status, body) = call(&app, Request::post("/webhooks/nobody").body(Body::empty()).expect("request")).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::NOT_FOUND, Some("unknown_provider")));
    let (status, _) = call(&app, Request::get("/elsewhere").body(Body::empty()).expect("request")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_local_server_shows_an_events_record_and_404_for_an_unknown_one() {
    let app = local_app();
    let (ids, body) = stripe_event("invoice.payment_succeeded");
    let headers = stripe_headers(&body, SECRET, time::OffsetDateTime::now_utc().unix_timestamp());
    let mut request = Request::post("/webhooks/stripe").body(Body::from(body)).expect("request");
    *request.headers_mut() = headers;
    let (status, answer) = call(&app, request).await;
    assert_eq!((status, answer["status"].as_str()), (StatusCode::OK, Some("accepted")));

    app.processor.poll_once(Duration::from_secs(1)).await.expect("poll");
    let uri = format!("/events/stripe/{}", ids.event_id);
    let (status, record) = call(&app, Request::get(uri).body(Body::empty()).expect("request")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(record["status"], "completed");
    assert_eq!(record["attempts"], 1);
    assert_eq!(record["event_type"], "invoice.payment_succeeded");
    assert!(record["received_at"].is_string() && record["finished_at"].is_string(), "{record}");

    let (status, body) =
        call(&app, Request::get("/events/stripe/evt_unknown").body(Body::empty()).expect("request")).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
}

#[tokio::test]
async fn an_oversized_body_gets_the_same_413_locally() {
    let app = local_app();
    let big = vec![b' '; IngestSettings::default().max_body_bytes + 10];
    let (status, body) = call(&app, Request::post("/webhooks/stripe").body(Body::from(big)).expect("request")).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large")));
}

#[tokio::test]
async fn the_local_server_shows_an_accounts_balance_entitlement_and_ledger() {
    let verifiers = vec![payhooks::providers::verifier(
        Provider::Stripe,
        SecretSet::from_comma_separated(SECRET).expect("secret"),
        &VerifierSettings::default(),
    )];
    let plans = payhooks::effects::Plans::from_json(r#"{"price_1TestPlanPro": 100}"#).expect("plans");
    let app = LocalApp::with_verifiers(
        verifiers,
        Some(plans.into()),
        IngestSettings::default(),
        ProcessorSettings::default(),
    );
    let ids = payhooks::providers::SampleIds::random("evt");
    for sample in ["checkout.session.completed", "invoice.payment_succeeded"] {
        let body = payhooks::providers::stripe::SAMPLES.event(sample, &ids.next_event("evt")).expect("sample");
        let mut request = Request::post("/webhooks/stripe").body(Body::from(body.clone())).expect("request");
        *request.headers_mut() =
            stripe_headers(body.as_bytes(), SECRET, time::OffsetDateTime::now_utc().unix_timestamp());
        assert_eq!(call(&app, request).await.0, StatusCode::OK);
    }
    while app.processor.poll_once(Duration::from_millis(100)).await.expect("poll").processed > 0 {}

    // The samples name their account in metadata: acct-demo-001.
    let (status, account) =
        call(&app, Request::get("/accounts/stripe/acct-demo-001").body(Body::empty()).expect("request")).await;
    assert_eq!(status, StatusCode::OK, "{account}");
    assert_eq!(account["balance"], 100);
    assert_eq!(account["entitlement"]["status"], "active");
    assert_eq!(account["entitlement"]["subscription"], ids.subscription_id.as_str());
    assert_eq!(account["subscriptions"][ids.subscription_id.as_str()]["status"], "active", "{account}");
    let (_, ledger) =
        call(&app, Request::get("/accounts/stripe/acct-demo-001/ledger").body(Body::empty()).expect("request")).await;
    let entries = ledger["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), 2, "{ledger}");
    assert_eq!(entries.iter().map(|e| e["delta"].as_i64().unwrap_or(0)).sum::<i64>(), 100);
    assert_eq!(app.provisioner.received().len(), 1);
    let (status, _) = call(&app, Request::get("/accounts/stripe/nobody").body(Body::empty()).expect("request")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

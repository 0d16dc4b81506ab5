//! Cold start of each function: from process start to its first handled
//! invocation, against the local Lambda Runtime API (`runtime_api`), with
//! DynamoDB Local and moto's SQS behind it. Reports, per function, the
//! initialization (start → first poll for work) and the first invocation
//! (start → its answer), median and range over runs.
//!
//!   cargo build --release -p payhooks-fn-stripe -p payhooks-fn-processor \
//!     -p payhooks-fn-sweeper -p payhooks-fn-reconciler -p payhooks-fn-admin
//!   PAYHOOKS_RUN='cargo bench -p payhooks-tests --bench cold_start' scripts/test.sh
//!
//! The binaries are the host's release builds (x86_64 here), not the arm64
//! zips: the code and its initialization are the same.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use payhooks::ingest::message_body;
use payhooks_tests::Backend;
use payhooks_tests::backend::EmulatorResources;
use payhooks_tests::requests::{SECRET, stripe_event, stripe_headers};
use payhooks_tests::runtime_api::RuntimeApi;
use serde_json::{Value, json};

const RUNS: usize = 10;

fn binary(name: &str) -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR").map_or_else(
        |_| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target")),
        PathBuf::from,
    );
    target.join("release").join(name)
}

fn http_event(method: &str, path: &str, headers: Value, body: &str) -> Value {
    json!({
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
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "cold-start"},
            "requestId": "cold-start",
            "routeKey": format!("{method} {path}"),
            "stage": "$default",
            "time": "24/Nov/2026:00:00:00 +0000",
            "timeEpoch": 0
        },
        "body": body,
        "isBase64Encoded": false
    })
}

/// The first invocation each function gets.
fn first_event(function: &str) -> Value {
    match function {
        "ingest-stripe" => {
            let (_, body) = stripe_event("invoice.paid");
            let signed = stripe_headers(&body, SECRET, time::OffsetDateTime::now_utc().unix_timestamp());
            let headers: serde_json::Map<String, Value> = signed
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), json!(v.to_str().unwrap_or_default())))
                .collect();
            http_event("POST", "/webhooks/stripe", Value::Object(headers), &String::from_utf8_lossy(&body))
        }
        "processor" => {
            let key = payhooks::event::EventKey::new(
                payhooks::event::Provider::Stripe,
                payhooks::event::EventId::parse("evt_cold_start").expect("id"),
            );
            json!({"Records": [{
                "messageId": "m-1", "receiptHandle": "r-1", "body": message_body(&key),
                "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {},
                "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:events", "awsRegion": "us-east-1"
            }]})
        }
        "admin" => http_event("GET", "/admin/health", json!({}), ""),
        _ => json!({"source": "aws.scheduler", "detail": {}}),
    }
}

struct Run {
    init: Duration,
    first: Duration,
}

async fn cold_start(function: &str, resources: &EmulatorResources) -> Run {
    let (api, addr) = RuntimeApi::start().await.expect("runtime API");
    api.invoke(first_event(function).to_string());
    let started = Instant::now();
    let mut child = std::process::Command::new(binary(function))
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", function)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/payhooks")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "cold-start")
        .env("PAYHOOKS_EVENTS_TABLE", &resources.table)
        .env("PAYHOOKS_QUEUE_URL", &resources.queue_url)
        .env("PAYHOOKS_DLQ_URL", &resources.dlq_url)
        .env("STRIPE_WEBHOOK_SECRET", SECRET)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e} (build it first: see this file's header)", binary(function).display()));
    let answers = tokio::time::timeout(Duration::from_secs(30), api.answers(1)).await;
    child.kill().ok();
    child.wait().ok();
    let answers = answers.expect("an answer within 30 s");
    assert!(answers[0].ok, "{function} failed: {}", String::from_utf8_lossy(&answers[0].body));
    let first_poll = api.first_poll().expect("polled");
    Run {
        init: first_poll - started,
        first: answers[0].at - started,
    }
}

fn summary(mut values: Vec<Duration>) -> String {
    values.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    format!(
        "median {:6.1} ms  (min {:6.1}, max {:6.1})",
        ms(values[values.len() / 2]),
        ms(values[0]),
        ms(values[values.len() - 1])
    )
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs it once as a test: skip then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let Some(backend) = Backend::emulators(Duration::from_secs(30)).await else {
        eprintln!("cold_start: needs the emulators (run it through scripts/test.sh with PAYHOOKS_RUN)");
        return;
    };
    let resources = backend.resources.clone().expect("emulator resources");
    for function in ["ingest-stripe", "processor", "sweeper", "reconciler", "admin"] {
        let mut runs = Vec::new();
        for _ in 0..RUNS {
            runs.push(cold_start(function, &resources).await);
        }
        println!(
            "{function:14} init {}   first invocation {}",
            summary(runs.iter().map(|r| r.init).collect()),
            summary(runs.iter().map(|r| r.first).collect())
        );
    }
}

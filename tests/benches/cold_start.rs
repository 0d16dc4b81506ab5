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
//! zips: the code and its initialization are the same. With
//! `PAYHOOKS_POWERTOOLS_PYTHON` (a Python with the pins of
//! `scripts/bench-cold-start.sh`), the same is measured for the equivalent
//! Python handler (`tests/powertools/handler.py`: Stripe's SDK, Powertools'
//! idempotency, boto3) under `awslambdaric`, with the AWS calls it makes per
//! accepted webhook and per duplicate. `scripts/bench-cold-start.sh` does
//! all of it.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use payhooks_tests::Backend;
use payhooks_tests::backend::EmulatorResources;
use payhooks_tests::requests::{SECRET, stripe_event, stripe_headers};
use payhooks_tests::runtime_api::{RuntimeApi, http_event};
use serde_json::{Value, json};

const RUNS: usize = 10;

fn binary(name: &str) -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR")
        .map_or_else(|_| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target")), PathBuf::from);
    target.join("release").join(name)
}

/// The first invocation each function gets.
fn first_event(function: &str) -> Value {
    match function {
        "ingest-stripe" | POWERTOOLS => {
            let (_, body) = stripe_event("invoice.paid");
            let signed = stripe_headers(&body, SECRET, time::OffsetDateTime::now_utc().unix_timestamp());
            let headers: serde_json::Map<String, Value> =
                signed.iter().map(|(k, v)| (k.as_str().to_owned(), json!(v.to_str().unwrap_or_default()))).collect();
            http_event("POST", "/webhooks/stripe", Value::Object(headers), &String::from_utf8_lossy(&body))
        }
        "processor" => {
            let key = payhooks::event::EventKey::new(
                payhooks::event::Provider::Stripe,
                payhooks::event::EventId::parse("evt_cold_start").expect("id"),
            );
            json!({"Records": [{
                "messageId": "m-1", "receiptHandle": "r-1", "body": key.message_body(),
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

/// The process that runs `function`: its release binary, or the Python
/// handler under `awslambdaric`.
fn command(function: &str) -> std::process::Command {
    if function == POWERTOOLS {
        let python = std::env::var("PAYHOOKS_POWERTOOLS_PYTHON").expect("PAYHOOKS_POWERTOOLS_PYTHON");
        let mut command = std::process::Command::new(python);
        command
            .args(["-m", "awslambdaric", "handler.lambda_handler"])
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/powertools"))
            .env("IDEMPOTENCY_TABLE", IDEMPOTENCY_TABLE)
            // boto3 reads its region from here.
            .env("AWS_DEFAULT_REGION", std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".to_owned()));
        command
    } else {
        std::process::Command::new(binary(function))
    }
}

const POWERTOOLS: &str = "python-powertools";
const IDEMPOTENCY_TABLE: &str = "powertools-idempotency";

async fn cold_start(function: &str, resources: &EmulatorResources) -> Run {
    let (api, addr) = RuntimeApi::start().await.expect("runtime API");
    api.invoke(first_event(function).to_string());
    let started = Instant::now();
    let mut child = command(function)
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
    Run { init: first_poll - started, first: answers[0].at - started }
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
    let mut functions = vec!["ingest-stripe", "processor", "sweeper", "reconciler", "admin"];
    if std::env::var_os("PAYHOOKS_POWERTOOLS_PYTHON").is_some() {
        create_idempotency_table().await;
        functions.insert(1, POWERTOOLS);
        powertools_calls(&resources).await;
    }
    for function in functions {
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

/// The table Powertools' DynamoDB persistence layer expects: key `id`.
async fn create_idempotency_table() {
    use aws_sdk_dynamodb::types::{AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType};
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let created = client
        .create_table()
        .table_name(IDEMPOTENCY_TABLE)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("attribute"),
        )
        .key_schema(KeySchemaElement::builder().attribute_name("id").key_type(KeyType::Hash).build().expect("key"))
        .send()
        .await;
    if let Err(error) = created {
        eprintln!("idempotency table: {error} (it may exist already)");
    }
}

/// The AWS calls the Python handler reports for one accepted webhook and
/// for its duplicate (payhooks': 3 and 1, counted by the ingest tests).
async fn powertools_calls(resources: &EmulatorResources) {
    let (api, addr) = RuntimeApi::start().await.expect("runtime API");
    let event = first_event(POWERTOOLS).to_string();
    api.invoke(event.clone());
    api.invoke(event);
    let mut child = command(POWERTOOLS)
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", POWERTOOLS)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("PAYHOOKS_QUEUE_URL", &resources.queue_url)
        .env("STRIPE_WEBHOOK_SECRET", SECRET)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python");
    let answers = tokio::time::timeout(Duration::from_secs(60), api.answers(2)).await;
    child.kill().ok();
    child.wait().ok();
    let answers = answers.expect("two answers");
    let calls = |i: usize| {
        let answer: Value = serde_json::from_slice(&answers[i].body).unwrap_or_default();
        answer["aws_calls"].as_u64().map_or_else(|| format!("? ({answer})"), |n| n.to_string())
    };
    println!(
        "{POWERTOOLS}: AWS calls per accepted webhook {}, per duplicate {} (payhooks: 3 and 1)",
        calls(0),
        calls(1)
    );
}

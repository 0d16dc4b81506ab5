//! `template.yaml` as SAM's translator transforms it, held to the code:
//!
//! - each function's environment holds exactly names its configuration
//!   reads, and everything it requires (for several parameter sets);
//! - each role allows the DynamoDB, SQS and Secrets Manager actions its
//!   code calls, on the resources it calls them on, and nothing more: every
//!   function is built from the evaluated template's environment on the
//!   emulators, run through what it does, and its calls caught on the wire;
//! - every alarm watches a metric the code emits (in the stack's namespace,
//!   with the dimensions the code publishes) or one AWS publishes for a
//!   resource of the stack; the dashboard is JSON and shows every alarm;
//! - what deploying needs: routes and their authorization, the encrypted
//!   alarm topic CloudWatch can publish to, retention of the table and the
//!   DLQ, the SQS trigger's concurrency, schedules and metrics per stack,
//!   deadlines of the custom resources, and logs that keep every metric.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use http::Method;
use payhooks::config::{
    AdminConfig, Cloud, Env, Function, IngestConfig, ProcessorConfig, ReconcilerConfig, RegisterConfig, SweeperConfig,
};
use payhooks::edge::custom_resource::CustomResources;
use payhooks::edge::http::webhook;
use payhooks::event::{EventId, EventKey, NewEvent, Provider};
use payhooks::ports::{EventStore, LeaseOutcome};
use payhooks::providers::{self, Inbound};
use payhooks_tests::Backend;
use payhooks_tests::backend::emulator_sdk;
use payhooks_tests::template::iam::{self, Grant, Need};
use payhooks_tests::template::recorder::{Call, Calls, Recording};
use payhooks_tests::template::{Physical, Stack, transformed};
use serde_json::{Value, json};

use crate::registration::fakes::{FakeKillbill, FakeResponseUrl};

const STACK: &str = "payhooks-contract";

/// A Secrets Manager ARN as the template's parameters want it.
fn fake_arn(name: &str) -> String {
    format!("arn:aws:secretsmanager:us-east-1:123456789012:secret:payhooks/{name}-AbCdEf")
}

/// Every provider and option on: each secret, API and downstream in use.
fn everything(
    arn: &dyn Fn(&str) -> String,
    killbill_api: &str,
    lago_api: &str,
    provisioner: &str,
) -> Vec<(&'static str, String)> {
    vec![
        ("StripeWebhookSecretArn", arn("stripe-webhook")),
        ("PaystackWebhookSecretArn", arn("paystack-webhook")),
        ("FlutterwaveWebhookSecretArn", arn("flutterwave-webhook")),
        ("FlutterwaveSecretKeyArn", arn("flutterwave-api")),
        ("KillbillWebhookSecretArn", arn("killbill-webhook")),
        ("KillbillApiUrl", killbill_api.to_owned()),
        ("KillbillApiCredentialsArn", arn("killbill-api")),
        ("LagoWebhookSecretArn", arn("lago-webhook")),
        ("LagoApiUrl", lago_api.to_owned()),
        ("LagoApiKeyArn", arn("lago-api")),
        ("PaddleWebhookSecretArn", arn("paddle-webhook")),
        ("RazorpayWebhookSecretArn", arn("razorpay-webhook")),
        ("PaypalWebhookId", "WH-CONTRACT-0001".to_owned()),
        ("PaypalVerification", "api".to_owned()),
        ("PaypalClientId", "contract-client".to_owned()),
        ("PaypalClientSecretArn", arn("paypal-client")),
        ("PlansSecretArn", arn("plans")),
        ("ProvisionerUrl", provisioner.to_owned()),
        ("ProvisionerSecretArn", arn("provisioner")),
        ("StripeApiKeyArn", arn("stripe-api")),
        ("AlarmEmail", "oncall@example.com".to_owned()),
    ]
}

/// The parameter sets the environment is checked for.
fn parameter_sets() -> Vec<(&'static str, Vec<(&'static str, String)>)> {
    let arn = |name: &str| fake_arn(name);
    let full = everything(&arn, "https://killbill.example", "https://lago.example", "https://downstream.example");
    let offline = vec![
        ("StripeWebhookSecretArn", arn("stripe-webhook")),
        ("FlutterwaveWebhookSecretArn", arn("flutterwave-webhook")),
        ("FlutterwaveVerifyTransactions", "false".to_owned()),
        ("LagoWebhookSecretArn", arn("lago-webhook")),
        ("PaypalWebhookId", "WH-CONTRACT-0001".to_owned()),
        ("PaypalClientId", "contract-client".to_owned()),
        ("PaypalClientSecretArn", arn("paypal-client")),
        ("KillbillWebhookSecretArn", arn("killbill-webhook")),
        ("AlarmTopicArn", "arn:aws:sns:us-east-1:123456789012:pager".to_owned()),
        ("LogLevel", "WARN".to_owned()),
    ];
    vec![
        ("minimal", vec![("StripeWebhookSecretArn", arn("stripe-webhook"))]),
        ("offline", offline),
        ("everything", full),
    ]
}

fn stack(template: &Value, name: &str, parameters: &[(&'static str, String)], physical: &[(&str, Physical)]) -> Stack {
    let overrides: Vec<(&str, &str)> = parameters.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Stack::new(template, name, &overrides, physical)
}

/// A deployed function: which binary, its environment and its role.
#[derive(Debug)]
struct Deployed {
    logical_id: String,
    function: Function,
    env: BTreeMap<String, String>,
    grants: Vec<Grant>,
    properties: Value,
}

fn functions(stack: &Stack) -> Vec<Deployed> {
    let roles: BTreeMap<String, Value> =
        stack.resources_of("AWS::IAM::Role").into_iter().map(|r| (r.logical_id, r.properties)).collect();
    stack
        .resources_of("AWS::Lambda::Function")
        .into_iter()
        .map(|resource| {
            let binary = resource.metadata["BuildProperties"]["Binary"].as_str().unwrap_or_else(|| {
                panic!("{}: no Metadata.BuildProperties.Binary, which sam build reads", resource.logical_id)
            });
            let function = Function::from_binary(binary).unwrap_or_else(|| panic!("{binary}: not a payhooks function"));
            let env = resource.properties["Environment"]["Variables"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), payhooks_tests::template::stack::scalar(v)))
                .collect();
            let role = format!("{}Role", resource.logical_id);
            Deployed {
                grants: iam::grants(roles.get(&role).unwrap_or_else(|| panic!("{role}: the function's role"))),
                logical_id: resource.logical_id,
                function,
                env,
                properties: resource.properties,
            }
        })
        .collect()
}

fn env_of(deployed: &Deployed) -> Env<'static> {
    let pairs: Vec<(String, String)> = deployed.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    Env::from_fn(move |name| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
}

#[test]
fn every_function_reads_all_of_its_environment_and_finds_all_it_needs() {
    let Some(template) = transformed() else { return };
    for (set, parameters) in parameter_sets() {
        let stack = stack(template, STACK, &parameters, &[]);
        let deployed = functions(&stack);
        assert!(deployed.len() >= 5, "{set}: {} functions", deployed.len());
        for function in deployed {
            let asked = Mutex::new(BTreeSet::new());
            let env = Env::from_fn(|name| {
                asked.lock().expect("lock").insert(name.to_owned());
                function.env.get(name).cloned()
            });
            if let Err(error) = payhooks::config::read(function.function, &env) {
                panic!("{set}: {} ({}) cannot start: {error}", function.logical_id, function.function.binary());
            }
            drop(env);
            let asked = asked.into_inner().expect("lock");
            let unread: Vec<&String> = function.env.keys().filter(|name| !asked.contains(*name)).collect();
            assert!(
                unread.is_empty(),
                "{set}: {} is given {unread:?}, which its code never reads",
                function.logical_id
            );
        }
    }
}

// --- Roles against the calls each function makes -----------------------------

/// The secrets of the `everything` parameter set, stored in moto's Secrets
/// Manager: name to (ARN, value).
async fn store_secrets(sdk: &aws_config::SdkConfig) -> BTreeMap<&'static str, (String, String)> {
    let client = aws_sdk_secretsmanager::Client::new(sdk);
    let token = || uuid::Uuid::new_v4().simple().to_string();
    let values: Vec<(&'static str, String)> = vec![
        ("stripe-webhook", format!("whsec_contract_{}", token())),
        ("paystack-webhook", format!("sk_test_contract_{}", token())),
        ("flutterwave-webhook", token()),
        ("flutterwave-api", format!("FLWSECK_TEST-contract-{}", token())),
        ("killbill-webhook", token()),
        (
            "killbill-api",
            json!({"api_key": "contract", "api_secret": token(), "username": "admin", "password": token()}).to_string(),
        ),
        ("lago-webhook", token()),
        ("lago-api", token()),
        ("paddle-webhook", format!("pdl_ntfset_contract_{}", token())),
        ("razorpay-webhook", token()),
        ("paypal-client", token()),
        ("plans", json!({"price_1TestPlanPro": 100}).to_string()),
        ("provisioner", token()),
        ("stripe-api", format!("sk_test_contract_{}", token())),
    ];
    let mut secrets = BTreeMap::new();
    for (name, value) in values {
        let created = client
            .create_secret()
            .name(format!("payhooks-contract/{name}-{}", token()))
            .secret_string(&value)
            .send()
            .await
            .expect("create a secret in moto");
        secrets.insert(name, (created.arn().expect("an ARN").to_owned(), value));
    }
    secrets
}

/// Serves `status` to every request.
async fn answering(status: u16) -> String {
    let router =
        axum::Router::new().fallback(move || async move { http::StatusCode::from_u16(status).expect("status") });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

type Sink = Arc<Mutex<Vec<u8>>>;

/// A function's cold start on the emulators, its calls caught by `calls`
/// and its metric lines written to `metrics`.
fn cloud(sdk: &aws_config::SdkConfig, calls: &Calls, metrics: &Sink) -> Cloud {
    use aws_smithy_http_client::tls;
    // The SDK's default client: rustls with aws-lc.
    let inner = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::AwsLc))
        .build_https();
    let sdk = sdk.to_builder().http_client(Recording::new(inner, calls.clone())).build();
    Cloud::new(sdk).with_metrics_sink(metrics.clone())
}

/// What IAM checks for one call.
fn needs(call: &Call, queues: &BTreeMap<String, String>) -> Vec<Need> {
    let table_arn = |table: &Value| Physical::table(table.as_str().expect("TableName")).attributes["Arn"].clone();
    let pk = |key: &Value| key["pk"]["S"].as_str().map(str::to_owned);
    let op = call.operation();
    let body = &call.body;
    match call.service() {
        "DynamoDB_20120810" => match op {
            "TransactWriteItems" => body["TransactItems"]
                .as_array()
                .expect("items")
                .iter()
                .flat_map(|item| item.as_object().expect("an item").iter())
                .map(|(kind, part)| {
                    let (action, key) = match kind.as_str() {
                        "Put" => ("PutItem", pk(&part["Item"])),
                        "Update" => ("UpdateItem", pk(&part["Key"])),
                        "Delete" => ("DeleteItem", pk(&part["Key"])),
                        "ConditionCheck" => ("ConditionCheckItem", pk(&part["Key"])),
                        other => panic!("a transaction part {other}"),
                    };
                    Need {
                        action: format!("dynamodb:{action}"),
                        resource: table_arn(&part["TableName"]),
                        leading_key: key,
                    }
                })
                .collect(),
            "Query" | "Scan" => {
                let mut resource = table_arn(&body["TableName"]);
                if let Some(index) = body["IndexName"].as_str() {
                    resource = format!("{resource}/index/{index}");
                }
                vec![Need { action: format!("dynamodb:{op}"), resource, leading_key: None }]
            }
            _ => vec![Need {
                action: format!("dynamodb:{op}"),
                resource: table_arn(&body["TableName"]),
                leading_key: pk(&body["Key"]).or_else(|| pk(&body["Item"])),
            }],
        },
        "AmazonSQS" => {
            let url = body["QueueUrl"].as_str().expect("QueueUrl");
            let action = op.trim_end_matches("Batch");
            vec![Need {
                action: format!("sqs:{action}"),
                resource: queues.get(url).unwrap_or_else(|| panic!("a queue of the stack: {url}")).clone(),
                leading_key: None,
            }]
        }
        "secretsmanager" => vec![Need {
            action: format!("secretsmanager:{op}"),
            resource: body["SecretId"].as_str().expect("SecretId").to_owned(),
            leading_key: None,
        }],
        other => panic!("a call to {other}, which no role is checked for"),
    }
}

fn signed_delivery(provider: Provider, sample: &str, secret: &str) -> (Vec<u8>, providers::SignedRequest) {
    let ids = providers::sample_ids(provider);
    let body = providers::sample_event(provider, sample, &ids).unwrap_or_else(|| panic!("{provider}: sample {sample}"));
    let signed = providers::sign_sample(provider, body.as_bytes(), &ids, secret, time::OffsetDateTime::now_utc())
        .unwrap_or_else(|e| panic!("{provider}: signed: {e}"));
    (body.into_bytes(), signed)
}

async fn deliver(
    ingest: &payhooks::ingest::Ingest,
    provider: Provider,
    body: &[u8],
    signed: &providers::SignedRequest,
) -> Value {
    let inbound = Inbound { path_token: signed.path_token.as_deref(), ..Inbound::new(&signed.headers, body) };
    webhook(ingest, &Method::POST, provider.as_str(), &inbound).await.body
}

fn sqs_event(deliveries: &[payhooks::ports::Delivery]) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = deliveries
        .iter()
        .map(|d| {
            let mut message = SqsMessage::default();
            message.message_id = Some(d.message_id.clone());
            message.receipt_handle = Some(d.receipt.clone());
            message.body = Some(d.body.clone());
            message.attributes.insert("ApproximateReceiveCount".into(), d.receive_count.to_string());
            message
        })
        .collect();
    event
}

/// A record as ingest's put leaves it, changed at `at`.
async fn recorded(store: &dyn EventStore, at: time::OffsetDateTime) -> EventKey {
    let ids = providers::SampleIds::random("evt");
    let body = providers::stripe::SAMPLES.event("invoice.payment_succeeded", &ids).expect("sample");
    let verified = providers::stripe::parse_event(body.as_bytes()).expect("parses");
    let key = EventKey::new(Provider::Stripe, EventId::parse(&ids.event_id).expect("id"));
    let new = NewEvent { key: key.clone(), fingerprint: verified.fingerprint, event: verified.event, received_at: at };
    store.claim(&new).await.expect("claim");
    key
}

/// The whole run: every function built from the stack's environment and
/// taken through what it does. Its calls and metric lines, by function.
struct Run {
    calls: BTreeMap<String, Vec<Call>>,
    metrics: Sink,
}

async fn run_every_function(
    stack: &Stack,
    backend: &Backend,
    secrets: &BTreeMap<&'static str, (String, String)>,
    killbill_api: &str,
) -> Run {
    let sdk = emulator_sdk().await.expect("emulators");
    let metrics: Sink = Arc::default();
    let mut calls = BTreeMap::new();
    let deployed = functions(stack);
    let find = |function: Function| deployed.iter().find(|d| d.function == function).expect("deployed");
    let now = time::OffsetDateTime::now_utc();

    // Ingest: a delivery of each provider that can be signed here (PayPal
    // signs with its certificate; its function starts and reads its secret).
    for &provider in Provider::ALL {
        let deployed = find(Function::Ingest(provider));
        let recorder = Calls::default();
        let ingest = IngestConfig::read(provider, &env_of(deployed))
            .expect("settings")
            .build(&cloud(&sdk, &recorder, &metrics))
            .await
            .unwrap_or_else(|e| panic!("{provider}: cold start: {e}"));
        if provider != Provider::Paypal {
            let secret_name = format!("{provider}-webhook");
            let secret = &secrets[secret_name.as_str()].1;
            let samples: Vec<&str> = match provider {
                Provider::Stripe => {
                    vec!["checkout.session.completed", "invoice.payment_succeeded", "invoice.payment_failed"]
                }
                _ => vec![providers::scenario(provider)[0]],
            };
            for sample in samples {
                let (body, signed) = signed_delivery(provider, sample, secret);
                let answer = deliver(&ingest, provider, &body, &signed).await;
                assert_eq!(answer["status"], "accepted", "{provider} {sample}: {answer}");
            }
            let (body, _) = signed_delivery(provider, providers::scenario(provider)[0], secret);
            let (_, forged) = signed_delivery(provider, providers::scenario(provider)[0], "not-the-secret");
            assert!(
                deliver(&ingest, provider, &body, &forged).await["error"].is_string(),
                "{provider}: a forgery is refused"
            );
        }
        if provider == Provider::Stripe {
            // A delivery that finds the event recorded a moment ago and not
            // yet enqueued waits for it, reading the record.
            let ids = providers::SampleIds::random("evt");
            let body = providers::stripe::SAMPLES.event("invoice.paid", &ids).expect("sample");
            let verified = providers::stripe::parse_event(body.as_bytes()).expect("parses");
            let key = EventKey::new(Provider::Stripe, EventId::parse(&ids.event_id).expect("id"));
            backend
                .store
                .claim(&NewEvent { key, fingerprint: verified.fingerprint, event: verified.event, received_at: now })
                .await
                .expect("claim");
            let signed = providers::sign_sample(provider, body.as_bytes(), &ids, &secrets["stripe-webhook"].1, now)
                .expect("signed");
            assert_eq!(deliver(&ingest, provider, body.as_bytes(), &signed).await["error"], "in_progress");
        }
        calls.insert(deployed.logical_id.clone(), recorder.take());
    }

    // The processor, on what ingest enqueued (but Flutterwave's, whose
    // confirmation would ask the real Flutterwave): effects, a provisioning,
    // a confirmation that meets Kill Bill's API down (a retry), and a
    // message whose event has no record (the dead-letter queue).
    let deployed = find(Function::Processor);
    let recorder = Calls::default();
    let processor = ProcessorConfig::read(&env_of(deployed))
        .expect("settings")
        .build(&cloud(&sdk, &recorder, &metrics))
        .await
        .expect("cold start");
    let mut deliveries = Vec::new();
    loop {
        let batch = backend.queue.receive(10, Duration::ZERO).await.expect("receive");
        if batch.is_empty() {
            break;
        }
        deliveries.extend(batch);
    }
    deliveries.retain(|d| !d.body.contains("flutterwave"));
    let unrecorded = EventKey::new(Provider::Stripe, EventId::parse("evt_contract_unrecorded").expect("id"));
    deliveries.push(payhooks::ports::Delivery {
        message_id: "unrecorded".into(),
        receipt: "unrecorded".into(),
        body: unrecorded.message_body(),
        receive_count: 1,
    });
    let answer = payhooks::edge::sqs::handle(&processor, sqs_event(&deliveries), None).await;
    assert!(!answer.batch_item_failures.is_empty(), "Kill Bill's API is down: its event is retried");
    assert!(!killbill_api.is_empty());
    calls.insert(deployed.logical_id.clone(), recorder.take());

    // The sweeper: one event never enqueued, one out of attempts.
    let long_ago = now - time::Duration::hours(2);
    recorded(backend.store.as_ref(), long_ago).await;
    let exhausted = recorded(backend.store.as_ref(), long_ago).await;
    for attempt in 0..20 {
        let at = long_ago + time::Duration::seconds(attempt);
        if let LeaseOutcome::Acquired(_) =
            backend.store.lease(&exhausted, "w", at, at + time::Duration::seconds(1)).await.expect("lease")
        {
            backend.store.release(&exhausted, "w", at, "transient").await.expect("release");
        }
    }
    let deployed = find(Function::Sweeper);
    let recorder = Calls::default();
    let report = SweeperConfig::read(&env_of(deployed))
        .expect("settings")
        .build(&cloud(&sdk, &recorder, &metrics))
        .sweep()
        .await
        .expect("sweep");
    assert_eq!((report.requeued_unsent, report.gave_up), (1, 1), "{report:?}");
    calls.insert(deployed.logical_id.clone(), recorder.take());

    // The reconciler, after a balance was changed by hand.
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    let table = backend.resources.as_ref().expect("emulators").table.clone();
    dynamo
        .update_item()
        .table_name(&table)
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S("account#stripe#acct-demo-001".into()))
        .update_expression("ADD balance :d")
        .expression_attribute_values(":d", aws_sdk_dynamodb::types::AttributeValue::N("7".into()))
        .send()
        .await
        .expect("a hand edit");
    let deployed = find(Function::Reconciler);
    let recorder = Calls::default();
    let report = ReconcilerConfig::read(&env_of(deployed))
        .expect("settings")
        .build(&cloud(&sdk, &recorder, &metrics))
        .reconcile(None)
        .await
        .expect("reconcile");
    assert!(report.complete, "{report:?}");
    calls.insert(deployed.logical_id.clone(), recorder.take());

    // The operator's routes.
    let deployed = find(Function::Admin);
    let recorder = Calls::default();
    let admin = AdminConfig::read(&env_of(deployed)).expect("settings").build(&cloud(&sdk, &recorder, &metrics));
    for (method, path, body) in [
        (Method::GET, "/admin/health".to_owned(), ""),
        (Method::GET, format!("/admin/events/stripe/{}", exhausted.event_id), ""),
        (Method::GET, "/admin/accounts/stripe/acct-demo-001".to_owned(), ""),
        // One that matches nothing holds the dead letters and lets them go;
        // then all of them move.
        (Method::POST, "/admin/replay".to_owned(), r#"{"provider": "paypal"}"#),
        (Method::POST, "/admin/replay".to_owned(), "{}"),
        (Method::POST, "/admin/sweep".to_owned(), ""),
        (Method::POST, "/admin/reconcile".to_owned(), ""),
    ] {
        let response = admin.handle(&method, &path, body.as_bytes()).await;
        assert!(response.status.is_success(), "{method} {path}: {} {}", response.status, response.body);
    }
    calls.insert(deployed.logical_id.clone(), recorder.take());

    // The register function, as CloudFormation invokes it.
    let deployed = find(Function::Register);
    let recorder = Calls::default();
    let registrars =
        RegisterConfig::read(&env_of(deployed)).expect("settings").build(&cloud(&sdk, &recorder, &metrics));
    let resources = CustomResources::new(Arc::new(registrars));
    let cloudformation = FakeResponseUrl::default();
    let response_url = cloudformation.serve().await;
    for (logical_id, properties) in [
        (
            "KillbillCallbackRegistration",
            json!({"Provider": "killbill", "CallbackUrl": "https://api.example/webhooks/killbill/"}),
        ),
        (
            "StripeWebhookRegistration",
            json!({"Provider": "stripe", "CallbackUrl": "https://api.example/webhooks/stripe", "EnabledEvents": ["invoice.paid"]}),
        ),
    ] {
        let request = json!({
            "RequestType": "Create", "ResponseURL": response_url, "StackId": "stack", "RequestId": logical_id,
            "ResourceType": "Custom::Registration", "LogicalResourceId": logical_id, "ServiceToken": "register",
            "ResourceProperties": properties,
        });
        // Stripe's API is out of reach here: its registration fails after
        // reading its key and taking the lock, which is all this needs.
        resources.handle(request, Duration::from_secs(60)).await.expect("answered");
    }
    calls.insert(deployed.logical_id.clone(), recorder.take());
    Run { calls, metrics }
}

/// The SQS trigger's own actions on the queue it reads: the processor's
/// role needs them though its code never calls them.
fn for_the_trigger(function: Function, need: &Need, events_queue_arn: &str) -> bool {
    function == Function::Processor
        && need.resource == events_queue_arn
        && ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"].contains(&need.action.as_str())
}

#[tokio::test]
async fn every_role_allows_what_its_code_calls_and_nothing_more_and_every_alarm_watches_a_real_metric() {
    let Some(template) = transformed() else { return };
    let Some(backend) = Backend::emulators(Duration::from_secs(180)).await else { return };
    let sdk = emulator_sdk().await.expect("emulators");
    let secrets = store_secrets(&sdk).await;
    let killbill = FakeKillbill::default();
    let killbill_api = killbill.serve().await;
    let (lago_api, provisioner) = (answering(503).await, answering(200).await);
    let arn = |name: &str| secrets[name].0.clone();
    let parameters = everything(&arn, &killbill_api, &lago_api, &provisioner);
    let resources = backend.resources.clone().expect("emulators");
    let stack = stack(
        template,
        STACK,
        &parameters,
        &[
            ("EventsTable", Physical::table(&resources.table)),
            ("EventsQueue", Physical::queue(&resources.queue_url)),
            ("DeadLetterQueue", Physical::queue(&resources.dlq_url)),
        ],
    );
    let queues: BTreeMap<String, String> = [&resources.queue_url, &resources.dlq_url]
        .into_iter()
        .map(|url| (url.clone(), Physical::queue(url).attributes["Arn"].clone()))
        .collect();
    let events_queue_arn = queues[&resources.queue_url].clone();

    let run = run_every_function(&stack, &backend, &secrets, &killbill_api).await;
    let deployed = functions(&stack);
    let needs_of = |logical_id: &str| -> Vec<Need> {
        run.calls.get(logical_id).into_iter().flatten().flat_map(|call| needs(call, &queues)).collect()
    };
    let ingest_needs: Vec<Need> = deployed
        .iter()
        .filter(|d| matches!(d.function, Function::Ingest(_)))
        .flat_map(|d| needs_of(&d.logical_id))
        .collect();

    let mut problems = Vec::new();
    for function in &deployed {
        let needs = needs_of(&function.logical_id);
        assert!(!needs.is_empty(), "{}: no AWS call was made", function.logical_id);
        for need in needs.iter().collect::<BTreeSet<_>>() {
            if !function.grants.iter().any(|grant| grant.allows(need)) {
                problems.push(format!(
                    "{} calls {} on {} ({:?}): its role does not allow it",
                    function.logical_id, need.action, need.resource, need.leading_key
                ));
            }
        }
        for grant in &function.grants {
            for action in grant
                .actions
                .iter()
                .filter(|a| ["dynamodb:", "sqs:", "secretsmanager:", "ssm:"].iter().any(|s| a.starts_with(s)))
            {
                for resource in &grant.resources {
                    let granted = Grant {
                        actions: vec![action.clone()],
                        resources: vec![resource.clone()],
                        leading_keys: grant.leading_keys.clone(),
                    };
                    // The pipeline's calls are the same for every provider;
                    // its secrets are each function's own.
                    let seen: &[Need] = match function.function {
                        Function::Ingest(_) if !action.starts_with("secretsmanager:") => &ingest_needs,
                        _ => &needs,
                    };
                    let trigger = Need { action: action.clone(), resource: resource.clone(), leading_key: None };
                    if !seen.iter().any(|need| granted.allows(need))
                        && !for_the_trigger(function.function, &trigger, &events_queue_arn)
                    {
                        problems.push(format!(
                            "{} may {action} on {resource}, which its code never does",
                            function.logical_id
                        ));
                    }
                }
            }
        }
    }
    assert!(problems.is_empty(), "the roles and the code disagree:\n  {}", problems.join("\n  "));

    // Alarms: on what the code emitted, or on what AWS publishes for the stack.
    let emitted: BTreeSet<(String, String, Vec<String>)> = String::from_utf8_lossy(&run.metrics.lock().expect("lock"))
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .flat_map(|doc| {
            let directive = doc["_aws"]["CloudWatchMetrics"][0].clone();
            let namespace = directive["Namespace"].as_str().unwrap_or_default().to_owned();
            let metric = directive["Metrics"][0]["Name"].as_str().unwrap_or_default().to_owned();
            directive["Dimensions"].as_array().cloned().unwrap_or_default().into_iter().map(move |set| {
                let names = set.as_array().into_iter().flatten().filter_map(Value::as_str).map(str::to_owned).collect();
                (namespace.clone(), metric.clone(), names)
            })
        })
        .collect();
    let namespace = format!("payhooks/{STACK}");
    for function in deployed.iter().filter(|d| d.function != Function::Register) {
        assert_eq!(function.env.get("PAYHOOKS_METRICS_NAMESPACE"), Some(&namespace), "{}", function.logical_id);
    }
    let lambda_names: BTreeSet<String> =
        deployed.iter().map(|d| stack.reference(&d.logical_id).as_str().unwrap_or_default().to_owned()).collect();
    let queue_names: BTreeSet<String> =
        ["EventsQueue", "DeadLetterQueue"].iter().map(|q| stack.attribute(q, "QueueName")).collect();
    let api = stack.reference("HttpApi").as_str().unwrap_or_default().to_owned();
    let alarms = stack.resources_of("AWS::CloudWatch::Alarm");
    assert!(alarms.len() >= 17, "{} alarms", alarms.len());
    for alarm in &alarms {
        let watched: Vec<Value> = match alarm.properties.get("Metrics") {
            Some(metrics) => metrics
                .as_array()
                .expect("metrics")
                .iter()
                .filter_map(|m| m.get("MetricStat").map(|s| s["Metric"].clone()))
                .collect(),
            None => vec![alarm.properties.clone()],
        };
        assert!(!watched.is_empty(), "{}: watches nothing", alarm.logical_id);
        for metric in watched {
            let (ns, name) =
                (metric["Namespace"].as_str().unwrap_or_default(), metric["MetricName"].as_str().unwrap_or_default());
            let dimensions: BTreeMap<String, String> = metric["Dimensions"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|d| {
                    (
                        d["Name"].as_str().unwrap_or_default().to_owned(),
                        d["Value"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect();
            let known = match ns {
                "AWS/Lambda" => {
                    ["Errors", "Throttles"].contains(&name)
                        && dimensions.get("FunctionName").is_some_and(|f| lambda_names.contains(f))
                }
                "AWS/SQS" => {
                    ["ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage"].contains(&name)
                        && dimensions.get("QueueName").is_some_and(|q| queue_names.contains(q))
                }
                "AWS/ApiGateway" => ["5xx", "4xx"].contains(&name) && dimensions.get("ApiId") == Some(&api),
                custom => emitted.contains(&(custom.to_owned(), name.to_owned(), dimensions.keys().cloned().collect())),
            };
            assert!(
                known,
                "{}: {ns} {name} {dimensions:?} is not a metric of this stack (emitted: {emitted:?})",
                alarm.logical_id
            );
        }
    }
    drop(killbill);
}

// --- What deploying needs ---------------------------------------------------

#[test]
fn the_webhook_routes_are_open_and_the_admin_routes_need_iam() {
    let Some(template) = transformed() else { return };
    let stack = stack(template, STACK, &parameter_sets()[2].1, &[]);
    let api = stack.resource("HttpApi").expect("the HTTP API");
    let paths = api.properties["Body"]["paths"].as_object().expect("routes");
    for provider in Provider::ALL {
        let path = if *provider == Provider::Killbill {
            "/webhooks/killbill/{token}".to_owned()
        } else {
            format!("/webhooks/{provider}")
        };
        let route = &paths.get(&path).unwrap_or_else(|| panic!("{path}"))["post"];
        assert!(route.get("security").is_none(), "{path}: providers prove themselves by signature, not IAM");
    }
    let admin = &paths["/admin/{proxy+}"]["x-amazon-apigateway-any-method"];
    assert_eq!(admin["security"], json!([{"AWS_IAM": []}]), "the admin routes are IAM-only");
}

#[test]
fn the_alarm_topic_is_encrypted_with_a_key_cloudwatch_may_use() {
    let Some(template) = transformed() else { return };
    let stack = stack(template, STACK, &parameter_sets()[0].1, &[]);
    let topic = stack.resource("AlarmTopic").expect("the alarm topic");
    let key_id = topic.properties["KmsMasterKeyId"].as_str().expect("a key");
    assert_ne!(key_id, "alias/aws/sns", "CloudWatch cannot publish to a topic under the AWS-managed key");
    let key = stack
        .resources_of("AWS::KMS::Key")
        .into_iter()
        .find(|k| stack.reference(&k.logical_id) == json!(key_id))
        .expect("the topic's key is the stack's");
    let statements = key.properties["KeyPolicy"]["Statement"].as_array().expect("statements");
    let cloudwatch = statements
        .iter()
        .find(|s| s["Principal"]["Service"] == "cloudwatch.amazonaws.com")
        .expect("a statement for CloudWatch");
    for action in ["kms:Decrypt", "kms:GenerateDataKey*"] {
        assert!(cloudwatch["Action"].as_array().expect("actions").contains(&json!(action)), "{action}");
    }
    assert_eq!(key.properties["EnableKeyRotation"], true);
    // Every alarm tells the topic.
    let topic_arn = stack.reference("AlarmTopic");
    for alarm in stack.resources_of("AWS::CloudWatch::Alarm") {
        assert_eq!(alarm.properties["AlarmActions"], json!([topic_arn]), "{}", alarm.logical_id);
    }
}

#[test]
fn the_records_and_the_dead_letters_outlive_the_stack() {
    let Some(template) = transformed() else { return };
    let stack = stack(template, STACK, &parameter_sets()[0].1, &[]);
    let table = stack.resource("EventsTable").expect("the table");
    assert_eq!(table.deletion_policy.as_deref(), Some("Retain"));
    assert_eq!(table.properties["DeletionProtectionEnabled"], true);
    assert_eq!(table.properties["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"], true);
    assert_eq!(
        table.properties["TimeToLiveSpecification"]["AttributeName"],
        payhooks::adapters::dynamo_event_store::TTL_ATTRIBUTE
    );
    let dlq = stack.resource("DeadLetterQueue").expect("the DLQ");
    assert_eq!(dlq.deletion_policy.as_deref(), Some("Retain"));
    let queue = stack.resource("EventsQueue").expect("the queue");
    let processor = functions(&stack).into_iter().find(|f| f.function == Function::Processor).expect("processor");
    assert_eq!(
        payhooks_tests::template::stack::scalar(&queue.properties["RedrivePolicy"]["maxReceiveCount"]),
        processor.env["PAYHOOKS_MAX_RECEIVE_COUNT"],
        "the processor fails an event on the receive SQS would dead-letter it after"
    );
    assert_eq!(
        payhooks_tests::template::stack::scalar(&queue.properties["VisibilityTimeout"]),
        processor.env["PAYHOOKS_LEASE_SECS"]
    );
}

#[test]
fn a_registered_stripe_endpoint_receives_every_type_the_mapping_reads() {
    let Some(template) = transformed() else { return };
    let default = template["Parameters"]["StripeEnabledEvents"]["Default"].as_str().expect("a default");
    let enabled: BTreeSet<&str> = default.split(',').collect();
    let mapped: BTreeSet<&str> = providers::stripe::MAPPED_TYPES.iter().copied().collect();
    assert_eq!(enabled, mapped);
}

#[test]
fn the_queue_trigger_reports_partial_failures_at_a_bounded_concurrency() {
    let Some(template) = transformed() else { return };
    let stack = stack(
        template,
        STACK,
        &[("StripeWebhookSecretArn", fake_arn("s")), ("ProcessorMaxConcurrency", "7".to_owned())],
        &[],
    );
    let mapping = stack.resources_of("AWS::Lambda::EventSourceMapping").pop().expect("the SQS trigger");
    assert_eq!(mapping.properties["ScalingConfig"]["MaximumConcurrency"], "7");
    assert_eq!(mapping.properties["FunctionResponseTypes"], json!(["ReportBatchItemFailures"]));
}

#[test]
fn two_stacks_in_one_account_name_their_schedules_and_metrics_apart() {
    let Some(template) = transformed() else { return };
    let named = |name: &str| {
        let stack = stack(template, name, &parameter_sets()[0].1, &[]);
        let schedules: BTreeSet<String> = stack
            .resources_of("AWS::Scheduler::Schedule")
            .iter()
            .map(|s| s.properties["Name"].as_str().expect("a name").to_owned())
            .collect();
        let namespaces: BTreeSet<String> =
            functions(&stack).iter().filter_map(|f| f.env.get("PAYHOOKS_METRICS_NAMESPACE").cloned()).collect();
        (schedules, namespaces)
    };
    let (a, b) = (named("billing-eu"), named("billing-us"));
    assert_eq!(a.0.len(), 2, "the sweeper's and the reconciler's: {:?}", a.0);
    assert!(a.0.is_disjoint(&b.0), "{a:?} {b:?}");
    assert!(a.0.iter().all(|name| name.len() <= 64), "schedule names fit: {:?}", a.0);
    assert_eq!((a.1.len(), b.1.len()), (1, 1), "one namespace per stack");
    assert!(a.1.is_disjoint(&b.1));
}

#[test]
fn custom_resources_have_a_deadline_past_their_functions_timeout() {
    let Some(template) = transformed() else { return };
    let stack = stack(template, STACK, &parameter_sets()[2].1, &[]);
    let register = stack.resource("RegisterFunction").expect("the register function");
    let timeout: u64 =
        payhooks_tests::template::stack::scalar(&register.properties["Timeout"]).parse().expect("seconds");
    let custom: Vec<_> = stack.resources().into_iter().filter(|r| r.kind.starts_with("Custom::")).collect();
    assert_eq!(custom.len(), 2);
    for resource in custom {
        let deadline: u64 =
            payhooks_tests::template::stack::scalar(&resource.properties["ServiceTimeout"]).parse().expect("seconds");
        assert!(deadline > timeout && deadline <= 3600, "{}: {deadline} s", resource.logical_id);
    }
}

/// Lambda files a JSON line without a level (every metric line) under INFO
/// and drops INFO when the function's level is WARN or above: so Lambda
/// must pass every line, and the level reach the code instead.
#[test]
fn every_level_keeps_the_metric_lines() {
    let Some(template) = transformed() else { return };
    for level in ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"] {
        let stack =
            stack(template, STACK, &[("StripeWebhookSecretArn", fake_arn("s")), ("LogLevel", level.to_owned())], &[]);
        for function in functions(&stack) {
            assert_eq!(
                function.properties["LoggingConfig"]["ApplicationLogLevel"], "TRACE",
                "{level}: {}",
                function.logical_id
            );
            assert_eq!(function.properties["LoggingConfig"]["LogFormat"], "JSON");
            assert_eq!(
                function.env.get("PAYHOOKS_LOG_LEVEL").map(String::as_str),
                Some(level),
                "{}",
                function.logical_id
            );
        }
    }
}

#[test]
fn the_dashboard_is_json_and_shows_every_alarm() {
    let Some(template) = transformed() else { return };
    for (set, parameters) in parameter_sets() {
        let stack = stack(template, STACK, &parameters, &[]);
        let dashboard = stack.resource("Dashboard").expect("a dashboard");
        let body: Value = serde_json::from_str(dashboard.properties["DashboardBody"].as_str().expect("a body"))
            .unwrap_or_else(|e| panic!("{set}: the dashboard is not JSON: {e}"));
        let shown: BTreeSet<String> = body["widgets"]
            .as_array()
            .expect("widgets")
            .iter()
            .filter(|w| w["type"] == "alarm")
            .flat_map(|w| w["properties"]["alarms"].as_array().cloned().unwrap_or_default())
            .map(|a| a.as_str().expect("an ARN").to_owned())
            .collect();
        let defined: BTreeSet<String> = stack
            .resources_of("AWS::CloudWatch::Alarm")
            .iter()
            .map(|a| stack.attribute(&a.logical_id, "Arn"))
            .collect();
        assert_eq!(shown, defined, "{set}: the dashboard shows every alarm of the stack");
    }
}

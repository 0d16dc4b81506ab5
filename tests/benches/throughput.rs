//! Throughput of the local server on loopback: every provider route and the
//! processor in one process, in-memory adapters. A bounded load (a fixed
//! number of signed Stripe webhooks, a fixed concurrency) from a Rust client
//! in the same process; reports requests/s and latency percentiles, for
//! new events and for duplicates.
//!
//!   cargo bench -p payhooks-tests --bench throughput

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures::StreamExt;
use payhooks::event::Provider;
use payhooks::ingest::IngestSettings;
use payhooks::local::LocalApp;
use payhooks::process::ProcessorSettings;
use payhooks::providers::{SampleIds, VerifierSettings, stripe};
use payhooks::secret::SecretSet;
use payhooks_tests::requests::{SECRET, stripe_headers};

const REQUESTS: usize = 20_000;
const DUPLICATES: usize = 5_000;
const CONCURRENCY: usize = 32;

async fn load(
    client: &reqwest::Client,
    url: &str,
    requests: &[(Vec<u8>, http::HeaderMap)],
) -> (Duration, Vec<Duration>) {
    let started = Instant::now();
    let mut latencies: Vec<Duration> = futures::stream::iter(requests)
        .map(|(body, headers)| async move {
            let sent = Instant::now();
            let response = client.post(url).headers(headers.clone()).body(body.clone()).send().await.expect("sent");
            assert!(response.status().is_success(), "{}", response.status());
            response.bytes().await.expect("body");
            sent.elapsed()
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let elapsed = started.elapsed();
    latencies.sort();
    (elapsed, latencies)
}

fn line(what: &str, count: usize, (elapsed, latencies): (Duration, Vec<Duration>)) {
    let pick =
        |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)].as_secs_f64() * 1000.0;
    println!(
        "{what:24} {count:6} requests in {:6.2} s: {:8.0} req/s  p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
        elapsed.as_secs_f64(),
        count as f64 / elapsed.as_secs_f64(),
        pick(0.50),
        pick(0.99),
        pick(1.0)
    );
}

#[tokio::main]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let secrets = vec![(Provider::Stripe, SecretSet::from_comma_separated(SECRET).expect("secret"))];
    let app =
        LocalApp::new(secrets, &VerifierSettings::default(), IngestSettings::default(), ProcessorSettings::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let router = app.router().into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, router).await });
    let worker = app.clone();
    tokio::spawn(async move { worker.run_worker().await });

    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let requests: Vec<(Vec<u8>, http::HeaderMap)> = (0..REQUESTS)
        .map(|_| {
            let ids = SampleIds::random("evt");
            let body = stripe::SAMPLES.event("invoice.paid", &ids).expect("sample").into_bytes();
            let headers = stripe_headers(&body, SECRET, now);
            (body, headers)
        })
        .collect();
    let client = reqwest::Client::builder().pool_max_idle_per_host(CONCURRENCY).build().expect("client");
    let url = format!("http://{addr}/webhooks/stripe");
    println!("local server on {addr}, {CONCURRENCY} concurrent requests, {} B events", requests[0].0.len());
    line("new events", REQUESTS, load(&client, &url, &requests).await);
    line("duplicates", DUPLICATES, load(&client, &url, &requests[..DUPLICATES]).await);
}

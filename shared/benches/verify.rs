//! Verify + parse, the CPU an ingest invocation spends before its first AWS
//! call: Stripe events of 1, 4 and 64 KiB; a 4 KiB event of every other
//! provider (Lago in both of its modes; PayPal with its certificate cached,
//! and fetched from memory and parsed each time).

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use payhooks::event::Provider;
use payhooks::providers::paypal::{LocalSigner, MemoryCertificateSource, OfflineCheck, PaypalVerifier};
use payhooks::providers::{self, Inbound, SampleIds, Verifier, lago, stripe};
use payhooks::secret::{Secret, SecretSet};
use time::OffsetDateTime;

/// A Stripe renewal invoice event's fields payhooks reads, shared with the
/// Node and Python benches so all three check the same bytes.
const STRIPE_HEAD: &str = include_str!("../../tests/stripe_sdk/event-head.json.part");
/// A paid Lago renewal's fields, shared with the Python bench.
const LAGO_HEAD: &str = include_str!("../../tests/lago_jwt/event-head.json.part");

/// An event of exactly `size` bytes: `head`, padded in its last string
/// field (a description, a customer's name) the size of a real event's.
fn event_of_size(head: &str, size: usize) -> Vec<u8> {
    let tail = r#""}}}"#;
    let pad = size.checked_sub(head.len() + tail.len()).expect("size above the fixed fields");
    format!("{head}{}{tail}", "x".repeat(pad)).into_bytes()
}

fn verify_and_parse(c: &mut Criterion) {
    let secrets = SecretSet::from_comma_separated("whsec_bench_only").expect("secret");
    let now = OffsetDateTime::now_utc();
    let mut group = c.benchmark_group("stripe_verify_and_parse");
    group.measurement_time(Duration::from_secs(3));
    for size in [1024, 4096, 65536] {
        let body = event_of_size(STRIPE_HEAD, size);
        let header = stripe::signature_header(&body, &[&Secret::new("whsec_bench_only")], now.unix_timestamp());
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(body.len()), &body, |b, body| {
            b.iter(|| {
                stripe::verify_signature(black_box(&header), black_box(body), &secrets, now, stripe::DEFAULT_TOLERANCE)
                    .expect("valid");
                black_box(stripe::parse_event(body).expect("parses"))
            })
        });
    }
    group.finish();
}

/// An RS256 token as Lago makes it, signed with `key`.
fn lago_token(body: &[u8], key: &rsa::PrivateKey) -> String {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use rsa::signature::{SignatureEncoding, Signer};

    let key = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(key.clone());
    let claims = serde_json::json!({"data": std::str::from_utf8(body).expect("utf-8"), "iss": "http://lago.bench"});
    let input =
        format!("{}.{}", URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256"}"#), URL_SAFE_NO_PAD.encode(claims.to_string()));
    let signature = key.sign(input.as_bytes()).to_vec();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

fn lago_verify_and_parse(c: &mut Criterion) {
    const UNIQUE_KEY: &str = "6f4b2a0e-8a51-4f1e-9a0c-5d2b7c3e1f90";
    let keys = SecretSet::from_comma_separated("lago_bench_only").expect("key");
    let now = OffsetDateTime::now_utc();
    let body = event_of_size(LAGO_HEAD, 4096);
    let mut group = c.benchmark_group("lago_verify_and_parse");
    group.measurement_time(Duration::from_secs(3));
    group.throughput(Throughput::Bytes(body.len() as u64));

    let signature = lago::hmac_signature(&body, &Secret::new("lago_bench_only"));
    group.bench_with_input(BenchmarkId::new("hmac", body.len()), &body, |b, body| {
        b.iter(|| {
            lago::verify_hmac(black_box(&signature), black_box(body), &keys).expect("valid");
            black_box(lago::parse_event(UNIQUE_KEY, body, now).expect("parses"))
        })
    });

    // A key made for this run: none is kept in the repository.
    let private = {
        use rsa::Generate as _;
        rsa::PrivateKey::try_generate().expect("key")
    };
    let token = lago_token(&body, &private);
    let key = rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(private.to_public_key());
    group.bench_with_input(BenchmarkId::new("jwt", body.len()), &body, |b, body| {
        b.iter(|| {
            lago::verify_jwt(black_box(&token), black_box(body), &key, Some("http://lago.bench")).expect("valid");
            black_box(lago::parse_event(UNIQUE_KEY, body, now).expect("parses"))
        })
    });
    group.finish();
}

/// A PayPal renewal (PAYMENT.SALE.COMPLETED) of exactly `size` bytes.
fn paypal_event_of_size(size: usize) -> Vec<u8> {
    let head = concat!(
        r#"{"id":"WH-BENCH0000000001-000000000000000001","event_version":"1.0","create_time":"2025-11-24T09:15:02.000Z","#,
        r#""resource_type":"sale","event_type":"PAYMENT.SALE.COMPLETED","resource":{"id":"5TY05013RG002845M","state":"completed","#,
        r#""amount":{"total":"20.00","currency":"USD"},"billing_agreement_id":"I-BENCH0000001","custom":"acct-bench-0001","#,
        r#""create_time":"2025-11-24T09:14:51Z"},"summary":""#
    );
    let tail = r#""}"#;
    let pad = size.checked_sub(head.len() + tail.len()).expect("size above the fixed fields");
    format!("{head}{}{tail}", "x".repeat(pad)).into_bytes()
}

fn paypal_verify_and_parse(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    let signer = LocalSigner::generate("WH-BENCH-HOOK").expect("key");
    let now = OffsetDateTime::now_utc();
    let certificate =
        signer.certificate_pem(now - time::Duration::days(1), now + time::Duration::days(30)).expect("certificate");
    let source = Arc::new(MemoryCertificateSource::new());
    source.insert(&signer.cert_url, certificate);
    let webhook_ids = SecretSet::from_comma_separated("WH-BENCH-HOOK").expect("id");
    let body = paypal_event_of_size(4096);
    let headers = signer.headers(&body, now).expect("headers");
    let inbound = Inbound::new(&headers, &body);

    let mut group = c.benchmark_group("paypal_verify_and_parse");
    group.measurement_time(Duration::from_secs(3));
    group.throughput(Throughput::Bytes(body.len() as u64));
    let cached =
        PaypalVerifier::new(webhook_ids.clone(), paypal_tolerance(), Arc::new(OfflineCheck::new(source.clone())));
    group.bench_function(BenchmarkId::new("cached_certificate", body.len()), |b| {
        b.iter(|| black_box(runtime.block_on(cached.verify(black_box(&inbound), now)).expect("valid")))
    });
    group.bench_function(BenchmarkId::new("uncached_certificate", body.len()), |b| {
        b.iter(|| {
            // A cold cache each time: fetch (from memory) and parse the certificate.
            let verifier = PaypalVerifier::new(
                webhook_ids.clone(),
                paypal_tolerance(),
                Arc::new(OfflineCheck::new(source.clone())),
            );
            black_box(runtime.block_on(verifier.verify(black_box(&inbound), now)).expect("valid"))
        })
    });
    group.finish();
}

fn paypal_tolerance() -> Duration {
    stripe::DEFAULT_TOLERANCE
}

/// A provider's first renewal-like sample padded with whitespace to exactly
/// `size` bytes (whitespace is valid JSON and signed like any byte).
fn padded_sample(provider: Provider, size: usize) -> (Vec<u8>, SampleIds) {
    let ids = providers::sample_ids(provider);
    let name = providers::sample_event_types(provider)[1];
    let sample = providers::sample_event(provider, name, &ids).expect("sample");
    let trimmed = sample.trim_end();
    let (head, last) = trimmed.split_at(trimmed.len() - 1);
    let pad = size.saturating_sub(trimmed.len());
    (format!("{head}{}{last}", " ".repeat(pad)).into_bytes(), ids)
}

/// The same path ingest takes (the provider's `Verifier`) for the providers
/// without a benchmark of their own.
fn other_providers_verify_and_parse(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    let now = OffsetDateTime::now_utc();
    let mut group = c.benchmark_group("verify_and_parse_4k");
    group.measurement_time(Duration::from_secs(3));
    for provider in [Provider::Paystack, Provider::Flutterwave, Provider::Killbill] {
        let (body, ids) = padded_sample(provider, 4096);
        let secret = "bench_only_secret";
        let verifier = providers::verifier(
            provider,
            SecretSet::from_comma_separated(secret).expect("secret"),
            &providers::VerifierSettings::default(),
        );
        let signed = providers::sign_sample(provider, &body, &ids, secret, now).expect("signed");
        let inbound = Inbound { path_token: signed.path_token.as_deref(), ..Inbound::new(&signed.headers, &body) };
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(BenchmarkId::new(provider.as_str(), body.len()), |b| {
            b.iter(|| black_box(runtime.block_on(verifier.verify(black_box(&inbound), now)).expect("valid")))
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    verify_and_parse,
    lago_verify_and_parse,
    paypal_verify_and_parse,
    other_providers_verify_and_parse
);
criterion_main!(benches);

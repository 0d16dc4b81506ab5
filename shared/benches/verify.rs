//! Verify + parse, the CPU an ingest invocation spends before its first AWS
//! call: Stripe events of 1, 4 and 64 KiB; a 4 KiB event of every other
//! provider (Lago in both of its modes; PayPal with its certificate cached,
//! and fetched from memory and parsed each time).

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use payhooks::providers::paypal::{LocalSigner, MemoryCertificateSource, OfflineCheck, PaypalVerifier};
use payhooks::event::Provider;
use payhooks::providers::{self, Inbound, SampleIds, Verifier, lago, stripe};
use payhooks::secret::{Secret, SecretSet};
use time::OffsetDateTime;

/// A renewal invoice event of exactly `size` bytes: the fields payhooks
/// reads, padded with a description the size of a real invoice's lines.
fn event_of_size(size: usize) -> Vec<u8> {
    let head = concat!(
        r#"{"id":"evt_bench_0001","object":"event","api_version":"2025-03-31.basil","created":1764000000,"#,
        r#""type":"invoice.paid","livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"#,
        r#""data":{"object":{"id":"in_bench_0001","object":"invoice","customer":"cus_bench_0001","currency":"usd","#,
        r#""amount_paid":2000,"billing_reason":"subscription_cycle","parent":{"type":"subscription_details","#,
        r#""subscription_details":{"subscription":"sub_bench_0001","metadata":{"account_id":"acct-bench-0001"}}},"#,
        r#""lines":{"object":"list","data":[{"id":"il_bench_0001","period":{"start":1764000000,"end":1766592000},"#,
        r#""pricing":{"price_details":{"price":"price_bench_pro"}}}]},"description":""#
    );
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
        let body = event_of_size(size);
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

/// A paid Lago renewal of exactly `size` bytes, padded in the customer's name.
fn lago_event_of_size(size: usize) -> Vec<u8> {
    let head = concat!(
        r#"{"webhook_type":"invoice.payment_status_updated","object_type":"invoice","#,
        r#""organization_id":"6b1e0c62-7a43-4a4e-9f0c-2d5a1f3c8e10","invoice":{"lago_id":"1a901a90-1a90-1a90-1a90-1a901a901a90","#,
        r#""invoice_type":"subscription","status":"finalized","payment_status":"succeeded","currency":"EUR","#,
        r#""total_amount_cents":5880,"created_at":"2026-03-15T00:05:12Z","updated_at":"2026-03-15T00:05:40Z","#,
        r#""fees":[{"external_subscription_id":"sub_bench_0001","item":{"type":"subscription","code":"pro_monthly"},"#,
        r#""from_date":"2026-03-15T00:00:00+00:00","to_date":"2026-04-14T23:59:59+00:00"}],"#,
        r#""customer":{"external_id":"cus_bench_0001","name":""#
    );
    let tail = r#""}}}"#;
    let pad = size.checked_sub(head.len() + tail.len()).expect("size above the fixed fields");
    format!("{head}{}{tail}", "x".repeat(pad)).into_bytes()
}

/// An RS256 token as Lago makes it, signed with `key`.
fn lago_token(body: &[u8], key: &rsa::PrivateKey) -> String {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use rsa::signature::{SignatureEncoding, Signer};

    let key = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(key.clone());
    let claims = serde_json::json!({"data": std::str::from_utf8(body).expect("utf-8"), "iss": "http://lago.bench"});
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256"}"#),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = key.sign(input.as_bytes()).to_vec();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

fn lago_verify_and_parse(c: &mut Criterion) {
    const UNIQUE_KEY: &str = "6f4b2a0e-8a51-4f1e-9a0c-5d2b7c3e1f90";
    let keys = SecretSet::from_comma_separated("lago_bench_only").expect("key");
    let now = OffsetDateTime::now_utc();
    let body = lago_event_of_size(4096);
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
    let certificate = signer
        .certificate_pem(now - time::Duration::days(1), now + time::Duration::days(30))
        .expect("certificate");
    let source = Arc::new(MemoryCertificateSource::new());
    source.insert(&signer.cert_url, certificate);
    let webhook_ids = SecretSet::from_comma_separated("WH-BENCH-HOOK").expect("id");
    let body = paypal_event_of_size(4096);
    let headers = signer.headers(&body, now).expect("headers");
    let inbound = Inbound::new(&headers, &body);

    let mut group = c.benchmark_group("paypal_verify_and_parse");
    group.measurement_time(Duration::from_secs(3));
    group.throughput(Throughput::Bytes(body.len() as u64));
    let cached = PaypalVerifier::new(webhook_ids.clone(), paypal_tolerance(), Arc::new(OfflineCheck::new(source.clone())));
    group.bench_function(BenchmarkId::new("cached_certificate", body.len()), |b| {
        b.iter(|| black_box(runtime.block_on(cached.verify(black_box(&inbound), now)).expect("valid")))
    });
    group.bench_function(BenchmarkId::new("uncached_certificate", body.len()), |b| {
        b.iter(|| {
            // A cold cache each time: fetch (from memory) and parse the certificate.
            let verifier = PaypalVerifier::new(webhook_ids.clone(), paypal_tolerance(), Arc::new(OfflineCheck::new(source.clone())));
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
        let inbound = Inbound {
            path_token: signed.path_token.as_deref(),
            ..Inbound::new(&signed.headers, &body)
        };
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

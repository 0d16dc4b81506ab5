//! Verify + parse of Stripe events of 1 KiB, 4 KiB and 64 KiB: the CPU an
//! ingest invocation spends before its first AWS call.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use payhooks::providers::stripe;
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

criterion_group!(benches, verify_and_parse);
criterion_main!(benches);

//! Verify + parse of Stripe events of 1 KiB, 4 KiB and 64 KiB: the CPU an
//! ingest invocation spends before its first AWS call.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use payhooks::providers::{SampleIds, stripe};
use payhooks::secret::{Secret, SecretSet};
use time::OffsetDateTime;

/// An invoice event padded (inside its metadata) to exactly `size` bytes.
fn event_of_size(size: usize) -> Vec<u8> {
    let ids = SampleIds::random("evt");
    let base = stripe::sample_event("invoice.paid", &ids).expect("sample");
    let marker = "\"metadata\": {";
    let at = base.find(marker).expect("a metadata object") + marker.len();
    let filler = "\"padding\": \"\", ";
    let pad = size.saturating_sub(base.len() + filler.len());
    let body = format!("{}\"padding\": \"{}\", {}", &base[..at], "x".repeat(pad), &base[at..]);
    assert!(body.len() == size || base.len() > size, "{} vs {size}", body.len());
    body.into_bytes()
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

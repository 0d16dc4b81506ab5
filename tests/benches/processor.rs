//! Processor throughput: a batch of 10 renewal events of 10 accounts, each
//! granting credits in one transaction, on the memory adapters and (when the
//! test script's emulators are configured) on DynamoDB Local. Reported per
//! batch; events/s = 10 / time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use payhooks::adapters::MemoryMetrics;
use payhooks::clock::SystemClock;
use payhooks::effects::{BillingEffects, Plans};
use payhooks::event::{EventId, EventKey, NewEvent, Provider};
use payhooks::ports::Delivery;
use payhooks::process::{Processor, ProcessorPorts, ProcessorSettings};
use payhooks::providers::{SampleIds, stripe};
use payhooks_tests::Backend;

/// Records 10 distinct renewals on `backend` and returns their deliveries.
async fn batch(backend: &Backend) -> Vec<Delivery> {
    let ids = SampleIds::random("evt");
    let mut deliveries = Vec::new();
    for _ in 0..10 {
        let ids = ids.next_event("evt");
        let body = stripe::SAMPLES.event("invoice.payment_succeeded", &ids).expect("sample");
        let verified = stripe::parse_event(body.as_bytes()).expect("parses");
        let mut event = verified.event;
        // Its own account: concurrent transactions on one account item
        // conflict and retry, which is correctness, not throughput.
        event.account = Some(format!("acct-bench-{}", ids.event_id));
        let key = EventKey::new(Provider::Stripe, EventId::parse(&ids.event_id).expect("id"));
        let now = time::OffsetDateTime::now_utc();
        let new = NewEvent { key: key.clone(), fingerprint: verified.fingerprint, event, received_at: now };
        backend.store.claim(&new).await.expect("claim");
        deliveries.push(Delivery {
            message_id: ids.event_id.clone(),
            receipt: ids.event_id,
            body: key.message_body(),
            receive_count: 1,
        });
    }
    deliveries
}

fn processor(backend: &Backend) -> Processor {
    let plans = Plans::from_json(r#"{"price_1TestPlanPro": 100}"#).expect("plans");
    Processor::new(
        ProcessorPorts {
            store: backend.store.clone(),
            queue: backend.queue.clone(),
            dead_letters: backend.dead_letters.clone(),
            metrics: Arc::new(MemoryMetrics::new()),
            clock: Arc::new(SystemClock),
        },
        Arc::new(BillingEffects::new(backend.ledger.clone(), plans, Arc::new(SystemClock))),
        ProcessorSettings::default(),
    )
}

fn batch_of_ten(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let mut backends = vec![Backend::memory(Duration::from_secs(30))];
    backends.extend(runtime.block_on(Backend::emulators(Duration::from_secs(30))));
    let mut group = c.benchmark_group("processor_batch_of_10");
    group.sample_size(10).measurement_time(Duration::from_secs(5));
    for backend in &backends {
        let processor = processor(backend);
        group.bench_function(backend.name, |b| {
            b.iter_custom(|iterations| {
                let mut total = Duration::ZERO;
                for _ in 0..iterations {
                    let deliveries = runtime.block_on(batch(backend));
                    let start = Instant::now();
                    let report = runtime.block_on(processor.process_batch(&deliveries));
                    total += start.elapsed();
                    assert_eq!(report.processed, 10, "{report:?}");
                }
                total
            })
        });
    }
    group.finish();
}

criterion_group!(benches, batch_of_ten);
criterion_main!(benches);

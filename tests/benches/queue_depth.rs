//! How moto's SQS slows as a queue deepens: the time of a send, a receive of
//! ten and their deletes, with the queue already holding 0, 1,000 and 5,000
//! messages. It bounds the size of the fault-injection run on the emulators.
//!
//!   PAYHOOKS_RUN='cargo bench -p payhooks-tests --bench queue_depth' scripts/test.sh

use std::time::{Duration, Instant};

use payhooks_tests::Backend;

const ROUNDS: u32 = 20;

#[tokio::main]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let Some(backend) = Backend::emulators(Duration::from_secs(300)).await else {
        eprintln!("queue_depth: needs the emulators (run it through scripts/test.sh with PAYHOOKS_RUN)");
        return;
    };
    let queue = backend.queue;
    let mut depth = 0;
    for target in [0, 1_000, 5_000] {
        let filling = Instant::now();
        while depth < target {
            futures::future::join_all((0..50).map(|_| queue.send(r#"{"provider":"stripe","event_id":"evt_depth"}"#)))
                .await;
            depth += 50;
        }
        let fill = filling.elapsed();
        let (mut send, mut receive, mut delete) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
        for _ in 0..ROUNDS {
            let started = Instant::now();
            for _ in 0..10 {
                queue.send(r#"{"provider":"stripe","event_id":"evt_probe"}"#).await.expect("send");
            }
            send += started.elapsed() / 10;
            let started = Instant::now();
            let batch = queue.receive(10, Duration::ZERO).await.expect("receive");
            receive += started.elapsed();
            let started = Instant::now();
            for delivery in &batch {
                queue.delete(&delivery.receipt).await.expect("delete");
            }
            delete += started.elapsed() / batch.len().max(1) as u32;
        }
        println!(
            "depth {target:5}: send {:6.2} ms  receive(10) {:6.2} ms  delete {:6.2} ms  (filled in {:.1} s)",
            send.as_secs_f64() * 1000.0 / f64::from(ROUNDS),
            receive.as_secs_f64() * 1000.0 / f64::from(ROUNDS),
            delete.as_secs_f64() * 1000.0 / f64::from(ROUNDS),
            fill.as_secs_f64()
        );
    }
}

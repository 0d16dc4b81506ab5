//! The fault-injection run at a size the suite can afford, with fixed seeds,
//! every provider's simulated provider delivering: on the memory adapters
//! (simulated time) and on DynamoDB Local and moto's SQS (real time, short
//! visibility). Nothing lost, nothing doubled, every balance the sum of its
//! ledger, no message left. `cargo run -p payhooks-tests --bin chaos` runs
//! it at full size.

use std::time::Duration;

use payhooks::event::Provider;
use payhooks_tests::Backend;
use payhooks_tests::chaos::{ChaosReport, ChaosSettings, run};

/// Every provider's accounts were delivered to, and downstream was told.
fn every_provider_took_part(report: &ChaosReport) {
    for provider in Provider::ALL {
        let (accounts, deliveries) = report.by_provider.get(provider).copied().unwrap_or_default();
        assert!(accounts > 0 && deliveries > accounts as u64, "{provider}:\n{}", report.table());
    }
    assert!(report.provision_requests > 0, "{}", report.table());
}

#[tokio::test(start_paused = true)]
async fn under_injected_faults_nothing_is_lost_or_doubled_on_the_memory_adapters() {
    for seed in [11, 12] {
        let settings = ChaosSettings::new(seed, 120);
        let report = run(Backend::memory(settings.visibility), &settings).await;
        assert!(report.deliveries >= 1000, "{}", report.table());
        assert!(report.duplicates * 100 >= report.deliveries * 30, "at least 30% duplicates:\n{}", report.table());
        use payhooks_tests::faults::Fault;
        let failures: u64 =
            report.faults.iter().filter(|(f, _)| !matches!(f, Fault::Delay | Fault::ClockJump)).map(|(_, n)| n).sum();
        assert!(failures * 100 >= report.port_calls * 19, "about 20% of calls fail:\n{}", report.table());
        let jumps = report.faults.get(&Fault::ClockJump).copied().unwrap_or(0);
        assert!(
            report.crashes > 0 && jumps > 0 && report.sweeps > 0,
            "workers died, leases expired mid-work, the sweeper ran:\n{}",
            report.table()
        );
        every_provider_took_part(&report);
        assert!(report.clean(), "{}\n{:#?}", report.table(), (&report.lost, &report.doubled, &report.inconsistent));
    }
}

#[tokio::test]
async fn under_injected_faults_nothing_is_lost_or_doubled_on_the_emulators() {
    // One account per provider.
    let mut settings = ChaosSettings::new(21, Provider::ALL.len());
    settings.visibility = Duration::from_secs(2);
    settings.step = Duration::from_millis(200);
    settings.provider_step = Duration::from_secs(5);
    // In real time a worker's death cannot be placed at a delayed call.
    settings.crash_rate = 0.0;
    let Some(backend) = Backend::emulators(settings.visibility).await else { return };
    let report = run(backend, &settings).await;
    assert!(report.deliveries >= 50, "{}", report.table());
    every_provider_took_part(&report);
    assert!(report.clean(), "{}\n{:#?}", report.table(), (&report.lost, &report.doubled, &report.inconsistent));
}

//! The fault-injection run, from one command, with a seed:
//!
//!   cargo run --release -p payhooks-tests --bin chaos -- --seed 7 --accounts 1000
//!   PAYHOOKS_RUN='cargo run --release -p payhooks-tests --bin chaos -- --emulators --accounts 24' scripts/test.sh
//!
//! Prints the summary table; exits 1 if anything was lost, doubled or left.
//! A failing seed fails the same way again.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use payhooks_tests::Backend;
use payhooks_tests::chaos::{ChaosSettings, run};

#[derive(Debug, Parser)]
#[command(name = "chaos", about = "Deliveries under injected faults: zero lost, zero doubled")]
struct Args {
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Dealt to the six providers in turn; about 6 events and 19
    /// deliveries per account.
    #[arg(long, default_value_t = 1000)]
    accounts: usize,
    /// Against DynamoDB Local and moto (run through scripts/test.sh), in real time.
    #[arg(long)]
    emulators: bool,
    /// Chance that a port call fails.
    #[arg(long, default_value_t = 0.2)]
    failure_rate: f64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut settings = ChaosSettings::new(args.seed, args.accounts);
    settings.failure_rate = args.failure_rate;
    let mut runtime = tokio::runtime::Builder::new_current_thread();
    runtime.enable_all();
    if args.emulators {
        // In real time a worker's death cannot be placed at a delayed call.
        settings.crash_rate = 0.0;
        settings.visibility = Duration::from_secs(2);
        settings.step = Duration::from_millis(200);
        settings.provider_step = Duration::from_secs(5);
    } else {
        runtime.start_paused(true);
    }
    let runtime = runtime.build().expect("a runtime");
    let started = Instant::now();
    let report = runtime.block_on(async {
        let backend = if args.emulators {
            Backend::emulators(settings.visibility).await.expect("emulators: run through scripts/test.sh")
        } else {
            Backend::memory(settings.visibility)
        };
        run(backend, &settings).await
    });
    print!("{}", report.table());
    println!("wall time  {:.1} s", started.elapsed().as_secs_f64());
    for problem in report.lost.iter().chain(&report.doubled).chain(&report.inconsistent).take(20) {
        println!("  {problem}");
    }
    if report.clean() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

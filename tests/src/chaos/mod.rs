//! The fault-injection run: a simulated provider delivers a realistic mix of
//! events for many accounts, in random order, with duplicates, retrying each
//! until it gets a 2xx; every port fails, throttles or delays at random
//! (`faults`), the queue duplicates some messages and redelivers on its
//! visibility timeout, and moves to the DLQ after `maxReceiveCount`. Driven
//! until quiet, the DLQ replayed, driven until quiet again; then checked
//! against what the scenario alone says must have happened: nothing lost,
//! nothing doubled, every balance the sum of its ledger, no message left.

pub mod faults;
pub mod scenario;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::sync::Arc;
use std::time::Duration;

use http::Method;
use payhooks::clock::{Clock, ManualClock};
use payhooks::edge::http::webhook;
use payhooks::effects::{BillingEffects, Plans};
use payhooks::event::{EventId, EventKey, EventStatus, Provider};
use payhooks::ingest::{Ingest, IngestSettings};
use payhooks::ports::AccountRef;
use payhooks::process::{Processor, ProcessorSettings};
use payhooks::providers::{self, Inbound, VerifierSettings};
use payhooks::replay::{ReplayFilter, Replayer};
use payhooks::secret::SecretSet;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::Backend;
use crate::requests::{SECRET, stripe_headers};
use faults::{ChaosLedger, ChaosQueue, ChaosStore, Fault, Injector};
use scenario::{Expected, SimEvent};

#[derive(Debug, Clone)]
pub struct ChaosSettings {
    pub seed: u64,
    pub accounts: usize,
    /// Chance that a port call fails (before, after, or throttled).
    pub failure_rate: f64,
    /// Chance that the provider sends an event again after a 2xx.
    pub duplicate_rate: f64,
    /// Chance that the queue delivers a message twice.
    pub queue_duplicate_rate: f64,
    /// The queue's visibility timeout, the processor's lease.
    pub visibility: Duration,
    /// Time per step of the loop: the clock the pipelines see and, off the
    /// paused runtime, the real wait.
    pub step: Duration,
    /// How far the provider's schedule (retries within a minute, duplicates
    /// within five) moves per step: on the emulators, faster than real time.
    pub provider_step: Duration,
}

impl ChaosSettings {
    pub fn new(seed: u64, accounts: usize) -> Self {
        Self {
            seed,
            accounts,
            failure_rate: 0.2,
            duplicate_rate: 0.5,
            queue_duplicate_rate: 0.05,
            visibility: Duration::from_secs(30),
            step: Duration::from_secs(1),
            provider_step: Duration::from_secs(1),
        }
    }
}

/// What a run did and found.
#[derive(Debug, Clone, Default)]
pub struct ChaosReport {
    pub seed: u64,
    pub accounts: usize,
    pub events: usize,
    pub deliveries: u64,
    /// Deliveries of an event the provider already had a 2xx for.
    pub duplicates: u64,
    /// Deliveries answered with a non-2xx, so sent again later.
    pub provider_retries: u64,
    pub port_calls: u64,
    pub faults: BTreeMap<Fault, u64>,
    pub queue_duplicates: u64,
    /// Messages moved back from the DLQ by the replays.
    pub dlq_round_trips: u32,
    /// Replays until the DLQ stayed empty.
    pub replay_rounds: u32,
    /// Events the provider got a 2xx for that are not in a final state,
    /// and accounts whose ledger falls short of what must have happened.
    pub lost: Vec<String>,
    /// Accounts with more than must have happened.
    pub doubled: Vec<String>,
    /// Accounts whose balance is not the sum of their ledger, or whose
    /// state (trial, entitlement, failed payments) is wrong.
    pub inconsistent: Vec<String>,
    pub messages_left: u64,
    pub simulated: Duration,
}

impl ChaosReport {
    pub fn clean(&self) -> bool {
        self.lost.is_empty() && self.doubled.is_empty() && self.inconsistent.is_empty() && self.messages_left == 0
    }

    /// The summary table.
    pub fn table(&self) -> String {
        let failures: u64 = self.faults.iter().filter(|(f, _)| **f != Fault::Delay).map(|(_, n)| n).sum();
        let mut rows = vec![
            ("seed".to_owned(), self.seed.to_string()),
            ("accounts".to_owned(), self.accounts.to_string()),
            ("events".to_owned(), self.events.to_string()),
            ("deliveries".to_owned(), self.deliveries.to_string()),
            (
                "duplicates".to_owned(),
                format!("{} ({:.0}%)", self.duplicates, percent(self.duplicates, self.deliveries)),
            ),
            ("provider retries (non-2xx)".to_owned(), self.provider_retries.to_string()),
            ("port calls".to_owned(), self.port_calls.to_string()),
            (
                "injected failures".to_owned(),
                format!("{failures} ({:.0}% of calls)", percent(failures, self.port_calls)),
            ),
        ];
        for (fault, count) in &self.faults {
            rows.push((format!("  {}", fault.name()), count.to_string()));
        }
        rows.extend([
            ("queue duplicates".to_owned(), self.queue_duplicates.to_string()),
            ("DLQ round trips".to_owned(), format!("{} in {} replays", self.dlq_round_trips, self.replay_rounds)),
            ("simulated time".to_owned(), format!("{} s", self.simulated.as_secs())),
            ("lost".to_owned(), self.lost.len().to_string()),
            ("doubled".to_owned(), self.doubled.len().to_string()),
            ("inconsistent".to_owned(), self.inconsistent.len().to_string()),
            ("messages left".to_owned(), self.messages_left.to_string()),
        ]);
        let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        rows.iter().map(|(k, v)| format!("{k:width$}  {v}\n")).collect()
    }
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 { 0.0 } else { part as f64 * 100.0 / whole as f64 }
}

/// One delivery attempt waiting for its time.
type Due = Reverse<(u64, u64, usize)>;

/// The provider's side: each event until it gets a 2xx, some again after.
struct SimulatedProvider {
    events: Vec<SimEvent>,
    acked: Vec<bool>,
    due: BinaryHeap<Due>,
    serial: u64,
    rng: StdRng,
    duplicate_rate: f64,
}

impl SimulatedProvider {
    fn schedule(&mut self, at_ms: u64, index: usize) {
        self.serial += 1;
        self.due.push(Reverse((at_ms, self.serial, index)));
    }
}

/// Runs the scenario against `backend` under faults. On the memory adapters
/// run it on a paused tokio clock, so simulated time costs nothing; on the
/// emulators time is real, so keep the visibility timeout short.
pub async fn run(backend: Backend, settings: &ChaosSettings) -> ChaosReport {
    let run_id = format!("{}", settings.seed);
    let mut rng = StdRng::seed_from_u64(settings.seed);
    let mut events = Vec::new();
    let mut expected = Vec::new();
    for index in 0..settings.accounts {
        let (account_events, account_expected) = scenario::account(index, &run_id, &mut rng);
        events.extend(account_events);
        expected.push(account_expected);
    }

    let injector = Arc::new(Injector::new(settings.seed ^ 0x5eed, settings.failure_rate, 0.1));
    let clock = Arc::new(ManualClock::at(payhooks::clock::whole_millis(time::OffsetDateTime::now_utc())));
    let store = Arc::new(ChaosStore {
        inner: backend.store.clone(),
        faults: injector.clone(),
    });
    let ledger = Arc::new(ChaosLedger {
        inner: backend.ledger.clone(),
        faults: injector.clone(),
    });
    let queue = Arc::new(ChaosQueue::new(backend.queue.clone(), injector.clone(), settings.seed ^ 0x0dd, settings.queue_duplicate_rate));
    let dead_letters = Arc::new(ChaosQueue::new(backend.dead_letters.clone(), injector.clone(), settings.seed ^ 0xd1e, 0.0));
    let metrics = Arc::new(payhooks::adapters::MemoryMetrics::new());
    let verifier = providers::verifier(
        Provider::Stripe,
        SecretSet::from_comma_separated(SECRET).expect("secret"),
        &VerifierSettings::default(),
    );
    let ingest_settings = IngestSettings {
        abandoned_after: settings.visibility,
        concurrent_wait: Duration::ZERO,
        ..IngestSettings::default()
    };
    let ingest = Ingest::new(vec![verifier], store.clone(), queue.clone(), metrics.clone(), clock.clone(), ingest_settings);
    let plans = Plans::from_json(&format!(r#"{{"{}": {}}}"#, scenario::PLAN, scenario::CREDITS)).expect("plans");
    let effects = Arc::new(BillingEffects::new(ledger, plans, clock.clone()));
    let processor = Processor::new(
        store.clone(),
        queue.clone(),
        dead_letters.clone(),
        effects,
        metrics,
        clock.clone(),
        ProcessorSettings {
            lease: settings.visibility,
            backoff_base: Duration::from_secs(1),
            backoff_max: settings.visibility,
        },
    );

    let mut provider = SimulatedProvider {
        acked: vec![false; events.len()],
        events,
        due: BinaryHeap::new(),
        serial: 0,
        rng: StdRng::seed_from_u64(settings.seed ^ 0xbee),
        duplicate_rate: settings.duplicate_rate,
    };
    // Random order: every event's first delivery at a random time in the
    // first minutes.
    let window = (provider.events.len() as u64).max(60) * 20;
    for index in 0..provider.events.len() {
        let at = provider.rng.random_range(0..window);
        provider.schedule(at, index);
    }

    let mut report = ChaosReport {
        seed: settings.seed,
        accounts: settings.accounts,
        events: provider.events.len(),
        ..ChaosReport::default()
    };
    let started = clock.now();
    let mut elapsed_ms: u64 = 0;
    let drive = async |provider: &mut SimulatedProvider, report: &mut ChaosReport, elapsed_ms: &mut u64| {
        for _ in 0..200_000 {
            let mut now_due = Vec::new();
            while provider.due.peek().is_some_and(|Reverse((at, _, _))| *at <= *elapsed_ms) {
                let Some(Reverse((_, _, index))) = provider.due.pop() else { break };
                now_due.push(index);
            }
            // What falls due together is sent concurrently: duplicates race.
            let answers = futures::future::join_all(now_due.iter().map(|&index| {
                let event = &provider.events[index];
                let headers = stripe_headers(&event.body, SECRET, clock.now().unix_timestamp());
                let ingest = &ingest;
                async move { webhook(ingest, &Method::POST, "stripe", &Inbound::new(&headers, &event.body)).await }
            }))
            .await;
            for (index, answer) in now_due.into_iter().zip(answers) {
                answered(provider, index, answer.status.is_success(), *elapsed_ms, report);
            }
            for _ in 0..5 {
                match processor.poll_once(Duration::ZERO).await {
                    Ok(batch) if batch.processed == 0 && batch.retry_message_ids.is_empty() => break,
                    _ => {}
                }
            }
            let depth = backend.queue.counts().await.map(|d| d.visible + d.in_flight).unwrap_or(1);
            if provider.due.is_empty() && provider.acked.iter().all(|a| *a) && depth == 0 {
                return;
            }
            clock.advance(time::Duration::try_from(settings.step).unwrap_or(time::Duration::SECOND));
            tokio::time::sleep(settings.step).await;
            *elapsed_ms += settings.provider_step.as_millis() as u64;
        }
    };
    drive(&mut provider, &mut report, &mut elapsed_ms).await;

    // The operator replays the DLQ and the system settles again, as often
    // as the faults (still on) send events back there.
    let replayer = Replayer::new(
        backend.store.clone(),
        backend.queue.clone(),
        backend.dead_letters.clone(),
        Arc::new(payhooks::adapters::MemoryMetrics::new()),
        clock.clone(),
    );
    for _ in 0..20 {
        let replayed = replayer.replay(&ReplayFilter::All, false, None, &|_| {}).await.expect("replay");
        if replayed.moved == 0 {
            break;
        }
        report.dlq_round_trips += replayed.moved;
        report.replay_rounds += 1;
        drive(&mut provider, &mut report, &mut elapsed_ms).await;
    }

    injector.set_enabled(false);
    report.simulated = (clock.now() - started).try_into().unwrap_or_default();
    report.port_calls = injector.calls();
    report.faults = injector.counts();
    report.queue_duplicates = queue.duplicated();
    check(&backend, &provider, &expected, &mut report).await;
    report
}

/// Records a delivery's answer and schedules what the provider does next.
fn answered(provider: &mut SimulatedProvider, index: usize, success: bool, elapsed_ms: u64, report: &mut ChaosReport) {
    report.deliveries += 1;
    let already = provider.acked[index];
    if already {
        report.duplicates += 1;
    }
    if success {
        provider.acked[index] = true;
        // Providers send again even after a 2xx, sometimes more than once.
        if provider.rng.random_bool(provider.duplicate_rate) {
            let later = elapsed_ms + provider.rng.random_range(1_000..300_000);
            provider.schedule(later, index);
        }
    } else {
        report.provider_retries += 1;
        let later = elapsed_ms + provider.rng.random_range(1_000..60_000);
        provider.schedule(later, index);
    }
}

/// Every acknowledged event final; every account exactly as the scenario
/// says; every balance the sum of its ledger; no message left.
async fn check(backend: &Backend, provider: &SimulatedProvider, expected: &[Expected], report: &mut ChaosReport) {
    for (event, acked) in provider.events.iter().zip(&provider.acked) {
        if !acked {
            continue;
        }
        let key = EventKey::new(Provider::Stripe, EventId::parse(&event.event_id).expect("id"));
        let status = backend.store.get(&key).await.expect("get").map(|r| r.status);
        if !matches!(status, Some(EventStatus::Completed | EventStatus::Ignored | EventStatus::Stale)) {
            report.lost.push(format!("{}: {status:?}", event.event_id));
        }
    }
    for want in expected {
        let account = AccountRef::new(Provider::Stripe, &want.name);
        let state = backend.ledger.account(&account).await.expect("account").unwrap_or_default();
        let entries = backend.ledger.entries(&account).await.expect("entries");
        let sum: i64 = entries.iter().map(|e| e.delta).sum();
        let grants = entries.iter().filter(|e| e.business_key.starts_with("grant:")).count();
        if sum != state.balance {
            report.inconsistent.push(format!("{}: balance {} but ledger sums to {sum}", want.name, state.balance));
        }
        if sum < want.balance || grants < want.grants {
            report.lost.push(format!("{}: ledger {sum}, {grants} grants; want {} and {}", want.name, want.balance, want.grants));
        } else if sum > want.balance || grants > want.grants {
            report.doubled.push(format!("{}: ledger {sum}, {grants} grants; want {} and {}", want.name, want.balance, want.grants));
        }
        let status = state.entitlement.as_ref().map(|e| e.status.as_str());
        let want_status = if want.cancelled { "cancelled" } else { "active" };
        if status != Some(want_status)
            || state.trial_started_at.is_some() != want.trial
            || state.failed_payments != want.failed_payments
        {
            report.inconsistent.push(format!(
                "{}: entitlement {status:?} (want {want_status}), trial {} (want {}), failed payments {} (want {})",
                want.name,
                state.trial_started_at.is_some(),
                want.trial,
                state.failed_payments,
                want.failed_payments
            ));
        }
    }
    for queue in [&backend.queue, &backend.dead_letters] {
        let depth = queue.counts().await.expect("counts");
        report.messages_left += depth.visible + depth.in_flight;
    }
}

//! The fault-injection run: a simulated provider per provider delivers a
//! realistic mix of events for many accounts, signed as that provider signs,
//! in random order, with duplicates, retrying each until it gets a 2xx;
//! every port (event store, ledger, queue, DLQ, provisioner, Kill Bill's
//! API) fails, throttles or delays at random (`crate::faults`), and some
//! delays move the clock on by up to a lease, so leases expire mid-work;
//! some workers die mid-batch (wherever a call was delayed: between the
//! provisioner's answer and the commit too) and a new one takes over; the
//! sweeper runs every simulated minute; the queue duplicates some messages
//! and redelivers on its visibility timeout, and moves to the DLQ after
//! `maxReceiveCount`. Driven until quiet, the DLQ
//! replayed, driven until quiet again; then checked against what the
//! scenario alone says must have happened: nothing lost, nothing doubled,
//! every balance the sum of its ledger, every account's final entitlement
//! sent downstream, no message left.

pub mod provider_api;
pub mod scenario;
pub mod signing;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::sync::Arc;
use std::time::Duration;

use http::Method;
use payhooks::adapters::MemoryProvisioner;
use payhooks::clock::{Clock, ManualClock};
use payhooks::edge::http::webhook;
use payhooks::effects::{BillingEffects, Plans};
use payhooks::event::{EventStatus, Provider};
use payhooks::ingest::{Ingest, IngestSettings};
use payhooks::ports::{AccountRef, Action};
use payhooks::process::{Processor, ProcessorPorts, ProcessorSettings};
use payhooks::providers::Inbound;
use payhooks::replay::{ReplayFilter, Replayer};
use payhooks::sweep::{SweepSettings, Sweeper};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::Backend;
use crate::faults::{Fault, Faults, FaultyConfirmer, FaultyLedger, FaultyProvisioner, FaultyQueue, FaultyStore};
use provider_api::SimulatedKillbill;
use scenario::{Expected, SimEvent};
use signing::Signing;

#[derive(Debug, Clone)]
pub struct ChaosSettings {
    pub seed: u64,
    pub accounts: usize,
    /// Accounts are dealt to these providers in turn.
    pub providers: Vec<Provider>,
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
    /// Chance that a worker dies at the first delayed call of a batch (on
    /// the paused runtime only: a timeout shorter than the delay).
    pub crash_rate: f64,
    /// Chance that a delayed call moves the clock on, by up to a lease.
    pub clock_jump_rate: f64,
}

impl ChaosSettings {
    pub fn new(seed: u64, accounts: usize) -> Self {
        Self {
            seed,
            accounts,
            providers: Provider::ALL.to_vec(),
            failure_rate: 0.2,
            duplicate_rate: 0.5,
            queue_duplicate_rate: 0.05,
            visibility: Duration::from_secs(30),
            step: Duration::from_secs(1),
            provider_step: Duration::from_secs(1),
            crash_rate: 0.1,
            clock_jump_rate: 0.25,
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
    /// Per provider: accounts, deliveries.
    pub by_provider: BTreeMap<Provider, (usize, u64)>,
    /// Deliveries of an event the provider already had a 2xx for.
    pub duplicates: u64,
    /// Deliveries answered with a non-2xx, so sent again later.
    pub provider_retries: u64,
    pub port_calls: u64,
    pub faults: BTreeMap<Fault, u64>,
    pub queue_duplicates: u64,
    /// Workers that died mid-batch, and sweeper runs.
    pub crashes: u64,
    pub sweeps: u64,
    /// Requests the provisioner received, and how many repeated a key it
    /// had already received (a lost answer; the receiver dedupes by key).
    pub provision_requests: u64,
    pub provision_repeats: u64,
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
        let failures: u64 =
            self.faults.iter().filter(|(f, _)| !matches!(f, Fault::Delay | Fault::ClockJump)).map(|(_, n)| n).sum();
        let mut rows = vec![
            ("seed".to_owned(), self.seed.to_string()),
            ("accounts".to_owned(), self.accounts.to_string()),
            ("events".to_owned(), self.events.to_string()),
            ("deliveries".to_owned(), self.deliveries.to_string()),
        ];
        for (provider, (accounts, deliveries)) in &self.by_provider {
            rows.push((format!("  {provider}"), format!("{deliveries} ({accounts} accounts)")));
        }
        rows.extend([
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
        ]);
        for (fault, count) in &self.faults {
            rows.push((format!("  {}", fault.name()), count.to_string()));
        }
        rows.extend([
            ("queue duplicates".to_owned(), self.queue_duplicates.to_string()),
            ("workers died mid-batch".to_owned(), self.crashes.to_string()),
            ("sweeper runs".to_owned(), self.sweeps.to_string()),
            (
                "provisioner requests".to_owned(),
                format!("{} ({} repeats of a key)", self.provision_requests, self.provision_repeats),
            ),
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
    let mut killbill = SimulatedKillbill::default();
    let mut by_provider: BTreeMap<Provider, (usize, u64)> = BTreeMap::new();
    for index in 0..settings.accounts {
        let provider = settings.providers[index % settings.providers.len()];
        let account = scenario::account(provider, index, &run_id, &mut rng);
        events.extend(account.events);
        killbill.objects.extend(account.api);
        expected.push(account.expected);
        by_provider.entry(provider).or_default().0 += 1;
    }

    let clock = Arc::new(ManualClock::at(payhooks::clock::whole_millis(time::OffsetDateTime::now_utc())));
    let faults = Arc::new(Faults::seeded(settings.seed ^ 0x5eed, settings.failure_rate, 0.1).moving(
        clock.clone(),
        settings.clock_jump_rate,
        settings.visibility,
    ));
    let store = Arc::new(FaultyStore::with(backend.store.clone(), faults.clone()));
    let ledger = Arc::new(FaultyLedger::with(backend.ledger.clone(), faults.clone()));
    let queue = Arc::new(
        FaultyQueue::with(backend.queue.clone(), faults.clone())
            .duplicating(settings.seed ^ 0x0dd, settings.queue_duplicate_rate),
    );
    let dead_letters = Arc::new(FaultyQueue::with(backend.dead_letters.clone(), faults.clone()));
    let downstream = Arc::new(MemoryProvisioner::new());
    let provisioner = Arc::new(FaultyProvisioner { inner: downstream.clone(), faults: faults.clone() });
    let confirmer = Arc::new(FaultyConfirmer { inner: Arc::new(killbill), faults: faults.clone() });
    let metrics = Arc::new(payhooks::adapters::MemoryMetrics::new());
    let signing = Signing::default();
    let ingest_settings = IngestSettings {
        abandoned_after: settings.visibility,
        concurrent_wait: Duration::ZERO,
        ..IngestSettings::default()
    };
    let ingest =
        Ingest::new(signing.verifiers(), store.clone(), queue.clone(), metrics.clone(), clock.clone(), ingest_settings);
    let plans: BTreeMap<&str, serde_json::Value> = scenario::plans().collect();
    let plans = Plans::from_json(&serde_json::to_string(&plans).expect("json")).expect("plans");
    let effects = Arc::new(BillingEffects::new(ledger, plans, clock.clone()).with_provisioner(provisioner));
    // A worker: a new one (its own lease owner) after one dies.
    let worker = || {
        Processor::new(
            ProcessorPorts {
                store: store.clone(),
                queue: queue.clone(),
                dead_letters: dead_letters.clone(),
                metrics: metrics.clone(),
                clock: clock.clone(),
            },
            effects.clone(),
            ProcessorSettings {
                lease: settings.visibility,
                backoff_base: Duration::from_secs(1),
                backoff_max: settings.visibility,
                max_receive_count: crate::backend::MAX_RECEIVE_COUNT,
                ..ProcessorSettings::default()
            },
        )
        .with_confirmer(Provider::Killbill, confirmer.clone())
    };
    let processor = std::sync::Mutex::new(Arc::new(worker()));
    let crashes = std::sync::Mutex::new(StdRng::seed_from_u64(settings.seed ^ 0xdead));
    let sweeper = Sweeper::new(
        store.clone(),
        queue.clone(),
        metrics.clone(),
        clock.clone(),
        SweepSettings {
            older_than: settings.visibility * 4,
            max_receive_count: crate::backend::MAX_RECEIVE_COUNT,
            ..SweepSettings::default()
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
        by_provider,
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
                let signed = signing.sign(event, clock.now());
                let ingest = &ingest;
                async move {
                    let inbound = Inbound {
                        path_token: signed.path_token.as_deref(),
                        ..Inbound::new(&signed.headers, &event.body)
                    };
                    webhook(ingest, &Method::POST, event.provider.as_str(), &inbound).await
                }
            }))
            .await;
            for (index, answer) in now_due.into_iter().zip(answers) {
                let provider_of = provider.events[index].provider;
                report.by_provider.entry(provider_of).or_default().1 += 1;
                answered(provider, index, answer.status.is_success(), *elapsed_ms, report);
            }
            for _ in 0..5 {
                let current = processor.lock().expect("worker").clone();
                let dies = settings.crash_rate > 0.0 && crashes.lock().expect("rng").random_bool(settings.crash_rate);
                let polled = if dies {
                    // Dies at its first delayed call, if it makes one.
                    tokio::time::timeout(Duration::from_micros(500), current.poll_once(Duration::ZERO)).await.ok()
                } else {
                    Some(current.poll_once(Duration::ZERO).await)
                };
                match polled {
                    Some(Ok(batch)) if batch.processed == 0 && batch.retry_message_ids.is_empty() => break,
                    None => {
                        report.crashes += 1;
                        *processor.lock().expect("worker") = Arc::new(worker());
                    }
                    _ => {}
                }
            }
            if (clock.now() - started).whole_seconds() / 60 > i64::try_from(report.sweeps).unwrap_or(i64::MAX) {
                report.sweeps += 1;
                // The sweeper's own calls fail like any other: the next run goes on.
                let _ = sweeper.sweep().await;
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
    for _ in 0..50 {
        let replayed = replayer.replay(&ReplayFilter::All, false, None, &|_| {}).await.expect("replay");
        if replayed.moved + replayed.reopened == 0 {
            // A dead letter can be hidden when a replay looks (its visibility
            // reset failed, or another receive holds it): wait for it to
            // show rather than end with it still there.
            let left = backend.dead_letters.counts().await.map(|d| d.visible + d.in_flight).unwrap_or(1);
            if left == 0 {
                break;
            }
            clock.advance(time::Duration::try_from(settings.step).unwrap_or(time::Duration::SECOND));
            tokio::time::sleep(settings.step).await;
            continue;
        }
        report.dlq_round_trips += replayed.moved;
        report.replay_rounds += 1;
        drive(&mut provider, &mut report, &mut elapsed_ms).await;
    }

    faults.set_enabled(false);
    report.simulated = (clock.now() - started).try_into().unwrap_or_default();
    report.port_calls = u64::from(faults.total());
    report.faults = faults.injected();
    report.queue_duplicates = queue.duplicated();
    let checks =
        Checks { backend: &backend, provider: &provider, signing: &signing, now: clock.now(), downstream: &downstream };
    checks.run(&expected, &mut report).await;
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

/// What is checked once the run is quiet, with faults off.
struct Checks<'a> {
    backend: &'a Backend,
    provider: &'a SimulatedProvider,
    signing: &'a Signing,
    now: time::OffsetDateTime,
    downstream: &'a MemoryProvisioner,
}

impl Checks<'_> {
    /// Every acknowledged event final; every account exactly as the
    /// scenario says, its final entitlement sent downstream; every balance
    /// the sum of its ledger; no message left.
    async fn run(&self, expected: &[Expected], report: &mut ChaosReport) {
        for (event, acked) in self.provider.events.iter().zip(&self.provider.acked) {
            if !acked {
                continue;
            }
            let key = self.signing.event_key(event, self.now).await;
            let status = self.backend.store.get(&key).await.expect("get").map(|r| r.status);
            if !matches!(status, Some(EventStatus::Completed | EventStatus::Ignored | EventStatus::Stale)) {
                report.lost.push(format!("{key}: {status:?}"));
            }
        }
        let requests = self.downstream.received();
        report.provision_requests = requests.len() as u64;
        let mut keys = std::collections::HashSet::new();
        report.provision_repeats = requests.iter().filter(|r| !keys.insert(r.idempotency_key.clone())).count() as u64;
        for want in expected {
            self.account(want, &requests, report).await;
        }
        for queue in [&self.backend.queue, &self.backend.dead_letters] {
            let depth = queue.counts().await.expect("counts");
            report.messages_left += depth.visible + depth.in_flight;
        }
    }

    async fn account(&self, want: &Expected, requests: &[payhooks::ports::ProvisionRequest], report: &mut ChaosReport) {
        let who = format!("{} {}", want.provider, want.name);
        let account = AccountRef::new(want.provider, &want.name);
        let state = self.backend.ledger.account(&account).await.expect("account").unwrap_or_default();
        let entries = self.backend.ledger.entries(&account).await.expect("entries");
        let sum: i64 = entries.iter().map(|e| e.delta).sum();
        let grants = entries.iter().filter(|e| e.business_key.starts_with("grant:")).count();
        if sum != state.balance {
            report.inconsistent.push(format!("{who}: balance {} but ledger sums to {sum}", state.balance));
        }
        let ledger = format!("{who}: ledger {sum}, {grants} grants; want {} and {}", want.balance, want.grants);
        if sum < want.balance || grants < want.grants {
            report.lost.push(ledger);
        } else if sum > want.balance || grants > want.grants {
            report.doubled.push(ledger);
        }
        let status = state.entitlement.as_ref().map(|e| e.status.as_str());
        let want_status = if want.cancelled { "cancelled" } else { want.open_status };
        if status != Some(want_status)
            || state.trial_started_at.is_some() != want.trial
            || state.failed_payments != want.failed_payments
        {
            report.inconsistent.push(format!(
                "{who}: entitlement {status:?} (want {want_status}), trial {} (want {}), failed payments {} (want {})",
                state.trial_started_at.is_some(),
                want.trial,
                state.failed_payments,
                want.failed_payments
            ));
        }
        // Each payment granted what it paid for: its period's plan, or the
        // upgrade's top-up; the subscription ends on the plan it was told.
        for (payment, credits) in &want.payments {
            let reference = payhooks::ports::PaymentRef::new(want.provider, payment);
            let granted = self.backend.ledger.payment(&reference).await.expect("payment").and_then(|p| p.granted);
            if granted != Some(*credits) {
                report.inconsistent.push(format!("{who}: payment {payment} granted {granted:?}, want {credits}"));
            }
        }
        let plan = state.entitlement.as_ref().and_then(|e| e.plan.as_deref());
        if want.plan.is_some_and(|want| plan != Some(want)) {
            report.inconsistent.push(format!("{who}: plan {plan:?}, want {:?}", want.plan));
        }
        // Downstream ends where the account ends, keeping per account the
        // request with the newest `as_of` (a cancellation at equal times),
        // as the receiver is told to, whatever order requests arrived in.
        // Each subscription the story names ends where it ends; where it
        // names none, the account's one.
        // An open subscription paused or suspended ends without access too.
        let named: Vec<(Option<&str>, bool)> = match want.subscriptions.as_slice() {
            [] => vec![(None, want.cancelled || !payhooks::ports::ledger::entitles(want.open_status))],
            subscriptions => subscriptions.iter().map(|(id, cancelled)| (Some(id.as_str()), *cancelled)).collect(),
        };
        for (subscription, closed) in named {
            let downstream = requests
                .iter()
                .filter(|r| r.provider == want.provider && r.account == want.name)
                .filter(|r| subscription.is_none_or(|id| r.subscription.as_deref() == Some(id)))
                .max_by_key(|r| (r.as_of, r.action == Action::Deprovision))
                .map(|r| r.action);
            // Open, the last word is access given: a provision or a plan change.
            let ends_right = match downstream {
                Some(Action::Deprovision) => closed,
                Some(Action::Provision | Action::ChangePlan) => !closed,
                None => false,
            };
            if !ends_right {
                report.lost.push(format!(
                    "{who} {subscription:?}: downstream ends at {downstream:?}, without access {closed}"
                ));
            }
        }
    }
}

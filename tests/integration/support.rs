//! Wiring of the pipelines over a backend, for the tests.

use std::sync::Arc;
use std::time::Duration;

use payhooks::adapters::MemoryMetrics;
use payhooks::clock::{Clock, ManualClock};
use payhooks::event::Provider;
use payhooks::ingest::{Ingest, IngestSettings};
use payhooks::ports::{Effects, EventStore, Queue};
use payhooks::process::{Processor, ProcessorPorts, ProcessorSettings, RecordOnlyEffects};
use payhooks::providers::{self, VerifierSettings};
use payhooks::secret::SecretSet;
use payhooks_tests::Backend;
use payhooks_tests::requests::SECRET;
use time::OffsetDateTime;

pub const VISIBILITY: Duration = Duration::from_secs(30);

pub fn now() -> OffsetDateTime {
    payhooks::clock::whole_millis(OffsetDateTime::now_utc())
}

/// The pipelines over one backend, sharing a manual clock and metrics.
#[derive(Debug)]
pub struct Rig {
    pub backend: Backend,
    pub clock: Arc<ManualClock>,
    pub metrics: Arc<MemoryMetrics>,
    pub ingest: Ingest,
    pub processor: Processor,
}

impl Rig {
    pub fn new(backend: Backend) -> Self {
        let queue = backend.queue.clone();
        let store = backend.store.clone();
        Self::with(backend, store, queue, Arc::new(RecordOnlyEffects), IngestSettings::default())
    }

    pub fn with(
        backend: Backend,
        store: Arc<dyn EventStore>,
        queue: Arc<dyn Queue>,
        effects: Arc<dyn Effects>,
        settings: IngestSettings,
    ) -> Self {
        let clock = Arc::new(ManualClock::at(now()));
        let metrics = Arc::new(MemoryMetrics::new());
        let verifier = providers::verifier(
            Provider::Stripe,
            SecretSet::from_comma_separated(SECRET).expect("secret"),
            &VerifierSettings::default(),
        );
        let ingest =
            Ingest::new(vec![verifier], store.clone(), queue.clone(), metrics.clone(), clock.clone(), settings);
        let processor = Processor::new(
            ProcessorPorts {
                store,
                queue: backend.queue.clone(),
                dead_letters: backend.dead_letters.clone(),
                metrics: metrics.clone(),
                clock: clock.clone(),
            },
            effects,
            ProcessorSettings {
                lease: VISIBILITY,
                backoff_base: Duration::from_secs(2),
                backoff_max: Duration::from_secs(10),
                max_receive_count: payhooks_tests::backend::MAX_RECEIVE_COUNT,
                ..ProcessorSettings::default()
            },
        );
        Self { backend, clock, metrics, ingest, processor }
    }

    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// The same rig, its processor confirming `provider`'s events with `confirmer`.
    pub fn confirmed_by(self, provider: Provider, confirmer: Arc<dyn payhooks::ports::Confirmer>) -> Self {
        let Self { backend, clock, metrics, ingest, processor } = self;
        Self { backend, clock, metrics, ingest, processor: processor.with_confirmer(provider, confirmer) }
    }
}

//! `GET /metrics`: appends, batch sizes, latencies, authentication failures and HTTP statuses,
//! in the OpenMetrics text format Prometheus scrapes.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Reason {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Witness {
    witness: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WitnessFailure {
    witness: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Status {
    status: u16,
}

/// The server's metrics.
pub struct Metrics {
    registry: Registry,
    appends: Counter,
    append_failures: Counter,
    records: Counter,
    batch: Histogram,
    append_seconds: Histogram,
    request_seconds: Histogram,
    auth_failures: Family<Reason, Counter>,
    requests: Family<Status, Counter>,
    witness_seconds: Family<Witness, Histogram>,
    witness_cosignatures: Family<Witness, Counter>,
    witness_failures: Family<WitnessFailure, Counter>,
    quorum_missed: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("tftrail");
        let appends = Counter::default();
        let append_failures = Counter::default();
        let records = Counter::default();
        // 1, 2, 4 … 32768 records.
        let batch = Histogram::new(exponential_buckets(1.0, 2.0, 16));
        // 0.5 ms … ~16 s.
        let append_seconds = Histogram::new(exponential_buckets(0.0005, 2.0, 16));
        let request_seconds = Histogram::new(exponential_buckets(0.0005, 2.0, 16));
        let auth_failures = Family::<Reason, Counter>::default();
        let requests = Family::<Status, Counter>::default();
        let witness_seconds = Family::<Witness, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        let witness_cosignatures = Family::<Witness, Counter>::default();
        let witness_failures = Family::<WitnessFailure, Counter>::default();
        let quorum_missed = Counter::default();
        registry.register(
            "witness_seconds",
            "Time a witness took to answer a checkpoint submission (add-checkpoint)",
            witness_seconds.clone(),
        );
        registry.register(
            "witness_cosignatures",
            "Valid cosignatures received, per witness",
            witness_cosignatures.clone(),
        );
        registry.register(
            "witness_failures",
            "Checkpoint submissions that brought no valid cosignature, per witness and reason",
            witness_failures.clone(),
        );
        registry.register(
            "witness_quorum_missed",
            "Checkpoints whose submission round ended without the policy's quorum",
            quorum_missed.clone(),
        );
        registry.register(
            "appends",
            "Group commits appended to the log",
            appends.clone(),
        );
        registry.register(
            "append_failures",
            "Group commits that failed (every request in them was answered with an error)",
            append_failures.clone(),
        );
        registry.register(
            "records_appended",
            "Records appended to the log",
            records.clone(),
        );
        registry.register(
            "append_batch_records",
            "Records per group commit",
            batch.clone(),
        );
        registry.register(
            "append_seconds",
            "Time to append one group commit, until its checkpoint is published",
            append_seconds.clone(),
        );
        registry.register(
            "http_request_seconds",
            "Time to answer an HTTP request",
            request_seconds.clone(),
        );
        registry.register(
            "auth_failures",
            "Requests refused for their credential or role",
            auth_failures.clone(),
        );
        registry.register(
            "http_requests",
            "HTTP requests answered, by status",
            requests.clone(),
        );
        Metrics {
            registry,
            appends,
            append_failures,
            records,
            batch,
            append_seconds,
            request_seconds,
            auth_failures,
            requests,
            witness_seconds,
            witness_cosignatures,
            witness_failures,
            quorum_missed,
        }
    }

    /// A witness answered a submission after `took`; `failure` is a short reason when the
    /// answer brought no valid cosignature (`unreachable`, `timeout`, `status-409` …).
    pub fn witnessed(&self, witness: &str, took: Duration, failure: Option<&str>) {
        let w = Witness {
            witness: witness.to_string(),
        };
        self.witness_seconds
            .get_or_create(&w)
            .observe(took.as_secs_f64());
        match failure {
            None => self.witness_cosignatures.get_or_create(&w).inc(),
            Some(reason) => self
                .witness_failures
                .get_or_create(&WitnessFailure {
                    witness: w.witness,
                    reason: reason.to_string(),
                })
                .inc(),
        };
    }

    /// A submission round ended without the quorum.
    pub fn quorum_missed(&self) {
        self.quorum_missed.inc();
    }

    /// A group commit of `records` records took `took`.
    pub fn appended(&self, records: u64, took: Duration) {
        self.appends.inc();
        self.records.inc_by(records);
        self.batch.observe(records as f64);
        self.append_seconds.observe(took.as_secs_f64());
    }

    /// A group commit failed.
    pub fn append_failed(&self) {
        self.append_failures.inc();
    }

    /// A request was refused; `reason` is a short class (`no-credential`, `bad-token` …).
    pub fn auth_failed(&self, reason: &str) {
        self.auth_failures
            .get_or_create(&Reason {
                reason: reason.to_string(),
            })
            .inc();
    }

    /// A request was answered.
    pub fn answered(&self, status: u16, took: Duration) {
        self.requests.get_or_create(&Status { status }).inc();
        self.request_seconds.observe(took.as_secs_f64());
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

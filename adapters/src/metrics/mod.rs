//! The [`Metrics`] port on `prometheus-client`: every series under `agent_runtime_`, served
//! in Prometheus' text format by `/metrics`. Gauges of things the service does not count
//! itself (the SQL pool) are sampled when scraped.

mod labels;
mod model;

pub use model::MeteredProvider;

use labels::BoundedLabel;

use std::sync::OnceLock;
use std::time::Duration;

use ports::{Metrics, SessionStatus, SessionType};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// What the SQL pools are doing when scraped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolUse {
    /// Connections handed out.
    pub in_use: u64,
    /// Requests waiting for a connection.
    pub waiting: u64,
}

type PoolSampler = Box<dyn Fn() -> PoolUse + Send + Sync>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunSet {
    preset: String,
    session_type: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FinishedSet {
    preset: String,
    session_type: &'static str,
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModelSet {
    model: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModelOnly {
    model: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenSet {
    model: String,
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ToolSet {
    tool: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpSet {
    route: String,
    status: u16,
}

/// Seconds from 5 ms to about 3 minutes: model requests and tool calls.
fn call_seconds() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 16))
}

/// The service's metrics.
pub struct Prometheus {
    registry: Registry,
    runs_started: Family<RunSet, Counter>,
    runs_finished: Family<FinishedSet, Counter>,
    runs_active: Gauge,
    run_duration: Histogram,
    model_requests: Family<ModelSet, Counter>,
    model_request_seconds: Family<ModelOnly, Histogram, fn() -> Histogram>,
    model_tokens: Family<TokenSet, Counter>,
    tool_calls: Family<ToolSet, Counter>,
    tool_call_seconds: Family<ToolSet, Histogram, fn() -> Histogram>,
    event_streams_open: Gauge,
    bus_append: Histogram,
    sql_pool_in_use: Gauge,
    sql_pool_waiting: Gauge,
    http_requests: Family<HttpSet, Counter>,
    pool: OnceLock<PoolSampler>,
    /// Labels whose values a model or a caller chooses.
    tools: BoundedLabel,
    models: BoundedLabel,
    presets: BoundedLabel,
}

impl Default for Prometheus {
    fn default() -> Self {
        Self::new()
    }
}

impl Prometheus {
    pub fn new() -> Self {
        let mut metrics = Self {
            registry: Registry::with_prefix("agent_runtime"),
            runs_started: Family::default(),
            runs_finished: Family::default(),
            runs_active: Gauge::default(),
            // 0.1 s to about 14 min.
            run_duration: Histogram::new(exponential_buckets(0.1, 2.0, 14)),
            model_requests: Family::default(),
            model_request_seconds: Family::new_with_constructor(call_seconds),
            model_tokens: Family::default(),
            tool_calls: Family::default(),
            tool_call_seconds: Family::new_with_constructor(call_seconds),
            event_streams_open: Gauge::default(),
            // 0.1 ms to about 1.6 s.
            bus_append: Histogram::new(exponential_buckets(0.0001, 2.0, 15)),
            sql_pool_in_use: Gauge::default(),
            sql_pool_waiting: Gauge::default(),
            http_requests: Family::default(),
            pool: OnceLock::new(),
            tools: BoundedLabel::default(),
            models: BoundedLabel::default(),
            presets: BoundedLabel::default(),
        };
        metrics.register();
        metrics
    }

    fn register(&mut self) {
        let r = &mut self.registry;
        r.register(
            "runs_started",
            "Runs started, by preset and session type",
            self.runs_started.clone(),
        );
        r.register(
            "runs_finished",
            "Runs finished, by preset, session type and final status",
            self.runs_finished.clone(),
        );
        r.register(
            "runs_active",
            "Runs going now (async subagents included)",
            self.runs_active.clone(),
        );
        r.register(
            "run_duration_seconds",
            "How long runs took, setup to commit",
            self.run_duration.clone(),
        );
        r.register("model_requests", "Requests to model providers, by model and outcome (ok or the failure's code); each retry counts", self.model_requests.clone());
        r.register(
            "model_request_seconds",
            "How long model requests took, to the end of their stream",
            self.model_request_seconds.clone(),
        );
        r.register(
            "model_tokens",
            "Tokens providers reported, by model and kind (input, output)",
            self.model_tokens.clone(),
        );
        r.register("tool_calls", "Tool calls, by tool", self.tool_calls.clone());
        r.register(
            "tool_call_seconds",
            "How long tool calls took, by tool",
            self.tool_call_seconds.clone(),
        );
        r.register(
            "event_streams_open",
            "Event streams (SSE responses) open now",
            self.event_streams_open.clone(),
        );
        r.register(
            "bus_append_seconds",
            "How long appending a batch of run events to the event bus took",
            self.bus_append.clone(),
        );
        r.register(
            "sql_pool_in_use",
            "SQL connections handed out now",
            self.sql_pool_in_use.clone(),
        );
        r.register(
            "sql_pool_waiting",
            "Requests waiting for an SQL connection now",
            self.sql_pool_waiting.clone(),
        );
        r.register(
            "http_requests",
            "HTTP requests answered, by route template and status",
            self.http_requests.clone(),
        );
    }

    /// Where the SQL pool gauges come from (set once, when the storage is built).
    pub fn sample_pool(&self, sampler: impl Fn() -> PoolUse + Send + Sync + 'static) {
        let _ = self.pool.set(Box::new(sampler));
    }

    /// Every series in Prometheus' text format (version 0.0.4).
    fn text(&self) -> String {
        if let Some(sample) = self.pool.get() {
            let pool = sample();
            self.sql_pool_in_use.set(saturating_i64(pool.in_use));
            self.sql_pool_waiting.set(saturating_i64(pool.waiting));
        }
        let mut text = String::with_capacity(16 * 1024);
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry);
        text
    }
}

fn saturating_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Metrics for Prometheus {
    fn run_started(&self, preset: &str, session_type: SessionType) {
        self.runs_started
            .get_or_create(&RunSet {
                preset: self.presets.value(preset),
                session_type: session_type.as_str(),
            })
            .inc();
        self.runs_active.inc();
    }

    fn run_finished(
        &self,
        preset: &str,
        session_type: SessionType,
        status: SessionStatus,
        took: Duration,
    ) {
        self.runs_finished
            .get_or_create(&FinishedSet {
                preset: self.presets.value(preset),
                session_type: session_type.as_str(),
                status: status.as_str(),
            })
            .inc();
        self.runs_active.dec();
        self.run_duration.observe(took.as_secs_f64());
    }

    fn model_request(&self, model: &str, outcome: &str, took: Duration) {
        let model = self.models.value(model);
        self.model_requests
            .get_or_create(&ModelSet {
                model: model.clone(),
                outcome: outcome.to_owned(),
            })
            .inc();
        self.model_request_seconds
            .get_or_create(&ModelOnly { model })
            .observe(took.as_secs_f64());
    }

    fn model_tokens(&self, model: &str, input: u64, output: u64) {
        let model = self.models.value(model);
        for (kind, n) in [("input", input), ("output", output)] {
            self.model_tokens
                .get_or_create(&TokenSet {
                    model: model.clone(),
                    kind,
                })
                .inc_by(n);
        }
    }

    fn tool_call(&self, tool: &str, took: Duration) {
        let labels = ToolSet {
            tool: self.tools.value(tool),
        };
        self.tool_calls.get_or_create(&labels).inc();
        self.tool_call_seconds
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }

    fn bus_append(&self, took: Duration) {
        self.bus_append.observe(took.as_secs_f64());
    }

    fn http_request(&self, route: &str, status: u16) {
        self.http_requests
            .get_or_create(&HttpSet {
                route: route.to_owned(),
                status,
            })
            .inc();
    }

    fn event_streams(&self, change: i64) {
        self.event_streams_open.inc_by(change);
    }

    fn render(&self) -> String {
        self.text()
    }
}

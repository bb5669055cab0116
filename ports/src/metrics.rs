//! What the service counts for its operators (Prometheus `/metrics`). Recording never fails
//! and never waits: an implementation keeps counters in memory, so the core can record on
//! its hot paths.

use std::time::Duration;

use crate::{SessionStatus, SessionType};

/// The service's counters, gauges and histograms.
#[cfg_attr(feature = "mock", mockall::automock)]
pub trait Metrics: Send + Sync {
    /// A run of `preset` was set up and starts executing (it is active until
    /// [`Self::run_finished`]).
    fn run_started(&self, preset: &str, session_type: SessionType);
    /// A run was finalized with its session's final status.
    fn run_finished(
        &self,
        preset: &str,
        session_type: SessionType,
        status: SessionStatus,
        took: Duration,
    );
    /// One request to a model provider ended (each retry is a request of its own), with
    /// `outcome` `ok`, `cancelled` or the failure's stable code (`model_rate_limited`, …).
    fn model_request(&self, model: &str, outcome: &str, took: Duration);
    /// Tokens a provider reported for one request.
    fn model_tokens(&self, model: &str, input: u64, output: u64);
    /// One tool call ended.
    fn tool_call(&self, tool: &str, took: Duration);
    /// One batch of a run's events was appended to the event bus.
    fn bus_append(&self, took: Duration);
    /// One HTTP request was answered, by its route template.
    fn http_request(&self, route: &str, status: u16);
    /// An event stream (SSE response) opened (`+1`) or closed (`-1`).
    fn event_streams(&self, change: i64);
    /// Every series, in Prometheus' text format (version 0.0.4).
    fn render(&self) -> String;
}

/// Counts nothing: for tests that do not look at metrics.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoMetrics;

impl Metrics for NoMetrics {
    fn run_started(&self, _: &str, _: SessionType) {}
    fn run_finished(&self, _: &str, _: SessionType, _: SessionStatus, _: Duration) {}
    fn model_request(&self, _: &str, _: &str, _: Duration) {}
    fn model_tokens(&self, _: &str, _: u64, _: u64) {}
    fn tool_call(&self, _: &str, _: Duration) {}
    fn bus_append(&self, _: Duration) {}
    fn http_request(&self, _: &str, _: u16) {}
    fn event_streams(&self, _: i64) {}
    fn render(&self) -> String {
        String::new()
    }
}

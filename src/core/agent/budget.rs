//! A run's caps (the preset's `limits`, spec 03): which one the run reached, a `warning`
//! event as each passes 80 %, and the wall-clock deadline, which stops a run even in the
//! middle of a long tool call or model response.
//!
//! The counters are atomics because the deadline's timer and the loop's steps are two
//! futures of the same task, both reading the budget.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use ports::{EventPayload, Limit, RunLimits, Usage, Warning};
use tokio::time::Instant;

use super::RunEnd;
use crate::core::run::{EventSink, RunControl};

/// The share of a cap at which the run is warned, in percent.
const WARN_PERCENT: u64 = 80;

/// The `warning` code of a cap passing [`WARN_PERCENT`].
pub const LIMIT_WARNING: &str = "limit_near";

pub(super) struct Budget {
    limits: RunLimits,
    started: Instant,
    tool_calls: AtomicU64,
    /// Per [`Limit::ALL`] entry: whether its warning went out.
    warned: [AtomicBool; 4],
}

impl Budget {
    pub fn new(limits: RunLimits) -> Self {
        Self {
            limits,
            started: Instant::now(),
            tool_calls: AtomicU64::new(0),
            warned: Default::default(),
        }
    }

    /// The cap the run has reached, if any; warns once per cap past 80 %.
    pub fn check(&self, usage: &Usage, sink: &dyn EventSink, agent_id: &str) -> Option<RunEnd> {
        for limit in Limit::ALL {
            let Some(cap) = self.limits.get(limit) else {
                continue;
            };
            let used = self.used(limit, usage);
            if used >= cap {
                return Some(reached(limit, used, cap));
            }
            if used.saturating_mul(100) >= cap.saturating_mul(WARN_PERCENT) {
                self.warn(limit, used, cap, sink, agent_id);
            }
        }
        None
    }

    /// How many more tool calls may run (`None`: no cap).
    pub fn tool_calls_left(&self) -> Option<u64> {
        self.limits
            .max_tool_calls
            .map(|cap| cap.saturating_sub(self.tool_calls.load(Ordering::Relaxed)))
    }

    pub fn count_tool_calls(&self, calls: usize) {
        self.tool_calls.fetch_add(calls as u64, Ordering::Relaxed);
    }

    /// The end of a run stopped by its deadline, if the deadline is what stopped it.
    pub fn deadline_end(&self) -> Option<RunEnd> {
        let cap = self.limits.max_duration_secs?;
        let used = self.started.elapsed().as_secs();
        (self.started.elapsed() >= Duration::from_secs(cap))
            .then(|| reached(Limit::MaxDurationSecs, used.max(cap), cap))
    }

    /// Runs beside the loop: warns at 80 % of the duration cap and interrupts the run at
    /// the cap (the loop then ends it as [`Self::deadline_end`]). Never resolves.
    pub async fn enforce_deadline(
        &self,
        control: &RunControl,
        sink: &dyn EventSink,
        agent_id: &str,
    ) -> Infallible {
        if let Some(cap) = self.limits.max_duration_secs {
            let warn_at = self.started + Duration::from_secs(cap) * WARN_PERCENT as u32 / 100;
            tokio::time::sleep_until(warn_at).await;
            let used = self.started.elapsed().as_secs();
            self.warn(Limit::MaxDurationSecs, used, cap, sink, agent_id);
            tokio::time::sleep_until(self.started + Duration::from_secs(cap)).await;
            control.interrupt(Some(format!(
                "the run reached its duration limit ({cap} s)"
            )));
        }
        std::future::pending().await
    }

    fn used(&self, limit: Limit, usage: &Usage) -> u64 {
        match limit {
            Limit::MaxModelRequests => usage.model_requests,
            Limit::MaxTotalTokens => usage.total_tokens,
            Limit::MaxDurationSecs => self.started.elapsed().as_secs(),
            Limit::MaxToolCalls => self.tool_calls.load(Ordering::Relaxed),
        }
    }

    fn warn(&self, limit: Limit, used: u64, cap: u64, sink: &dyn EventSink, agent_id: &str) {
        let at = Limit::ALL.iter().position(|l| *l == limit).unwrap_or(0);
        if self.warned[at].swap(true, Ordering::Relaxed) {
            return;
        }
        sink.emit(
            agent_id,
            EventPayload::Warning(Warning {
                code: LIMIT_WARNING.to_owned(),
                message: format!(
                    "{}: {used} of {cap} {} used; the run stops at the limit",
                    limit.as_str(),
                    unit(limit)
                ),
            }),
        );
    }
}

fn unit(limit: Limit) -> &'static str {
    match limit {
        Limit::MaxModelRequests => "model requests",
        Limit::MaxTotalTokens => "tokens",
        Limit::MaxDurationSecs => "seconds",
        Limit::MaxToolCalls => "tool calls",
    }
}

fn reached(limit: Limit, used: u64, cap: u64) -> RunEnd {
    RunEnd::LimitReached {
        limit,
        message: format!(
            "stopped at the {} limit: {used} of {cap} {}",
            limit.as_str(),
            unit(limit)
        ),
    }
}

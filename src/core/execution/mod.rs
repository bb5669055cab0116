//! Execution (spec 03), cut in three over one registry of running sessions:
//! - [`RunEngine`] runs a session in three phases (setup in `engine.rs`, execute, finalize
//!   in `finalize.rs`), with the event processor (run log, transcript, forwarding to the
//!   bus) and fire;
//! - [`LiveRuns`] acts on runs while they go: interrupt, steer, attach to their events;
//! - [`Queries`] is the read side: conversations, sessions, transcripts, mailboxes.

mod admission;
mod assemble;
mod attach;
mod collection;
mod control;
mod engine;
mod external;
mod finalize;
mod fire;
mod forward;
pub mod input;
mod launch;
mod meter;
mod notices;
mod offered;
mod placement;
mod queries;
mod registry;
mod request;
mod retention;
mod retries;
mod run_log;
mod sweeper;
mod titles;
mod transcript;

#[cfg(test)]
mod tests;

/// How often and how patiently a run retries its model requests (`MODEL_MAX_RETRIES`).
pub use crate::core::agent::RetryPolicy as ModelRetries;
/// How a run answers its parent's pending tool calls: part of a run request, so callers
/// name it through `execution` and never reach into the agent loop.
pub use crate::core::agent::{ExternalResult, Interaction, Resolutions};
pub use admission::{DEFAULT_MAX_CONCURRENT_RUNS, RETRY_AFTER_SECS};
pub use attach::{AttachError, Attached};
pub use control::{ControlError, LiveRuns, SteerError, Steered};
pub use engine::{Ports, RunEngine, Settings};
pub use external::ExternalTools;
pub use offered::{OfferedTool, OfferedTools, ToolSource};
pub use queries::{ConversationView, LiveStatus, Queries, QueryError, Turn};
pub use registry::SteerOutcome;
pub use request::{
    ActiveSession, ConfigOverride, ModelOverride, RunError, RunRequest, RunTarget, StartedRun,
};
pub use retention::{Retention, RetentionError};
pub use retries::{Begun, KEY_LIFETIME, Retries, RetryKey};
pub use run_log::RunLog;
pub use sweeper::{RetentionPolicy, keep_sweeping};

use std::sync::Arc;

/// The three faces of execution, built over one shared registry.
pub struct Execution {
    pub runs: Arc<RunEngine>,
    pub live: Arc<LiveRuns>,
    pub queries: Arc<Queries>,
    pub retention: Arc<Retention>,
}

impl Execution {
    pub fn new(ports: Ports, settings: Settings) -> Self {
        let registry = Arc::new(registry::Registry::new());
        Self {
            live: Arc::new(LiveRuns::new(&ports, settings.input, registry.clone())),
            queries: Arc::new(Queries::new(&ports, registry.clone())),
            retention: Arc::new(Retention::new(&ports, registry.clone())),
            runs: RunEngine::new(ports, settings, registry),
        }
    }
}

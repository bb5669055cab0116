//! The execution coordinator (spec 03): one run in three phases (setup, execute,
//! finalize), the session registry, the event processor (run log, compression, forwarding
//! to the bus), the attach bridge, control, and the read side of sessions.

mod assemble;
mod attach;
mod compress;
mod control;
mod coordinator;
mod external;
mod finalize;
mod fire;
mod forward;
pub mod input;
mod launch;
mod placement;
mod queries;
mod registry;
mod request;
mod run_log;

#[cfg(test)]
mod tests;

/// How a run answers its parent's pending tool calls: part of a run request, so callers
/// name it through `execution` and never reach into the agent loop.
pub use crate::core::agent::{ExternalResult, Interaction, Resolutions};
pub use attach::AttachError;
pub use control::{ControlError, SteerError, Steered};
pub use coordinator::{Coordinator, Ports, Settings};
pub use queries::{ConversationView, LiveStatus, QueryError, Turn};
pub use registry::SteerOutcome;
pub use request::{
    ActiveSession, ConfigOverride, ModelOverride, RunError, RunRequest, RunTarget, StartedRun,
};
pub use run_log::RunLog;

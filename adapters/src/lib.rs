//! Backends of agent-runtime, each implementing port traits from `ports`.
//!
//! No driver type (diesel, redis, opendal) and no driver error leaves this crate: every
//! failure is translated into the port's own error enum.

pub mod download;
pub mod environment;
pub mod event_bus;
pub mod llm;
pub mod mcp;
pub mod metrics;
pub mod outbound;
pub mod protected;
pub mod shell;
pub mod sql;
pub mod state_store;
#[cfg(feature = "testing")]
pub mod testing;
pub mod web_services;
pub mod webhooks;
pub mod workspace;

/// Boxes any error as a port error source.
pub(crate) fn boxed<E: std::error::Error + Send + Sync + 'static>(e: E) -> ports::BoxError {
    Box::new(e)
}

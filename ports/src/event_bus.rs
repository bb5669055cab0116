//! The per-session event log: a live buffer with a length cap and a TTL, never the record.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::{BoxError, EventEnvelope, SessionId};

/// Name of one run's stream, e.g. `runs:{session_id}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StreamKey(pub String);

impl StreamKey {
    /// The key of a session's stream.
    pub fn for_session(session_id: &SessionId) -> Self {
        Self(format!("runs:{session_id}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for StreamKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Errors of the event bus.
#[derive(Debug, thiserror::Error)]
pub enum EventBusError {
    /// The appended id is not the stream's last id + 1.
    #[error("event {got} appended after {last}")]
    OutOfOrder { last: u64, got: u64 },
    /// The stream does not exist (never created, or expired after its TTL).
    #[error("stream not found")]
    NotFound,
    /// The bus cannot be reached.
    #[error("event bus unavailable: {0}")]
    Unavailable(BoxError),
    /// A stored entry does not decode.
    #[error("corrupt event: {0}")]
    Corrupt(BoxError),
}

/// Per-session ordered event streams.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait EventBus: Send + Sync {
    /// Appends consecutive events as one unit, all or none. Ids MUST arrive as 1, 2, 3 …
    /// per stream: the first of the batch is the stream's last + 1, each next one + 1. The
    /// stream keeps at most the adapter's cap of newest events. A batch holding a terminal
    /// event starts the stream's TTL, after which it is gone. Adapters make it one round
    /// trip where they can, so a forwarder can keep up with a fast run. An empty batch does
    /// nothing.
    /// # Errors
    /// `OutOfOrder` for the first event that breaks the sequence; nothing is appended.
    async fn append_batch(
        &self,
        key: &StreamKey,
        events: &[Arc<EventEnvelope>],
    ) -> Result<(), EventBusError>;

    /// Events with id > `after` still held, oldest first. When there are none yet, waits up
    /// to `wait` for the first and returns whatever arrived (possibly nothing).
    /// # Errors
    /// `NotFound` when the stream does not exist.
    async fn read_after(
        &self,
        key: &StreamKey,
        after: u64,
        wait: Duration,
    ) -> Result<Vec<EventEnvelope>, EventBusError>;

    /// Whether the stream exists (has events and has not expired).
    async fn exists(&self, key: &StreamKey) -> Result<bool, EventBusError>;

    /// `Ok` when the bus answers.
    async fn health(&self) -> Result<(), EventBusError>;
}

//! Large immutable blobs per session: `state.json` and `display_messages.json` (spec 01);
//! the histories a `state.json` holds are stored once, shared by the snapshots that
//! continue them.

use async_trait::async_trait;

use crate::{BoxError, DisplayMessage, SessionId, SessionState};

/// Errors of the state store.
#[derive(Debug, thiserror::Error)]
pub enum StateStoreError {
    #[error("not found")]
    NotFound,
    /// The session id cannot name a key safely (path separators, dots, empty).
    #[error("invalid session id")]
    InvalidKey,
    /// The stored bytes do not decode.
    #[error("corrupt state: {0}")]
    Corrupt(BoxError),
    #[error("state store unavailable: {0}")]
    Unavailable(BoxError),
}

/// Session snapshots. Keys are `sessions/{session_id}/state.json` and
/// `sessions/{session_id}/display_messages.json` under the store's root.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait StateStore: Send + Sync {
    /// Writes state.json. All-or-nothing: a concurrent or later reader sees either the
    /// previous content (or nothing) or the whole new document, never a part.
    async fn save_state(
        &self,
        session_id: &SessionId,
        state: &SessionState,
    ) -> Result<(), StateStoreError>;

    /// # Errors
    /// `NotFound` when the session has no state.
    async fn load_state(&self, session_id: &SessionId) -> Result<SessionState, StateStoreError>;

    /// Writes display_messages.json, all-or-nothing like `save_state`.
    async fn save_display_messages(
        &self,
        session_id: &SessionId,
        messages: &[DisplayMessage],
    ) -> Result<(), StateStoreError>;

    /// # Errors
    /// `NotFound` when the session has none.
    async fn load_display_messages(
        &self,
        session_id: &SessionId,
    ) -> Result<Vec<DisplayMessage>, StateStoreError>;

    /// Removes the session's documents. Removing a session with nothing stored succeeds:
    /// deletion is retried after partial failures. Histories may be shared between
    /// sessions, so what only deleted sessions used goes with [`StateStore::collect_garbage`].
    async fn delete_session(&self, session_id: &SessionId) -> Result<(), StateStoreError>;

    /// Removes the stored history no session's state names any more (after deletions);
    /// returns how many objects went. Saves may run meanwhile and lose nothing.
    async fn collect_garbage(&self) -> Result<u64, StateStoreError>;

    /// `Ok` when the store can be read and written.
    async fn health(&self) -> Result<(), StateStoreError>;
}

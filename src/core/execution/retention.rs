//! Deleting conversations: the rows of a conversation go in one transaction (so a failure
//! leaves it whole), then its sessions' state-store objects. A conversation with a
//! running session is refused; interrupt it first.

use std::sync::Arc;

use ports::{ConversationId, ConversationRepo, SessionId, StateStore, StorageError};

use super::queries::QueryError;
use super::registry::Registry;

/// Removes conversations and everything stored for them.
pub struct Retention {
    conversations: Arc<dyn ConversationRepo>,
    state_store: Arc<dyn StateStore>,
    registry: Arc<Registry>,
}

/// Why a conversation was not deleted.
#[derive(Debug, thiserror::Error)]
pub enum DeleteError {
    #[error("conversation not found")]
    NotFound,
    /// One of its sessions runs (in this process, or per the database).
    #[error("the conversation is running session {0}; interrupt it first")]
    Busy(SessionId),
    #[error(transparent)]
    Query(#[from] QueryError),
}

impl Retention {
    pub(super) fn new(ports: &super::Ports, registry: Arc<Registry>) -> Self {
        Self {
            conversations: ports.conversations.clone(),
            state_store: ports.state_store.clone(),
            registry,
        }
    }

    /// Deletes the conversation, its sessions, mailbox, metadata and their state-store
    /// objects; returns how many sessions went. Objects that fail to delete are logged
    /// (the rows that named them are gone, so nothing reaches them again).
    ///
    /// # Errors
    /// See [`DeleteError`].
    pub async fn delete_conversation(
        &self,
        conversation_id: &ConversationId,
    ) -> Result<usize, DeleteError> {
        if let Some(run) = self.registry.runs_of(conversation_id).first() {
            return Err(DeleteError::Busy(run.session_id.clone()));
        }
        let sessions = match self
            .conversations
            .delete_conversation(conversation_id)
            .await
        {
            Ok(sessions) => sessions,
            Err(StorageError::NotFound) => return Err(DeleteError::NotFound),
            Err(StorageError::ConversationBusy { session_id }) => {
                return Err(DeleteError::Busy(session_id));
            }
            Err(e) => return Err(QueryError::from(e).into()),
        };
        for session_id in &sessions {
            if let Err(e) = self.state_store.delete_session(session_id).await {
                tracing::warn!(%session_id, error = %e, "cannot delete a deleted session's state");
            }
        }
        tracing::info!(%conversation_id, sessions = sessions.len(), "conversation deleted");
        Ok(sessions.len())
    }
}

//! Archiving and deleting conversations. An archived conversation and its sessions can be
//! read but take no new run until it is unarchived (`update` with `status: active`), which
//! gives each session back its status. Deleting removes the rows in one transaction
//! (so a failure leaves the conversation whole), then what the rows named: its sessions'
//! state-store objects (their shared history once no session names it) and uploaded
//! files. With `RETENTION_DAYS`, [`super::sweeper`]
//! deletes archived conversations once they have been untouched that long.

use std::collections::BTreeMap;
use std::sync::Arc;

use ports::{
    Conversation, ConversationId, ConversationPatch, ConversationRepo, ConversationStatus,
    EnvironmentFactory, PresetId, PresetRepo, SessionId, SessionRecord, StateStore, StorageError,
    Timestamp, WorkspaceError,
};

use tokio_util::sync::CancellationToken;

use super::collection::Collection;
use super::input::run_uploads;
use super::queries::QueryError;
use super::registry::Registry;
use crate::core::notifications::Notifier;

/// Conversations deleted per query of a sweep; a sweep queries again until none is due.
const SWEEP_BATCH: u32 = 100;

/// Archives and removes conversations and everything stored for them.
pub struct Retention {
    conversations: Arc<dyn ConversationRepo>,
    presets: Arc<dyn PresetRepo>,
    state_store: Arc<dyn StateStore>,
    environments: Arc<dyn EnvironmentFactory>,
    registry: Arc<Registry>,
    notifier: Arc<Notifier>,
    /// Removes the history segments only deleted sessions named.
    collection: Arc<Collection>,
}

/// Why a conversation was not archived or deleted.
#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    #[error("conversation not found")]
    NotFound,
    /// One of its sessions runs (in this process, or per the database).
    #[error("the conversation is running session {0}; interrupt it first")]
    Busy(SessionId),
    #[error(transparent)]
    Query(#[from] QueryError),
}

impl From<StorageError> for RetentionError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::NotFound => Self::NotFound,
            StorageError::ConversationBusy { session_id } => Self::Busy(session_id),
            other => Self::Query(other.into()),
        }
    }
}

impl Retention {
    pub(super) fn new(ports: &super::Ports, registry: Arc<Registry>) -> Self {
        Self {
            conversations: ports.conversations.clone(),
            presets: ports.presets.clone(),
            state_store: ports.state_store.clone(),
            environments: ports.environments.clone(),
            registry,
            notifier: ports.notifier.clone(),
            collection: Collection::new(ports.state_store.clone()),
        }
    }

    /// Marks the conversation and its sessions `archived` (each keeps the status it had,
    /// for unarchiving); archiving again changes nothing.
    ///
    /// # Errors
    /// See [`RetentionError`].
    pub async fn archive(
        &self,
        conversation_id: &ConversationId,
    ) -> Result<Conversation, RetentionError> {
        self.refuse_if_running(conversation_id)?;
        let patch = ConversationPatch {
            status: Some(ConversationStatus::Archived),
            ..ConversationPatch::default()
        };
        let archived = self
            .conversations
            .update_conversation(conversation_id, &patch, ports::now())
            .await?;
        self.notifier
            .publish(super::notices::edited(conversation_id.clone()));
        tracing::info!(%conversation_id, "conversation archived");
        Ok(archived)
    }

    /// Deletes the conversation, its sessions, mailbox and metadata, then their
    /// state-store objects and uploads; returns how many sessions went. Objects that fail
    /// to go are logged (the rows that named them are gone, so nothing reaches them again).
    ///
    /// # Errors
    /// See [`RetentionError`].
    pub async fn delete_conversation(
        &self,
        conversation_id: &ConversationId,
    ) -> Result<usize, RetentionError> {
        self.refuse_if_running(conversation_id)?;
        let sessions = self
            .conversations
            .delete_conversation(conversation_id)
            .await?;
        self.remove_state(&sessions).await;
        self.collection.request();
        self.remove_uploads(&sessions).await;
        tracing::info!(%conversation_id, sessions = sessions.len(), "conversation deleted");
        Ok(sessions.len())
    }

    /// Deletes the archived conversations untouched since before `cutoff`; returns how
    /// many went. A cancelled `stop` ends the pass between two deletions.
    ///
    /// # Errors
    /// Storage errors of the listing; a conversation that cannot be deleted is logged
    /// and skipped.
    pub async fn sweep(
        &self,
        cutoff: Timestamp,
        stop: &CancellationToken,
    ) -> Result<usize, RetentionError> {
        let mut deleted = 0;
        while !stop.is_cancelled() {
            let due = self
                .conversations
                .archived_before(cutoff, SWEEP_BATCH)
                .await?;
            let mut progressed = false;
            for conversation_id in &due {
                if stop.is_cancelled() {
                    break;
                }
                match self.delete_conversation(conversation_id).await {
                    Ok(_) => {
                        deleted += 1;
                        progressed = true;
                    }
                    // Deleted meanwhile, by a caller or another replica.
                    Err(RetentionError::NotFound) => progressed = true,
                    Err(e) => {
                        tracing::warn!(%conversation_id, error = %e, "retention: cannot delete");
                    }
                }
            }
            if due.len() < SWEEP_BATCH as usize || !progressed {
                break;
            }
        }
        Ok(deleted)
    }

    fn refuse_if_running(&self, conversation_id: &ConversationId) -> Result<(), RetentionError> {
        match self.registry.runs_of(conversation_id).first() {
            Some(run) => Err(RetentionError::Busy(run.session_id.clone())),
            None => Ok(()),
        }
    }

    async fn remove_state(&self, sessions: &[SessionRecord]) {
        for session in sessions {
            let session_id = &session.session_id;
            if let Err(e) = self.state_store.delete_session(session_id).await {
                tracing::warn!(%session_id, error = %e, "cannot delete a deleted session's state");
            }
        }
    }

    /// Removes each session's `.uploads/<session_id>` from its preset's environment. The
    /// environment is the preset's as it is now: uploads of a preset since deleted, or
    /// whose working directory moved, stay where they were (and are logged).
    async fn remove_uploads(&self, sessions: &[SessionRecord]) {
        let mut by_preset: BTreeMap<&PresetId, Vec<&SessionId>> = BTreeMap::new();
        for session in sessions {
            if let Some(preset_id) = &session.preset_id {
                by_preset
                    .entry(preset_id)
                    .or_default()
                    .push(&session.session_id);
            }
        }
        for (preset_id, session_ids) in by_preset {
            let preset = match self.presets.get_preset(preset_id).await {
                Ok(preset) => preset,
                Err(e) => {
                    tracing::warn!(%preset_id, error = %e, "uploads left: cannot read the preset");
                    continue;
                }
            };
            let opened = match self.environments.open(&preset.environment).await {
                Ok(opened) => opened,
                Err(e) => {
                    tracing::warn!(%preset_id, error = %e, "uploads left: cannot open the environment");
                    continue;
                }
            };
            for session_id in session_ids {
                match opened.workspace.remove(&run_uploads(session_id)).await {
                    Ok(()) | Err(WorkspaceError::NotFound(_)) => {}
                    Err(e) => {
                        tracing::warn!(%session_id, error = %e, "cannot remove a deleted session's uploads");
                    }
                }
            }
        }
    }
}

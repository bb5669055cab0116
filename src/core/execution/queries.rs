//! The read side of sessions and conversations: rows from SQL, transcripts from the state
//! store, and "is it running?" from the registry, which is the authority on that.

use ports::{
    Conversation, ConversationFilter, ConversationPatch, ConversationRepo, DisplayMessage,
    MailboxMessage, MailboxRepo, Page, PresetRepo, SessionRecord, SessionRepo, SessionStatus,
    SessionType, StateStore, StateStoreError, StorageError, now,
};
use ports::{ConversationId, SessionId};

use std::sync::Arc;

use super::engine::Ports;
use super::registry::Registry;
use super::request::ActiveSession;
use crate::core::limits;
use crate::core::metadata;
use crate::core::preset_validation::FieldError;
use crate::core::preset_validation::lengths as preset_lengths;

/// Why a read or an edit failed.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("invalid request")]
    Invalid(Vec<FieldError>),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    StateStore(#[from] StateStoreError),
}

/// A session's status as callers see it: `Executing` while the registry holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveStatus {
    Executing,
    Stored(SessionStatus),
}

/// A conversation with what a client needs to show it.
#[derive(Debug, Clone, PartialEq)]
pub struct ConversationView {
    pub conversation: Conversation,
    /// The newest agent session, whatever its status.
    pub latest_session: Option<(SessionId, SessionStatus)>,
    pub active_session: Option<ActiveSession>,
    pub pending_mailbox: u64,
}

/// One session's part of a conversation's transcript.
#[derive(Debug, Clone, PartialEq)]
pub struct Turn {
    pub session: SessionRecord,
    pub display_messages: Vec<DisplayMessage>,
}

/// The read side: conversations, sessions, transcripts and mailboxes as stored, with
/// "is it running?" from the registry. Its one write, editing a conversation, is a
/// bookkeeping edit that never touches a run.
pub struct Queries {
    presets: Arc<dyn PresetRepo>,
    conversations: Arc<dyn ConversationRepo>,
    sessions: Arc<dyn SessionRepo>,
    mailbox: Arc<dyn MailboxRepo>,
    state_store: Arc<dyn StateStore>,
    registry: Arc<Registry>,
    /// Tells that an edited conversation changed.
    notifier: Arc<crate::core::notifications::Notifier>,
}

impl Queries {
    pub(super) fn new(ports: &Ports, registry: Arc<Registry>) -> Self {
        Self {
            presets: ports.presets.clone(),
            conversations: ports.conversations.clone(),
            sessions: ports.sessions.clone(),
            mailbox: ports.mailbox.clone(),
            state_store: ports.state_store.clone(),
            registry,
            notifier: ports.notifier.clone(),
        }
    }

    /// A session row, and its display_messages when asked (empty when none were stored).
    ///
    /// # Errors
    /// `NotFound` for an unknown session.
    pub async fn session(
        &self,
        session_id: &SessionId,
        with_display: bool,
    ) -> Result<(SessionRecord, Option<Vec<DisplayMessage>>), QueryError> {
        let record = self.session_row(session_id).await?;
        let display = if with_display {
            Some(self.display_of(&record).await?)
        } else {
            None
        };
        Ok((record, display))
    }

    /// `Executing` while running in this process, else the stored status.
    ///
    /// # Errors
    /// `NotFound` for an unknown session.
    pub async fn session_status(&self, session_id: &SessionId) -> Result<LiveStatus, QueryError> {
        if self.registry.get(session_id).is_some() {
            return Ok(LiveStatus::Executing);
        }
        Ok(LiveStatus::Stored(
            self.session_row(session_id).await?.status,
        ))
    }

    /// Conversations, newest activity first.
    ///
    /// # Errors
    /// `Invalid` for a metadata key no conversation can have.
    pub async fn conversations(
        &self,
        filter: &ConversationFilter,
        page: Page,
    ) -> Result<Vec<Conversation>, QueryError> {
        if let Some((key, _)) = filter.metadata.iter().find(|(k, _)| !metadata::is_key(k)) {
            return Err(QueryError::Invalid(vec![FieldError {
                field: format!("metadata.{}", key.chars().take(64).collect::<String>()),
                message: "not a metadata key: a-z, A-Z, 0-9, '_', '-', '.' or ':'".to_owned(),
            }]));
        }
        Ok(self.conversations.list_conversations(filter, page).await?)
    }

    /// # Errors
    /// `NotFound` for an unknown conversation.
    pub async fn conversation_view(
        &self,
        conversation_id: &ConversationId,
    ) -> Result<ConversationView, QueryError> {
        let conversation = self.conversation_row(conversation_id).await?;
        let latest = self
            .sessions
            .latest_session(conversation_id, SessionType::Agent)
            .await?;
        let active = self
            .registry
            .agent_run_of(conversation_id)
            .map(|h| ActiveSession {
                session_id: h.session_id.clone(),
                stream_key: h.stream_key.clone(),
                transport: h.transport,
            });
        let pending_mailbox = self.mailbox.pending_count(conversation_id).await?;
        Ok(ConversationView {
            conversation,
            latest_session: latest.map(|s| (s.session_id, s.status)),
            active_session: active,
            pending_mailbox,
        })
    }

    /// Edits title, default preset or status.
    ///
    /// # Errors
    /// `NotFound`; `Invalid` when the title is too long or the default preset does not
    /// exist.
    pub async fn update_conversation(
        &self,
        conversation_id: &ConversationId,
        patch: ConversationPatch,
    ) -> Result<Conversation, QueryError> {
        let too_long = [
            (
                "title",
                patch.title.as_ref().and_then(Option::as_deref),
                limits::MAX_TITLE_CHARS,
            ),
            (
                "default_preset_id",
                patch.default_preset_id.as_ref().and_then(Option::as_deref),
                limits::MAX_IDENT_CHARS,
            ),
        ]
        .into_iter()
        .filter_map(|(field, value, max)| {
            let message = preset_lengths::too_long(value?, max)?;
            Some(FieldError {
                field: field.to_owned(),
                message,
            })
        })
        .collect::<Vec<_>>();
        let mut too_long = too_long;
        if let Some(map) = &patch.metadata {
            too_long.extend(metadata::check("metadata", map));
        }
        if !too_long.is_empty() {
            return Err(QueryError::Invalid(too_long));
        }
        if let Some(Some(preset_id)) = &patch.default_preset_id {
            match self.presets.get_preset(preset_id).await {
                Err(StorageError::NotFound) => {
                    return Err(QueryError::Invalid(vec![FieldError {
                        field: "default_preset_id".to_owned(),
                        message: format!("no preset {preset_id}"),
                    }]));
                }
                other => {
                    other?;
                }
            }
        }
        let updated = match self
            .conversations
            .update_conversation(conversation_id, &patch, now())
            .await
        {
            Err(StorageError::NotFound) => return Err(QueryError::NotFound("conversation")),
            other => other?,
        };
        self.notifier
            .publish(super::notices::edited(conversation_id.clone()));
        Ok(updated)
    }

    /// The conversation's sessions, oldest first.
    ///
    /// # Errors
    /// `NotFound` for an unknown conversation.
    pub async fn conversation_sessions(
        &self,
        conversation_id: &ConversationId,
        session_type: Option<SessionType>,
        page: Page,
    ) -> Result<Vec<SessionRecord>, QueryError> {
        self.conversation_row(conversation_id).await?;
        Ok(self
            .sessions
            .list_sessions(conversation_id, session_type, page)
            .await?)
    }

    /// The conversation's transcript, one turn per session, oldest first. Sessions still
    /// running have no transcript yet and are left out.
    ///
    /// # Errors
    /// `NotFound` for an unknown conversation.
    pub async fn turns(
        &self,
        conversation_id: &ConversationId,
        session_type: Option<SessionType>,
        page: Page,
    ) -> Result<Vec<Turn>, QueryError> {
        let sessions = self
            .conversation_sessions(conversation_id, session_type, page)
            .await?;
        let mut turns = Vec::with_capacity(sessions.len());
        for session in sessions {
            if session.status == SessionStatus::Created {
                continue;
            }
            let display_messages = self.display_of(&session).await?;
            turns.push(Turn {
                session,
                display_messages,
            });
        }
        Ok(turns)
    }

    /// The conversation's mailbox, oldest first, delivered or not.
    ///
    /// # Errors
    /// `NotFound` for an unknown conversation.
    pub async fn mailbox(
        &self,
        conversation_id: &ConversationId,
    ) -> Result<Vec<MailboxMessage>, QueryError> {
        self.conversation_row(conversation_id).await?;
        Ok(self.mailbox.list_messages(conversation_id).await?)
    }

    async fn display_of(&self, record: &SessionRecord) -> Result<Vec<DisplayMessage>, QueryError> {
        match self
            .state_store
            .load_display_messages(&record.session_id)
            .await
        {
            Ok(messages) => Ok(messages),
            // Running, or failed before anything was written.
            Err(StateStoreError::NotFound) => Ok(Vec::new()),
            Err(e) => Err(e.into()),
        }
    }

    async fn session_row(&self, session_id: &SessionId) -> Result<SessionRecord, QueryError> {
        match self.sessions.get_session(session_id).await {
            Err(StorageError::NotFound) => Err(QueryError::NotFound("session")),
            other => Ok(other?),
        }
    }

    async fn conversation_row(
        &self,
        conversation_id: &ConversationId,
    ) -> Result<Conversation, QueryError> {
        match self.conversations.get_conversation(conversation_id).await {
            Err(StorageError::NotFound) => Err(QueryError::NotFound("conversation")),
            other => Ok(other?),
        }
    }
}

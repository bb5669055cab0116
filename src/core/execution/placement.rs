//! Where a new session goes in the session DAG (spec 01 and 05): a root, a continue, a
//! fork, an explicit parent, or the next session of an async subagent's chain.

use ports::{
    Conversation, ConversationId, ConversationStatus, PresetId, SessionId, SessionKind,
    SessionRecord, SessionStatus, StorageError, now,
};

use super::engine::RunEngine;
use super::request::{ActiveSession, RunError, RunTarget};

/// Where a new session goes in the DAG.
pub(super) struct Placement {
    pub conversation_id: ConversationId,
    pub parent: Option<SessionRecord>,
    pub new_conversation: Option<Conversation>,
    /// The conversation's default preset, for runs that name none.
    pub default_preset: Option<PresetId>,
    pub kind: SessionKind,
}

impl Placement {
    /// An agent session of an existing conversation.
    fn within(
        conversation_id: ConversationId,
        parent: Option<SessionRecord>,
        default_preset: Option<PresetId>,
    ) -> Self {
        Self {
            conversation_id,
            parent,
            new_conversation: None,
            default_preset,
            kind: SessionKind::Agent,
        }
    }

    /// A new conversation continuing `parent`, titled, defaulted and tagged like the
    /// original.
    fn fork(session_id: &SessionId, parent: SessionRecord, original: Conversation) -> Self {
        Self::root(
            session_id,
            Some(parent),
            Conversation {
                metadata: original.metadata,
                ..new_conversation(
                    ConversationId::rooted_at(session_id),
                    original.title,
                    original.default_preset_id,
                )
            },
        )
    }

    /// The root of a new conversation (`parent` for a fork).
    fn root(
        session_id: &SessionId,
        parent: Option<SessionRecord>,
        conversation: Conversation,
    ) -> Self {
        Self {
            conversation_id: ConversationId::rooted_at(session_id),
            parent,
            default_preset: conversation.default_preset_id.clone(),
            new_conversation: Some(conversation),
            kind: SessionKind::Agent,
        }
    }
}

impl RunEngine {
    /// Where a run of `target` goes, checked against what is stored and running.
    pub(super) async fn place(
        &self,
        target: &RunTarget,
        session_id: &SessionId,
    ) -> Result<Placement, RunError> {
        match target {
            RunTarget::NewConversation => Ok(Placement::root(
                session_id,
                None,
                new_conversation(ConversationId::rooted_at(session_id), None, None),
            )),
            RunTarget::Continue { conversation_id } => self.place_continue(conversation_id).await,
            RunTarget::Fork {
                conversation_id,
                from_session_id,
            } => {
                self.place_fork(session_id, conversation_id, from_session_id.as_ref())
                    .await
            }
            RunTarget::Parent {
                parent_session_id,
                fork,
            } => self.place_under(session_id, parent_session_id, *fork).await,
            RunTarget::AsyncSubagent {
                conversation_id,
                spawned_by,
                name,
                previous,
            } => {
                self.active_conversation(conversation_id).await?;
                let parent = match previous {
                    Some(previous) => self.chain_tip(previous).await?,
                    None => None,
                };
                Ok(Placement {
                    kind: SessionKind::AsyncSubagent {
                        spawned_by: spawned_by.clone(),
                        subagent_name: name.clone(),
                    },
                    ..Placement::within(conversation_id.clone(), parent, None)
                })
            }
        }
    }

    /// The next agent session of an idle conversation, after its latest committed one.
    async fn place_continue(
        &self,
        conversation_id: &ConversationId,
    ) -> Result<Placement, RunError> {
        let conversation = self.active_conversation(conversation_id).await?;
        if let Some(h) = self.registry.agent_run_of(conversation_id) {
            return Err(RunError::Busy(ActiveSession {
                session_id: h.session_id.clone(),
                stream_key: h.stream_key.clone(),
                transport: h.transport,
            }));
        }
        let parent = self
            .ports
            .sessions
            .latest_continuable(conversation_id)
            .await?;
        Ok(Placement::within(
            conversation_id.to_owned(),
            parent,
            conversation.default_preset_id,
        ))
    }

    /// A new conversation from one of this conversation's committed sessions (its latest
    /// when none is named).
    async fn place_fork(
        &self,
        session_id: &SessionId,
        conversation_id: &ConversationId,
        from_session_id: Option<&SessionId>,
    ) -> Result<Placement, RunError> {
        let conversation = self.conversation(conversation_id).await?;
        let parent = match from_session_id {
            Some(id) => {
                let parent = self.parent_session(id, "from_session_id").await?;
                if parent.conversation_id != *conversation_id {
                    return Err(RunError::invalid(
                        "from_session_id",
                        "the session belongs to another conversation",
                    ));
                }
                parent
            }
            None => self
                .ports
                .sessions
                .latest_continuable(conversation_id)
                .await?
                .ok_or_else(|| {
                    RunError::invalid(
                        "from_session_id",
                        "the conversation has no committed session to fork from",
                    )
                })?,
        };
        Ok(Placement::fork(session_id, parent, conversation))
    }

    /// A child of an explicit parent session: in its conversation (and, for a subagent's
    /// session, in its chain), or in a new conversation when forking.
    async fn place_under(
        &self,
        session_id: &SessionId,
        parent_session_id: &SessionId,
        fork: bool,
    ) -> Result<Placement, RunError> {
        let parent = self
            .parent_session(parent_session_id, "parent_session_id")
            .await?;
        if fork {
            let conversation = self.conversation(&parent.conversation_id).await?;
            return Ok(Placement::fork(session_id, parent, conversation));
        }
        let conversation = self.active_conversation(&parent.conversation_id).await?;
        if let SessionKind::AsyncSubagent { .. } = &parent.kind {
            // Continuing a subagent's session (e.g. resolving its pending calls) stays in
            // its chain and reports to the mailbox under its name.
            return Ok(Placement {
                kind: parent.kind.clone(),
                ..Placement::within(parent.conversation_id.clone(), Some(parent), None)
            });
        }
        let conversation_id = parent.conversation_id.clone();
        Ok(Placement::within(
            conversation_id,
            Some(parent),
            conversation.default_preset_id,
        ))
    }

    /// The session an async subagent's next task continues from: its latest session when
    /// that committed, else the last committed one before it (a failed task leaves no
    /// snapshot); `None` starts the chain afresh.
    async fn chain_tip(&self, previous: &SessionId) -> Result<Option<SessionRecord>, RunError> {
        let mut id = previous.to_owned();
        // Chains are short; the bound only guards against a cycle in corrupt data.
        for _ in 0..64 {
            let still_working = || {
                RunError::invalid(
                    "subagent",
                    format!(
                        "it is still working on its previous task (session {id}); its result \
                         will arrive in the mailbox"
                    ),
                )
            };
            if self.registry.get(&id).is_some() {
                return Err(still_working());
            }
            let session = match self.ports.sessions.get_session(&id).await {
                Err(StorageError::NotFound) => return Ok(None),
                other => other?,
            };
            match session.status {
                SessionStatus::Committed | SessionStatus::AwaitingToolResults => {
                    return Ok(Some(session));
                }
                SessionStatus::Created => return Err(still_working()),
                SessionStatus::Failed | SessionStatus::Archived => {
                    match session.parent_session_id {
                        Some(parent) => id = parent,
                        None => return Ok(None),
                    }
                }
            }
        }
        Ok(None)
    }

    pub(super) async fn conversation(
        &self,
        conversation_id: &ConversationId,
    ) -> Result<Conversation, RunError> {
        match self
            .ports
            .conversations
            .get_conversation(conversation_id)
            .await
        {
            Err(StorageError::NotFound) => Err(RunError::NotFound("conversation")),
            other => Ok(other?),
        }
    }

    /// The conversation a new session joins; an archived one takes none (checked again,
    /// race-free, when the session is inserted).
    async fn active_conversation(
        &self,
        conversation_id: &ConversationId,
    ) -> Result<Conversation, RunError> {
        let conversation = self.conversation(conversation_id).await?;
        if conversation.status == ConversationStatus::Archived {
            return Err(StorageError::ConversationArchived.into());
        }
        Ok(conversation)
    }

    /// A session a new run may start from: committed (or waiting for tool results).
    async fn parent_session(
        &self,
        session_id: &SessionId,
        field: &str,
    ) -> Result<SessionRecord, RunError> {
        let parent = match self.ports.sessions.get_session(session_id).await {
            Err(StorageError::NotFound) => {
                return Err(RunError::invalid(field, "no such session"));
            }
            other => other?,
        };
        match parent.status {
            SessionStatus::Committed | SessionStatus::AwaitingToolResults => Ok(parent),
            status => Err(RunError::invalid(
                field,
                format!(
                    "session is {}; only committed sessions can be continued",
                    status.as_str()
                ),
            )),
        }
    }
}

fn new_conversation(
    conversation_id: ConversationId,
    title: Option<String>,
    default_preset_id: Option<PresetId>,
) -> Conversation {
    let at = now();
    Conversation {
        conversation_id,
        title,
        default_preset_id,
        status: ConversationStatus::Active,
        metadata: ports::Metadata::new(),
        created_at: at,
        updated_at: at,
    }
}

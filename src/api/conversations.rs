//! Conversation endpoints (spec 06): run, fork, interrupt, steer, edit, list, read, the
//! transcript, the sessions, and attaching to the active run's events.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::{
    Object, OpenApi,
    param::{Header, Path, Query},
    payload::Json,
};
use ports::ConversationId;

use super::{
    ApiState, Tag,
    auth::Auth,
    dto::events::{SessionStatus, SessionType},
    dto::runs::{ActiveSession, ConversationInterrupted, ConversationUpdateRequest, SteerRequest},
    dto::sessions::{Conversation, ConversationStatus, DisplayMessage, Session},
    error::ErrorResponse,
    runs::{self, EventsResponse, SteerResponse},
    sse::EventEncoding,
};

pub struct ConversationsApi;

/// A page of conversations, newest activity first.
#[derive(Object, Debug, Clone, PartialEq)]
pub struct ConversationList {
    pub conversations: Vec<Conversation>,
}

/// The newest agent session of a conversation.
#[derive(Object, Debug, Clone, PartialEq)]
pub struct LatestSession {
    pub session_id: String,
    pub status: SessionStatus,
}

/// The conversation's mailbox of async-subagent results.
#[derive(Object, Debug, Clone, PartialEq)]
pub struct MailboxSummary {
    /// Results not yet delivered to a run.
    pub pending_count: u64,
}

/// One outcome of an async subagent.
#[derive(Object, Debug, Clone, PartialEq)]
#[oai(skip_serializing_if_is_none)]
pub struct MailboxMessage {
    pub message_id: String,
    /// The subagent session that produced it; its transcript holds the text.
    pub source_session_id: String,
    pub source_type: MailboxSourceType,
    pub subagent_name: String,
    pub created_at: DateTime<Utc>,
    /// The session it was fired into; absent while pending.
    pub delivered_to: Option<String>,
}

/// Whether the subagent's session committed or failed.
#[derive(poem_openapi::Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum MailboxSourceType {
    SubagentResult,
    SubagentFailed,
}

impl From<ports::MailboxMessage> for MailboxMessage {
    fn from(m: ports::MailboxMessage) -> Self {
        Self {
            message_id: m.message_id,
            source_session_id: m.source_session_id.into(),
            source_type: match m.source_type {
                ports::MailboxSource::SubagentResult => MailboxSourceType::SubagentResult,
                ports::MailboxSource::SubagentFailed => MailboxSourceType::SubagentFailed,
            },
            subagent_name: m.subagent_name,
            created_at: m.created_at,
            delivered_to: m.delivered_to.map(Into::into),
        }
    }
}

/// The conversation's mailbox.
#[derive(Object, Debug, Clone, PartialEq)]
pub struct MailboxList {
    pub messages: Vec<MailboxMessage>,
    /// Messages not yet delivered (what the next fire takes).
    pub pending_count: u64,
}

/// A conversation with its latest and active sessions.
#[derive(Object, Debug, Clone, PartialEq)]
#[oai(skip_serializing_if_is_none)]
pub struct ConversationDetail {
    #[oai(flatten)]
    pub conversation: Conversation,
    pub latest_session: Option<LatestSession>,
    pub active_session: Option<ActiveSession>,
    pub mailbox: MailboxSummary,
}

/// Answer of `conversations_delete`.
#[derive(Object, Debug, Clone, PartialEq)]
pub struct ConversationDeleted {
    pub conversation_id: String,
    pub deleted_sessions: u64,
}

/// One session's part of the conversation's transcript.
#[derive(Object, Debug, Clone, PartialEq)]
pub struct Turn {
    pub session_id: String,
    pub session_type: SessionType,
    pub status: SessionStatus,
    pub created_at: DateTime<Utc>,
    pub display_messages: Vec<DisplayMessage>,
}

/// The conversation's transcript, oldest session first.
#[derive(Object, Debug, Clone, PartialEq)]
pub struct TurnList {
    pub turns: Vec<Turn>,
}

/// The conversation's sessions, oldest first.
#[derive(Object, Debug, Clone, PartialEq)]
pub struct SessionList {
    pub sessions: Vec<Session>,
}

type Result<T> = std::result::Result<T, ErrorResponse>;

#[OpenApi(tag = "Tag::Conversations")]
impl ConversationsApi {
    /// The conversation's mailbox: async subagent outcomes, oldest first, with whether and
    /// to which session each was delivered.
    #[oai(
        path = "/conversations/:conversation_id/mailbox",
        method = "get",
        operation_id = "conversations_mailbox"
    )]
    async fn mailbox(
        &self,
        _auth: Auth,
        state: Data<&Arc<ApiState>>,
        conversation_id: Path<String>,
    ) -> Result<Json<MailboxList>> {
        let messages = state
            .queries
            .mailbox(&ConversationId::from(conversation_id.0))
            .await?;
        let pending_count = messages.iter().filter(|m| m.delivered_to.is_none()).count() as u64;
        Ok(Json(MailboxList {
            messages: messages.into_iter().map(Into::into).collect(),
            pending_count,
        }))
    }

    /// Interrupt every running session of the conversation (agent and async subagents);
    /// the answer lists them (empty when nothing was running).
    #[oai(
        path = "/conversations/:conversation_id/interrupt",
        method = "post",
        operation_id = "conversations_interrupt"
    )]
    async fn interrupt(
        &self,
        _auth: Auth,
        state: Data<&Arc<ApiState>>,
        conversation_id: Path<String>,
        reason: Query<Option<String>>,
    ) -> Result<Json<ConversationInterrupted>> {
        let conversation_id = ConversationId::from(conversation_id.0);
        let interrupted = state
            .live
            .interrupt_conversation(&conversation_id, reason.0)
            .await?;
        Ok(Json(ConversationInterrupted {
            conversation_id: conversation_id.into(),
            interrupted: interrupted.into_iter().map(Into::into).collect(),
        }))
    }

    /// Delete the conversation at once: its sessions, mailbox, metadata, their stored
    /// state and their uploaded files. 409 `conversation_busy` while one of its sessions runs (interrupt it first);
    /// 404 afterwards.
    #[oai(
        path = "/conversations/:conversation_id/delete",
        method = "post",
        operation_id = "conversations_delete"
    )]
    async fn delete(
        &self,
        _auth: Auth,
        state: Data<&Arc<ApiState>>,
        conversation_id: Path<String>,
    ) -> Result<Json<ConversationDeleted>> {
        let conversation_id = ConversationId::from(conversation_id.0);
        let deleted_sessions = state
            .retention
            .delete_conversation(&conversation_id)
            .await?;
        Ok(Json(ConversationDeleted {
            conversation_id: conversation_id.into(),
            deleted_sessions: deleted_sessions as u64,
        }))
    }

    /// Archive the conversation: it and its sessions become `archived`, readable but
    /// closed to runs (409 `conversation_archived`) until `update` sets `status: active`
    /// again. With `RETENTION_DAYS` set, it is deleted that long after its last change. 409
    /// `conversation_busy` while one of its sessions runs; archiving again is a no-op.
    #[oai(
        path = "/conversations/:conversation_id/archive",
        method = "post",
        operation_id = "conversations_archive"
    )]
    async fn archive(
        &self,
        _auth: Auth,
        state: Data<&Arc<ApiState>>,
        conversation_id: Path<String>,
    ) -> Result<Json<Conversation>> {
        let archived = state
            .retention
            .archive(&ConversationId::from(conversation_id.0))
            .await?;
        Ok(Json(archived.into()))
    }

    /// Steer the conversation's running agent session (404 when none runs).
    #[oai(
        path = "/conversations/:conversation_id/steer",
        method = "post",
        operation_id = "conversations_steer"
    )]
    async fn steer(
        &self,
        _auth: Auth,
        state: Data<&Arc<ApiState>>,
        conversation_id: Path<String>,
        body: Json<SteerRequest>,
    ) -> Result<SteerResponse> {
        let body = body.0;
        let steered = state
            .live
            .steer_conversation(
                &ConversationId::from(conversation_id.0),
                runs::input_of(Some(body.input)),
                body.message_id.map(|m| m.0),
            )
            .await;
        runs::steer_response(steered)
    }

    /// Change the title, default preset, metadata or status. `status: archived` archives
    /// as `…/archive` does; `status: active` unarchives, giving each session back the
    /// status it had.
    #[oai(
        path = "/conversations/:conversation_id/update",
        method = "post",
        operation_id = "conversations_update"
    )]
    async fn update(
        &self,
        _auth: Auth,
        state: Data<&Arc<ApiState>>,
        conversation_id: Path<String>,
        body: Json<ConversationUpdateRequest>,
    ) -> Result<Json<Conversation>> {
        let updated = state
            .queries
            .update_conversation(&ConversationId::from(conversation_id.0), body.0.into())
            .await?;
        Ok(Json(updated.into()))
    }

    /// Conversations, newest activity first; `limit` is clamped to 1..=100 (default 20).
    /// Any number of `metadata.<key>=<value>` query parameters keep only the conversations
    /// whose metadata has every such pair (e.g. `?metadata.channel=C042`).
    #[oai(
        path = "/conversations/list",
        method = "get",
        operation_id = "conversations_list"
    )]
    async fn list(
        &self,
        _auth: Auth,
        state: Data<&Arc<ApiState>>,
        request: &poem::Request,
        status: Query<Option<ConversationStatus>>,
        #[oai(validator(minimum(value = "0"), maximum(value = "9007199254740991")))] limit: Query<
            Option<u64>,
        >,
        #[oai(validator(minimum(value = "0"), maximum(value = "9007199254740991")))] offset: Query<
            Option<u64>,
        >,
    ) -> Result<Json<ConversationList>> {
        let filter = ports::ConversationFilter {
            status: status.0.map(Into::into),
            metadata: metadata_pairs(request.uri().query().unwrap_or_default()),
        };
        let found = state
            .queries
            .conversations(&filter, runs::page(limit.0, offset.0))
            .await?;
        Ok(Json(ConversationList {
            conversations: found.into_iter().map(Into::into).collect(),
        }))
    }

    /// One conversation with its latest session, its active run (when one is going) and
    /// how many subagent results wait in its mailbox.
    #[oai(
        path = "/conversations/:conversation_id/get",
        method = "get",
        operation_id = "conversations_get"
    )]
    async fn get(
        &self,
        _auth: Auth,
        state: Data<&Arc<ApiState>>,
        conversation_id: Path<String>,
    ) -> Result<Json<ConversationDetail>> {
        let view = state
            .queries
            .conversation_view(&ConversationId::from(conversation_id.0))
            .await?;
        Ok(Json(ConversationDetail {
            conversation: view.conversation.into(),
            latest_session: view
                .latest_session
                .map(|(session_id, status)| LatestSession {
                    session_id: session_id.into(),
                    status: status.into(),
                }),
            active_session: view.active_session.map(Into::into),
            mailbox: MailboxSummary {
                pending_count: view.pending_mailbox,
            },
        }))
    }

    /// The transcript: display messages of the conversation's finished sessions, oldest
    /// first, optionally of one session type; paged by session.
    #[oai(
        path = "/conversations/:conversation_id/turns",
        method = "get",
        operation_id = "conversations_turns"
    )]
    async fn turns(
        &self,
        _auth: Auth,
        state: Data<&Arc<ApiState>>,
        conversation_id: Path<String>,
        session_type: Query<Option<SessionType>>,
        #[oai(validator(minimum(value = "0"), maximum(value = "9007199254740991")))] limit: Query<
            Option<u64>,
        >,
        #[oai(validator(minimum(value = "0"), maximum(value = "9007199254740991")))] offset: Query<
            Option<u64>,
        >,
    ) -> Result<Json<TurnList>> {
        let turns = state
            .queries
            .turns(
                &ConversationId::from(conversation_id.0),
                session_type.0.map(Into::into),
                runs::page(limit.0, offset.0),
            )
            .await?;
        Ok(Json(TurnList {
            turns: turns
                .into_iter()
                .map(|t| Turn {
                    session_type: t.session.session_type().into(),
                    session_id: t.session.session_id.into(),
                    status: t.session.status.into(),
                    created_at: t.session.created_at,
                    display_messages: t.display_messages.into_iter().map(Into::into).collect(),
                })
                .collect(),
        }))
    }

    /// The conversation's sessions with their status, oldest first.
    #[oai(
        path = "/conversations/:conversation_id/sessions",
        method = "get",
        operation_id = "conversations_sessions"
    )]
    async fn sessions(
        &self,
        _auth: Auth,
        state: Data<&Arc<ApiState>>,
        conversation_id: Path<String>,
        session_type: Query<Option<SessionType>>,
        #[oai(validator(minimum(value = "0"), maximum(value = "9007199254740991")))] limit: Query<
            Option<u64>,
        >,
        #[oai(validator(minimum(value = "0"), maximum(value = "9007199254740991")))] offset: Query<
            Option<u64>,
        >,
    ) -> Result<Json<SessionList>> {
        let sessions = state
            .queries
            .conversation_sessions(
                &ConversationId::from(conversation_id.0),
                session_type.0.map(Into::into),
                runs::page(limit.0, offset.0),
            )
            .await?;
        Ok(Json(SessionList {
            sessions: sessions.into_iter().map(Into::into).collect(),
        }))
    }

    /// Attach to the events of the conversation's active agent session (or of its latest
    /// one while that stream lasts), after `Last-Event-ID` when given. 410 when nothing
    /// can be attached any more. `encoding=ag-ui` makes each frame's data an AG-UI event
    /// instead of ours.
    #[oai(
        path = "/conversations/:conversation_id/events",
        method = "get",
        operation_id = "conversations_events"
    )]
    async fn events(
        &self,
        _auth: Auth,
        state: Data<&Arc<ApiState>>,
        conversation_id: Path<String>,
        #[oai(
            name = "Last-Event-ID",
            validator(minimum(value = "0"), maximum(value = "9007199254740991"))
        )]
        last_event_id_header: Header<Option<u64>>,
        #[oai(
            name = "last_event_id",
            validator(minimum(value = "0"), maximum(value = "9007199254740991"))
        )]
        last_event_id: Query<Option<u64>>,
        encoding: Query<Option<EventEncoding>>,
    ) -> Result<EventsResponse> {
        let after = runs::cursor(last_event_id_header.0, last_event_id.0);
        let attached = state
            .live
            .attach_conversation(&ConversationId::from(conversation_id.0), after)
            .await?;
        Ok(EventsResponse::of(attached, encoding.0))
    }
}

/// The `metadata.<key>=<value>` pairs of a query string, decoded.
fn metadata_pairs(query: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.as_bytes())
        .filter_map(|(name, value)| {
            name.strip_prefix("metadata.")
                .map(|key| (key.to_owned(), value.into_owned()))
        })
        .collect()
}

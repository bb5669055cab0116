//! Session endpoints (spec 06, lower level): execute from an explicit parent, read one
//! session, its live status, attach to its events, interrupt and steer it.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::{
    Enum, Object, OpenApi,
    param::{Header, Path, Query},
    payload::Json,
};
use ports::SessionId;

use super::{
    ApiState, Tag,
    auth::Auth,
    dto::runs::{SessionInterrupted, SteerRequest},
    dto::sessions::Session,
    error::ErrorResponse,
    runs::{self, EventsResponse, SteerResponse},
    sse::EventEncoding,
};
use crate::core::execution::LiveStatus;

pub struct SessionsApi;

/// A session's status as callers see it: `executing` while it runs in this service, else
/// its stored status.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum SessionLiveStatus {
    Executing,
    Created,
    Committed,
    AwaitingToolResults,
    Failed,
    Archived,
}

impl From<LiveStatus> for SessionLiveStatus {
    fn from(s: LiveStatus) -> Self {
        use ports::SessionStatus as S;
        match s {
            LiveStatus::Executing => Self::Executing,
            LiveStatus::Stored(S::Created) => Self::Created,
            LiveStatus::Stored(S::Committed) => Self::Committed,
            LiveStatus::Stored(S::AwaitingToolResults) => Self::AwaitingToolResults,
            LiveStatus::Stored(S::Failed) => Self::Failed,
            LiveStatus::Stored(S::Archived) => Self::Archived,
        }
    }
}

/// Answer of `sessions_status`.
#[derive(Object, Debug, Clone, PartialEq)]
pub struct SessionStatusResponse {
    pub session_id: String,
    pub status: SessionLiveStatus,
}

type Result<T> = std::result::Result<T, ErrorResponse>;

#[OpenApi(tag = "Tag::Sessions")]
impl SessionsApi {
    /// One session: its row, run summary and (unless `include_display_messages=false`)
    /// its transcript.
    #[oai(
        path = "/sessions/:session_id/get",
        method = "get",
        operation_id = "sessions_get"
    )]
    async fn get(
        &self,
        _auth: Auth,
        state: Data<&Arc<ApiState>>,
        session_id: Path<String>,
        include_display_messages: Query<Option<bool>>,
    ) -> Result<Json<Session>> {
        let with_display = include_display_messages.0.unwrap_or(true);
        let (record, display) = state
            .queries
            .session(&SessionId::from(session_id.0), with_display)
            .await?;
        let dto = Session::from(record);
        Ok(Json(match display {
            Some(messages) => dto.with_display_messages(messages),
            None => dto,
        }))
    }

    /// `executing` while the session runs in this service, else its stored status.
    #[oai(
        path = "/sessions/:session_id/status",
        method = "get",
        operation_id = "sessions_status"
    )]
    async fn status(
        &self,
        _auth: Auth,
        state: Data<&Arc<ApiState>>,
        session_id: Path<String>,
    ) -> Result<Json<SessionStatusResponse>> {
        let session_id = SessionId::from(session_id.0);
        let status = state.queries.session_status(&session_id).await?;
        Ok(Json(SessionStatusResponse {
            session_id: session_id.into(),
            status: status.into(),
        }))
    }

    /// Attach to the session's events: from the start, or after `Last-Event-ID` (header)
    /// or `last_event_id` (query). 410 once the run is over and its stream expired.
    /// `encoding=ag-ui` makes each frame's data an AG-UI event instead of ours.
    #[oai(
        path = "/sessions/:session_id/events",
        method = "get",
        operation_id = "sessions_events"
    )]
    async fn events(
        &self,
        _auth: Auth,
        state: Data<&Arc<ApiState>>,
        session_id: Path<String>,
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
            .attach_session(&SessionId::from(session_id.0), after)
            .await?;
        Ok(EventsResponse::of(attached, encoding.0))
    }

    /// Stop a running session: the model stream is dropped, running commands are killed,
    /// and what it produced is committed. Idempotent while it is stopping.
    #[oai(
        path = "/sessions/:session_id/interrupt",
        method = "post",
        operation_id = "sessions_interrupt"
    )]
    async fn interrupt(
        &self,
        _auth: Auth,
        state: Data<&Arc<ApiState>>,
        session_id: Path<String>,
        reason: Query<Option<String>>,
    ) -> Result<Json<SessionInterrupted>> {
        let session_id = SessionId::from(session_id.0);
        state.live.interrupt_session(&session_id, reason.0).await?;
        Ok(Json(SessionInterrupted {
            session_id: session_id.into(),
            interrupted: true,
        }))
    }

    /// Queue guidance for a running session's next step boundary.
    #[oai(
        path = "/sessions/:session_id/steer",
        method = "post",
        operation_id = "sessions_steer"
    )]
    async fn steer(
        &self,
        _auth: Auth,
        state: Data<&Arc<ApiState>>,
        session_id: Path<String>,
        body: Json<SteerRequest>,
    ) -> Result<SteerResponse> {
        let body = body.0;
        let steered = state
            .live
            .steer_session(
                &SessionId::from(session_id.0),
                runs::input_of(Some(body.input)),
                body.message_id.map(|m| m.0),
            )
            .await;
        runs::steer_response(steered)
    }
}

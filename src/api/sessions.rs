//! Session endpoints (spec 06, lower level): execute from an explicit parent, read one
//! session, its live status, attach to its events, interrupt and steer it.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::{
    Enum, Object, OpenApi,
    param::{Header, Path, Query},
    payload::Json,
};
use ports::{SessionId, Transport};

use super::{
    ApiState, Tag,
    auth::Auth,
    dto::runs::{ExecuteRequest, RunOptions, SessionInterrupted, SteerRequest},
    dto::sessions::Session,
    error::ErrorResponse,
    runs::{
        self, AcceptedResponse, Delivery, EventsResponse, SteerResponse, StreamResponse,
        WaitResponse,
    },
};
use crate::core::execution::{self, LiveStatus, SteerInput};

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
    /// Run an agent from an explicit parent session (or as a new conversation without
    /// one).
    /// Answers 202 with the run's ids; its events are read with `sessions_events`.
    /// A repeat with the same `Idempotency-Key` and request within 24 h answers with the
    /// same run; another request with a used key is 409 `idempotency_conflict`.
    #[oai(
        path = "/sessions/execute",
        method = "post",
        operation_id = "sessions_execute"
    )]
    async fn execute(
        &self,
        _auth: Auth,
        state: Data<&Arc<ApiState>>,
        #[oai(name = "Idempotency-Key", validator(min_length = 1, max_length = 255))]
        idempotency_key: Header<Option<String>>,
        body: Json<ExecuteRequest>,
    ) -> Result<AcceptedResponse> {
        let key = runs::retry_key(idempotency_key.0, "sessions_execute", "", &body.0);
        let transport = Delivery::Accepted.transport();
        let engine = &state.runs;
        let start = move || async move { engine.start(execute_request(body.0, transport)?).await };
        let begun = state.retries.begin(key, start).await?;
        Ok(runs::accepted(&begun))
    }

    /// Run an agent from an explicit parent session (or as a new conversation without
    /// one).
    /// Answers with the run's events (SSE). A client that loses the stream re-attaches
    /// with `sessions_events`, or repeats the request with its `Idempotency-Key` and
    /// `Last-Event-ID`; it never re-sends the run without the key.
    /// A repeat with the same `Idempotency-Key` and request within 24 h answers with the
    /// same run; another request with a used key is 409 `idempotency_conflict`.
    #[oai(
        path = "/sessions/execute/stream",
        method = "post",
        operation_id = "sessions_execute_stream"
    )]
    async fn execute_stream(
        &self,
        _auth: Auth,
        state: Data<&Arc<ApiState>>,
        #[oai(name = "Idempotency-Key", validator(min_length = 1, max_length = 255))]
        idempotency_key: Header<Option<String>>,
        #[oai(
            name = "Last-Event-ID",
            validator(minimum(value = "0"), maximum(value = "9007199254740991"))
        )]
        last_event_id: Header<Option<u64>>,
        body: Json<ExecuteRequest>,
    ) -> Result<StreamResponse> {
        let key = runs::retry_key(idempotency_key.0, "sessions_execute", "", &body.0);
        let transport = Delivery::Stream.transport();
        let engine = &state.runs;
        let start = move || async move { engine.start(execute_request(body.0, transport)?).await };
        let begun = state.retries.begin(key, start).await?;
        runs::stream(&state, begun, last_event_id.0.unwrap_or(0)).await
    }

    /// Run an agent from an explicit parent session (or as a new conversation without
    /// one).
    /// Answers when the run has ended, with its outcome; the run goes on if the client
    /// leaves.
    /// A repeat with the same `Idempotency-Key` and request within 24 h answers with the
    /// same run; another request with a used key is 409 `idempotency_conflict`.
    #[oai(
        path = "/sessions/execute/wait",
        method = "post",
        operation_id = "sessions_execute_wait"
    )]
    async fn execute_wait(
        &self,
        _auth: Auth,
        state: Data<&Arc<ApiState>>,
        #[oai(name = "Idempotency-Key", validator(min_length = 1, max_length = 255))]
        idempotency_key: Header<Option<String>>,
        body: Json<ExecuteRequest>,
    ) -> Result<WaitResponse> {
        let key = runs::retry_key(idempotency_key.0, "sessions_execute", "", &body.0);
        let transport = Delivery::Wait.transport();
        let engine = &state.runs;
        let start = move || async move { engine.start(execute_request(body.0, transport)?).await };
        let begun = state.retries.begin(key, start).await?;
        runs::wait(&state, begun).await
    }

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
    ) -> Result<EventsResponse> {
        let after = runs::cursor(last_event_id_header.0, last_event_id.0);
        let attached = state
            .live
            .attach_session(&SessionId::from(session_id.0), after)
            .await?;
        Ok(attached.into())
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
        let steered = match SteerInput::parse(
            runs::input_of(Some(body.input)),
            body.message_id.map(|m| m.0),
        ) {
            Ok(input) => {
                let session_id = SessionId::from(session_id.0);
                state.live.steer_session(&session_id, input).await
            }
            Err(invalid) => Err(invalid.into()),
        };
        runs::steer_response(steered)
    }
}

/// The domain request of `sessions_execute*`.
fn execute_request(
    body: ExecuteRequest,
    transport: Transport,
) -> std::result::Result<execution::RunRequest, execution::RunError> {
    let target = body.target();
    let options = RunOptions {
        preset_id: Some(body.preset_id),
        config_override: body.config_override,
    };
    body.inputs.into_request(target, options, transport)
}

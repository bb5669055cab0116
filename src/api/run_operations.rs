//! The run operations (spec 06): every way to start a run (run, fork, fire, execute) comes
//! as three operations, one per answer, so a generated SDK gets one typed function each:
//! `<op>` answers 202 with the run's ids, `<op>/stream` its events, `<op>/wait` its result.
//! All three take an `Idempotency-Key`: a repeat with the same key and request within
//! 24 h answers with the same run; another request with a used key is 409
//! `idempotency_conflict`.
//!
//! poem-openapi wants one method per operation, so [`run_operations!`] writes the three
//! from one description of the operation: its paths, ids, parameters, body and how it
//! starts the run.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::{
    OpenApi,
    param::{Header, Path, Query},
    payload::Json,
};
use ports::Transport;

use super::{
    ApiState, Tag,
    auth::Auth,
    dto::runs::{ExecuteRequest, FireRequest, ForkRequest, RunOptions, RunRequest},
    error::ErrorResponse,
    runs::{self, AcceptedResponse, Delivery, StreamResponse, WaitResponse},
    sse::EventEncoding,
};
use crate::core::execution::{self, ExternalTools, Resolutions, RunTarget};

type Result<T> = std::result::Result<T, ErrorResponse>;

/// Writes the `#[OpenApi]` impl of one group of run operations. Per operation: the doc
/// line, the three method names, paths and operation ids, the path parameters (strings;
/// named here and not typed, since poem-openapi recognises `Path<…>` by its spelling), the
/// body, and the start: `|engine, transport| <StartedRun or RunError>`.
macro_rules! run_operations {
    (
        $api:ident, $tag:literal;
        $(
            #[doc = $doc:literal]
            $name:ident $stream:ident $wait:ident,
            paths($path:literal, $stream_path:literal, $wait_path:literal),
            ids($id:literal, $stream_id:literal, $wait_id:literal),
            path_params($($param:ident),*),
            $body:ident: $body_type:ty,
            |$engine:ident, $transport:ident| $start:expr;
        )*
    ) => {
        pub struct $api;

        #[OpenApi(tag = $tag)]
        impl $api {
            $(
                #[doc = $doc]
                #[doc = ""]
                #[doc = "Answers 202 with the run's ids; read its events with `sessions_events`."]
                #[doc = " A repeat with the same `Idempotency-Key` and request within 24 h answers with the same run; another request with a used key is 409 `idempotency_conflict`."]
                #[oai(path = $path, method = "post", operation_id = $id)]
                async fn $name(
                    &self,
                    _auth: Auth,
                    state: Data<&Arc<ApiState>>,
                    $($param: Path<String>,)*
                    #[oai(name = "Idempotency-Key", validator(min_length = 1, max_length = 255))]
                    idempotency_key: Header<Option<String>>,
                    $body: Json<$body_type>,
                ) -> Result<AcceptedResponse> {
                    let key = runs::retry_key(idempotency_key.0, $id, target!($($param)*), &$body.0);
                    let begun = match begin!(state, key, Delivery::Accepted, |$engine, $transport| $start) {
                        Ok(begun) => begun,
                        Err(e) => return runs::refused(e).map(|(body, retry_after)| AcceptedResponse::TooManyRuns(body, retry_after)),
                    };
                    Ok(runs::accepted(&begun))
                }

                #[doc = $doc]
                #[doc = ""]
                #[doc = "Answers with the run's events (SSE). A client that loses the stream re-attaches with `sessions_events`, or repeats the request with its `Idempotency-Key` and `Last-Event-ID`. `encoding=ag-ui` makes each frame's data an AG-UI event instead of ours."]
                #[doc = " A repeat with the same `Idempotency-Key` and request within 24 h answers with the same run (204 when `Last-Event-ID` is its terminal event); another request with a used key is 409 `idempotency_conflict`."]
                #[oai(path = $stream_path, method = "post", operation_id = $stream_id)]
                #[allow(
                    clippy::too_many_arguments,
                    reason = "one argument per part of the request, as poem-openapi reads them"
                )]
                async fn $stream(
                    &self,
                    _auth: Auth,
                    state: Data<&Arc<ApiState>>,
                    $($param: Path<String>,)*
                    #[oai(name = "Idempotency-Key", validator(min_length = 1, max_length = 255))]
                    idempotency_key: Header<Option<String>>,
                    #[oai(
                        name = "Last-Event-ID",
                        validator(minimum(value = "0"), maximum(value = "9007199254740991"))
                    )]
                    last_event_id: Header<Option<u64>>,
                    encoding: Query<Option<EventEncoding>>,
                    $body: Json<$body_type>,
                ) -> Result<StreamResponse> {
                    let key = runs::retry_key(idempotency_key.0, $id, target!($($param)*), &$body.0);
                    let begun = match begin!(state, key, Delivery::Stream, |$engine, $transport| $start) {
                        Ok(begun) => begun,
                        Err(e) => return runs::refused(e).map(|(body, retry_after)| StreamResponse::TooManyRuns(body, retry_after)),
                    };
                    runs::stream(&state, begun, last_event_id.0.unwrap_or(0), encoding.0).await
                }

                #[doc = $doc]
                #[doc = ""]
                #[doc = "Answers when the run has ended, with its outcome; the run goes on if the client leaves."]
                #[doc = " A repeat with the same `Idempotency-Key` and request within 24 h answers with the same run's result; another request with a used key is 409 `idempotency_conflict`."]
                #[oai(path = $wait_path, method = "post", operation_id = $wait_id)]
                async fn $wait(
                    &self,
                    _auth: Auth,
                    state: Data<&Arc<ApiState>>,
                    $($param: Path<String>,)*
                    #[oai(name = "Idempotency-Key", validator(min_length = 1, max_length = 255))]
                    idempotency_key: Header<Option<String>>,
                    $body: Json<$body_type>,
                ) -> Result<WaitResponse> {
                    let key = runs::retry_key(idempotency_key.0, $id, target!($($param)*), &$body.0);
                    let begun = match begin!(state, key, Delivery::Wait, |$engine, $transport| $start) {
                        Ok(begun) => begun,
                        Err(e) => return runs::refused(e).map(|(body, retry_after)| WaitResponse::TooManyRuns(body, retry_after)),
                    };
                    runs::wait(&state, begun).await
                }
            )*
        }
    };
}

/// The run of one request: started by `start` (given the engine and the operation's
/// transport), unless its retry key finds an earlier one.
macro_rules! begin {
    ($state:ident, $key:ident, $delivery:expr, |$engine:ident, $transport:ident| $start:expr) => {{
        let $transport = $delivery.transport();
        let $engine = &$state.runs;
        $state
            .retries
            .begin($key, move || async move { $start })
            .await
    }};
}

/// What a retry key's fingerprint names besides the body: the path parameter, if any.
macro_rules! target {
    () => {
        ""
    };
    ($param:ident) => {
        &$param.0
    };
}

run_operations! {
    ConversationRunsApi, "Tag::Conversations";

    #[doc = "Run the agent: a new conversation without `conversation_id`, else a continuation of its latest committed session. 409 `conversation_busy` while a run is going."]
    run run_stream run_wait,
    paths("/conversations/run", "/conversations/run/stream", "/conversations/run/wait"),
    ids("conversations_run", "conversations_run_stream", "conversations_run_wait"),
    path_params(),
    body: RunRequest,
    |engine, transport| engine.start(run_request(body.0, transport)?).await;

    #[doc = "Start a new conversation from a session of this one (default: its latest committed session); the original is left untouched."]
    fork fork_stream fork_wait,
    paths(
        "/conversations/:conversation_id/fork",
        "/conversations/:conversation_id/fork/stream",
        "/conversations/:conversation_id/fork/wait"
    ),
    ids("conversations_fork", "conversations_fork_stream", "conversations_fork_wait"),
    path_params(conversation_id),
    body: ForkRequest,
    |engine, transport| engine.start(fork_request(conversation_id.0, body.0, transport)).await;

    #[doc = "Deliver the async subagents' outcomes waiting in the mailbox: a continuation of the latest committed session whose message renders every undelivered outcome (one paragraph, or one section per subagent) followed by the optional input. The messages are marked delivered to the new session; they stay pending when it cannot start. 422 `mailbox_empty` when nothing waits."]
    fire fire_stream fire_wait,
    paths(
        "/conversations/:conversation_id/fire",
        "/conversations/:conversation_id/fire/stream",
        "/conversations/:conversation_id/fire/wait"
    ),
    ids("conversations_fire", "conversations_fire_stream", "conversations_fire_wait"),
    path_params(conversation_id),
    body: FireRequest,
    |engine, transport| engine.fire(fire_request(conversation_id.0, body.0, transport)?).await;
}

run_operations! {
    SessionRunsApi, "Tag::Sessions";

    #[doc = "Run an agent from an explicit parent session (or as a new conversation without one)."]
    execute execute_stream execute_wait,
    paths("/sessions/execute", "/sessions/execute/stream", "/sessions/execute/wait"),
    ids("sessions_execute", "sessions_execute_stream", "sessions_execute_wait"),
    path_params(),
    body: ExecuteRequest,
    |engine, transport| engine.start(execute_request(body.0, transport)?).await;
}

/// The domain request of `conversations_run*`.
fn run_request(
    body: RunRequest,
    transport: Transport,
) -> std::result::Result<execution::RunRequest, execution::RunError> {
    let target = match body.conversation_id {
        Some(id) => RunTarget::Continue {
            conversation_id: id.0.into(),
        },
        None => RunTarget::NewConversation,
    };
    let options = RunOptions {
        preset_id: body.preset_id,
        config_override: body.config_override,
    };
    body.inputs.into_request(target, options, transport)
}

/// The domain request of `conversations_fork*`.
fn fork_request(
    conversation_id: String,
    body: ForkRequest,
    transport: Transport,
) -> execution::RunRequest {
    execution::RunRequest {
        target: RunTarget::Fork {
            conversation_id: conversation_id.into(),
            from_session_id: body.from_session_id.map(|s| s.0.into()),
        },
        preset_id: body.preset_id.map(|p| p.0.into()),
        config_override: body.config_override.map(Into::into),
        input: runs::input_of(Some(body.input)),
        resolutions: Resolutions::default(),
        external_tools: ExternalTools::default(),
        history: Vec::new(),
        transport,
        metadata: ports::Metadata::new(),
    }
}

/// The domain request of `conversations_fire*`.
fn fire_request(
    conversation_id: String,
    body: FireRequest,
    transport: Transport,
) -> std::result::Result<execution::RunRequest, execution::RunError> {
    let target = RunTarget::Continue {
        conversation_id: conversation_id.into(),
    };
    let options = RunOptions {
        preset_id: body.preset_id,
        config_override: body.config_override,
    };
    body.inputs.into_request(target, options, transport)
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

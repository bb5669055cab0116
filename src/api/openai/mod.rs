//! The OpenAI-compatible surface under `/v1` (same bearer token): `GET /v1/models` lists
//! the presets as models, `POST /v1/chat/completions` answers a chat with an agent run,
//! streamed as `chat.completion.chunk` frames or whole. Chat front-ends, bots and the
//! official SDKs use it unchanged. It is a separate surface: not in the OpenAPI document,
//! and its errors take OpenAI's shape (`{error: {message, type, code}}`).

mod answer;
mod errors;
mod wire;

use std::sync::Arc;

use poem::http::StatusCode;
use poem::web::{Data, Json};
use poem::{
    Body, Endpoint, EndpointExt, IntoResponse, Request, Response, Route, get, handler, post,
};
use ports::StorageError;
use serde_json::{Value, json};

use super::ApiState;
use crate::core::chat::{ChatError, ChatRequest};
use crate::core::execution::RunError;
pub use errors::reshape;
use wire::CompletionRequest;

/// Header naming the conversation a request goes on with (and, in answers, the one it did).
const CONVERSATION_HEADER: &str = "x-conversation-id";
/// Header asking for the agent's tool activity as `reasoning_content`.
const SHOW_TOOLS_HEADER: &str = "x-show-tools";

/// The `/v1` routes.
pub fn routes() -> impl Endpoint {
    Route::new()
        .at("/models", get(models))
        .at("/chat/completions", post(completions))
        .map_to_response()
}

#[handler]
async fn models(state: Data<&Arc<ApiState>>) -> Response {
    match state.chat.models().await {
        Ok(presets) => {
            let data: Vec<Value> = presets
                .into_iter()
                .map(|p| {
                    json!({"id": p.preset_id.as_str(), "object": "model",
                           "created": p.created_at.timestamp(), "owned_by": "agent-runtime",
                           "name": p.name})
                })
                .collect();
            Json(json!({"object": "list", "data": data})).into_response()
        }
        Err(e) => chat_error(e),
    }
}

#[handler]
async fn completions(req: &Request, body: Body, state: Data<&Arc<ApiState>>) -> Response {
    let bytes = match body.into_vec().await {
        Ok(bytes) => bytes,
        Err(e) => return errors::invalid(&e.to_string()),
    };
    let request: CompletionRequest = match serde_json::from_slice(&bytes) {
        Ok(request) => request,
        Err(e) => {
            return errors::invalid(&format!("the body is not a chat completion request: {e}"));
        }
    };
    let options = answer::Options {
        model: request.model.clone(),
        show_tools: header_is_true(req, SHOW_TOOLS_HEADER),
        include_usage: request
            .stream_options
            .as_ref()
            .is_some_and(|o| o.include_usage),
    };
    let stream = request.stream;
    let chat = match chat_request(req, request) {
        Ok(chat) => chat,
        Err(message) => return errors::invalid(&message),
    };
    let run = match state.chat.start(chat).await {
        Ok(run) => run,
        Err(e) => return chat_error(e),
    };
    let conversation = run.started.conversation_id.to_string();
    let options = answer::Options {
        show_tools: options.show_tools || run.show_activity,
        ..options
    };
    let mut resp = if stream {
        answer::stream(state.0.clone(), run, options)
    } else {
        answer::whole(&state, run, options).await
    };
    if let Ok(value) = poem::http::HeaderValue::from_str(&conversation) {
        resp.headers_mut().insert(CONVERSATION_HEADER, value);
    }
    resp
}

/// The domain chat: the messages, the preset, and an explicit conversation from the
/// header or `metadata.conversation_id`.
fn chat_request(req: &Request, body: CompletionRequest) -> Result<ChatRequest, String> {
    let explicit = req
        .headers()
        .get(CONVERSATION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| {
            body.metadata
                .as_ref()
                .and_then(|m| m.get("conversation_id"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .filter(|c| !c.trim().is_empty());
    let messages = body
        .messages
        .into_iter()
        .map(wire::WireMessage::into_chat)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ChatRequest {
        preset_id: body.model.into(),
        messages,
        conversation_id: explicit.map(Into::into),
        transport: ports::Transport::Sse,
    })
}

fn header_is_true(req: &Request, name: &str) -> bool {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes"))
}

/// A chat that could not start, in OpenAI's shape.
fn chat_error(e: ChatError) -> Response {
    match e {
        ChatError::Invalid(message) => errors::invalid(&message),
        ChatError::UnknownModel(model) => errors::respond(
            StatusCode::NOT_FOUND,
            &format!("the model {model} does not exist: GET /v1/models lists the presets"),
            "invalid_request_error",
            "model_not_found",
        ),
        ChatError::Run(run) => run_error(run),
        ChatError::Storage(e) => {
            tracing::warn!(error = %e, "chat: storage failed");
            errors::respond(
                StatusCode::SERVICE_UNAVAILABLE,
                "a backend is unavailable; retry later",
                "server_error",
                "unavailable",
            )
        }
    }
}

fn run_error(e: RunError) -> Response {
    match &e {
        RunError::NotFound(what) => errors::respond(
            StatusCode::NOT_FOUND,
            &format!("{what} not found"),
            "invalid_request_error",
            "not_found",
        ),
        RunError::Busy(active) => errors::respond(
            StatusCode::CONFLICT,
            &format!(
                "the conversation is running session {}; wait for it or interrupt it",
                active.session_id
            ),
            "invalid_request_error",
            "conversation_busy",
        ),
        RunError::Invalid(fields) => {
            let message = fields
                .iter()
                .map(|f| format!("{}: {}", f.field, f.message))
                .collect::<Vec<_>>()
                .join("; ");
            errors::invalid(&message)
        }
        RunError::Unavailable(message) => errors::respond(
            StatusCode::SERVICE_UNAVAILABLE,
            message,
            "server_error",
            "unavailable",
        ),
        RunError::TooManyRuns { .. } => errors::too_many_runs(&e.to_string()),
        RunError::Storage(StorageError::ConversationArchived) => errors::respond(
            StatusCode::CONFLICT,
            &e.to_string(),
            "invalid_request_error",
            "conversation_archived",
        ),
        other => {
            tracing::error!(error = %other, "chat: the run could not start");
            errors::respond(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error",
                "server_error",
                "internal",
            )
        }
    }
}

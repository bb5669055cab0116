//! `POST /api/ag-ui/{preset_id}`: AG-UI's `RunAgentInput` in, AG-UI events out (SSE). The
//! client's `threadId` names the conversation: an unknown one (clients mint their own)
//! starts a new conversation, remembered for it, from the thread's earlier messages; a
//! known one continues it. The last message must be the user's: it is the run's input.

use std::sync::Arc;

use poem::web::{Data, Json, Path};
use poem::{IntoResponse, Response, handler};
use serde::Deserialize;
use serde_json::Value;

use super::AgUiEncoder;
use crate::api::ApiState;
use crate::api::runs::KEEP_ALIVE;
use crate::api::sse::Sse;
use crate::core::chat::{ChatError, ChatMessage, ChatRole, ThreadRequest};

/// The parts of `RunAgentInput` the service reads; the rest (state, tools, context,
/// forwarded props) is accepted and ignored: the preset decides the agent's tools.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunAgentInput {
    thread_id: String,
    run_id: String,
    #[serde(default)]
    messages: Vec<AgUiMessage>,
}

#[derive(Debug, Deserialize)]
struct AgUiMessage {
    role: String,
    #[serde(default)]
    content: Option<Value>,
}

impl AgUiMessage {
    /// The message as a chat message: its text (a string, or the text parts of a list).
    fn into_chat(self) -> ChatMessage {
        let role = match self.role.as_str() {
            "user" => ChatRole::User,
            "assistant" => ChatRole::Assistant,
            "tool" => ChatRole::Tool,
            _ => ChatRole::System,
        };
        let text = match self.content {
            Some(Value::String(text)) => text,
            Some(Value::Array(parts)) => parts
                .iter()
                .filter(|p| p["type"] == "text")
                .filter_map(|p| p["text"].as_str())
                .collect::<Vec<_>>()
                .join("\n"),
            _ => String::new(),
        };
        ChatMessage {
            role,
            text,
            images: Vec::new(),
        }
    }
}

#[handler]
pub async fn run(
    state: Data<&Arc<ApiState>>,
    preset_id: Path<String>,
    body: Json<RunAgentInput>,
) -> Response {
    let RunAgentInput {
        thread_id,
        run_id,
        messages,
    } = body.0;
    let request = ThreadRequest {
        preset_id: preset_id.0.into(),
        thread_id: thread_id.clone(),
        messages: messages.into_iter().map(AgUiMessage::into_chat).collect(),
    };
    match state.chat.start_thread(request).await {
        Ok(started) => Sse::new(started.log.subscribe(0), KEEP_ALIVE)
            .ag_ui(AgUiEncoder::for_client(thread_id, run_id))
            .into_response(),
        Err(ChatError::Run(e)) => match crate::api::runs::refused(e) {
            Ok((body, retry_after)) => {
                let mut resp = error(429, &body.0.error, &body.0.message);
                resp.headers_mut().insert(
                    poem::http::header::RETRY_AFTER,
                    poem::http::HeaderValue::from(retry_after),
                );
                resp
            }
            Err(other) => other.into_response(),
        },
        Err(ChatError::UnknownModel(preset)) => {
            error(404, "not_found", &format!("no preset {preset}"))
        }
        Err(ChatError::Invalid(message)) => error(422, "validation_failed", &message),
        Err(ChatError::Storage(e)) => crate::api::error::ErrorResponse::from(e).into_response(),
    }
}

fn error(status: u16, code: &str, message: &str) -> Response {
    let status = poem::http::StatusCode::from_u16(status)
        .unwrap_or(poem::http::StatusCode::UNPROCESSABLE_ENTITY);
    crate::api::middleware::json_error(status, code, message)
}

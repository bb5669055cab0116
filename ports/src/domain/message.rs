//! Model-facing history in our own types, persisted in state.json and mapped by each
//! provider adapter to and from its wire format. Provider details that must be replayed
//! exactly (thinking signatures, tool-call ids) are kept here verbatim.

use serde::{Deserialize, Serialize};

/// One message of the model-facing history. The system prompt is not part of history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum ModelMessage {
    User {
        parts: Vec<UserPart>,
    },
    Assistant {
        parts: Vec<AssistantPart>,
    },
    /// Results of the tool calls of the preceding assistant message.
    Tool {
        results: Vec<ToolResult>,
    },
}

/// Content a user (or the runtime on the user's behalf) sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum UserPart {
    Text {
        text: String,
    },
    /// An image, by URL or inline base64 data.
    Image {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        url: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        data: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mime_type: Option<String>,
    },
}

/// Content the model produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AssistantPart {
    Text {
        text: String,
    },
    Thinking {
        text: String,
        /// Anthropic's signature, replayed verbatim.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signature: Option<String>,
    },
    RedactedThinking {
        data: String,
    },
    ToolCall {
        id: String,
        name: String,
        /// The arguments exactly as the model produced them (a JSON text).
        arguments: String,
    },
}

impl AssistantPart {
    /// The text parts of an assistant message joined: what the model said, without its
    /// thinking and tool calls.
    pub fn text_of(parts: &[AssistantPart]) -> String {
        parts
            .iter()
            .filter_map(|p| match p {
                AssistantPart::Text { text } => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }
}

/// The output of one tool call, returned to the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolResult {
    pub tool_call_id: String,
    pub tool_name: String,
    pub content: String,
    #[serde(default)]
    pub is_error: bool,
    /// Images the tool returned (e.g. `view` on a picture), sent after the text.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<ImageData>,
}

/// An inline image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageData {
    pub mime_type: String,
    /// Base64, no data-URL prefix.
    pub data: String,
}

/// A tool as offered to the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSchema {
    pub name: String,
    pub description: String,
    /// JSON schema of the arguments object.
    pub parameters: serde_json::Value,
}

//! OpenAI Chat Completions on the wire, as much of it as the `/v1` surface reads and
//! writes. Unknown request fields are ignored, as OpenAI-compatible servers do.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::core::chat::{ChatMessage, ChatRole};

/// Body of `POST /v1/chat/completions`.
#[derive(Debug, Deserialize)]
pub struct CompletionRequest {
    pub model: String,
    pub messages: Vec<WireMessage>,
    #[serde(default)]
    pub stream: bool,
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
    #[serde(default)]
    pub metadata: Option<Map<String, Value>>,
}

#[derive(Debug, Deserialize)]
pub struct StreamOptions {
    #[serde(default)]
    pub include_usage: bool,
}

#[derive(Debug, Deserialize)]
pub struct WireMessage {
    pub role: String,
    #[serde(default)]
    pub content: Option<Content>,
}

/// A message's content: a string, or a list of parts.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Parts(Vec<ContentPart>),
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentPart {
    Text {
        text: String,
    },
    ImageUrl {
        image_url: ImageUrl,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
pub struct ImageUrl {
    pub url: String,
}

impl WireMessage {
    /// The domain message; `Err` names a role this surface does not know.
    pub fn into_chat(self) -> Result<ChatMessage, String> {
        let role = match self.role.as_str() {
            "system" | "developer" => ChatRole::System,
            "user" => ChatRole::User,
            "assistant" => ChatRole::Assistant,
            "tool" | "function" => ChatRole::Tool,
            other => return Err(format!("unknown message role {other:?}")),
        };
        let mut text = String::new();
        let mut images = Vec::new();
        match self.content {
            None => {}
            Some(Content::Text(t)) => text = t,
            Some(Content::Parts(parts)) => {
                for part in parts {
                    match part {
                        ContentPart::Text { text: t } => {
                            if !text.is_empty() {
                                text.push('\n');
                            }
                            text.push_str(&t);
                        }
                        ContentPart::ImageUrl { image_url } => images.push(image_url.url),
                        ContentPart::Other => {}
                    }
                }
            }
        }
        Ok(ChatMessage { role, text, images })
    }
}

/// Token counts in OpenAI's names.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct WireUsage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
}

impl From<ports::Usage> for WireUsage {
    fn from(u: ports::Usage) -> Self {
        Self {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
            total_tokens: u.total_tokens,
        }
    }
}

/// An error in OpenAI's shape (these routes only).
pub fn error_body(message: &str, kind: &str, code: &str) -> Value {
    serde_json::json!({"error": {"message": message, "type": kind, "code": code, "param": null}})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_and_part_contents_read_alike() {
        let body = serde_json::json!({
            "model": "m",
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": [
                    {"type": "text", "text": "look"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}},
                    {"type": "input_audio", "input_audio": {}}
                ]},
                {"role": "assistant", "content": null, "tool_calls": []}
            ],
            "temperature": 0.2
        });
        let req: CompletionRequest = serde_json::from_value(body).unwrap();
        let chat: Vec<ChatMessage> = req
            .messages
            .into_iter()
            .map(|m| m.into_chat().unwrap())
            .collect();
        assert_eq!(chat[0].role, ChatRole::System);
        assert_eq!(chat[1].text, "look");
        assert_eq!(chat[1].images, ["data:image/png;base64,AA"]);
        assert_eq!(chat[2].text, "");
    }
}

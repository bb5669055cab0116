//! OpenAI Chat Completions on the wire: our request and history → the request body, and
//! the streamed chunk as far as we read it. Chunk fields are all optional because
//! "compatible" servers (vLLM, Ollama, llama.cpp, gateways) each leave different ones out.

use ports::{AssistantPart, ModelMessage, ModelRequest, ToolResult, ToolSchema, UserPart};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::llm::strip_schema_marker;

/// The request body for `request`, sent as the bare model name `model`.
pub(crate) fn request_body(model: &str, request: &ModelRequest) -> Value {
    let mut messages = Vec::with_capacity(request.messages.len() + 1);
    if !request.system.is_empty() {
        messages.push(json!({"role": "system", "content": request.system}));
    }
    for message in &request.messages {
        match message {
            ModelMessage::User { parts } => messages.push(user_message(parts)),
            ModelMessage::Assistant { parts } => messages.extend(assistant_message(parts)),
            ModelMessage::Tool { results } => tool_messages(results, &mut messages),
        }
    }
    let mut body = json!({
        "model": model,
        "messages": messages,
        "stream": true,
        "stream_options": {"include_usage": true},
    });
    if !request.tools.is_empty() {
        body["tools"] = request.tools.iter().map(tool).collect();
    }
    if let Some(t) = request.temperature {
        body["temperature"] = json!(t);
    }
    if let Some(m) = request.max_tokens {
        body[max_tokens_field(model)] = json!(m);
    }
    if let Some(effort) = request.reasoning_effort {
        body["reasoning_effort"] = json!(effort.as_str());
    }
    // Not OpenAI's own parameter: gateways that route to thinking models (LiteLLM, vLLM
    // with Qwen or Claude behind it) take Anthropic's shape; OpenAI answers 400, which the
    // run reports, since the preset asked for thinking from a model without it.
    if let Some(thinking) = request.thinking {
        body["thinking"] = json!({"type": "enabled", "budget_tokens": thinking.budget_tokens});
    }
    body
}

/// OpenAI's reasoning families reject `max_tokens` and want `max_completion_tokens`;
/// compatible servers (vLLM, llama.cpp, Ollama) know only `max_tokens`.
fn max_tokens_field(model: &str) -> &'static str {
    let reasoning = ["o1", "o3", "o4", "gpt-5"]
        .iter()
        .any(|family| model == *family || model.starts_with(&format!("{family}-")));
    if reasoning {
        "max_completion_tokens"
    } else {
        "max_tokens"
    }
}

fn tool(schema: &ToolSchema) -> Value {
    json!({"type": "function", "function": {
        "name": schema.name,
        "description": schema.description,
        "parameters": strip_schema_marker(&schema.parameters),
    }})
}

/// Plain text stays a string (what every compatible server accepts); anything with an
/// image becomes the content-part array.
fn user_message(parts: &[UserPart]) -> Value {
    if let [UserPart::Text { text }] = parts {
        return json!({"role": "user", "content": text});
    }
    let content: Vec<Value> = parts
        .iter()
        .filter_map(|part| match part {
            UserPart::Text { text } => Some(json!({"type": "text", "text": text})),
            UserPart::Image {
                url,
                data,
                mime_type,
            } => image_url(url.as_deref(), data.as_deref(), mime_type.as_deref()),
        })
        .collect();
    json!({"role": "user", "content": content})
}

/// An `image_url` part: inline data as a data URL (preferred, since a local server may not
/// reach the URL), else the URL as given.
fn image_url(url: Option<&str>, data: Option<&str>, mime_type: Option<&str>) -> Option<Value> {
    let url = match (url, data) {
        (_, Some(data)) => format!("data:{};base64,{data}", mime_type.unwrap_or("image/png")),
        (Some(url), None) => url.to_owned(),
        (None, None) => return None,
    };
    Some(json!({"type": "image_url", "image_url": {"url": url}}))
}

/// Text and tool calls; thinking is dropped because Chat Completions has no way to replay
/// it. An assistant turn with nothing left is omitted rather than sent empty.
fn assistant_message(parts: &[AssistantPart]) -> Option<Value> {
    let text = AssistantPart::text_of(parts);
    let calls: Vec<Value> = parts
        .iter()
        .filter_map(|p| match p {
            AssistantPart::ToolCall {
                id,
                name,
                arguments,
            } => Some(json!({"id": id, "type": "function",
                "function": {"name": name, "arguments": arguments}})),
            _ => None,
        })
        .collect();
    if text.is_empty() && calls.is_empty() {
        return None;
    }
    let mut message = json!({"role": "assistant", "content": text});
    if !calls.is_empty() {
        if text.is_empty() {
            message["content"] = Value::Null;
        }
        message["tool_calls"] = Value::Array(calls);
    }
    Some(message)
}

/// One `tool` message per result; tool messages cannot carry images, so any images follow
/// in one user message, each group introduced by the call it belongs to.
fn tool_messages(results: &[ToolResult], messages: &mut Vec<Value>) {
    let mut images = Vec::new();
    for result in results {
        messages.push(json!({
            "role": "tool",
            "tool_call_id": result.tool_call_id,
            "content": result.content,
        }));
        if !result.images.is_empty() {
            images.push(json!({"type": "text", "text": format!(
                "Images returned by {} (call {}):", result.tool_name, result.tool_call_id)}));
            images.extend(
                result
                    .images
                    .iter()
                    .filter_map(|image| image_url(None, Some(&image.data), Some(&image.mime_type))),
            );
        }
    }
    if !images.is_empty() {
        messages.push(json!({"role": "user", "content": images}));
    }
}

/// One streamed chunk.
#[derive(Debug, Deserialize)]
pub(crate) struct Chunk {
    #[serde(default)]
    pub choices: Option<Vec<Choice>>,
    #[serde(default)]
    pub usage: Option<ChunkUsage>,
    /// Some compatible servers report failures inside the stream this way.
    #[serde(default)]
    pub error: Option<Value>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Choice {
    #[serde(default)]
    pub delta: Option<Delta>,
    #[serde(default)]
    pub finish_reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Delta {
    #[serde(default)]
    pub content: Option<String>,
    /// DeepSeek, vLLM, llama.cpp.
    #[serde(default)]
    pub reasoning_content: Option<String>,
    /// Ollama, OpenRouter.
    #[serde(default)]
    pub reasoning: Option<String>,
    #[serde(default)]
    pub tool_calls: Option<Vec<ToolCallDelta>>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ToolCallDelta {
    #[serde(default)]
    pub index: Option<u32>,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub function: Option<FunctionDelta>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct FunctionDelta {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub arguments: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ChunkUsage {
    #[serde(default)]
    pub prompt_tokens: Option<u64>,
    #[serde(default)]
    pub completion_tokens: Option<u64>,
    #[serde(default)]
    pub total_tokens: Option<u64>,
    #[serde(default)]
    pub prompt_tokens_details: Option<PromptTokensDetails>,
}

/// The cached share of the prompt, which OpenAI caches on its own.
#[derive(Debug, Deserialize)]
pub(crate) struct PromptTokensDetails {
    #[serde(default)]
    pub cached_tokens: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::max_tokens_field;

    #[test]
    fn reasoning_models_get_max_completion_tokens() {
        assert_eq!(max_tokens_field("gpt-5-mini"), "max_completion_tokens");
        assert_eq!(max_tokens_field("o3"), "max_completion_tokens");
        assert_eq!(max_tokens_field("o4-mini"), "max_completion_tokens");
        assert_eq!(max_tokens_field("gpt-4o-mini"), "max_tokens");
        assert_eq!(max_tokens_field("qwen3"), "max_tokens");
        assert_eq!(max_tokens_field("o1x"), "max_tokens");
    }
}

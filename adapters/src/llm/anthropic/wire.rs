//! Anthropic Messages on the wire: our request and history → the request body, and the
//! streamed events as far as we read them.

use ports::{AssistantPart, ModelMessage, ModelRequest, ToolResult, ToolSchema, UserPart};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::llm::strip_schema_marker;

/// The API requires `max_tokens`; this is used when the request leaves it open.
pub const DEFAULT_MAX_TOKENS: u32 = 8192;

/// Anthropic allows four cache breakpoints per request: the system prompt, the tool list
/// and the two latest user-side messages (the one just added, and the one before, whose
/// prefix the previous request already cached).
const MESSAGE_BREAKPOINTS: usize = 2;

/// The request body for `request`, sent as the bare model name `model`.
pub(crate) fn request_body(model: &str, request: &ModelRequest) -> Value {
    let mut messages: Vec<Value> = request
        .messages
        .iter()
        .filter_map(|message| match message {
            ModelMessage::User { parts } => Some(json!({
                "role": "user",
                "content": parts.iter().filter_map(user_block).collect::<Vec<_>>(),
            })),
            ModelMessage::Assistant { parts } => {
                let content: Vec<Value> = parts.iter().filter_map(assistant_block).collect();
                (!content.is_empty()).then(|| json!({"role": "assistant", "content": content}))
            }
            ModelMessage::Tool { results } => Some(json!({
                "role": "user",
                "content": results.iter().map(tool_result).collect::<Vec<_>>(),
            })),
        })
        .collect();
    if request.prompt_cache {
        mark_latest_turns(&mut messages);
    }
    let mut body = json!({
        "model": model,
        "max_tokens": max_tokens(request),
        "messages": messages,
        "stream": true,
    });
    if !request.system.is_empty() {
        body["system"] = if request.prompt_cache {
            json!([cached(json!({"type": "text", "text": request.system}))])
        } else {
            json!(request.system)
        };
    }
    if !request.tools.is_empty() {
        let mut tools: Vec<Value> = request.tools.iter().map(tool).collect();
        if request.prompt_cache
            && let Some(last) = tools.pop()
        {
            tools.push(cached(last));
        }
        body["tools"] = Value::Array(tools);
    }
    if let Some(t) = request.temperature {
        body["temperature"] = json!(t);
    }
    if let Some(thinking) = request.thinking {
        body["thinking"] = json!({"type": "enabled", "budget_tokens": thinking.budget_tokens});
    }
    if let Some(effort) = request.reasoning_effort {
        body["output_config"] = json!({"effort": effort.as_str()});
    }
    body
}

/// The request's cap, else ours; with thinking, the default leaves room for the answer
/// after the budget (the API requires `max_tokens` above `budget_tokens`).
fn max_tokens(request: &ModelRequest) -> u32 {
    request.max_tokens.unwrap_or_else(|| {
        request.thinking.map_or(DEFAULT_MAX_TOKENS, |t| {
            t.budget_tokens.saturating_add(DEFAULT_MAX_TOKENS)
        })
    })
}

/// `block` as a cache breakpoint: the prefix up to and including it is cached.
fn cached(mut block: Value) -> Value {
    block["cache_control"] = json!({"type": "ephemeral"});
    block
}

/// Puts a breakpoint on the last block of the latest user-side messages (user input or
/// tool results; assistant blocks may be thinking, which cannot carry one).
fn mark_latest_turns(messages: &mut [Value]) {
    let latest = messages
        .iter_mut()
        .rev()
        .filter(|m| m["role"] == "user")
        .take(MESSAGE_BREAKPOINTS);
    for message in latest {
        if let Some(Value::Object(block)) = message["content"]
            .as_array_mut()
            .and_then(|blocks| blocks.last_mut())
        {
            block.insert("cache_control".into(), json!({"type": "ephemeral"}));
        }
    }
}

fn tool(schema: &ToolSchema) -> Value {
    json!({
        "name": schema.name,
        "description": schema.description,
        "input_schema": strip_schema_marker(&schema.parameters),
    })
}

fn user_block(part: &UserPart) -> Option<Value> {
    match part {
        UserPart::Text { text } => Some(json!({"type": "text", "text": text})),
        UserPart::Image {
            url,
            data,
            mime_type,
        } => match (url, data) {
            (_, Some(data)) => Some(base64_image(mime_type.as_deref(), data)),
            (Some(url), None) => Some(url_image(url)),
            (None, None) => None,
        },
    }
}

fn base64_image(mime_type: Option<&str>, data: &str) -> Value {
    json!({"type": "image", "source": {
        "type": "base64",
        "media_type": mime_type.unwrap_or("image/png"),
        "data": data,
    }})
}

/// A `data:` URL becomes an inline image (the API does not fetch those); any other URL
/// is fetched by the API.
fn url_image(url: &str) -> Value {
    if let Some((meta, data)) = url.strip_prefix("data:").and_then(|r| r.split_once(','))
        && let Some(mime) = meta.strip_suffix(";base64")
    {
        return base64_image(Some(mime), data);
    }
    json!({"type": "image", "source": {"type": "url", "url": url}})
}

/// Thinking is replayed with its signature (the API verifies it); thinking without one
/// came from another provider and cannot be replayed, so it is dropped, as are empty
/// texts, which the API rejects.
fn assistant_block(part: &AssistantPart) -> Option<Value> {
    match part {
        AssistantPart::Text { text } if text.is_empty() => None,
        AssistantPart::Text { text } => Some(json!({"type": "text", "text": text})),
        AssistantPart::Thinking {
            text,
            signature: Some(signature),
        } => Some(json!({"type": "thinking", "thinking": text, "signature": signature})),
        AssistantPart::Thinking {
            signature: None, ..
        } => None,
        AssistantPart::RedactedThinking { data } => {
            Some(json!({"type": "redacted_thinking", "data": data}))
        }
        AssistantPart::ToolCall {
            id,
            name,
            arguments,
        } => Some(json!({"type": "tool_use", "id": id, "name": name, "input": input(arguments)})),
    }
}

/// `input` must be an object; arguments that are not one (a model's malformed JSON) are
/// replayed as `{}` rather than failing the whole request.
fn input(arguments: &str) -> Value {
    match serde_json::from_str::<Value>(arguments) {
        Ok(Value::Object(map)) => Value::Object(map),
        _ => Value::Object(Map::new()),
    }
}

fn tool_result(result: &ToolResult) -> Value {
    let content = if result.images.is_empty() {
        json!(result.content)
    } else {
        let mut blocks = vec![json!({"type": "text", "text": result.content})];
        blocks.extend(
            result
                .images
                .iter()
                .map(|image| base64_image(Some(&image.mime_type), &image.data)),
        );
        Value::Array(blocks)
    };
    json!({
        "type": "tool_result",
        "tool_use_id": result.tool_call_id,
        "content": content,
        "is_error": result.is_error,
    })
}

/// One streamed event, keyed by its `type` (which always equals the SSE event name).
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum StreamEvent {
    MessageStart {
        message: MessageStart,
    },
    ContentBlockStart {
        index: u32,
        content_block: ContentBlock,
    },
    ContentBlockDelta {
        index: u32,
        delta: BlockDelta,
    },
    ContentBlockStop {},
    MessageDelta {
        delta: MessageDeltaBody,
        #[serde(default)]
        usage: Option<WireUsage>,
    },
    MessageStop,
    Ping,
    Error {
        error: Value,
    },
    /// The API may add event types; unknown ones are skipped, as its docs ask.
    #[serde(other)]
    Unknown,
}

#[derive(Debug, Deserialize)]
pub(crate) struct MessageStart {
    #[serde(default)]
    pub usage: Option<WireUsage>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum ContentBlock {
    Text {
        #[serde(default)]
        text: String,
    },
    Thinking {
        #[serde(default)]
        thinking: String,
    },
    RedactedThinking {
        data: String,
    },
    ToolUse {
        id: String,
        name: String,
        #[serde(default)]
        input: Option<Value>,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum BlockDelta {
    TextDelta {
        text: String,
    },
    ThinkingDelta {
        thinking: String,
    },
    SignatureDelta {
        signature: String,
    },
    InputJsonDelta {
        partial_json: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
pub(crate) struct MessageDeltaBody {
    #[serde(default)]
    pub stop_reason: Option<String>,
}

/// Token counts; `message_start` carries the input side, `message_delta` the cumulative
/// output (and, in newer API versions, the input again).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct WireUsage {
    #[serde(default)]
    pub input_tokens: Option<u64>,
    #[serde(default)]
    pub cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    pub cache_read_input_tokens: Option<u64>,
    #[serde(default)]
    pub output_tokens: Option<u64>,
}

//! OpenAI Chat Completions streaming: `data: {chunk}` frames, `finish_reason` in a chunk of
//! its own, the usage chunk with `choices: []` when `stream_options.include_usage` was
//! requested, then `data: [DONE]`.

use serde_json::{Value, json};

use crate::render::Rendered;
use crate::script::{Step, Tokens};

/// Renders a streamed answer for `model`.
pub(crate) fn render(
    steps: &[Step],
    tokens: Tokens,
    finish: &str,
    model: &str,
    include_usage: bool,
) -> Rendered {
    let chunk = |delta: Value, finish: Value| {
        frame(&json!({
            "id": "chatcmpl-mock",
            "object": "chat.completion.chunk",
            "created": 1_700_000_000,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
        }))
    };
    let mut frames = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    for step in steps {
        let delta = match step {
            Step::Text(text) => json!({"content": text}),
            Step::Thinking(text) => json!({"reasoning_content": text}),
            Step::Signature(_) | Step::RedactedThinking(_) => continue,
            Step::ToolStart { index, id, name } => json!({"tool_calls": [{
                "index": index, "id": id, "type": "function",
                "function": {"name": name, "arguments": ""},
            }]}),
            Step::ToolArgs { index, fragment } => json!({"tool_calls": [{
                "index": index, "function": {"arguments": fragment},
            }]}),
        };
        frames.push(chunk(delta, Value::Null));
    }
    let content_end = frames.len();
    frames.push(chunk(json!({}), json!(finish)));
    if include_usage {
        let prompt = tokens.input + tokens.cache_read + tokens.cache_write;
        frames.push(frame(&json!({
            "id": "chatcmpl-mock",
            "object": "chat.completion.chunk",
            "created": 1_700_000_000,
            "model": model,
            "choices": [],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": tokens.output,
                "total_tokens": prompt + tokens.output,
                "prompt_tokens_details": {"cached_tokens": tokens.cache_read},
            },
        })));
    }
    frames.push("data: [DONE]\n\n".to_owned());
    Rendered {
        frames,
        content_end,
    }
}

/// OpenAI's error body: `{"error": {message, type, param, code}}`.
pub(crate) fn error_body(status: u16, message: &str) -> Value {
    let (kind, code) = match status {
        400 => ("invalid_request_error", Value::Null),
        401 => ("invalid_request_error", json!("invalid_api_key")),
        429 => ("requests", json!("rate_limit_exceeded")),
        _ => ("server_error", Value::Null),
    };
    json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
}

fn frame(value: &Value) -> String {
    format!("data: {value}\n\n")
}

//! Anthropic Messages streaming: `event: X\ndata: {...}` frames. message_start (input
//! tokens), one content block after another (start, deltas, stop), message_delta (stop
//! reason, output tokens), message_stop, with a ping after the first block start.

use serde_json::{Value, json};

use crate::render::Rendered;
use crate::script::{Step, Tokens};

/// A content block assembled from the neutral steps. Anthropic never interleaves blocks,
/// so tool-call fragments scripted interleaved are grouped under their call's block.
enum Block {
    Text(Vec<String>),
    Thinking {
        deltas: Vec<String>,
        signature: Option<String>,
    },
    Redacted(String),
    Tool {
        index: u32,
        id: String,
        name: String,
        fragments: Vec<String>,
    },
}

fn blocks(steps: &[Step]) -> Vec<Block> {
    let mut blocks: Vec<Block> = Vec::new();
    for step in steps {
        match (step, blocks.last_mut()) {
            (Step::Text(t), Some(Block::Text(parts))) => parts.push(t.clone()),
            (Step::Text(t), _) => blocks.push(Block::Text(vec![t.clone()])),
            (Step::Thinking(t), Some(Block::Thinking { deltas, signature }))
                if signature.is_none() =>
            {
                deltas.push(t.clone());
            }
            (Step::Thinking(t), _) => blocks.push(Block::Thinking {
                deltas: vec![t.clone()],
                signature: None,
            }),
            (Step::Signature(s), Some(Block::Thinking { signature, .. }))
                if signature.is_none() =>
            {
                *signature = Some(s.clone());
            }
            (Step::Signature(s), _) => blocks.push(Block::Thinking {
                deltas: Vec::new(),
                signature: Some(s.clone()),
            }),
            (Step::RedactedThinking(d), _) => blocks.push(Block::Redacted(d.clone())),
            (Step::ToolStart { index, id, name }, _) => blocks.push(Block::Tool {
                index: *index,
                id: id.clone(),
                name: name.clone(),
                fragments: Vec::new(),
            }),
            (Step::ToolArgs { index, fragment }, _) => {
                let call = blocks.iter_mut().rev().find_map(|b| match b {
                    Block::Tool {
                        index: i,
                        fragments,
                        ..
                    } if i == index => Some(fragments),
                    _ => None,
                });
                if let Some(fragments) = call {
                    fragments.push(fragment.clone());
                }
            }
        }
    }
    blocks
}

/// Renders a streamed answer for `model`; `finish` is in OpenAI's words.
pub(crate) fn render(steps: &[Step], tokens: Tokens, finish: &str, model: &str) -> Rendered {
    let mut frames = vec![frame(
        "message_start",
        &json!({"type": "message_start", "message": {
            "id": "msg_mock", "type": "message", "role": "assistant", "content": [],
            "model": model, "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": tokens.input, "output_tokens": 1,
                "cache_read_input_tokens": tokens.cache_read,
                "cache_creation_input_tokens": tokens.cache_write},
        }}),
    )];
    let mut content_end = frames.len();
    for (i, block) in blocks(steps).into_iter().enumerate() {
        let (start, deltas) = block_frames(block);
        frames.push(frame(
            "content_block_start",
            &json!({"type": "content_block_start", "index": i, "content_block": start}),
        ));
        if i == 0 {
            frames.push(frame("ping", &json!({"type": "ping"})));
        }
        for delta in deltas {
            frames.push(frame(
                "content_block_delta",
                &json!({"type": "content_block_delta", "index": i, "delta": delta}),
            ));
        }
        content_end = frames.len();
        frames.push(frame(
            "content_block_stop",
            &json!({"type": "content_block_stop", "index": i}),
        ));
    }
    frames.push(frame(
        "message_delta",
        &json!({"type": "message_delta",
            "delta": {"stop_reason": stop_reason(finish), "stop_sequence": null},
            "usage": {"output_tokens": tokens.output}}),
    ));
    frames.push(frame("message_stop", &json!({"type": "message_stop"})));
    Rendered {
        frames,
        content_end,
    }
}

/// A content block's `content_block_start` body and its deltas.
fn block_frames(block: Block) -> (Value, Vec<Value>) {
    match block {
        Block::Text(parts) => (
            json!({"type": "text", "text": ""}),
            parts
                .into_iter()
                .map(|t| json!({"type": "text_delta", "text": t}))
                .collect(),
        ),
        Block::Thinking { deltas, signature } => (
            json!({"type": "thinking", "thinking": ""}),
            deltas
                .into_iter()
                .map(|t| json!({"type": "thinking_delta", "thinking": t}))
                .chain(signature.map(|s| json!({"type": "signature_delta", "signature": s})))
                .collect(),
        ),
        Block::Redacted(data) => (json!({"type": "redacted_thinking", "data": data}), vec![]),
        Block::Tool {
            index: _,
            id,
            name,
            fragments,
        } => (
            json!({"type": "tool_use", "id": id, "name": name, "input": {}}),
            fragments
                .into_iter()
                .map(|f| json!({"type": "input_json_delta", "partial_json": f}))
                .collect(),
        ),
    }
}

/// OpenAI's finish reasons in Anthropic's words; anything else passes through.
fn stop_reason(finish: &str) -> &str {
    match finish {
        "stop" => "end_turn",
        "tool_calls" => "tool_use",
        "length" => "max_tokens",
        other => other,
    }
}

/// Anthropic's error body: `{"type": "error", "error": {type, message}}`.
pub(crate) fn error_body(status: u16, message: &str) -> Value {
    let kind = match status {
        400 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        _ => "api_error",
    };
    json!({"type": "error", "error": {"type": kind, "message": message}})
}

fn frame(event: &str, data: &Value) -> String {
    format!("event: {event}\ndata: {data}\n\n")
}

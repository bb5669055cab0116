//! The `ModelProvider` contract (ports/src/model_provider.rs) for the OpenAI and Anthropic
//! adapters, the router and the `test:` models, against the mock LLM server on loopback.
//!
//! Byte-exact wire fixtures (raw mode, delivered in arbitrary slices) pin the parsers to
//! the real formats; scripted answers cover errors, cuts and hangs on both protocols.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use adapters::llm::{
    AnthropicProvider, Endpoint, HttpClient, LlmSettings, ModelRouter, OpenAiProvider, TestModel,
};
use futures::StreamExt;
use mock_llm::{Invariant, MockLlm, RecordedRequest, Script};
use ports::{
    AssistantPart, ImageData, ModelDelta, ModelError, ModelMessage, ModelProvider, ModelRequest,
    ReasoningEffort, ThinkingSettings, ToolResult, ToolSchema, Usage, UserPart,
};
use serde_json::json;

/// Guard against a hang; every answer here takes milliseconds.
const GUARD: Duration = Duration::from_secs(10);
/// Idle timeout of the providers under test: generous, so a loaded machine cannot trip
/// it in tests that are not about it.
const PATIENT: Duration = Duration::from_secs(5);
/// Idle timeout for the hang tests: short, but far above loopback latency.
const IDLE: Duration = Duration::from_millis(300);

type Item = Result<ModelDelta, ModelError>;

fn openai(mock: &MockLlm) -> OpenAiProvider {
    OpenAiProvider::new(
        HttpClient::new().unwrap(),
        mock.base_url(),
        Some("sk-openai".into()),
    )
    .with_idle_timeout(PATIENT)
}

fn anthropic(mock: &MockLlm) -> AnthropicProvider {
    AnthropicProvider::new(
        HttpClient::new().unwrap(),
        mock.base_url(),
        Some("sk-ant".into()),
    )
    .with_idle_timeout(PATIENT)
}

fn user(text: &str) -> ModelMessage {
    ModelMessage::User {
        parts: vec![UserPart::Text { text: text.into() }],
    }
}

fn request(model: &str, messages: Vec<ModelMessage>) -> ModelRequest {
    ModelRequest {
        model: model.into(),
        system: String::new(),
        messages,
        tools: Vec::new(),
        temperature: None,
        max_tokens: None,
        ..Default::default()
    }
}

/// Every item of the response; `stream()` itself must succeed.
async fn run(provider: &dyn ModelProvider, request: ModelRequest) -> Vec<Item> {
    tokio::time::timeout(GUARD, async {
        let stream = provider.stream(&request).await.expect("stream starts");
        stream.collect::<Vec<_>>().await
    })
    .await
    .expect("the response ends")
}

/// The deltas of a response that must succeed throughout.
async fn deltas(provider: &dyn ModelProvider, request: ModelRequest) -> Vec<ModelDelta> {
    run(provider, request)
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .expect("no error item")
}

/// The error `stream()` must fail with.
async fn start_error(provider: &dyn ModelProvider, request: ModelRequest) -> ModelError {
    match tokio::time::timeout(GUARD, provider.stream(&request))
        .await
        .expect("answers")
    {
        Ok(_) => panic!("expected stream() to fail"),
        Err(e) => e,
    }
}

/// The assistant message a consumer assembles from `deltas`, as history would keep it.
fn assemble(deltas: &[ModelDelta]) -> Vec<AssistantPart> {
    let mut parts: Vec<AssistantPart> = Vec::new();
    let mut calls = BTreeMap::new();
    for delta in deltas {
        match delta {
            ModelDelta::Text(t) => match parts.last_mut() {
                Some(AssistantPart::Text { text }) => text.push_str(t),
                _ => parts.push(AssistantPart::Text { text: t.clone() }),
            },
            ModelDelta::Thinking(t) => match parts.last_mut() {
                Some(AssistantPart::Thinking {
                    text,
                    signature: None,
                }) => text.push_str(t),
                _ => parts.push(AssistantPart::Thinking {
                    text: t.clone(),
                    signature: None,
                }),
            },
            ModelDelta::ThinkingSignature(s) => {
                if let Some(AssistantPart::Thinking { signature, .. }) = parts.last_mut() {
                    *signature = Some(s.clone());
                }
            }
            ModelDelta::RedactedThinking(data) => {
                parts.push(AssistantPart::RedactedThinking { data: data.clone() });
            }
            ModelDelta::ToolCallStart { index, id, name } => {
                calls.insert(*index, parts.len());
                parts.push(AssistantPart::ToolCall {
                    id: id.clone(),
                    name: name.clone(),
                    arguments: String::new(),
                });
            }
            ModelDelta::ToolCallArgs { index, fragment } => {
                let at = calls[index];
                if let AssistantPart::ToolCall { arguments, .. } = &mut parts[at] {
                    arguments.push_str(fragment);
                }
            }
            ModelDelta::Usage(_) | ModelDelta::Finish { .. } => {}
        }
    }
    parts
}

/// `fixture` in slices of `size` bytes, so events and even characters straddle writes.
fn sliced(fixture: &str, size: usize) -> Vec<Vec<u8>> {
    fixture
        .as_bytes()
        .chunks(size)
        .map(<[u8]>::to_vec)
        .collect()
}

fn text(t: &str) -> ModelDelta {
    ModelDelta::Text(t.into())
}

fn usage(prompt: u64, completion: u64) -> ModelDelta {
    ModelDelta::Usage(usage_of(prompt, completion))
}

fn usage_of(prompt: u64, completion: u64) -> Usage {
    Usage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: prompt + completion,
        model_requests: 1,
        ..Default::default()
    }
}

fn finish(reason: &str) -> ModelDelta {
    ModelDelta::Finish {
        reason: reason.into(),
    }
}

fn start(index: u32, id: &str, name: &str) -> ModelDelta {
    ModelDelta::ToolCallStart {
        index,
        id: id.into(),
        name: name.into(),
    }
}

fn args(index: u32, fragment: &str) -> ModelDelta {
    ModelDelta::ToolCallArgs {
        index,
        fragment: fragment.into(),
    }
}

fn call(id: &str, name: &str, arguments: &str) -> AssistantPart {
    AssistantPart::ToolCall {
        id: id.into(),
        name: name.into(),
        arguments: arguments.into(),
    }
}

// ---------------------------------------------------------------- OpenAI wire fixtures

const OPENAI_TEXT: &str = concat!(
    r#"data: {"id":"chatcmpl-A1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-A1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"content":"Hél"},"logprobs":null,"finish_reason":null}],"usage":null}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-A1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"content":"lo"},"logprobs":null,"finish_reason":null}],"usage":null}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-A1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"content":" world"},"logprobs":null,"finish_reason":null}],"usage":null}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-A1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-A1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","system_fingerprint":"fp_1","choices":[],"usage":{"prompt_tokens":11,"completion_tokens":3,"total_tokens":14,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}"#,
    "\n\n",
    "data: [DONE]\n\n",
);

/// Two parallel calls whose argument fragments interleave by index.
const OPENAI_PARALLEL_TOOLS: &str = concat!(
    r#"data: {"id":"chatcmpl-B2","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"get_weather","arguments":""}}],"refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-B2","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"ci"}}]},"logprobs":null,"finish_reason":null}],"usage":null}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-B2","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_b","type":"function","function":{"name":"get_time","arguments":""}}]},"logprobs":null,"finish_reason":null}],"usage":null}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-B2","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":"{\"tz\":"}}]},"logprobs":null,"finish_reason":null}],"usage":null}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-B2","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"ty\":\"Paris\"}"}}]},"logprobs":null,"finish_reason":null}],"usage":null}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-B2","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":"\"CET\"}"}}]},"logprobs":null,"finish_reason":null}],"usage":null}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-B2","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"tool_calls"}],"usage":null}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-B2","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":80,"completion_tokens":40,"total_tokens":120}}"#,
    "\n\n",
    "data: [DONE]\n\n",
);

/// DeepSeek/vLLM `reasoning_content`, then Ollama-style `reasoning`; no usage chunk.
const OPENAI_REASONING: &str = concat!(
    r#"data: {"id":"c3","object":"chat.completion.chunk","created":1700000000,"model":"deepseek-reasoner","choices":[{"index":0,"delta":{"role":"assistant","content":null,"reasoning_content":""},"logprobs":null,"finish_reason":null}]}"#,
    "\n\n",
    r#"data: {"id":"c3","object":"chat.completion.chunk","created":1700000000,"model":"deepseek-reasoner","choices":[{"index":0,"delta":{"content":null,"reasoning_content":"Two plus"},"logprobs":null,"finish_reason":null}]}"#,
    "\n\n",
    r#"data: {"id":"c3","object":"chat.completion.chunk","created":1700000000,"model":"deepseek-reasoner","choices":[{"index":0,"delta":{"content":null,"reasoning":" two."},"logprobs":null,"finish_reason":null}]}"#,
    "\n\n",
    r#"data: {"id":"c3","object":"chat.completion.chunk","created":1700000000,"model":"deepseek-reasoner","choices":[{"index":0,"delta":{"content":"4","reasoning_content":null},"logprobs":null,"finish_reason":null}]}"#,
    "\n\n",
    r#"data: {"id":"c3","object":"chat.completion.chunk","created":1700000000,"model":"deepseek-reasoner","choices":[{"index":0,"delta":{"content":""},"logprobs":null,"finish_reason":"stop"}]}"#,
    "\n\n",
    "data: [DONE]\n\n",
);

#[tokio::test]
async fn openai_text_in_chunks_with_usage_from_wire_fixture() {
    let mock = MockLlm::start().await;
    mock.push(Script::raw(sliced(OPENAI_TEXT, 37)));
    let got = deltas(&openai(&mock), request("gpt-4o-mini", vec![user("hi")])).await;
    assert_eq!(
        got,
        [
            text("Hél"),
            text("lo"),
            text(" world"),
            usage(11, 3),
            finish("stop")
        ]
    );
    assert_eq!(
        assemble(&got),
        [AssistantPart::Text {
            text: "Héllo world".into()
        }]
    );
}

#[tokio::test]
async fn openai_parallel_tool_calls_interleaved_by_index_from_wire_fixture() {
    let mock = MockLlm::start().await;
    mock.push(Script::raw(sliced(OPENAI_PARALLEL_TOOLS, 50)));
    let got = deltas(&openai(&mock), request("gpt-4o-mini", vec![user("hi")])).await;
    assert_eq!(
        got,
        [
            start(0, "call_a", "get_weather"),
            args(0, "{\"ci"),
            start(1, "call_b", "get_time"),
            args(1, "{\"tz\":"),
            args(0, "ty\":\"Paris\"}"),
            args(1, "\"CET\"}"),
            usage(80, 40),
            finish("tool_calls"),
        ]
    );
    assert_eq!(
        assemble(&got),
        [
            call("call_a", "get_weather", r#"{"city":"Paris"}"#),
            call("call_b", "get_time", r#"{"tz":"CET"}"#),
        ]
    );
}

#[tokio::test]
async fn openai_reasoning_content_and_reasoning_become_thinking() {
    let mock = MockLlm::start().await;
    mock.push(Script::raw([OPENAI_REASONING]));
    let got = deltas(
        &openai(&mock),
        request("deepseek-reasoner", vec![user("2+2")]),
    )
    .await;
    assert_eq!(
        got,
        [
            ModelDelta::Thinking("Two plus".into()),
            ModelDelta::Thinking(" two.".into()),
            text("4"),
            finish("stop"),
        ]
    );
}

#[tokio::test]
async fn openai_end_without_done_after_finish_reason_is_complete() {
    let mock = MockLlm::start().await;
    let without_done = OPENAI_TEXT.trim_end_matches("data: [DONE]\n\n");
    mock.push(Script::raw([without_done]));
    let got = deltas(&openai(&mock), request("m", vec![user("hi")])).await;
    assert_eq!(got.last(), Some(&finish("stop")));
    assert!(got.contains(&usage(11, 3)));
}

#[tokio::test]
async fn openai_error_chunk_inside_the_stream_is_an_error_item() {
    let mock = MockLlm::start().await;
    let first = OPENAI_TEXT.split("\n\n").nth(1).unwrap();
    mock.push(Script::raw([
        format!("{first}\n\n"),
        "data: {\"error\":{\"message\":\"upstream overloaded\",\"type\":\"server_error\",\"code\":null}}\n\n".into(),
    ]));
    let got = run(&openai(&mock), request("m", vec![user("hi")])).await;
    assert_eq!(
        got,
        [
            Ok(text("Hél")),
            Err(ModelError::Server {
                status: 500,
                message: "upstream overloaded".into()
            })
        ]
    );
}

// ------------------------------------------------------------- Anthropic wire fixtures

const ANTHROPIC_TEXT: &str = concat!(
    "event: message_start\n",
    r#"data: {"type":"message_start","message":{"id":"msg_01","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1}}}"#,
    "\n\n",
    "event: content_block_start\n",
    r#"data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
    "\n\n",
    "event: ping\n",
    r#"data: {"type": "ping"}"#,
    "\n\n",
    "event: content_block_delta\n",
    r#"data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}"#,
    "\n\n",
    "event: content_block_delta\n",
    r#"data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"!"}}"#,
    "\n\n",
    "event: content_block_stop\n",
    r#"data: {"type":"content_block_stop","index":0}"#,
    "\n\n",
    "event: message_delta\n",
    r#"data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":15}}"#,
    "\n\n",
    "event: message_stop\n",
    r#"data: {"type":"message_stop"}"#,
    "\n\n",
);

/// Thinking with its signature, text, then a tool call whose input arrives in fragments.
const ANTHROPIC_THINKING_TOOL: &str = concat!(
    "event: message_start\n",
    r#"data: {"type":"message_start","message":{"id":"msg_02","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":472,"cache_creation_input_tokens":0,"cache_read_input_tokens":8,"output_tokens":2}}}"#,
    "\n\n",
    "event: content_block_start\n",
    r#"data: {"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}"#,
    "\n\n",
    "event: ping\n",
    r#"data: {"type": "ping"}"#,
    "\n\n",
    "event: content_block_delta\n",
    r#"data: {"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"The user wants"}}"#,
    "\n\n",
    "event: content_block_delta\n",
    r#"data: {"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":" the weather."}}"#,
    "\n\n",
    "event: content_block_delta\n",
    r#"data: {"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQBCgIYAhIM1gbcDa9GJwZA2b3h"}}"#,
    "\n\n",
    "event: content_block_stop\n",
    r#"data: {"type":"content_block_stop","index":0}"#,
    "\n\n",
    "event: content_block_start\n",
    r#"data: {"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}"#,
    "\n\n",
    "event: content_block_delta\n",
    r#"data: {"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Let me check."}}"#,
    "\n\n",
    "event: content_block_stop\n",
    r#"data: {"type":"content_block_stop","index":1}"#,
    "\n\n",
    "event: content_block_start\n",
    r#"data: {"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_01","name":"get_weather","input":{}}}"#,
    "\n\n",
    "event: content_block_delta\n",
    r#"data: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":""}}"#,
    "\n\n",
    "event: content_block_delta\n",
    r#"data: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\"city\": \"Pa"}}"#,
    "\n\n",
    "event: content_block_delta\n",
    r#"data: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"ris\"}"}}"#,
    "\n\n",
    "event: content_block_stop\n",
    r#"data: {"type":"content_block_stop","index":2}"#,
    "\n\n",
    "event: message_delta\n",
    r#"data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":89}}"#,
    "\n\n",
    "event: message_stop\n",
    r#"data: {"type":"message_stop"}"#,
    "\n\n",
);

#[tokio::test]
async fn anthropic_text_with_usage_from_wire_fixture() {
    let mock = MockLlm::start().await;
    mock.push(Script::raw(sliced(ANTHROPIC_TEXT, 29)));
    let got = deltas(&anthropic(&mock), request("claude", vec![user("hi")])).await;
    assert_eq!(
        got,
        [text("Hello"), text("!"), usage(25, 15), finish("stop")]
    );
}

#[tokio::test]
async fn anthropic_thinking_signature_and_tool_use_from_wire_fixture() {
    let mock = MockLlm::start().await;
    mock.push(Script::raw(sliced(ANTHROPIC_THINKING_TOOL, 64)));
    let got = deltas(&anthropic(&mock), request("claude", vec![user("weather?")])).await;
    assert_eq!(
        got,
        [
            ModelDelta::Thinking("The user wants".into()),
            ModelDelta::Thinking(" the weather.".into()),
            ModelDelta::ThinkingSignature("EqQBCgIYAhIM1gbcDa9GJwZA2b3h".into()),
            text("Let me check."),
            start(2, "toolu_01", "get_weather"),
            args(2, "{\"city\": \"Pa"),
            args(2, "ris\"}"),
            // The fixture's 8 cache-read tokens are part of its 480 prompt tokens.
            ModelDelta::Usage(Usage {
                cache_read_tokens: 8,
                ..usage_of(480, 89)
            }),
            finish("tool_calls"),
        ]
    );
    assert_eq!(
        assemble(&got),
        [
            AssistantPart::Thinking {
                text: "The user wants the weather.".into(),
                signature: Some("EqQBCgIYAhIM1gbcDa9GJwZA2b3h".into()),
            },
            AssistantPart::Text {
                text: "Let me check.".into()
            },
            call("toolu_01", "get_weather", r#"{"city": "Paris"}"#),
        ]
    );
}

#[tokio::test]
async fn anthropic_error_event_is_an_error_item_after_the_deltas() {
    let mock = MockLlm::start().await;
    let head: String = ANTHROPIC_TEXT
        .split("\n\n")
        .take(4)
        .collect::<Vec<_>>()
        .join("\n\n");
    mock.push(Script::raw([
        format!("{head}\n\n"),
        "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n".into(),
    ]));
    let got = run(&anthropic(&mock), request("claude", vec![user("hi")])).await;
    assert_eq!(
        got,
        [
            Ok(text("Hello")),
            Err(ModelError::Server {
                status: 529,
                message: "Overloaded".into()
            })
        ]
    );
}

// ------------------------------------------------ scripted answers, on both protocols

/// Both adapters, for cases whose normalized outcome is the same on either protocol.
fn both(mock: &MockLlm) -> [(&'static str, Box<dyn ModelProvider>); 2] {
    [
        ("openai", Box::new(openai(mock))),
        ("anthropic", Box::new(anthropic(mock))),
    ]
}

/// Both adapters with the short idle timeout.
fn both_impatient(mock: &MockLlm) -> [(&'static str, Box<dyn ModelProvider>); 2] {
    [
        ("openai", Box::new(openai(mock).with_idle_timeout(IDLE))),
        (
            "anthropic",
            Box::new(anthropic(mock).with_idle_timeout(IDLE)),
        ),
    ]
}

#[tokio::test]
async fn scripted_text_usage_and_delay_on_both_protocols() {
    let mock = MockLlm::start().await;
    for (name, provider) in both(&mock) {
        mock.push(
            Script::text("Hello world", 3)
                .usage(12, 3)
                .delay(Duration::from_millis(5)),
        );
        let got = deltas(provider.as_ref(), request("m", vec![user("hi")])).await;
        assert_eq!(
            got,
            [
                text("Hell"),
                text("o wo"),
                text("rld"),
                usage(12, 3),
                finish("stop")
            ],
            "{name}"
        );
    }
}

#[tokio::test]
async fn scripted_thinking_and_parallel_tool_calls_on_both_protocols() {
    let mock = MockLlm::start().await;
    let script = Script::new()
        .thinking(&["Need ", "both."], "sig-1")
        .tool_start(0, "call_a", "read")
        .tool_args(0, "{\"path\":")
        .tool_start(1, "call_b", "ls")
        .tool_args(1, "{}")
        .tool_args(0, "\"a\"}")
        .usage(30, 9);
    mock.push(script.clone());
    let got = deltas(&openai(&mock), request("m", vec![user("go")])).await;
    assert_eq!(
        got,
        [
            ModelDelta::Thinking("Need ".into()),
            ModelDelta::Thinking("both.".into()),
            start(0, "call_a", "read"),
            args(0, "{\"path\":"),
            start(1, "call_b", "ls"),
            args(1, "{}"),
            args(0, "\"a\"}"),
            usage(30, 9),
            finish("tool_calls"),
        ]
    );
    // Anthropic never interleaves blocks: each call is one block, indexed by position.
    mock.push(script);
    let got = deltas(&anthropic(&mock), request("m", vec![user("go")])).await;
    assert_eq!(
        got,
        [
            ModelDelta::Thinking("Need ".into()),
            ModelDelta::Thinking("both.".into()),
            ModelDelta::ThinkingSignature("sig-1".into()),
            start(1, "call_a", "read"),
            args(1, "{\"path\":"),
            args(1, "\"a\"}"),
            start(2, "call_b", "ls"),
            args(2, "{}"),
            usage(30, 9),
            finish("tool_calls"),
        ]
    );
    assert_eq!(
        assemble(&got)[1..],
        [
            call("call_a", "read", r#"{"path":"a"}"#),
            call("call_b", "ls", "{}")
        ]
    );
}

#[tokio::test]
async fn anthropic_redacted_thinking_is_kept() {
    let mock = MockLlm::start().await;
    mock.push(
        Script::new()
            .redacted_thinking("opaque==")
            .then_text("ok", 1),
    );
    let got = deltas(&anthropic(&mock), request("m", vec![user("hi")])).await;
    assert_eq!(
        got[..2],
        [ModelDelta::RedactedThinking("opaque==".into()), text("ok")]
    );
}

#[tokio::test]
async fn rate_limit_with_retry_after_on_both_protocols() {
    let mock = MockLlm::start().await;
    for (name, provider) in both(&mock) {
        mock.push(Script::rate_limited(2));
        let e = start_error(provider.as_ref(), request("m", vec![user("hi")])).await;
        assert_eq!(
            e,
            ModelError::RateLimited {
                retry_after: Some(Duration::from_secs(2)),
                message: "HTTP 429: Rate limit reached, please slow down".into(),
            },
            "{name}"
        );
    }
}

#[tokio::test]
async fn server_errors_on_both_protocols() {
    let mock = MockLlm::start().await;
    for (name, provider) in both(&mock) {
        mock.push(Script::server_error());
        let e = start_error(provider.as_ref(), request("m", vec![user("hi")])).await;
        assert_eq!(
            e,
            ModelError::Server {
                status: 500,
                message: "The server had an error while processing your request".into()
            },
            "{name}"
        );
        mock.push(Script::error(529, "Overloaded"));
        let e = start_error(provider.as_ref(), request("m", vec![user("hi")])).await;
        assert!(
            matches!(e, ModelError::Server { status: 529, .. }),
            "{name}: {e:?}"
        );
    }
}

#[tokio::test]
async fn client_errors_carry_the_provider_message_on_both_protocols() {
    let mock = MockLlm::start().await;
    for (name, provider) in both(&mock) {
        mock.push(Script::invalid_request("messages: field required"));
        let e = start_error(provider.as_ref(), request("m", vec![user("hi")])).await;
        assert_eq!(
            e,
            ModelError::InvalidRequest {
                status: 400,
                message: "messages: field required".into()
            },
            "{name}"
        );
        mock.push(Script::error(
            400,
            "This model's maximum context length is 128000 tokens. However, your messages resulted in 130000 tokens.",
        ));
        let e = start_error(provider.as_ref(), request("m", vec![user("hi")])).await;
        assert!(matches!(e, ModelError::ContextTooLong(_)), "{name}: {e:?}");
        mock.push(Script::error(401, "invalid x-api-key"));
        let e = start_error(provider.as_ref(), request("m", vec![user("hi")])).await;
        assert_eq!(
            e,
            ModelError::Auth("HTTP 401: invalid x-api-key".into()),
            "{name}"
        );
    }
}

#[tokio::test]
async fn cut_stream_ends_with_stream_cut_after_the_deltas_on_both_protocols() {
    let mock = MockLlm::start().await;
    for (name, provider) in both(&mock) {
        // A clean end of the body without the terminator, then a connection reset.
        for script in [
            Script::text("Hello world", 2).cut(),
            Script::text("Hello world", 2).abort(),
        ] {
            mock.push(script);
            let got = run(provider.as_ref(), request("m", vec![user("hi")])).await;
            assert_eq!(got.len(), 3, "{name}: {got:?}");
            assert_eq!(got[..2], [Ok(text("Hello ")), Ok(text("world"))], "{name}");
            assert!(
                matches!(got[2], Err(ModelError::StreamCut(_))),
                "{name}: {got:?}"
            );
        }
    }
}

#[tokio::test]
async fn hung_stream_fails_within_the_idle_timeout_on_both_protocols() {
    let mock = MockLlm::start().await;
    for (name, provider) in both_impatient(&mock) {
        mock.push(Script::text("Hi there", 2).hang());
        let began = Instant::now();
        let got = run(provider.as_ref(), request("m", vec![user("hi")])).await;
        assert_eq!(got[..2], [Ok(text("Hi t")), Ok(text("here"))], "{name}");
        assert!(
            matches!(&got[2], Err(ModelError::StreamCut(m)) if m.contains("no data")),
            "{name}: {got:?}"
        );
        assert!(began.elapsed() < Duration::from_secs(3), "{name}");
        // Headers, then nothing at all.
        mock.push(Script::text("never", 1).hang_after(0));
        let got = run(provider.as_ref(), request("m", vec![user("hi")])).await;
        assert!(
            matches!(got[..], [Err(ModelError::StreamCut(_))]),
            "{name}: {got:?}"
        );
    }
}

#[tokio::test]
async fn dropping_the_stream_aborts_the_request_on_both_protocols() {
    let mock = MockLlm::start().await;
    for (name, provider) in both(&mock) {
        // 500 deltas 20 ms apart take 10 s to send, far longer than the wait below, and
        // the server keeps writing, so it notices a closed connection at the next write.
        // (A silent hang would not show it: nothing is written.)
        mock.push(Script::text(&"x".repeat(500), 500).delay(Duration::from_millis(20)));
        let mut stream = provider
            .stream(&request("m", vec![user("hi")]))
            .await
            .unwrap();
        assert_eq!(stream.next().await, Some(Ok(text("x"))), "{name}");
        assert_eq!(
            mock.open_streams(),
            1,
            "{name}: the answer is still being sent"
        );
        drop(stream);
        let began = Instant::now();
        while mock.open_streams() > 0 {
            assert!(
                began.elapsed() < Duration::from_secs(3),
                "{name}: the server still sends after the stream was dropped"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

#[tokio::test]
async fn unreachable_server_is_a_network_error() {
    // Bind then drop a listener: nothing listens on that port any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let provider = OpenAiProvider::new(
        HttpClient::new().unwrap(),
        format!("http://127.0.0.1:{port}/v1"),
        None,
    );
    let e = start_error(&provider, request("m", vec![user("hi")])).await;
    assert!(matches!(e, ModelError::Network(_)), "{e:?}");
}

// ------------------------------------------------------------------ request mapping

/// A history exercising every part type: images by URL and inline, thinking with a
/// signature, redacted thinking, two tool calls (one with unparsable arguments), tool
/// results with an image and an error.
fn rich_request(model: &str) -> ModelRequest {
    ModelRequest {
        model: model.into(),
        system: "You are terse.".into(),
        messages: vec![
            ModelMessage::User {
                parts: vec![
                    UserPart::Text {
                        text: "Look at this".into(),
                    },
                    UserPart::Image {
                        url: Some("https://example.com/cat.png".into()),
                        data: None,
                        mime_type: None,
                    },
                    UserPart::Image {
                        url: None,
                        data: Some("AAAA".into()),
                        mime_type: Some("image/jpeg".into()),
                    },
                ],
            },
            ModelMessage::Assistant {
                parts: vec![
                    AssistantPart::Thinking {
                        text: "hmm".into(),
                        signature: Some("sig1".into()),
                    },
                    AssistantPart::RedactedThinking {
                        data: "opaque".into(),
                    },
                    AssistantPart::Text {
                        text: "Calling.".into(),
                    },
                    call("call_1", "read", r#"{"path":"a.png"}"#),
                    call("call_2", "ls", "not json"),
                ],
            },
            ModelMessage::Tool {
                results: vec![
                    ToolResult {
                        tool_call_id: "call_1".into(),
                        tool_name: "read".into(),
                        content: "an image".into(),
                        is_error: false,
                        images: vec![ImageData {
                            mime_type: "image/png".into(),
                            data: "iVBO".into(),
                        }],
                    },
                    ToolResult {
                        tool_call_id: "call_2".into(),
                        tool_name: "ls".into(),
                        content: "no such dir".into(),
                        is_error: true,
                        images: Vec::new(),
                    },
                ],
            },
            user("thanks"),
        ],
        tools: vec![ToolSchema {
            name: "read".into(),
            description: "Read a file".into(),
            parameters: json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": "object",
                "properties": {"path": {"type": "string"}},
                "required": ["path"],
            }),
        }],
        temperature: Some(0.5),
        max_tokens: Some(100),
        ..Default::default()
    }
}

async fn sent(
    mock: &MockLlm,
    provider: &dyn ModelProvider,
    request: ModelRequest,
) -> RecordedRequest {
    mock.push(Script::text("ok", 1));
    deltas(provider, request).await;
    assert_eq!(
        mock.violations(),
        [],
        "the mapped history is one the provider accepts"
    );
    mock.requests().pop().expect("a request was recorded")
}

/// A history whose second call has no result: what an agent loop that lost a result
/// would send.
fn unanswered_call() -> ModelRequest {
    let mut request = rich_request("m");
    request.messages.truncate(3);
    if let Some(ModelMessage::Tool { results }) = request.messages.last_mut() {
        results.truncate(1);
    }
    request.messages.push(user("and then?"));
    request
}

/// The mock refuses a history the provider would refuse, and the adapter surfaces the
/// refusal, naming the rule, as the provider's own 400.
#[tokio::test]
async fn a_broken_history_is_refused_naming_the_rule_on_both_protocols() {
    let mock = MockLlm::start().await;
    for (name, provider) in both(&mock) {
        let e = start_error(provider.as_ref(), unanswered_call()).await;
        let ModelError::InvalidRequest { status, message } = &e else {
            panic!("{name}: {e:?}");
        };
        assert_eq!(*status, 400, "{name}");
        assert!(
            message.contains("history invariant `answered_before_next_turn` broken")
                && message.contains("call_2"),
            "{name}: {message}"
        );
    }
    let broken: Vec<_> = mock.violations().iter().map(|v| v.invariant).collect();
    assert_eq!(broken, [Invariant::AnsweredBeforeNextTurn; 2]);
    assert!(mock.requests().iter().all(|r| r.violation.is_some()));
}

/// A mock told to accept anything answers the same history as scripted.
#[tokio::test]
async fn accept_any_history_turns_the_check_off() {
    let mock = MockLlm::start().await;
    mock.accept_any_history();
    for (name, provider) in both(&mock) {
        mock.push(Script::text("fine", 1));
        let got = deltas(provider.as_ref(), unanswered_call()).await;
        assert_eq!(got[0], text("fine"), "{name}");
    }
    assert_eq!(mock.violations(), []);
}

#[tokio::test]
async fn openai_request_mapping() {
    let mock = MockLlm::start().await;
    let got = sent(&mock, &openai(&mock), rich_request("gpt-4o-mini")).await;
    assert_eq!(got.path, "/v1/chat/completions");
    assert_eq!(got.header("authorization"), Some("Bearer sk-openai"));
    assert_eq!(
        got.body,
        json!({
            "model": "gpt-4o-mini",
            "stream": true,
            "stream_options": {"include_usage": true},
            "temperature": 0.5,
            "max_tokens": 100,
            "messages": [
                {"role": "system", "content": "You are terse."},
                {"role": "user", "content": [
                    {"type": "text", "text": "Look at this"},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
                    {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,AAAA"}},
                ]},
                {"role": "assistant", "content": "Calling.", "tool_calls": [
                    {"id": "call_1", "type": "function",
                     "function": {"name": "read", "arguments": "{\"path\":\"a.png\"}"}},
                    {"id": "call_2", "type": "function",
                     "function": {"name": "ls", "arguments": "not json"}},
                ]},
                {"role": "tool", "tool_call_id": "call_1", "content": "an image"},
                {"role": "tool", "tool_call_id": "call_2", "content": "no such dir"},
                {"role": "user", "content": [
                    {"type": "text", "text": "Images returned by read (call call_1):"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBO"}},
                ]},
                {"role": "user", "content": "thanks"},
            ],
            "tools": [{"type": "function", "function": {
                "name": "read",
                "description": "Read a file",
                "parameters": {"type": "object", "properties": {"path": {"type": "string"}},
                               "required": ["path"]},
            }}],
        })
    );
}

#[tokio::test]
async fn anthropic_request_mapping() {
    let mock = MockLlm::start().await;
    let mut request = rich_request("claude-sonnet-4-5");
    request.max_tokens = None;
    let got = sent(&mock, &anthropic(&mock), request).await;
    assert_eq!(got.path, "/v1/messages");
    assert_eq!(got.header("x-api-key"), Some("sk-ant"));
    assert_eq!(got.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(got.header("authorization"), None);
    assert_eq!(
        got.body,
        json!({
            "model": "claude-sonnet-4-5",
            "max_tokens": 8192,
            "stream": true,
            "system": "You are terse.",
            "temperature": 0.5,
            "messages": [
                {"role": "user", "content": [
                    {"type": "text", "text": "Look at this"},
                    {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "AAAA"}},
                ]},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "hmm", "signature": "sig1"},
                    {"type": "redacted_thinking", "data": "opaque"},
                    {"type": "text", "text": "Calling."},
                    {"type": "tool_use", "id": "call_1", "name": "read", "input": {"path": "a.png"}},
                    {"type": "tool_use", "id": "call_2", "name": "ls", "input": {}},
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "call_1", "is_error": false, "content": [
                        {"type": "text", "text": "an image"},
                        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBO"}},
                    ]},
                    {"type": "tool_result", "tool_use_id": "call_2", "is_error": true,
                     "content": "no such dir"},
                ]},
                {"role": "user", "content": [{"type": "text", "text": "thanks"}]},
            ],
            "tools": [{
                "name": "read",
                "description": "Read a file",
                "input_schema": {"type": "object", "properties": {"path": {"type": "string"}},
                                 "required": ["path"]},
            }],
        })
    );
}

/// Thinking, effort and prompt caching on Anthropic's wire: `thinking` with its budget,
/// `output_config.effort`, and cache breakpoints on the system prompt, the last tool and
/// the last block of the two latest user-side messages (four, the API's maximum); the
/// default `max_tokens` leaves room for the answer above the thinking budget.
#[tokio::test]
async fn anthropic_thinking_effort_and_cache_breakpoints() {
    let mock = MockLlm::start().await;
    let mut request = rich_request("claude-sonnet-4-5");
    request.max_tokens = None;
    request.thinking = Some(ThinkingSettings {
        budget_tokens: 10_000,
    });
    request.reasoning_effort = Some(ReasoningEffort::Medium);
    request.prompt_cache = true;
    let got = sent(&mock, &anthropic(&mock), request).await;
    let body = &got.body;
    assert_eq!(
        body["thinking"],
        json!({"type": "enabled", "budget_tokens": 10_000})
    );
    assert_eq!(body["output_config"], json!({"effort": "medium"}));
    assert_eq!(body["max_tokens"], 18_192);
    let ephemeral = json!({"type": "ephemeral"});
    assert_eq!(
        body["system"],
        json!([{"type": "text", "text": "You are terse.", "cache_control": ephemeral}])
    );
    assert_eq!(body["tools"][0]["cache_control"], ephemeral);
    let marked: Vec<(usize, usize)> = body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .flat_map(|(m, message)| {
            let blocks = message["content"].as_array().cloned().unwrap_or_default();
            blocks
                .into_iter()
                .enumerate()
                .filter(|(_, block)| block.get("cache_control").is_some())
                .map(move |(b, _)| (m, b))
                .collect::<Vec<_>>()
        })
        .collect();
    // Message 2 holds the tool results (its last block is the second result), message 3
    // the last user text; the first user message and the assistant's are not marked.
    assert_eq!(marked, [(2, 1), (3, 0)]);
}

/// With the cache off the body is the plain mapping: no breakpoint anywhere.
#[tokio::test]
async fn anthropic_without_prompt_cache_has_no_breakpoints() {
    let mock = MockLlm::start().await;
    let got = sent(&mock, &anthropic(&mock), rich_request("claude-sonnet-4-5")).await;
    assert!(
        !got.body.to_string().contains("cache_control"),
        "{}",
        got.body
    );
    assert_eq!(got.body["system"], "You are terse.");
    assert!(got.body.get("thinking").is_none() && got.body.get("output_config").is_none());
}

/// OpenAI's wire: `reasoning_effort` as named, thinking in the shape gateways take.
#[tokio::test]
async fn openai_reasoning_effort_and_thinking_are_sent() {
    let mock = MockLlm::start().await;
    let mut request = rich_request("o4-mini");
    request.reasoning_effort = Some(ReasoningEffort::High);
    request.thinking = Some(ThinkingSettings {
        budget_tokens: 2048,
    });
    request.prompt_cache = true;
    let got = sent(&mock, &openai(&mock), request).await;
    assert_eq!(got.body["reasoning_effort"], "high");
    assert_eq!(
        got.body["thinking"],
        json!({"type": "enabled", "budget_tokens": 2048})
    );
    assert_eq!(got.body["max_completion_tokens"], 100);
    assert!(!got.body.to_string().contains("cache_control"));
}

/// Cache reads and writes reach `Usage` from both formats; prompt tokens count them.
#[tokio::test]
async fn cached_prompt_tokens_are_reported_on_both_protocols() {
    let mock = MockLlm::start().await;
    for (name, provider) in both(&mock) {
        mock.push(Script::text("ok", 1).usage(100, 7).cache_usage(900, 50));
        let got = deltas(provider.as_ref(), request("m", vec![user("hi")])).await;
        let usage = got
            .iter()
            .find_map(|d| match d {
                ModelDelta::Usage(u) => Some(*u),
                _ => None,
            })
            .expect("usage");
        // OpenAI reports no cache writes: they are part of its prompt tokens only.
        let written = if name == "anthropic" { 50 } else { 0 };
        assert_eq!(
            usage,
            Usage {
                prompt_tokens: 1050,
                completion_tokens: 7,
                total_tokens: 1057,
                model_requests: 1,
                cache_read_tokens: 900,
                cache_write_tokens: written,
            },
            "{name}"
        );
    }
}

// ------------------------------------------------------------------------- router

fn endpoint(key: Option<&str>, url: Option<String>) -> Endpoint {
    Endpoint {
        api_key: key.map(str::to_owned),
        base_url: url,
    }
}

#[tokio::test]
async fn router_sends_gateway_models_to_the_gateway_with_its_key() {
    let gateway = MockLlm::start().await;
    let elsewhere = MockLlm::start().await;
    let router = ModelRouter::new(LlmSettings {
        openai: endpoint(Some("sk-openai"), Some(elsewhere.base_url())),
        anthropic: endpoint(Some("sk-ant"), Some(elsewhere.base_url())),
        gateways: BTreeMap::from([(
            "mygw".to_owned(),
            endpoint(Some("gw-key"), Some(gateway.base_url())),
        )]),
        idle_timeout: PATIENT,
    })
    .unwrap();

    gateway.push(Script::text("hi", 1));
    deltas(&router, request("MyGw@openai:qwen3:8b", vec![user("x")])).await;
    let got = gateway.requests().pop().unwrap();
    assert_eq!(got.path, "/v1/chat/completions");
    assert_eq!(got.header("authorization"), Some("Bearer gw-key"));
    assert_eq!(got.body["model"], "qwen3:8b");

    gateway.push(Script::text("hi", 1));
    deltas(&router, request("mygw@anthropic:claude-x", vec![user("x")])).await;
    let got = gateway.requests().pop().unwrap();
    assert_eq!(got.path, "/v1/messages");
    assert_eq!(got.header("x-api-key"), Some("gw-key"));
    assert_eq!(got.body["model"], "claude-x");

    assert!(elsewhere.requests().is_empty());
    assert_eq!(
        start_error(&router, request("other@openai:m", vec![user("x")])).await,
        ModelError::Auth("OTHER_API_KEY / OTHER_BASE_URL are not set".into())
    );
}

#[tokio::test]
async fn router_uses_provider_endpoints_and_allows_keyless_local_openai() {
    let mock = MockLlm::start().await;
    let router = ModelRouter::new(LlmSettings {
        openai: endpoint(None, Some(mock.base_url())),
        anthropic: endpoint(Some("sk-ant"), Some(mock.base_url())),
        // Short enough for the hang below, long enough not to trip the other requests.
        idle_timeout: Duration::from_secs(1),
        ..LlmSettings::default()
    })
    .unwrap();

    mock.push(Script::text("hi", 1));
    deltas(&router, request("openai:llama3", vec![user("x")])).await;
    let got = mock.requests().pop().unwrap();
    assert_eq!(got.header("authorization"), None);
    assert_eq!(got.body["model"], "llama3");

    mock.push(Script::text("hi", 1));
    deltas(&router, request("anthropic:claude-haiku", vec![user("x")])).await;
    let got = mock.requests().pop().unwrap();
    assert_eq!(got.header("x-api-key"), Some("sk-ant"));
    assert_eq!(got.body["model"], "claude-haiku");

    // The router's idle timeout reaches the adapters.
    mock.push(Script::text("x", 1).hang_after(0));
    let got = run(&router, request("openai:llama3", vec![user("x")])).await;
    assert!(
        matches!(got[..], [Err(ModelError::StreamCut(_))]),
        "{got:?}"
    );

    let keyless = ModelRouter::new(LlmSettings::default()).unwrap();
    assert_eq!(
        start_error(&keyless, request("openai:gpt-4o", vec![user("x")])).await,
        ModelError::Auth("OPENAI_API_KEY is not set".into())
    );
}

// ---------------------------------------------------------------------- test models

#[tokio::test]
async fn test_echo_answers_the_last_user_text_in_several_deltas() {
    let messages = vec![user("first"), user("hello big world")];
    let got = deltas(&TestModel::new(), request("test:echo", messages.clone())).await;
    assert_eq!(
        got[..4],
        [text("echo: "), text("hello "), text("big "), text("world")]
    );
    assert!(matches!(
        got[4],
        ModelDelta::Usage(Usage {
            model_requests: 1,
            ..
        })
    ));
    assert_eq!(got[5], finish("stop"));
    assert_eq!(got.len(), 6);
    // Deterministic, and the same through the router.
    let router = ModelRouter::new(LlmSettings::default()).unwrap();
    assert_eq!(deltas(&router, request("test:echo", messages)).await, got);
}

#[tokio::test]
async fn test_call_round_trip() {
    let provider = TestModel::new();
    let arguments = r#"{"command": "ls -la", "timeout": 5}"#;
    let mut history = vec![user(arguments)];
    let got = deltas(&provider, request("test:call:shell", history.clone())).await;
    assert_eq!(got[0], start(0, "call_1", "shell"));
    assert!(
        got.len() > 4,
        "arguments come in several fragments: {got:?}"
    );
    assert_eq!(got.last(), Some(&finish("tool_calls")));
    let parts = assemble(&got);
    assert_eq!(parts, [call("call_1", "shell", arguments)]);

    history.push(ModelMessage::Assistant { parts });
    history.push(ModelMessage::Tool {
        results: vec![ToolResult {
            tool_call_id: "call_1".into(),
            tool_name: "shell".into(),
            content: "total 0".into(),
            is_error: false,
            images: Vec::new(),
        }],
    });
    let got = deltas(&provider, request("test:call:shell", history)).await;
    assert_eq!(
        assemble(&got),
        [AssistantPart::Text {
            text: "shell: total 0".into()
        }]
    );
    assert_eq!(got.last(), Some(&finish("stop")));
}

#[tokio::test]
async fn unknown_test_model_is_rejected() {
    let e = start_error(&TestModel::new(), request("test:nope", vec![user("x")])).await;
    assert_eq!(e, ModelError::UnknownModel("test:nope".into()));
}

/// Routed scripts go to the request that carries their marker, whatever the arrival order;
/// unmatched requests take the queue, then the default answer.
#[tokio::test]
async fn mock_routes_scripts_by_a_marker_in_the_request() {
    let mock = MockLlm::start().await;
    mock.push_when("agent-beta", Script::text("for beta", 1));
    mock.push_when("agent-alpha", Script::text("for alpha", 1));
    mock.push_when("agent-alpha", Script::text("alpha again", 1));
    mock.push(Script::text("queued", 1));
    let provider = openai(&mock);
    let ask = |who: &str| request("gpt-test", vec![user(&format!("I am {who}"))]);
    let answer = |items: Vec<ModelDelta>| -> String {
        items
            .into_iter()
            .filter_map(|d| match d {
                ModelDelta::Text(t) => Some(t),
                _ => None,
            })
            .collect()
    };
    assert_eq!(
        answer(deltas(&provider, ask("agent-alpha")).await),
        "for alpha"
    );
    assert_eq!(answer(deltas(&provider, ask("someone")).await), "queued");
    assert_eq!(
        answer(deltas(&provider, ask("agent-beta")).await),
        "for beta"
    );
    assert_eq!(
        answer(deltas(&provider, ask("agent-alpha")).await),
        "alpha again"
    );
    assert_eq!(
        answer(deltas(&provider, ask("agent-alpha")).await),
        "w0 w1 w2 w3 w4 ",
        "routes are used once"
    );
}

/// Base URLs as the official SDKs take them: Anthropic's without `/v1` (its SDK adds it),
/// a local OpenAI-compatible server's as a bare `http://host:port`; both reach `/v1/…`.
#[tokio::test]
async fn router_takes_base_urls_with_or_without_v1() {
    let mock = MockLlm::start().await;
    let root = mock.base_url().trim_end_matches("/v1").to_owned();
    let router = ModelRouter::new(LlmSettings {
        openai: endpoint(None, Some(root.clone())),
        anthropic: endpoint(Some("sk-ant"), Some(format!("{root}/"))),
        idle_timeout: PATIENT,
        ..LlmSettings::default()
    })
    .unwrap();
    for (model, path) in [
        ("openai:llama3", "/v1/chat/completions"),
        ("anthropic:claude-haiku", "/v1/messages"),
    ] {
        mock.push(Script::text("hi", 1));
        assert_eq!(
            deltas(&router, request(model, vec![user("x")])).await[0],
            text("hi")
        );
        assert_eq!(mock.requests().pop().unwrap().path, path, "{model}");
    }
}

/// A 200 that is not an event stream (a proxy's login page, a server that ignored
/// `stream: true`) is an error naming the content type and what it said, not a "stream
/// cut"; it is not retried, since it would come again.
#[tokio::test]
async fn an_answer_that_is_not_an_event_stream_names_its_content_type() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let bodies = [
            ("text/html; charset=utf-8", "<html>Sign in to the proxy</html>".to_owned()),
            (
                "application/json",
                r#"{"error":{"message":"streaming is not enabled","type":"invalid_request_error"}}"#
                    .to_owned(),
            ),
        ];
        for (content_type, body) in bodies.iter().cycle().take(4) {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let mut buf = vec![0u8; 64 * 1024];
            let _ = socket.read(&mut buf).await;
            let answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(answer.as_bytes()).await;
        }
    });
    let base = format!("http://{addr}/v1");
    let providers: [(&str, Box<dyn ModelProvider>); 2] = [
        (
            "openai",
            Box::new(
                OpenAiProvider::new(HttpClient::new().unwrap(), base.clone(), Some("k".into()))
                    .with_idle_timeout(PATIENT),
            ),
        ),
        (
            "anthropic",
            Box::new(
                AnthropicProvider::new(HttpClient::new().unwrap(), base.clone(), Some("k".into()))
                    .with_idle_timeout(PATIENT),
            ),
        ),
    ];
    for (name, provider) in providers {
        let html = start_error(provider.as_ref(), request("m", vec![user("hi")])).await;
        let ModelError::InvalidRequest { status, message } = &html else {
            panic!("{name}: {html:?}");
        };
        assert_eq!(*status, 200, "{name}");
        assert!(message.contains("text/html"), "{name}: {message}");
        assert!(
            message.contains("Sign in to the proxy"),
            "{name}: {message}"
        );
        assert!(!html.is_retryable(), "{name}");
        let json = start_error(provider.as_ref(), request("m", vec![user("hi")])).await;
        assert!(
            json.to_string().contains("application/json")
                && json.to_string().contains("streaming is not enabled"),
            "{name}: {json}"
        );
    }
}

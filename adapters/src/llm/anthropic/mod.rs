//! Anthropic Messages, streaming.

use std::time::Duration;

use async_trait::async_trait;
use eventsource_stream::Event;
use ports::{ModelDelta, ModelError, ModelProvider, ModelRequest, ModelStream, Usage};

use super::HttpClient;
use super::connection::Connection;
use super::http_error::{error_fields, in_stream};
use super::sse::{self, Decoder};

mod wire;

pub use wire::DEFAULT_MAX_TOKENS;

/// The API version whose wire format this adapter speaks.
const API_VERSION: &str = "2023-06-01";

/// A Messages endpoint. The request's `model` is sent as is (the router has already
/// removed the `anthropic:` prefix).
#[derive(Debug, Clone)]
pub struct AnthropicProvider(Connection);

impl AnthropicProvider {
    /// `base_url` ends before `/messages`, e.g. `https://api.anthropic.com/v1`. The key is
    /// sent as `x-api-key` (optional only for compatible servers that need none).
    pub fn new(http: HttpClient, base_url: impl Into<String>, api_key: Option<String>) -> Self {
        Self(Connection::new(http, base_url.into(), api_key))
    }

    /// Longest wait for the response headers and between two body chunks.
    pub fn with_idle_timeout(mut self, idle: Duration) -> Self {
        self.0.set_idle_timeout(idle);
        self
    }
}

#[async_trait]
impl ModelProvider for AnthropicProvider {
    async fn stream(&self, request: &ModelRequest) -> Result<ModelStream, ModelError> {
        self.stream_as(&request.model, request).await
    }
}

impl AnthropicProvider {
    /// Sends `request` naming the model `model` (the router strips its routing prefix).
    pub(crate) async fn stream_as(
        &self,
        model: &str,
        request: &ModelRequest,
    ) -> Result<ModelStream, ModelError> {
        let mut http = self
            .0
            .post("messages", &wire::request_body(model, request))
            .header("anthropic-version", API_VERSION);
        if let Some(key) = &self.0.api_key {
            http = http.header("x-api-key", key);
        }
        self.0.open(http, EventDecoder::default()).await
    }
}

/// Stream state: the usage halves and the stop reason, emitted at `message_stop`.
#[derive(Default)]
struct EventDecoder {
    input_tokens: u64,
    output_tokens: u64,
    cache_read_tokens: u64,
    cache_write_tokens: u64,
    has_usage: bool,
    stop_reason: Option<String>,
}

impl EventDecoder {
    fn take_usage(&mut self, usage: Option<wire::WireUsage>) {
        let Some(usage) = usage else { return };
        self.has_usage = true;
        if let Some(input) = usage.input_tokens {
            // Cached prompt tokens are billed apart but are still prompt tokens.
            self.cache_write_tokens = usage.cache_creation_input_tokens.unwrap_or(0);
            self.cache_read_tokens = usage.cache_read_input_tokens.unwrap_or(0);
            self.input_tokens = input + self.cache_write_tokens + self.cache_read_tokens;
        }
        if let Some(output) = usage.output_tokens {
            self.output_tokens = output;
        }
    }
}

/// Anthropic's stop reasons in OpenAI's words, the vocabulary of our `Finish`.
fn finish_reason(stop_reason: &str) -> String {
    match stop_reason {
        "end_turn" | "stop_sequence" => "stop",
        "max_tokens" => "length",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        other => other,
    }
    .to_owned()
}

fn push_text(out: &mut Vec<ModelDelta>, make: fn(String) -> ModelDelta, text: String) {
    if !text.is_empty() {
        out.push(make(text));
    }
}

impl Decoder for EventDecoder {
    fn event(&mut self, event: &Event, out: &mut Vec<ModelDelta>) -> Result<bool, ModelError> {
        if event.data.trim().is_empty() {
            return Ok(false);
        }
        match sse::parse::<wire::StreamEvent>(event)? {
            wire::StreamEvent::MessageStart { message } => self.take_usage(message.usage),
            wire::StreamEvent::ContentBlockStart {
                index,
                content_block,
            } => match content_block {
                wire::ContentBlock::Text { text } => push_text(out, ModelDelta::Text, text),
                wire::ContentBlock::Thinking { thinking } => {
                    push_text(out, ModelDelta::Thinking, thinking);
                }
                wire::ContentBlock::RedactedThinking { data } => {
                    out.push(ModelDelta::RedactedThinking(data));
                }
                wire::ContentBlock::ToolUse { id, name, input } => {
                    out.push(ModelDelta::ToolCallStart { index, id, name });
                    // The API streams `{}` here and the input as deltas; a proxy that sends
                    // the whole input up front is honoured.
                    if let Some(input) =
                        input.filter(|i| i.as_object().is_some_and(|o| !o.is_empty()))
                    {
                        out.push(ModelDelta::ToolCallArgs {
                            index,
                            fragment: input.to_string(),
                        });
                    }
                }
                wire::ContentBlock::Other => {}
            },
            wire::StreamEvent::ContentBlockDelta { index, delta } => match delta {
                wire::BlockDelta::TextDelta { text } => push_text(out, ModelDelta::Text, text),
                wire::BlockDelta::ThinkingDelta { thinking } => {
                    push_text(out, ModelDelta::Thinking, thinking);
                }
                wire::BlockDelta::SignatureDelta { signature } => {
                    push_text(out, ModelDelta::ThinkingSignature, signature);
                }
                wire::BlockDelta::InputJsonDelta { partial_json } if !partial_json.is_empty() => {
                    out.push(ModelDelta::ToolCallArgs {
                        index,
                        fragment: partial_json,
                    });
                }
                wire::BlockDelta::InputJsonDelta { .. } | wire::BlockDelta::Other => {}
            },
            wire::StreamEvent::MessageDelta { delta, usage } => {
                if delta.stop_reason.is_some() {
                    self.stop_reason = delta.stop_reason;
                }
                self.take_usage(usage);
            }
            wire::StreamEvent::MessageStop => return Ok(true),
            wire::StreamEvent::Error { error } => {
                let (kind, message) = error_fields(&error);
                let message = message.unwrap_or_else(|| error.to_string());
                return Err(in_stream(kind.as_deref(), message));
            }
            wire::StreamEvent::ContentBlockStop {}
            | wire::StreamEvent::Ping
            | wire::StreamEvent::Unknown => {}
        }
        Ok(false)
    }

    fn finish(&mut self, out: &mut Vec<ModelDelta>) {
        if self.has_usage {
            out.push(ModelDelta::Usage(Usage {
                prompt_tokens: self.input_tokens,
                completion_tokens: self.output_tokens,
                total_tokens: self.input_tokens + self.output_tokens,
                model_requests: 1,
                cache_read_tokens: self.cache_read_tokens,
                cache_write_tokens: self.cache_write_tokens,
            }));
        }
        let reason = self.stop_reason.as_deref().unwrap_or("end_turn");
        out.push(ModelDelta::Finish {
            reason: finish_reason(reason),
        });
    }

    /// Every complete answer ends with `message_stop`.
    fn eof(&mut self) -> Result<(), ModelError> {
        Err(ModelError::StreamCut(
            "the response ended before message_stop".into(),
        ))
    }
}

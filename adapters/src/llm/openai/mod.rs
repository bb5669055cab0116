//! OpenAI Chat Completions, streaming. Works with any compatible server (Ollama, vLLM,
//! llama.cpp, gateways) through its base URL.

use std::time::Duration;

use async_trait::async_trait;
use eventsource_stream::Event;
use ports::{ModelDelta, ModelError, ModelProvider, ModelRequest, ModelStream, Usage};

use super::HttpClient;
use super::connection::Connection;
use super::http_error::{error_fields, in_stream};
use super::sse::{self, Decoder};

mod wire;

/// A Chat Completions endpoint. The request's `model` is sent as is (the router has already
/// removed the `openai:` prefix; names like `qwen3:8b` keep their colon).
#[derive(Debug, Clone)]
pub struct OpenAiProvider(Connection);

impl OpenAiProvider {
    /// `base_url` ends before `/chat/completions`, e.g. `https://api.openai.com/v1`. Without
    /// a key no `Authorization` header is sent (local servers need none).
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
impl ModelProvider for OpenAiProvider {
    async fn stream(&self, request: &ModelRequest) -> Result<ModelStream, ModelError> {
        self.stream_as(&request.model, request).await
    }
}

impl OpenAiProvider {
    /// Sends `request` naming the model `model` (the router strips its routing prefix).
    pub(crate) async fn stream_as(
        &self,
        model: &str,
        request: &ModelRequest,
    ) -> Result<ModelStream, ModelError> {
        let mut http = self
            .0
            .post("chat/completions", &wire::request_body(model, request));
        if let Some(key) = &self.0.api_key {
            http = http.bearer_auth(key);
        }
        self.0.open(http, ChunkDecoder::default()).await
    }
}

/// Stream state: tool calls seen so far, and what the closing deltas need.
#[derive(Default)]
struct ChunkDecoder {
    /// `(wire index, id)` per call, in order of appearance; the position is our index.
    calls: Vec<(u32, String)>,
    finish_reason: Option<String>,
    usage: Option<Usage>,
}

impl ChunkDecoder {
    /// Our index for a tool-call fragment, announcing the call when it is new. `id` and
    /// `name` come only in a call's first fragment; a fragment with a different id at a
    /// known wire index starts a new call (servers that number every call 0).
    fn call_index(
        &mut self,
        wire_index: u32,
        id: Option<&str>,
        name: Option<&str>,
        out: &mut Vec<ModelDelta>,
    ) -> u32 {
        let known = self.calls.iter().rposition(|(w, _)| *w == wire_index);
        if let Some(at) = known
            && id.is_none_or(|id| self.calls.get(at).is_some_and(|(_, known)| known == id))
        {
            return u32::try_from(at).unwrap_or(u32::MAX);
        }
        let index = u32::try_from(self.calls.len()).unwrap_or(u32::MAX);
        let id = id.map_or_else(|| format!("call_{index}"), str::to_owned);
        self.calls.push((wire_index, id.clone()));
        out.push(ModelDelta::ToolCallStart {
            index,
            id,
            name: name.unwrap_or_default().to_owned(),
        });
        index
    }
}

/// `Some(s)` unless empty: servers send `""` and `null` alike for "nothing here".
fn non_empty(s: Option<&String>) -> Option<&str> {
    s.map(String::as_str).filter(|s| !s.is_empty())
}

/// [`non_empty`] for a string the caller owns.
fn owned_non_empty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.is_empty())
}

impl Decoder for ChunkDecoder {
    fn event(&mut self, event: &Event, out: &mut Vec<ModelDelta>) -> Result<bool, ModelError> {
        let data = event.data.trim();
        if data == "[DONE]" {
            return Ok(true);
        }
        if data.is_empty() {
            return Ok(false);
        }
        let chunk: wire::Chunk = sse::parse(event)?;
        if let Some(error) = &chunk.error {
            let (kind, message) = error_fields(error);
            let message = message.unwrap_or_else(|| error.to_string());
            return Err(in_stream(kind.as_deref(), message));
        }
        for choice in chunk.choices.unwrap_or_default() {
            let delta = choice.delta.unwrap_or_default();
            // The texts move into the deltas: a chunk's content is not copied.
            let reasoning = owned_non_empty(delta.reasoning_content)
                .or_else(|| owned_non_empty(delta.reasoning));
            if let Some(text) = reasoning {
                out.push(ModelDelta::Thinking(text));
            }
            if let Some(text) = owned_non_empty(delta.content) {
                out.push(ModelDelta::Text(text));
            }
            for (pos, call) in delta.tool_calls.unwrap_or_default().into_iter().enumerate() {
                let wire_index = call
                    .index
                    .unwrap_or_else(|| u32::try_from(pos).unwrap_or(u32::MAX));
                let function = call.function.as_ref();
                let index = self.call_index(
                    wire_index,
                    non_empty(call.id.as_ref()),
                    function.and_then(|f| non_empty(f.name.as_ref())),
                    out,
                );
                if let Some(fragment) = function.and_then(|f| non_empty(f.arguments.as_ref())) {
                    out.push(ModelDelta::ToolCallArgs {
                        index,
                        fragment: fragment.to_owned(),
                    });
                }
            }
            if let Some(reason) = choice.finish_reason.filter(|r| !r.is_empty()) {
                self.finish_reason = Some(reason);
            }
        }
        if let Some(usage) = chunk.usage {
            let prompt = usage.prompt_tokens.unwrap_or(0);
            let completion = usage.completion_tokens.unwrap_or(0);
            self.usage = Some(Usage {
                prompt_tokens: prompt,
                completion_tokens: completion,
                total_tokens: usage.total_tokens.unwrap_or(prompt + completion),
                model_requests: 1,
                cache_read_tokens: usage
                    .prompt_tokens_details
                    .and_then(|d| d.cached_tokens)
                    .unwrap_or(0),
                cache_write_tokens: 0,
            });
        }
        Ok(false)
    }

    fn finish(&mut self, out: &mut Vec<ModelDelta>) {
        if let Some(usage) = self.usage.take() {
            out.push(ModelDelta::Usage(usage));
        }
        let reason = self.finish_reason.take().unwrap_or_else(|| {
            (if self.calls.is_empty() {
                "stop"
            } else {
                "tool_calls"
            })
            .to_owned()
        });
        out.push(ModelDelta::Finish { reason });
    }

    /// Servers that omit `[DONE]` still send a finish reason, after which the answer is
    /// complete; without one the answer was cut.
    fn eof(&mut self) -> Result<(), ModelError> {
        if self.finish_reason.is_some() {
            Ok(())
        } else {
            Err(ModelError::StreamCut(
                "the response ended before its finish reason and [DONE]".into(),
            ))
        }
    }
}

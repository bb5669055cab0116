//! Model providers behind `ports::ModelProvider`: OpenAI Chat Completions (and every
//! compatible server), Anthropic Messages, and the built-in `test:` models, with a router
//! that picks one from the full model name.
//!
//! The adapters are hand-written on reqwest + eventsource-stream rather than an LLM client
//! library, because our history types must round-trip exactly what the providers need
//! replayed (Anthropic thinking signatures and redacted thinking, tool-call ids), and raw
//! tool-argument fragments map 1:1 onto our deltas. No reqwest type leaves this module:
//! [`HttpClient`] is opaque, and every failure becomes a `ports::ModelError`.
//!
//! Normalization: finish reasons use OpenAI's words (`stop`, `length`, `tool_calls`,
//! `content_filter`; Anthropic's `end_turn`/`stop_sequence`, `max_tokens`, `tool_use`,
//! `refusal` are translated, others pass through). One `Usage` delta (with
//! `model_requests: 1`) comes right before `Finish`, when the provider reported usage.

use std::time::Duration;

use ports::ModelError;

pub mod anthropic;
mod breaker;
mod connection;
mod http_error;
pub mod openai;
mod router;
mod sse;
mod test_model;

pub use anthropic::AnthropicProvider;
pub use breaker::{BreakerSettings, CircuitBreakers};
pub use openai::OpenAiProvider;
pub use router::{Endpoint, LlmSettings, ModelRouter};
pub use test_model::TestModel;

/// How long establishing a connection may take; a provider that cannot be reached in this
/// time is down for our purposes, and the retry policy takes over.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Default longest silence between two pieces of a response (and before its headers).
/// Streaming bodies have no total timeout, since long answers are legitimate, but a server
/// that stops sending must not hang a run forever.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(120);

/// A shared HTTP connection pool. Cheap to clone; reuse one per process so connections
/// (and TLS sessions) to a provider are kept alive across requests.
#[derive(Debug, Clone)]
pub struct HttpClient(reqwest::Client);

impl HttpClient {
    /// A pool with [`CONNECT_TIMEOUT`] and no total request timeout.
    pub fn new() -> Result<Self, ModelError> {
        reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map(Self)
            .map_err(|e| ModelError::Network(format!("building the HTTP client: {e}")))
    }
}

/// Removes the JSON-schema dialect marker (`$schema`), which schemars emits and providers
/// reject or ignore inside tool parameters.
fn strip_schema_marker(parameters: &serde_json::Value) -> serde_json::Value {
    let mut parameters = parameters.clone();
    if let Some(object) = parameters.as_object_mut() {
        object.remove("$schema");
    }
    parameters
}

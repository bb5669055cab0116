//! One streamed model request: our messages and tool schemas in, normalized deltas out.

use std::time::Duration;

use async_trait::async_trait;
use futures::stream::BoxStream;

use crate::{ModelMessage, ReasoningEffort, ThinkingSettings, ToolSchema, Usage};

/// Everything one model request needs; credentials are the adapter's business.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ModelRequest {
    /// The full model name, `[gateway@]provider:model` or `test:…`; a routing provider
    /// picks the adapter from it and each adapter sends only the part after `provider:`.
    pub model: String,
    pub system: String,
    pub messages: Vec<ModelMessage>,
    pub tools: Vec<ToolSchema>,
    pub temperature: Option<f64>,
    pub max_tokens: Option<u32>,
    pub thinking: Option<ThinkingSettings>,
    pub reasoning_effort: Option<ReasoningEffort>,
    /// Mark cache breakpoints where the provider's format has them.
    pub prompt_cache: bool,
}

/// A normalized piece of a streamed response.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelDelta {
    Text(String),
    Thinking(String),
    /// Signature closing a thinking block (Anthropic), to replay verbatim.
    ThinkingSignature(String),
    RedactedThinking(String),
    /// A new tool call at `index`; its arguments follow as fragments.
    ToolCallStart {
        index: u32,
        id: String,
        name: String,
    },
    ToolCallArgs {
        index: u32,
        fragment: String,
    },
    Usage(Usage),
    /// The response ended normally.
    Finish {
        reason: String,
    },
}

/// The stream of one response. It ends after `Finish`, or with an error.
pub type ModelStream = BoxStream<'static, Result<ModelDelta, ModelError>>;

/// Provider failures, carrying what the retry policy needs.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    /// 429: the provider's own message is kept for `run_failed`.
    #[error("rate limited: {message}")]
    RateLimited {
        retry_after: Option<Duration>,
        message: String,
    },
    #[error("context too long: {0}")]
    ContextTooLong(String),
    #[error("authentication failed: {0}")]
    Auth(String),
    #[error("provider error {status}: {message}")]
    Server { status: u16, message: String },
    #[error("request rejected {status}: {message}")]
    InvalidRequest { status: u16, message: String },
    #[error("network error: {0}")]
    Network(String),
    /// The stream ended before the response was complete.
    #[error("stream cut: {0}")]
    StreamCut(String),
    #[error("unknown model: {0}")]
    UnknownModel(String),
    /// The endpoint's circuit breaker is open after repeated failures: nothing was sent.
    #[error("provider unavailable: {0}")]
    CircuitOpen(String),
}

impl ModelError {
    /// The stable code of this failure, as `run_failed.code` and the metrics name it.
    pub fn code(&self) -> &'static str {
        match self {
            Self::RateLimited { .. } => "model_rate_limited",
            Self::Auth(_) => "model_auth",
            Self::ContextTooLong(_) => "model_context_too_long",
            Self::StreamCut(_) => "model_stream_cut",
            Self::UnknownModel(_) => "model_unknown",
            Self::CircuitOpen(_) => "model_unavailable",
            Self::Server { .. } | Self::InvalidRequest { .. } | Self::Network(_) => "model_error",
        }
    }

    /// Whether the request may be retried as a whole (nothing was emitted yet).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::RateLimited { .. } | Self::Server { .. } | Self::Network(_)
        )
    }

    /// Whether another model may be tried instead: the provider is down, overloaded or
    /// unreachable (not a problem of the request itself).
    pub fn warrants_fallback(&self) -> bool {
        self.is_retryable() || matches!(self, Self::CircuitOpen(_))
    }

    /// Whether this failure counts against the endpoint's circuit breaker.
    pub fn is_outage(&self) -> bool {
        self.is_retryable()
    }
}

/// A model provider (OpenAI-compatible, Anthropic, the built-in test models).
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait ModelProvider: Send + Sync {
    /// Starts one request. Errors before the first delta come from this call; errors after
    /// it arrive in the stream. Dropping the stream MUST abort the request. The request is
    /// borrowed: the history is not copied for each attempt; the returned stream MUST NOT
    /// borrow it.
    async fn stream(&self, request: &ModelRequest) -> Result<ModelStream, ModelError>;
}

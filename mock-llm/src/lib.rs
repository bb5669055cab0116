//! A mock LLM HTTP server for tests and benchmarks. It speaks the OpenAI Chat Completions
//! and the Anthropic Messages streaming formats on the wire, so the real provider adapters
//! are exercised end to end without network or keys.
//!
//! Requests to a path ending in `/chat/completions` get OpenAI's format and those ending in
//! `/messages` Anthropic's; each takes the next queued [`Script`] (one FIFO queue for both)
//! or, when the queue is empty, the [`DefaultAnswer`]. Every request is recorded.
//!
//! ```no_run
//! # async fn demo() {
//! use mock_llm::{MockLlm, Script};
//! let mock = MockLlm::start().await;
//! mock.push(Script::text("Hello world", 3).usage(12, 3));
//! mock.push(Script::rate_limited(2));
//! // point OPENAI_BASE_URL / ANTHROPIC_BASE_URL at mock.base_url()
//! # }
//! ```

mod anthropic;
mod openai;
mod render;
mod script;
mod server;

pub use script::{DefaultAnswer, Script};
pub use server::{MockLlm, RecordedRequest};

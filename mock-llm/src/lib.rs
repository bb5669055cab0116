//! A mock LLM HTTP server for tests and benchmarks. It speaks the OpenAI Chat Completions
//! and the Anthropic Messages streaming formats on the wire, so the real provider adapters
//! are exercised end to end without network or keys.
//!
//! Requests to a path ending in `/chat/completions` get OpenAI's format and those ending in
//! `/messages` Anthropic's; each takes the next queued [`Script`] (one FIFO queue for both)
//! or, when the queue is empty, the [`DefaultAnswer`]. Every request is recorded.
//!
//! Every request's history is checked first against the rules a real provider enforces
//! (each tool result answers a call of the assistant message right before it, each call is
//! answered exactly once and in order before the next turn, no empty assistant message,
//! and Anthropic's content rules: see [`Invariant`]). A request that breaks one is
//! answered 400 in the provider's error format with the rule's name in the message, so the
//! run that sent it fails, and is listed by [`MockLlm::violations`].
//! [`MockLlm::accept_any_history`] turns the check off for tests that mean to send odd
//! histories.
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
mod history;
mod openai;
mod render;
mod script;
mod server;

pub use history::{Invariant, Violation};
pub use script::{DefaultAnswer, Script};
pub use server::{MockLlm, RecordedRequest};

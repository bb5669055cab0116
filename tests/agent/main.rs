//! The agent loop and its tools against real adapters: tools on temporary directories
//! through the real workspace and shell, and whole runs through the OpenAI and Anthropic
//! adapters pointed at the mock LLM server.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]
#![allow(
    clippy::too_many_lines,
    reason = "a test reads as one scenario, top to bottom"
)]

mod providers;
mod support;
mod tools;

//! agent-runtime: runs LLM agents for a homelab behind one HTTP API.
//!
//! `core` holds the domain logic and speaks only to `ports`; `api` is the HTTP layer;
//! `app` wires concrete adapters to both; `config` reads the environment; `boundary`
//! sets up the security boundary at start.

// Product code is held to 70 lines a function by the non-test build; a test reads as one
// scenario, top to bottom.
#![cfg_attr(test, allow(clippy::too_many_lines))]

pub mod api;
pub mod app;
pub mod boundary;
pub mod config;
pub mod core;

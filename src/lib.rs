//! agent-runtime: runs LLM agents for a homelab behind one HTTP API.
//!
//! `core` holds the domain logic and speaks only to `ports`; `api` is the HTTP layer;
//! `app` wires concrete adapters to both; `config` reads the environment; `boundary`
//! sets up the security boundary at start.

pub mod api;
pub mod app;
pub mod boundary;
pub mod config;
pub mod core;

//! agent-runtime: runs LLM agents for a homelab behind one HTTP API.
//!
//! `core` holds the domain logic and speaks only to `ports`; `api` is the HTTP layer;
//! `app` wires concrete adapters to both; `config` reads the environment.

pub mod api;
pub mod app;
pub mod config;
pub mod core;

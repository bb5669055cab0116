//! Wire types of the HTTP API: poem-openapi `Object`s mirroring domain types via `From`,
//! so the published schema is ours to shape without touching the domain.
//!
//! Naming rule: an API type is named exactly as the schema it publishes (no suffix, no
//! `#[oai(rename)]`), so the Rust name is the one generated clients see. Where a domain
//! type has the same name, API code names the domain one by its module
//! (`ports::Preset`, `execution::RunRequest`).

pub mod capped;
pub mod events;
pub mod presets;
pub mod runs;
pub mod sessions;
pub mod strict;
pub mod text;

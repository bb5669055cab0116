//! Wire types of the HTTP API: poem-openapi `Object`s mirroring domain types via `From`,
//! so the published schema is ours to shape without touching the domain.

pub mod capped;
pub mod events;
pub mod presets;
pub mod runs;
pub mod sessions;
pub mod strict;
pub mod text;

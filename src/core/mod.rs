//! The domain core. It talks to the world only through `ports` traits held as
//! `Arc<dyn Port>`; it never names an adapter, the web framework or a driver (a test checks this).

pub mod agent;
pub mod catalogue;
pub mod environment;
pub mod execution;
pub mod health;
pub mod limits;
pub mod preset_validation;
pub mod presets;
pub mod prompt;
pub mod recovery;
pub mod redact;
pub mod run;
pub mod subagents;
pub mod tools;

#[cfg(test)]
mod hexagon_test;

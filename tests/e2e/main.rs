//! End-to-end tests: the service over real HTTP, in-process (`app::build` + `app::serve`)
//! and as the built binary. One test binary, one module per concern.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]
#![allow(
    clippy::too_many_lines,
    reason = "a test reads as one scenario, top to bottom"
)]

mod access_log;
mod admission;
mod ag_ui;
mod api_errors;
mod attack_bounds;
mod attack_edge;
mod attack_sandbox;
mod attack_ssrf;
mod backends;
mod binary;
mod browser;
mod control;
mod crash;
mod docker_mode;
mod failover;
mod history;
mod hitl;
mod inputs;
mod limits;
mod mcp;
mod metadata_titles;
mod metrics;
mod model_controls;
mod notifications;
mod openai_compat;
mod openapi;
mod presets;
mod reliability;
mod retention;
mod runs;
mod served;
mod shutdown;
mod streams;
mod subagents;
mod support;
mod web_tools;
mod web_ui;

//! Port contract suites: every port's documented contract, run against every adapter.
//!
//! One test binary. Each suite is generic over the port trait and blind to the backend;
//! the `contract!` macro instantiates one named test per case and backend. Backends that
//! need a server (PostgreSQL, Redis, S3) print a visible SKIP line when it is unreachable,
//! and fail instead under `REQUIRE_SERVICES=1` (what `scripts/test.sh` sets).

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]
#![allow(
    clippy::too_many_lines,
    reason = "a test reads as one scenario, top to bottom"
)]

mod download;
mod environment;
mod event_bus;
mod llm;
mod shell;
mod state_store;
mod storage;
mod support;
mod workspace;

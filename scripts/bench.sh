#!/usr/bin/env bash
# The benchmark of spec 07 (see examples/bench.rs): builds the service and the bench, then
# measures on SQLite + in-process bus + local files and on PostgreSQL + Redis
# (TEST_DATABASE_URL / TEST_REDIS_URL, defaults: the local servers) and prints one table.
#   scripts/bench.sh            full run, release build (a few minutes)
#   scripts/bench.sh --quick    a smoke run (100 concurrent runs, few rounds) on the debug
#                               build, under 2 minutes; fails only on errors, never on timings
# BENCH_PROFILE=release|dev overrides the build profile.
set -euo pipefail
cd "$(dirname "$0")/.."

QUICK=""
for arg in "$@"; do [[ "$arg" == --quick ]] && QUICK=1; done
PROFILE="${BENCH_PROFILE:-$([[ -n "$QUICK" ]] && echo dev || echo release)}"
DIR=$([[ "$PROFILE" == dev ]] && echo debug || echo "$PROFILE")
JOBS="${CARGO_BUILD_JOBS:-2}"

# 1,000 concurrent runs hold about 4,000 sockets across the bench and the service.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

cargo build -q -j "$JOBS" --profile "$PROFILE" --bin agent-runtime --example bench
TARGET="${CARGO_TARGET_DIR:-target}"
AGENT_RUNTIME_BIN="$TARGET/$DIR/agent-runtime" "$TARGET/$DIR/examples/bench" "$@"

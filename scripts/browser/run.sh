#!/usr/bin/env bash
# The real-browser check: Debian's Chromium, driven by playwright-core (check.mjs), uses the
# service as pages do. A same-origin page signs in with the cookie and streams and resumes a
# run with EventSource; a page of an allowed origin (CORS_ORIGINS) streams and resumes one
# with fetch + Authorization (CORS preflights); a page of another origin reads nothing.
#   AGENT_RUNTIME_BIN  the service binary (default target/debug/agent-runtime of this repo)
#   CHROMIUM           the browser (default /usr/bin/chromium: apt-get install chromium;
#                      playwright never downloads a browser of its own here)
# It starts its own service (SQLite in a temporary directory, the seeded `default` preset on
# the built-in test:echo model) and stops it on exit. npm ci runs only when node_modules is
# missing or package-lock.json changed since the last install; warm, the check takes ~10 s
# (two EventSources each wait the server's `retry: 3000` before their closing 204).
set -euo pipefail
die() { printf 'scripts/browser/run.sh: %s\n' "$*" >&2; exit 1; }

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
source "$ROOT/scripts/lib/service.sh"
BIN="${AGENT_RUNTIME_BIN:-${CARGO_TARGET_DIR:-target}/debug/agent-runtime}"
[[ "$BIN" == /* ]] || BIN="$ROOT/$BIN" # relative to the repository root: we cd below
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
cd "$(dirname "$0")"
browser_check_tools "$BIN" "$CHROMIUM"

WORK=$(mktemp -d)
SERVER=""
cleanup() { [[ -n "$SERVER" ]] && kill "$SERVER" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

# 1. Dependencies, only when missing or when the lock file changed.
npm_ci_once "$WORK/npm.log"

# 2. Our own service, its CORS_ORIGINS naming the origin check.mjs serves its page from.
PORT=$(free_port)
PAGE_PORT=$(free_port)
while [[ "$PAGE_PORT" == "$PORT" ]]; do PAGE_PORT=$(free_port); done
PAGE_ORIGIN="http://127.0.0.1:$PAGE_PORT"
TOKEN="browser-token-$RANDOM$RANDOM$RANDOM"
BASE="http://127.0.0.1:$PORT"
start_service "$BIN" "$WORK" "$PORT" "$TOKEN" CORS_ORIGINS="$PAGE_ORIGIN"

# 3. The check, bounded in time (check.mjs has its own 90 s guard; this one catches a hang
# in the browser's launch or shutdown).
echo "== Chromium against $BASE (page origin $PAGE_ORIGIN)"
if ! BASE_URL="$BASE" TOKEN="$TOKEN" PAGE_ORIGIN="$PAGE_ORIGIN" CHROMIUM="$CHROMIUM" \
  timeout 150 node check.mjs; then
  echo "-- the service's log (last 40 lines):" >&2
  tail -n 40 "$WORK/server.log" >&2
  die "the browser check failed (above)"
fi
no_panic "$WORK"

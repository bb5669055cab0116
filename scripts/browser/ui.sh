#!/usr/bin/env bash
# The web UI's browser test: Debian's Chromium, driven by playwright-core (ui.mjs), uses the
# page the service serves at `/` the way a person does: sign in, stream a run, reload it
# mid-run, steer, interrupt, approve and deny, send an external tool's result, fire the
# mailbox, fork, edit presets, change the default one and delete them, on a desktop and a
# 360 px phone, with no console error anywhere.
#   AGENT_RUNTIME_BIN     the service binary (default target/debug/agent-runtime of this repo)
#   MOCK_LLM_BIN          the mock LLM (default target/debug/mock-llm): the `openai:mock`
#                         preset streams its 60-delta answer, 50 ms apart (a 3 s answer)
#   CHROMIUM              the browser (default /usr/bin/chromium: apt-get install chromium)
#   UI_SCREENSHOTS        failure screenshots (default /tmp/ui-screenshots)
#   UI_README_SCREENSHOT  1: save the chat view of a finished run to docs/ui-chat.png
# It starts its own mock and service (SQLite in a temporary directory) and stops them on
# exit; on failure it prints the end of the service's log. npm ci runs only when
# node_modules is missing or package-lock.json changed (shared with run.sh).
# The UI under test is the binary's, and it must be this checkout's web/: the check stops
# when the binary serves other files (a debug build reads the web/ of the checkout it was
# built in, a release build embeds its own).
set -euo pipefail
die() { printf 'scripts/browser/ui.sh: %s\n' "$*" >&2; exit 1; }

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
source "$ROOT/scripts/lib/service.sh"
BIN="${AGENT_RUNTIME_BIN:-${CARGO_TARGET_DIR:-target}/debug/agent-runtime}"
[[ "$BIN" == /* ]] || BIN="$ROOT/$BIN" # relative to the repository root: we cd below
MOCK="${MOCK_LLM_BIN:-${CARGO_TARGET_DIR:-target}/debug/mock-llm}"
[[ "$MOCK" == /* ]] || MOCK="$ROOT/$MOCK"
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
DELTAS=60
cd "$(dirname "$0")"
[[ -x "$MOCK" ]] || die "no mock LLM at $MOCK (cargo build -p mock-llm, or set MOCK_LLM_BIN)"
browser_check_tools "$BIN" "$CHROMIUM"

WORK=$(mktemp -d)
SERVER=""
MOCK_PID=""
cleanup() {
  [[ -n "$SERVER" ]] && kill "$SERVER" 2>/dev/null
  [[ -n "$MOCK_PID" ]] && kill "$MOCK_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

# 1. Dependencies, only when missing or when the lock file changed (shared with run.sh).
npm_ci_once "$WORK/npm.log"

# 2. The mock LLM on a free port of its choosing; it prints the URL it listens on.
"$MOCK" --port 0 --deltas "$DELTAS" --delay-ms 50 >"$WORK/mock.log" 2>&1 &
MOCK_PID=$!
MOCK_URL=""
for _ in $(seq 1 100); do
  MOCK_URL=$(sed -n 's/^listening on \(http[^ ]*\).*/\1/p' "$WORK/mock.log" | head -n1)
  [[ -n "$MOCK_URL" ]] && break
  kill -0 "$MOCK_PID" 2>/dev/null || { cat "$WORK/mock.log" >&2; die "the mock LLM exited at start"; }
  sleep 0.1
done
[[ -n "$MOCK_URL" ]] || { cat "$WORK/mock.log" >&2; die "the mock LLM did not say where it listens"; }
# Chat Completions live under /v1 (the mock answers any path ending in /chat/completions).
MOCK_URL="${MOCK_URL%/}"
[[ "$MOCK_URL" == */v1 ]] || MOCK_URL="$MOCK_URL/v1"

# 3. Our own service, its OpenAI provider pointed at the mock.
PORT=$(free_port)
TOKEN="ui-token-$RANDOM$RANDOM$RANDOM"
BASE="http://127.0.0.1:$PORT"
start_service "$BIN" "$WORK" "$PORT" "$TOKEN" OPENAI_BASE_URL="$MOCK_URL" OPENAI_API_KEY=x

# 4. Which web/ the binary serves: every file of this checkout's, byte for byte (the page
# at / with its asset prefix filled in, the rest below the prefix, as web_ui.rs does)?
same_web() {
  local web="$ROOT/web" prefix rel
  curl -fs "$BASE/" >"$WORK/index.html" || return 1
  prefix=$(grep -o '/assets/[0-9a-f]*' "$WORK/index.html" | head -n1)
  [[ -n "$prefix" ]] || return 1
  sed "s#%ASSETS%#$prefix#g" "$web/index.html" | cmp -s - "$WORK/index.html" || return 1
  while IFS= read -r rel; do
    curl -fs "$BASE$prefix/$rel" | cmp -s - "$web/$rel" || return 1
  done < <(cd "$web" && find . -type f -not -path '*/.*' -not -name index.html \
    \( -name '*.js' -o -name '*.mjs' -o -name '*.css' -o -name '*.svg' -o -name '*.png' -o -name '*.ico' \
    -o -name '*.json' -o -name '*.map' -o -name '*.txt' -o -name '*.woff2' \) | sed 's#^\./##' | sort)
}
same_web || die "the binary serves another web/ than this checkout's (a debug build reads the web/ of the checkout it was built in, a release build embeds its own): build it from here"

# 5. The checks, bounded in time (ui.mjs has its own 120 s guard; this one catches a hang
# in the browser's launch or shutdown).
echo "== the web UI in Chromium against $BASE (mock LLM at $MOCK_URL)"
if ! BASE_URL="$BASE" TOKEN="$TOKEN" CHROMIUM="$CHROMIUM" MOCK_DELTAS="$DELTAS" \
  UI_SCREENSHOTS="${UI_SCREENSHOTS:-/tmp/ui-screenshots}" UI_README_SCREENSHOT="${UI_README_SCREENSHOT:-}" \
  timeout 180 node ui.mjs; then
  echo "-- the service's log (last 40 lines):" >&2
  tail -n 40 "$WORK/server.log" >&2
  die "the UI check failed (above)"
fi
no_panic "$WORK"

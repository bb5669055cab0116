#!/usr/bin/env bash
# The TypeScript generated-client check: generate a fetch client from $OPENAPI with
# @hey-api/openapi-ts (any generator warning fails), type-check and compile it with the flow
# (tsc --strict), then run the flow against a running service.
#   OPENAPI   the document (default: openapi/openapi.json of this repository)
#   BASE_URL  the service root, without /api (e.g. http://127.0.0.1:8080)
#   TOKEN     its AUTH_TOKEN
#   TS_CLIENT_NO_FLOW=1  stop after the compile (no service needed)
# npm ci runs only when node_modules is missing or package-lock.json changed since the last
# install; with a warm ~/.npm and node_modules present the check takes a few seconds.
set -euo pipefail
die() { printf 'scripts/ts-client/run.sh: %s\n' "$*" >&2; exit 1; }
source "$(dirname "$0")/../lib/service.sh"

OPENAPI="${OPENAPI:-$(dirname "$0")/../../openapi/openapi.json}"
[[ -f "$OPENAPI" ]] || die "no OpenAPI document at $OPENAPI"
OPENAPI="$(cd "$(dirname "$OPENAPI")" && pwd)/$(basename "$OPENAPI")" # absolute: we cd below
export OPENAPI
cd "$(dirname "$0")"
command -v node >/dev/null || die "node is not installed"
if [[ -z "${TS_CLIENT_NO_FLOW:-}" ]]; then
  [[ -n "${BASE_URL:-}" && -n "${TOKEN:-}" ]] || die "set BASE_URL and TOKEN (or TS_CLIENT_NO_FLOW=1)"
fi
LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT

# 1. Dependencies, only when missing or when the lock file changed.
npm_ci_once "$LOG"

# 2. Generate; the generator must not warn about the document.
echo "== redocly lint (no errors allowed)"
REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true node_modules/.bin/redocly lint "$OPENAPI" \
  >"$LOG" 2>&1 || { cat "$LOG" >&2; die "redocly found errors in the document"; }
grep -E 'valid|warning' "$LOG" | tail -2
echo "== openapi-ts: $OPENAPI -> client/"
node_modules/.bin/openapi-ts -f openapi-ts.config.ts >"$LOG" 2>&1 || { cat "$LOG" >&2; die "generation failed"; }
if grep -qiE 'warn|deprecat' "$LOG"; then
  cat "$LOG" >&2; die "the generator warned about the document"
fi

# 3. Type-check and compile in one pass (tsc --strict; nothing is emitted on a type error).
echo "== tsc --strict"
rm -rf dist
node_modules/.bin/tsc --strict --noEmitOnError || die "type errors (above)"

# 4. The flow against the running service.
if [[ -n "${TS_CLIENT_NO_FLOW:-}" ]]; then
  echo "== flow skipped (TS_CLIENT_NO_FLOW)"
  exit 0
fi
echo "== flow against $BASE_URL"
BASE_URL="$BASE_URL" TOKEN="$TOKEN" node dist/flow.js || die "the flow failed (above)"

#!/usr/bin/env bash
# The official AG-UI client (@ag-ui/client, pinned here) against a running service:
# POST /api/ag-ui/{preset_id} with a preset on the built-in test:call:ls model, two turns of
# one thread. npm ci runs only when node_modules is missing or the lock file changed.
#   BASE_URL  the service root      TOKEN  its AUTH_TOKEN
set -euo pipefail
die() { printf 'scripts/ag-ui/run.sh: %s\n' "$*" >&2; exit 1; }
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../lib/service.sh"
[[ -n "${BASE_URL:-}" && -n "${TOKEN:-}" ]] || die "set BASE_URL and TOKEN"
LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT
(cd "$here" && npm_ci_once "$LOG")
PRESET="ag-ui-ls-$RANDOM"
curl -fsS -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' \
  -d "{\"preset_id\":\"$PRESET\",\"name\":\"AG-UI check\",\"model\":{\"name\":\"test:call:ls\"},\"toolsets\":[{\"toolset_name\":\"core\"}]}" \
  "$BASE_URL/api/presets/create" >/dev/null || die "cannot create the preset $PRESET"
node "$here/check.mjs" "$BASE_URL" "$TOKEN" "$PRESET"

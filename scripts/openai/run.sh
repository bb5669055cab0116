#!/usr/bin/env bash
# The official OpenAI SDKs against a running service's /v1 surface, unchanged: the Python
# `openai` package (PyPI) and the `openai` npm package, both pinned here. Each creates
# nothing but a preset on the built-in test:echo model and checks models, whole and
# streamed completions with usage, a three-turn chat continuing one conversation, an edit
# that forks, and an image.
#   BASE_URL  the service root (e.g. http://127.0.0.1:8080)
#   TOKEN     its AUTH_TOKEN
# npm ci and pip run only when their pinned versions are not installed yet.
set -euo pipefail
die() { printf 'scripts/openai/run.sh: %s\n' "$*" >&2; exit 1; }
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../lib/service.sh"
[[ -n "${BASE_URL:-}" && -n "${TOKEN:-}" ]] || die "set BASE_URL and TOKEN"
command -v node >/dev/null || die "node is not installed"

LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT
(cd "$here" && npm_ci_once "$LOG")
want=$(sed -n 's/^openai==\(.*\)$/\1/p' "$here/requirements.txt")
have=$(python3 -c 'import importlib.metadata as m
try: print(m.version("openai"))
except Exception: print("")' 2>/dev/null || true)
if [[ "$have" != "$want" ]]; then
  echo "== pip install openai==$want (had: ${have:-none})"
  export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
  python3 -m pip install -q -r "$here/requirements.txt" >"$LOG" 2>&1 \
    || python3 -m pip install -q --break-system-packages -r "$here/requirements.txt" >"$LOG" 2>&1 \
    || { cat "$LOG" >&2; die "pip install failed"; }
fi

MODEL="sdk-echo-$RANDOM"
curl -fsS -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' \
  -d "{\"preset_id\":\"$MODEL\",\"name\":\"SDK check\",\"model\":{\"name\":\"test:echo\"}}" \
  "$BASE_URL/api/presets/create" >/dev/null || die "cannot create the preset $MODEL"
python3 "$here/sdk_check.py" "$BASE_URL" "$TOKEN" "$MODEL"
node "$here/sdk_check.mjs" "$BASE_URL" "$TOKEN" "$MODEL"

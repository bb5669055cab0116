# Shared by the scripts that check a running service (contract.sh, browser/run.sh,
# browser/ui.sh) and those that install npm tools once (ts-client/run.sh, browser/*.sh).
# Source it after defining die().

# npm_ci_once LOG: `npm ci` in the current directory, only when node_modules is missing or
# package-lock.json changed since the last install (a stamp in node_modules says which).
npm_ci_once() {
  local log="$1" stamp=node_modules/.run-sh-lock.sha256 sum
  sum=$(sha256sum package-lock.json | cut -d' ' -f1)
  if [[ ! -d node_modules || ! -f "$stamp" || "$(cat "$stamp")" != "$sum" ]]; then
    echo "== npm ci ($(basename "$PWD"))"
    NPM_CONFIG_UPDATE_NOTIFIER=false NPM_CONFIG_FUND=false NPM_CONFIG_AUDIT=false \
      npm ci --prefer-offline --no-audit --no-fund >"$log" 2>&1 || { cat "$log" >&2; die "npm ci failed"; }
    echo "$sum" >"$stamp"
  fi
}

# browser_check_tools BIN CHROMIUM: dies unless the service binary, Chromium, node, curl
# and python3 are there; playwright-core is told to download no browser of its own.
browser_check_tools() {
  [[ -x "$1" ]] || die "no service binary at $1 (cargo build, or set AGENT_RUNTIME_BIN)"
  [[ -x "$2" ]] || die "no Chromium at $2 (apt-get install chromium, or set CHROMIUM)"
  local tool
  for tool in node curl python3; do
    command -v "$tool" >/dev/null || die "$tool is not installed"
  done
  export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
}

# free_port: a TCP port free on 127.0.0.1 right now.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_service BIN WORK PORT TOKEN [VAR=value ...]: the service on 127.0.0.1:PORT with a
# clean environment, SQLite and its state under WORK/data, agents working in WORK/workspace
# (beside the service's files, not under them), plus the given variables; its log goes to
# WORK/server.log. Sets SERVER to its pid and returns once /api/health answers; dies if it
# exits or never becomes healthy.
start_service() {
  local bin="$1" work="$2" port="$3" token="$4"
  shift 4
  mkdir -p "$work/data" "$work/workspace"
  env -i PATH="$PATH" HOME="$work" HOST=127.0.0.1 PORT="$port" AUTH_TOKEN="$token" \
    DATABASE_URL="sqlite://$work/data/runtime.db" STATE_STORE_PATH="$work/data" \
    WORKSPACE_ROOT="$work/workspace" "$@" "$bin" >"$work/server.log" 2>&1 &
  SERVER=$!
  local base="http://127.0.0.1:$port"
  for _ in $(seq 1 100); do
    curl -fs "$base/api/health" >/dev/null 2>&1 && return 0
    kill -0 "$SERVER" 2>/dev/null || { cat "$work/server.log" >&2; die "the service exited at start"; }
    sleep 0.1
  done
  cat "$work/server.log" >&2
  die "the service did not become healthy"
}

# no_panic WORK: dies when the service's log shows a panic.
no_panic() {
  if grep -q 'panicked' "$1/server.log"; then
    grep -B2 -A10 'panicked' "$1/server.log" >&2
    die "the service panicked"
  fi
}

#!/usr/bin/env bash
# The test command: formatting, lints, unit tests, every port's contract suite against every
# adapter (SQLite + PostgreSQL, in-process + Redis, fs + memory + S3) and the end-to-end
# tests, then the API contract (scripts/contract.sh: schemathesis, generated Python and
# TypeScript clients, a browser), the web UI in Chromium (scripts/browser/ui.sh) and a smoke
# run of the benchmark (scripts/bench.sh --quick). Servers come from TEST_DATABASE_URL / TEST_REDIS_URL / TEST_S3_ENDPOINT (defaults:
# the local servers). A missing PostgreSQL or Redis is installed and started when running as
# root on Debian; otherwise the script stops with one line saying what to start. Under this
# script a test that cannot reach its server fails instead of skipping (REQUIRE_SERVICES=1).
set -euo pipefail
cd "$(dirname "$0")/.."

export TEST_DATABASE_URL="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"
export TEST_REDIS_URL="${TEST_REDIS_URL:-redis://127.0.0.1:6379}"
export REQUIRE_SERVICES=1
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
JOBS="${CARGO_BUILD_JOBS:-2}"

say() { printf '== %s\n' "$*"; }
# on_exit CMD: run CMD when the script ends (after the commands registered before it)
EXIT_CMDS=()
on_exit() { EXIT_CMDS+=("$1"); trap 'for c in "${EXIT_CMDS[@]}"; do eval "$c"; done' EXIT; }
die() { printf 'scripts/test.sh: %s\n' "$*" >&2; exit 1; }

# host and port of a URL like scheme://[user@]host[:port][/path]
host_of() { local r="${1#*://}"; r="${r#*@}"; r="${r%%/*}"; echo "${r%%:*}"; }
port_of() { local r="${1#*://}"; r="${r#*@}"; r="${r%%/*}"; [[ "$r" == *:* ]] && echo "${r##*:}" || echo "$2"; }
reachable() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }
wait_for() { for _ in $(seq 1 100); do reachable "$1" "$2" && return 0; sleep 0.2; done; return 1; }
can_install() { [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; }

apt_install() {
  if [[ -z "${APT_UPDATED:-}" ]]; then apt-get update -qq; APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

ensure_postgres() {
  local host port; host=$(host_of "$TEST_DATABASE_URL"); port=$(port_of "$TEST_DATABASE_URL" 5432)
  reachable "$host" "$port" && return 0
  can_install || die "PostgreSQL is not reachable at $host:$port: start it or set TEST_DATABASE_URL"
  say "starting PostgreSQL (installing it if missing)"
  command -v pg_ctlcluster >/dev/null || apt_install postgresql
  local version; version=$(ls /etc/postgresql | sort -V | tail -n1)
  local hba="/etc/postgresql/$version/main/pg_hba.conf"
  # the tests connect as postgres over TCP without a password
  grep -q '^host all all 127.0.0.1/32 trust' "$hba" || sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || pg_ctlcluster --skip-systemctl-redirect "$version" main reload
  wait_for "$host" "$port" || die "PostgreSQL did not start"
  su postgres -c "psql -tAc \"SELECT 1 FROM pg_database WHERE datname='test'\"" | grep -q 1 \
    || su postgres -c "createdb test"
}

ensure_redis() {
  local host port; host=$(host_of "$TEST_REDIS_URL"); port=$(port_of "$TEST_REDIS_URL" 6379)
  reachable "$host" "$port" && return 0
  can_install || die "Redis is not reachable at $host:$port: start it or set TEST_REDIS_URL"
  say "starting Redis (installing it if missing)"
  command -v redis-server >/dev/null || apt_install redis-server
  redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --save "" --appendonly no
  wait_for "$host" "$port" || die "Redis did not start"
}

# A local S3-compatible server (moto) for the S3 state store, stopped when the script ends.
ensure_s3() {
  [[ -n "${TEST_S3_ENDPOINT:-}" ]] && return 0
  if ! command -v moto_server >/dev/null; then
    say "installing moto[server] (local S3-compatible server)"
    python3 -m pip install -q 'moto[server]' || python3 -m pip install -q --break-system-packages 'moto[server]' || die "cannot install moto[server]: set TEST_S3_ENDPOINT to an S3-compatible server"
  fi
  local port=5055
  while reachable 127.0.0.1 "$port"; do port=$((port + 1)); done
  moto_server -H 127.0.0.1 -p "$port" >/tmp/agent-runtime-moto.log 2>&1 &
  MOTO_PID=$!
  # the pip entry point may run the server as a child of $MOTO_PID: match it by its arguments too
  on_exit "kill $MOTO_PID 2>/dev/null; pkill -f 'moto_server -H 127.0.0.1 -p $port' 2>/dev/null; true"
  wait_for 127.0.0.1 "$port" || die "moto_server did not start (see /tmp/agent-runtime-moto.log)"
  export TEST_S3_ENDPOINT="http://127.0.0.1:$port"
}

# pip (for moto and the contract tools from PyPI) and curl (scripts/contract.sh)
# TLS-only PostgreSQL and Redis with a self-signed CA (tests/tls/start.sh), for the TLS
# tests; stopped when the script ends.
ensure_tls_servers() {
  local dir=/tmp/agent-runtime-tls
  tests/tls/start.sh "$dir" >/tmp/agent-runtime-tls.log 2>&1 || { cat /tmp/agent-runtime-tls.log; die "the TLS test servers did not start"; }
  on_exit "tests/tls/stop.sh $dir >/dev/null 2>&1 || true"
  set -a; source "$dir/env"; set +a
}

ensure_tools() {
  local missing=()
  command -v curl >/dev/null || missing+=(curl)
  command -v python3 >/dev/null || missing+=(python3)
  python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)
  [[ ${#missing[@]} -eq 0 ]] && return 0
  can_install || die "missing ${missing[*]}: install them"
  say "installing ${missing[*]}"
  apt_install "${missing[@]}"
}

# Chromium for scripts/browser/ (playwright-core drives Debian's browser and downloads none of
# its own); without recommends, as a headless check needs no desktop extras
ensure_chromium() {
  [[ -x /usr/bin/chromium ]] && return 0
  can_install || die "Chromium is missing at /usr/bin/chromium: install it (apt-get install chromium)"
  say "installing Chromium"
  apt_install --no-install-recommends chromium
}

ensure_tools
ensure_chromium
say "MCP test servers (tests/mcp/setup.sh)"
tests/mcp/setup.sh
ensure_postgres
ensure_redis
ensure_s3
say "TLS-only PostgreSQL and Redis (tests/tls/start.sh)"
ensure_tls_servers

say "deployment files (scripts/deploy-check.sh: systemd unit, compose schema, Dockerfile lint)"
scripts/deploy-check.sh
say "cargo fmt --check"
cargo fmt --all -- --check
say "cargo clippy"
cargo clippy -j "$JOBS" --workspace --all-targets -- -D warnings
say "tests (PostgreSQL $TEST_DATABASE_URL, Redis $TEST_REDIS_URL, S3 $TEST_S3_ENDPOINT)"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --test-threads "${TEST_THREADS:-4}" --workspace --no-fail-fast --build-jobs "$JOBS"
else
  cargo test -j "$JOBS" --workspace --no-fail-fast
fi
say "API contract: schemathesis and a generated Python client"
AGENT_RUNTIME_BIN="${CARGO_TARGET_DIR:-target}/debug/agent-runtime" scripts/contract.sh
say "the web UI's vendored modules match their pinned npm packages"
scripts/web/vendor.sh --check
say "the web UI in a real browser (Chromium against the binary and the mock LLM)"
cargo build -j "$JOBS" -p mock-llm --bin mock-llm
AGENT_RUNTIME_BIN="${CARGO_TARGET_DIR:-target}/debug/agent-runtime" \
  MOCK_LLM_BIN="${CARGO_TARGET_DIR:-target}/debug/mock-llm" scripts/browser/ui.sh
say "benchmark smoke run (fails on errors, never on timings)"
scripts/bench.sh --quick

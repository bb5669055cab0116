#!/usr/bin/env bash
# Stops the servers that tests/tls/start.sh started under DIR (argument 1, default
# /tmp/agent-runtime-tls): PostgreSQL with `pg_ctl stop -m fast` (as the postgres OS user when
# we are root), Redis by the pid in its pidfile. Safe to call twice or on a missing DIR; leaves
# the files in DIR (start.sh recreates it).
set -euo pipefail

die() { printf 'tests/tls/stop.sh: %s\n' "$*" >&2; exit 1; }

dir="$(realpath -m "${1:-/tmp/agent-runtime-tls}")"
[[ -d "$dir" ]] || exit 0
cd "$dir"

as_pg() {
  if [[ $(id -u) -ne 0 ]]; then "$@"
  elif command -v runuser >/dev/null; then runuser -u postgres -- "$@"
  else su postgres -s /bin/sh -c "$(printf '%q ' "$@")"
  fi
}
# alive PID NAME: PID runs and its command name starts with NAME (not a recycled pid); a zombie
# (exited, not yet reaped by its parent, e.g. init for the daemonized Redis) counts as gone
alive() {
  [[ "$1" =~ ^[0-9]+$ ]] || return 1
  local stat; stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  [[ "$(cat "/proc/$1/comm" 2>/dev/null)" == "$2"* && "${stat##*) }" != Z* ]]
}
# wait_gone PID NAME: up to 10 s for PID to exit
wait_gone() { for _ in $(seq 1 100); do alive "$1" "$2" || return 0; sleep 0.1; done; return 1; }

# --- PostgreSQL ----------------------------------------------------------------------------
data="$dir/pg/data"
if [[ -f "$data/postmaster.pid" ]]; then
  pid=$(head -n1 "$data/postmaster.pid")
  pg_bin=$(cat "$dir/pg_bindir" 2>/dev/null || printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n1)
  if alive "$pid" postgres; then
    as_pg "$pg_bin/pg_ctl" -D "$data" -m fast -w -t 30 stop >/dev/null 2>&1 || true
    if alive "$pid" postgres; then # pg_ctl missing or failed: the same fast shutdown by signal
      kill -INT "$pid" 2>/dev/null || true
      wait_gone "$pid" postgres || die "PostgreSQL (pid $pid) did not stop"
    fi
    echo "stopped PostgreSQL (pid $pid)"
  fi
fi

# --- Redis ---------------------------------------------------------------------------------
if [[ -f "$dir/redis.pid" ]]; then
  pid=$(cat "$dir/redis.pid")
  if alive "$pid" redis-server; then
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_gone "$pid" redis-server; then
      kill -KILL "$pid" 2>/dev/null || true
      wait_gone "$pid" redis-server || die "Redis (pid $pid) did not stop"
    fi
    echo "stopped Redis (pid $pid)"
  fi
  rm -f "$dir/redis.pid"
fi
exit 0

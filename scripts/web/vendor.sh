#!/usr/bin/env bash
# The web UI's third-party files (web/vendor/): exact npm versions, fetched with `npm pack`
# (the registry tarball, no install scripts run), a few files copied out of each.
#
#   scripts/web/vendor.sh           re-fetch, copy into web/vendor/, write web/vendor/SHA256SUMS
#   scripts/web/vendor.sh --check   re-fetch into a temporary directory and compare: every
#                                   checked-in file (and SHA256SUMS itself) must match the
#                                   fresh download byte for byte; exit 1 on any difference
#
# To upgrade a package, change its version below, run the script, read the diff, test the UI.
set -euo pipefail
die() { printf 'scripts/web/vendor.sh: %s\n' "$*" >&2; exit 1; }

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
VENDOR="$ROOT/web/vendor"
MODE=write
case "${1:-}" in
  "") ;;
  --check) MODE=check ;;
  *) die "usage: $0 [--check]" ;;
esac
command -v npm >/dev/null || die "npm is not installed"
command -v sha256sum >/dev/null || die "sha256sum is not installed"
export NPM_CONFIG_UPDATE_NOTIFIER=false NPM_CONFIG_FUND=false NPM_CONFIG_AUDIT=false

# The packages, pinned. htm's standalone module bundles Preact 10 and its hooks; Preact's
# licence text comes from the preact package itself (the htm tarball does not carry it).
HTM=htm@3.1.1
PREACT=preact@10.7.2
MARKED=marked@18.3.0
DOMPURIFY=dompurify@3.5.0
# highlight.js's own npm package ships its ES entry points as wrappers around CommonJS;
# the project's pre-built browser ES modules are published as @highlightjs/cdn-assets.
HLJS=@highlightjs/cdn-assets@11.12.0
HLJS_LANGUAGES=(bash shell json javascript typescript python rust go yaml diff sql xml)

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# fetch <pkg@version>: unpacks the registry tarball; prints the directory of its files.
fetch() {
  local spec=$1 dir
  dir="$TMP/src/$(printf '%s' "$spec" | tr '/@' '__')"
  mkdir -p "$dir"
  (cd "$dir" && npm pack --silent "$spec" >pack.log 2>&1) || { cat "$dir/pack.log" >&2; die "npm pack $spec failed"; }
  tar -xzf "$dir"/*.tgz -C "$dir"
  printf '%s/package' "$dir"
}

# The tree to produce, built in $OUT.
OUT="$TMP/out"
mkdir -p "$OUT/LICENSES" "$OUT/highlight/languages"
put() { mkdir -p "$(dirname "$OUT/$2")"; cp "$1" "$OUT/$2"; }

src=$(fetch "$HTM")
put "$src/preact/standalone.module.js" preact-htm.js
put "$src/LICENSE" LICENSES/htm.txt

src=$(fetch "$PREACT")
put "$src/LICENSE" LICENSES/preact.txt

src=$(fetch "$MARKED")
put "$src/lib/marked.esm.js" marked.esm.js
put "$src/LICENSE" LICENSES/marked.txt

src=$(fetch "$DOMPURIFY")
put "$src/dist/purify.es.mjs" purify.es.mjs
put "$src/LICENSE" LICENSES/dompurify.txt

src=$(fetch "$HLJS")
put "$src/es/core.min.js" highlight/core.min.js
for lang in "${HLJS_LANGUAGES[@]}"; do
  put "$src/es/languages/$lang.min.js" "highlight/languages/$lang.min.js"
done
put "$src/LICENSE" LICENSES/highlight.js.txt

cat >"$OUT/VERSIONS.txt" <<EOF
$HTM       preact/standalone.module.js -> preact-htm.js (bundles Preact 10 + hooks)
$PREACT    LICENSE only
$MARKED    lib/marked.esm.js -> marked.esm.js
$DOMPURIFY dist/purify.es.mjs -> purify.es.mjs
$HLJS es/core.min.js, es/languages/{$(IFS=,; echo "${HLJS_LANGUAGES[*]}")}.min.js -> highlight/
EOF

(cd "$OUT" && find . -type f ! -name SHA256SUMS | sed 's|^\./||' | LC_ALL=C sort | xargs sha256sum >SHA256SUMS)

if [[ $MODE == write ]]; then
  rm -rf "$VENDOR"
  mkdir -p "$(dirname "$VENDOR")"
  cp -r "$OUT" "$VENDOR"
  echo "web/vendor: $(find "$VENDOR" -type f | wc -l) files, $(du -sk "$VENDOR" | cut -f1) KB"
  exit 0
fi

# --check: the checked-in tree must be exactly the fresh one.
[[ -d "$VENDOR" ]] || die "no web/vendor/ to check"
status=0
if ! diff -q "$OUT/SHA256SUMS" "$VENDOR/SHA256SUMS" >/dev/null 2>&1; then
  echo "web/vendor/SHA256SUMS differs from the fresh download's:" >&2
  diff "$VENDOR/SHA256SUMS" "$OUT/SHA256SUMS" >&2 || true
  status=1
fi
# The files themselves against the fresh sums (catches an edit that left SHA256SUMS alone).
if ! (cd "$VENDOR" && sha256sum --quiet --strict -c "$OUT/SHA256SUMS"); then
  echo "web/vendor/: files differ from the fresh download (above)" >&2
  status=1
fi
extra=$(cd "$VENDOR" && find . -type f ! -name SHA256SUMS | sed 's|^\./||' | LC_ALL=C sort |
  comm -23 - <(cut -c67- "$OUT/SHA256SUMS"))
if [[ -n "$extra" ]]; then
  printf 'web/vendor/: files not produced by this script:\n%s\n' "$extra" >&2
  status=1
fi
[[ $status == 0 ]] && echo "web/vendor: matches $HTM $MARKED $DOMPURIFY $HLJS"
exit $status

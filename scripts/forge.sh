#!/usr/bin/env bash
# Run the pinned forge offline, with solcjs behind the shim, from contracts/.
#   scripts/forge.sh test | build | fmt --check | snapshot ...
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
forge="$root/node_modules/@foundry-rs/forge-linux-amd64/bin/forge"
[ -x "$forge" ] || { echo "forge not installed: run 'make setup' (npm ci) first" >&2; exit 2; }
cd "$root/contracts"
cmd="$1"; shift
case "$cmd" in
  build|test|snapshot) exec "$forge" "$cmd" --offline --use "$root/scripts/solc-shim.js" "$@" ;;
  *) exec "$forge" "$cmd" "$@" ;;
esac

#!/usr/bin/env bash
# Run the pinned forge offline, with solcjs behind scripts/solc-shim.js, from contracts/.
# Works from any cwd; forge and the shim are found relative to the repo root.
#   scripts/forge.sh build | test | snapshot [forge args...]   (compiling commands: --offline --use shim)
#   scripts/forge.sh fmt [--check] | config | ...              (passed through)
#   FOUNDRY_PROFILE=ci scripts/forge.sh test                   (fixed fuzz seed)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
forge="$root/node_modules/@foundry-rs/forge-linux-amd64/bin/forge"
shim="$root/scripts/solc-shim.js"
if [ $# -eq 0 ]; then
  echo "usage: scripts/forge.sh build|test|snapshot|coverage|fmt|... [forge args]" >&2
  exit 2
fi
[ -x "$forge" ] || { echo "forge not installed: run 'make setup' (npm ci) first" >&2; exit 2; }
[ -d "$root/contracts/lib/chainlink-contracts/src" ] || {
  echo "Chainlink's keystone contracts are missing (the tests compare against them): run 'make setup'" \
    "or scripts/fetch-chainlink.sh" >&2; exit 2; }
cd "$root/contracts"
cmd="$1"; shift
case "$cmd" in
  build|test|snapshot|coverage|inspect) exec "$forge" "$cmd" --offline --use "$shim" "$@" ;;
  *) exec "$forge" "$cmd" "$@" ;;
esac

#!/usr/bin/env bash
# Static analysis of contracts/src with slither (pinned in constraints.txt), compiled by the
# pinned forge through the solcjs shim (contracts/foundry.toml), offline. Fails on any medium or
# high finding (contracts/slither.config.json: "fail_on": "medium"). Run by `make lint`.
#
# Detectors switched off for the whole project, and why:
#   timestamp     freshness windows, trade deadlines and anchor times are seconds to minutes wide;
#                 a validator's few seconds of timestamp leeway are within them by design (the
#                 same call as forge lint's block-timestamp exclusion in foundry.toml).
#   solc-version, pragma
#                 about OpenZeppelin's floating pragmas; every build here uses solc 0.8.26 exactly.
# Single findings judged false positives, and every inline assembly block (the assembly detector
# is on), are silenced in the source, each on its own line with its reason:
# `// slither-disable-next-line <detector> (<reason>)`. Dependencies (node_modules/, lib/) are
# not ours to fix and are filtered out.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
slither="$root/.venv/bin/slither"
[ -x "$slither" ] || { echo "slither not installed: run 'make setup' first" >&2; exit 2; }
export PATH="$root/node_modules/@foundry-rs/forge-linux-amd64/bin:$PATH"
cd "$root/contracts"
# slither runs `forge clean` first; build into a separate out/cache so forge test keeps its cache.
export FOUNDRY_OUT=out-slither FOUNDRY_CACHE_PATH=cache-slither
exec "$slither" . --config-file slither.config.json "$@"

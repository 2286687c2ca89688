# vouch: the two commands a new user runs are `make demo` and `make test`.
# Everything else here is what they need: a pinned .venv and a pinned node toolchain.

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PY_STAMP := $(VENV)/.vouch-installed
NODE_STAMP := node_modules/.vouch-installed
CHAINLINK_STAMP := contracts/lib/chainlink-contracts/.version

.PHONY: setup demo test test-fast lint forge-test coverage gas-snapshot browser clean artifacts wheel

setup: $(PY_STAMP) $(NODE_STAMP) $(CHAINLINK_STAMP)

$(PY_STAMP): pyproject.toml constraints.txt
	@echo "==> creating $(VENV) and installing vouch (pinned by constraints.txt)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip==25.3"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	@touch $@

$(NODE_STAMP): package.json package-lock.json
	@echo "==> installing the pinned toolchain (anvil, forge, solc, OpenZeppelin) with npm ci"
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# Chainlink's KeystoneForwarder: the compatibility and gas baseline (npm pack, sha512-pinned).
$(CHAINLINK_STAMP): scripts/fetch-chainlink.sh
	scripts/fetch-chainlink.sh

demo: setup
	$(BIN)/vouch demo settlement

# vouch's contracts compiled into the package (vouch/_contracts/artifacts.json, not committed):
# a wheel ships them, so an installed vouch deploys without compiling (docs/install.md)
ARTIFACTS := vouch/_contracts/artifacts.json
artifacts: $(ARTIFACTS)
$(ARTIFACTS): $(shell find contracts/src -name "*.sol") package-lock.json | setup
	$(BIN)/python -m vouch._resources build-artifacts

# dist/vouch-<version>-py3-none-any.whl, with the contracts' sources and build inside
wheel: artifacts
	rm -rf build dist/vouch-*.whl
	$(BIN)/python -m pip wheel . --no-deps --quiet -w dist
	@ls dist/vouch-*.whl

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	scripts/slither.sh

# .gas-snapshot: every concrete forge test (fuzz and invariant runs are left out: their inputs
# change whenever a test changes); refresh it with `make gas-snapshot` and commit it.
SNAPSHOT_TESTS := --no-match-test "testFuzz_|invariant_"

# solcjs (wasm) corrupts its own heap when one call compiles every source and every test (85
# files: "memory access out of bounds"), so the suite runs as two compilations: the forwarder's
# tests (Keystone compatibility, gas) and the rest, each with its own gas snapshot file.
FORWARDER_TESTS := KeystoneCompat.t.sol Forwarder.t.sol ForwarderGas.t.sol
OTHER_TESTS := $(filter-out Base.t.sol $(FORWARDER_TESTS),$(notdir $(wildcard contracts/test/*.t.sol)))
ONLY_FORWARDER := $(addprefix --skip ,$(OTHER_TESTS)) --snap .gas-snapshot-forwarder
ONLY_OTHERS := $(addprefix --skip ,$(FORWARDER_TESTS)) --snap .gas-snapshot

gas-snapshot: setup
	FOUNDRY_PROFILE=ci scripts/forge.sh snapshot $(SNAPSHOT_TESTS) $(ONLY_OTHERS)
	FOUNDRY_PROFILE=ci scripts/forge.sh snapshot $(SNAPSHOT_TESTS) $(ONLY_FORWARDER)

forge-test: setup
	scripts/forge.sh fmt --check
	FOUNDRY_PROFILE=ci scripts/forge.sh test $(addprefix --skip ,$(FORWARDER_TESTS))
	FOUNDRY_PROFILE=ci scripts/forge.sh test $(addprefix --skip ,$(OTHER_TESTS))
	FOUNDRY_PROFILE=ci scripts/forge.sh snapshot --check $(SNAPSHOT_TESTS) $(ONLY_OTHERS)
	FOUNDRY_PROFILE=ci scripts/forge.sh snapshot --check $(SNAPSHOT_TESTS) $(ONLY_FORWARDER)
	# the Forwarder (and setConfig's hand-written initcode) on a pre-Shanghai EVM: no PUSH0
	FOUNDRY_PROFILE=ci FOUNDRY_OUT=out-paris FOUNDRY_CACHE_PATH=cache-paris \
	  scripts/forge.sh test --evm-version paris --match-contract '^ForwarderTest$$' \
	  $(addprefix --skip ,$(OTHER_TESTS))

# Line and branch coverage of contracts/src (the Forwarder compiles without the optimizer too).
# KeystoneCompat is left out: with Chainlink's sources solcjs runs out of wasm memory unoptimized.
coverage: setup
	FOUNDRY_PROFILE=ci FOUNDRY_OUT=out-coverage FOUNDRY_CACHE_PATH=cache-coverage \
	  scripts/forge.sh coverage --skip KeystoneCompat.t.sol --skip 'lib/**' --no-match-contract KeystoneCompat \
	  --no-match-coverage '(test|script|lib|node_modules)/' --report summary

# The audit report test renders the page in a real headless browser: Debian's chromium.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "==> installing Debian's chromium (the audit report is checked in a real browser)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q >/dev/null && $$SUDO apt-get install -y -q chromium >/dev/null; }

test: setup browser lint forge-test
	$(BIN)/python -m pytest

# The unit and conformance suites: no anvil, no node processes, no browser (a few minutes).
test-fast: setup
	$(BIN)/python -m pytest -m "not integration and not slow" -q -n auto

clean:
	rm -rf $(VENV) node_modules .vouch contracts/lib build dist $(ARTIFACTS)

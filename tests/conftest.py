"""Shared fixtures: one anvil, one deployment and one DON of real node processes per test run.

Each test runs between evm_snapshot and evm_revert, and gets its own attestation log.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from web3 import Web3

from vouch import Chain, Stack, VouchSettings, load_settings
from vouch.cre_adapters import DonConfig, DonSupervisor, load_key
from vouch.cre_adapters.evm import Artifacts, ChainWriter, Deployment
from vouch.verifier import AttestationLog

PASSWORD = "correct horse battery staple"


@dataclass
class Env:
    """Everything an integration test needs."""

    settings: VouchSettings
    stack: Stack
    chain: Chain
    w3: Web3
    artifacts: Artifacts
    deployment: Deployment
    don: DonConfig
    supervisor: DonSupervisor
    writer: ChainWriter

    def node_keys(self) -> list[bytes]:
        return [load_key(node.keystore, PASSWORD) for node in self.don.nodes]

    def contract(self, name: str, address: str | None = None) -> object:
        from vouch.cre_adapters.evm import contract

        return contract(self.w3, self.artifacts, name, address or self.deployment.address(name))


CHAIN_FIXTURES = frozenset({"env", "evm", "artifacts_cache"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that asks for the shared chain or DON is an integration test, marked or not.

    `make test-fast` runs ``-m "not integration and not slow"``: this keeps a test that
    starts anvil or nodes through a fixture out of it even when its module forgot the mark.
    """
    for item in items:
        if CHAIN_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    home = tmp_path_factory.mktemp("vouch-home")
    # no approval threshold on the shared gate: tests settle directly through the workflow;
    # the HITL tests deploy gates of their own with the default threshold (their own homes)
    settings = load_settings(home=home, keystore_password=PASSWORD, approval_threshold=0)
    stack = Stack(settings)
    chain = stack.chain_up()
    try:
        artifacts = stack.artifacts()
        deployment, _ = stack.deploy(chain, artifacts)
        don, _ = stack.don_up(deployment)
        yield Env(
            settings,
            stack,
            chain,
            chain.web3(),
            artifacts,
            deployment,
            don,
            stack.supervisor(don),
            stack.writer(chain, artifacts),
        )
    finally:
        stack.don_down()
        stack.chain_down()


@pytest.fixture
def evm(env: Env) -> Iterator[Env]:
    """The session env, with the chain reverted to its state before the test."""
    snapshot = env.w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    try:
        yield env
    finally:
        revert(env.w3, snapshot)


def revert(w3: Web3, snapshot: str) -> None:
    """Roll the chain back, then put anvil's clock back on the wall clock.

    After evm_revert anvil's block time lags real time by however long the test
    took; reports carry wall-clock timestamps, so a later test would see them as
    "from the future" (ReportFromFuture). Real chains do not drift like that.
    """
    w3.provider.make_request("evm_revert", [snapshot])  # type: ignore[arg-type]
    w3.provider.make_request("evm_setTime", [int(time.time())])  # type: ignore[arg-type]


@pytest.fixture
def log(tmp_path: Path) -> AttestationLog:
    return AttestationLog(tmp_path / "attestations.db")


@pytest.fixture
def artifacts_cache(env: Env) -> Path:
    """The compiled-artifacts cache, to copy into a fresh home so tests don't recompile."""
    return env.settings.home / "cache"


def copy_cache(cache: Path, home: Path) -> None:
    if cache.is_dir():  # none when vouch's shipped build was used (make artifacts / make wheel)
        shutil.copytree(cache, home / "cache", dirs_exist_ok=True)

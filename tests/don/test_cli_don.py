"""`vouch don up --nodes 7 --f 2`, status, runtime faults, and settlements through the CLI.

One 7-node DON for the module, deployed on the session chain (rolled back afterwards).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cre_adapters import DonConfig

from ..conftest import PASSWORD, copy_cache, revert
from ..integration.helpers import vouch_cli as vouch

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def seven(
    env: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[dict[str, str], Path]]:
    snapshot = env.w3.provider.make_request("evm_snapshot", [])["result"]
    home = tmp_path_factory.mktemp("seven")
    copy_cache(env.settings.home / "cache", home)
    environ = {
        **os.environ,
        "VOUCH_HOME": str(home),
        "VOUCH_KEYSTORE_PASSWORD": PASSWORD,
        "VOUCH_RPC_URL": env.chain.url,
        "COLUMNS": "220",
    }
    try:
        up = vouch(environ, "don", "up", "--nodes", "7", "--f", "2")
        assert up.returncode == 0, up.stdout + up.stderr
        assert "7 nodes started (f=2)" in up.stdout
        yield {**environ, "VOUCH_NODES": "7", "VOUCH_F": "2"}, home
    finally:
        vouch(environ, "don", "down")
        revert(env.w3, snapshot)


def test_status_shows_every_node_key_health_fault_and_rounds(seven: Any) -> None:
    environ, home = seven
    status = vouch(environ, "don", "status")
    assert status.returncode == 0, status.stdout + status.stderr
    don = DonConfig.load(home / "don" / "don.json")
    assert len(don.nodes) == 7 and don.f == 2
    for node in don.nodes:
        assert node.name in status.stdout and node.address in status.stdout
    assert "n=7, f=2, quorum 2f+1=5" in status.stdout
    for column in ("health", "fault", "rounds", "last round"):
        assert column in status.stdout


def test_f_faulty_settle_and_f_plus_1_are_refused_naming_them(seven: Any) -> None:
    environ, home = seven
    for node, mode in (("node-6", "lie"), ("node-7", "wrong-key")):
        set_ = vouch(environ, "don", "fault", node, mode)
        assert set_.returncode == 0, set_.stderr
    settled = vouch(environ, "demo", "settlement")
    assert settled.returncode == 0, settled.stdout + settled.stderr
    assert "settled" in settled.stdout

    # not "down": the demo restarts (and so heals) a DON with an unhealthy node
    vouch(environ, "don", "fault", "node-5", "bad-signature")
    try:
        refused = vouch(environ, "demo", "settlement")
        status = vouch(environ, "don", "status")
    finally:
        for node in ("node-5", "node-6", "node-7"):
            vouch(environ, "don", "fault", node, "none")
    assert "(f=2) running" in refused.stdout  # the same processes, faults still set
    assert refused.returncode == 1
    assert "QuorumNotReached" in refused.stderr
    for node in ("node-5", "node-6", "node-7"):
        assert f"{node}:" in refused.stderr
    assert status.returncode == 0 and "bad-signature" in status.stdout
    logs = (home / "don" / "run" / "node-1.log").read_text().splitlines()
    assert any('"event": "observed"' in line and '"node": "node-1"' in line for line in logs)


def test_unknown_fault_mode_is_a_usage_error(seven: Any) -> None:
    environ, _ = seven
    result = vouch(environ, "don", "fault", "node-1", "sleepy")
    assert result.returncode == 2 and "Invalid value for 'mode'" in result.stderr + result.stdout

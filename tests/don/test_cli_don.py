"""`vouch don up --nodes 7 --f 2`, status, runtime faults, and settlements through the CLI.

One 7-node DON for the module, deployed on the session chain (rolled back afterwards).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from vouch.cre_adapters import DonConfig

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

    vouch(environ, "don", "fault", "node-5", "down")  # the demo never heals it
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
    assert status.returncode == 1 and "down" in status.stdout  # node-5 is down, and says so
    logs = (home / "don" / "run" / "node-1.log").read_text().splitlines()
    assert any('"event": "observed"' in line and '"node": "node-1"' in line for line in logs)


def test_unknown_fault_mode_is_a_usage_error(seven: Any) -> None:
    environ, _ = seven
    result = vouch(environ, "don", "fault", "node-1", "sleepy")
    assert result.returncode == 2 and "Invalid value for 'MODE'" in result.stderr + result.stdout


def _own_shape(environ: dict[str, str]) -> dict[str, str]:
    """The environment without VOUCH_NODES/VOUCH_F: n and f come from the DON on disk."""
    return {k: v for k, v in environ.items() if k not in ("VOUCH_NODES", "VOUCH_F")}


def test_the_demo_uses_the_running_don_as_it_is_with_its_faults(seven: Any) -> None:
    environ, home = seven
    environ = _own_shape(environ)
    pids = (home / "don" / "run" / "don.pids.json").read_text()
    vouch(environ, "don", "fault", "node-6", "lie")
    vouch(environ, "don", "fault", "node-7", "down", "--kill")
    try:
        demo = vouch(environ, "demo", "settlement")
        status = vouch(environ, "don", "status")
        assert demo.returncode == 0, demo.stdout + demo.stderr
        assert "DON of 7 nodes (f=2) running" in demo.stdout
        assert "settled" in demo.stdout
        row = next(line for line in status.stdout.splitlines() if "node-7" in line)
        assert "down" in row and "killed" in row, status.stdout
        assert status.returncode == 1
        assert (home / "don" / "run" / "don.pids.json").read_text() == pids  # no restart
    finally:
        healed = vouch(environ, "don", "fault", "node-7", "none")
        vouch(environ, "don", "fault", "node-6", "none")
    assert healed.returncode == 0, healed.stdout + healed.stderr
    assert vouch(environ, "don", "status").returncode == 0  # node-7 runs again


def test_a_command_asking_for_another_don_refuses_naming_the_command(seven: Any) -> None:
    environ, home = seven
    before = DonConfig.load(home / "don" / "don.json")
    asked = {**_own_shape(environ), "VOUCH_NODES": "4", "VOUCH_F": "1"}
    demo = vouch(asked, "demo", "settlement")
    assert demo.returncode != 0
    out = demo.stdout + demo.stderr
    assert "running DON has 7 nodes (f=2)" in out and "vouch don up --nodes 4 --f 1" in out
    assert DonConfig.load(home / "don" / "don.json") == before
    assert vouch(_own_shape(environ), "don", "status").returncode == 0

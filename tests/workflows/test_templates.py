"""`vouch init` per template: the project's own tests pass, `vouch workflow run` delivers, the audit passes.

Each project runs in its own folder with its own home (its vouch.toml says
home = ".vouch"): its own anvil, deployment and 4 node processes.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.workflows.helpers import http_server

pytestmark = [pytest.mark.integration, pytest.mark.slow]

VOUCH = [sys.executable, "-m", "vouch"]


def vouch(project: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VOUCH_KEYSTORE_PASSWORD": "template test password", "COLUMNS": "200"}
    return subprocess.run(
        [*VOUCH, *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def point_config(project: Path, key: str, url: str) -> None:
    toml = project / "vouch.toml"
    text, count = re.subn(rf'^{key} = "[^"]*"', f'{key} = "{url}"', toml.read_text(), flags=re.M)
    assert count == 1
    toml.write_text(text)


def settled_count(project: Path) -> int:
    """SettlementReceiver.settledCount() on the project's own chain."""
    from web3 import Web3

    url = json.loads((project / ".vouch" / "chain" / "anvil.json").read_text())["url"]
    record = json.loads(
        (project / ".vouch" / "workflows" / "SettlementReceiver-31337.json").read_text()
    )
    answer = Web3(Web3.HTTPProvider(url)).eth.call(
        {"to": record["address"], "data": Web3.keccak(text="settledCount()")[:4]}
    )
    return int.from_bytes(answer, "big")


@pytest.mark.parametrize(
    ("template", "key", "body", "entries"),
    [
        (
            "data-feed",
            "url",
            {"price": 3000_00000000},
            ["trigger", "capability", "report", "submission"],
        ),
        (
            "proof-of-reserve",
            "reserves_url",
            {"reserves": 10**30},
            ["trigger", "capability", "capability", "report", "submission"],
        ),
        (
            "agent-settlement",
            "price_url",
            {"price": 3000 * 10**18},
            ["trigger", "capability", "report", "submission"],
        ),
    ],
)
def test_a_generated_project_builds_runs_on_four_nodes_and_audits(
    tmp_path: Path, template: str, key: str, body: dict[str, int], entries: list[str]
) -> None:
    created = vouch(tmp_path, "init", "proj", "--template", template)
    assert created.returncode == 0, created.stderr
    project = tmp_path / "proj"
    for part in ("workflow.py", "vouch.toml", "foundry.toml", "contracts", "test", "tests"):
        assert (project / part).exists(), part
    own = subprocess.run(
        [sys.executable, "-m", "pytest", "tests", "-q", "-p", "no:cacheprovider"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert own.returncode == 0, own.stdout[-3000:]
    try:
        with http_server(lambda seen, i: (200, json.dumps(body).encode(), 0)) as server:
            point_config(project, key, server.url + "/api")
            ran = vouch(project, "workflow", "run", "workflow.py")
        assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
        assert "delivered" in ran.stdout
        audited = vouch(project, "audit", "--json")
        report = json.loads(audited.stdout)
        assert audited.returncode == 0, audited.stdout[-3000:]
        assert [e["kind"] for e in report["results"] if e["check"] == "chain"] == entries
        assert not [r for r in report["results"] if r["status"] == "fail"]
        if template == "agent-settlement":  # the trade is settled onchain at the attested price
            assert settled_count(project) == 1
    finally:
        vouch(project, "down", timeout=120)


def test_init_refuses_a_nonempty_folder_and_an_unknown_template(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_text("mine")
    refused = vouch(tmp_path, "init", "taken")
    assert refused.returncode == 1
    assert "exists and is not empty" in refused.stderr
    assert (tmp_path / "taken" / "x").read_text() == "mine"
    unknown = vouch(tmp_path, "init", "p", "--template", "nope")
    assert unknown.returncode == 1 and "one of data-feed, proof-of-reserve" in unknown.stderr
    assert not (tmp_path / "p").exists()

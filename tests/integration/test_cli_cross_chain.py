"""What a user does: `vouch demo cross-chain`, twice, on a fresh home."""

from __future__ import annotations

import os
import re
from pathlib import Path

import httpx
import pytest

from vouch.cre_adapters import DonConfig
from vouch.verifier import AttestationLog

from ..conftest import PASSWORD, copy_cache
from .helpers import vouch_cli as vouch

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_the_cross_chain_demo_delivers_once_audits_clean_and_leaves_nothing_running(
    tmp_path: Path, env
) -> None:
    home = tmp_path / "home"
    copy_cache(env.settings.home / "cache", home)
    environ = {
        **os.environ,
        "VOUCH_HOME": str(home),
        "VOUCH_KEYSTORE_PASSWORD": PASSWORD,
        "COLUMNS": "200",
    }
    try:
        first = vouch(environ, "demo", "cross-chain", "--message", "gm chain B", "--amount", "3")
        assert first.returncode == 0, first.stdout + first.stderr
        out = first.stdout
        assert "message sent on chain A with 3 BRG" in out
        assert "4 nodes read the MessageSent event from chain A themselves" in out
        assert "report signed by f+1 = 2 nodes" in out
        assert "the receiver got “gm chain B” and 3 BRG were released" in out
        assert "✓ all 16 checks passed on 4 entries" in out
        chain_b = re.search(r"chain B: 31338 at (http://127\.0\.0\.1:\d+)", out)
        assert chain_b is not None
        with pytest.raises(httpx.TransportError):  # chain B stopped with the demo
            httpx.post(chain_b.group(1), json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"})
        second = vouch(environ, "demo", "cross-chain")
        assert second.returncode == 0, second.stdout + second.stderr
        assert "hello from chain A, attested by the DON" in second.stdout
        logs = sorted((home / "cross-chain").glob("relay-*.db"))
        assert len(logs) == 2  # one per run: each was audited against its own chain B
        kinds = [e.kind for e in AttestationLog(logs[0], readonly=True).entries()]
        assert kinds == ["observations", "consensus", "report", "submission"]
        relay = DonConfig.load(home / "cross-chain" / "don.json")
        for node in relay.nodes:  # the relay's nodes stopped with the demo
            with pytest.raises(httpx.TransportError):
                httpx.get(f"{node.url}/health", timeout=2)
    finally:
        vouch(environ, "down")

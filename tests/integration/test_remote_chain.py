"""Deploy, settle and audit on a "remote" chain: another chain id, keystore keys, a hosted RPC's manners.

A second anvil (chain id 31338) stands behind ``tests/rpc_proxy.py``, which
adds a round trip of latency to every request, refuses getLogs spanning more
than 20 blocks (a hosted RPC's cap) and keeps no state of old blocks (a full
node, not an archive). vouch is given only the proxy's URL and a deployer
keystore of a fresh account the test funded: no anvil dev key may sign. The
chain has moved 200 blocks on before the settlement, so every event read from
the deployment block on must be windowed. ``vouch deploy``, ``vouch demo
settlement`` (whose DON runs on this host) and ``vouch audit`` all succeed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from web3 import Web3

from vouch._resources import toolchain as find_toolchain
from vouch.cre_adapters import create_keystore
from vouch.cre_adapters.evm import start_anvil

from ..conftest import PASSWORD, copy_cache
from ..rpc_proxy import RpcProxy

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REMOTE_CHAIN_ID = 31338
DEPLOYER_PASSWORD = "the deployer's own password"


@pytest.fixture
def remote(tmp_path: Path) -> Iterator[tuple[Any, RpcProxy]]:
    anvil = start_anvil(find_toolchain(), chain_id=REMOTE_CHAIN_ID)
    proxy = RpcProxy(anvil.url, delay=0.02, max_log_blocks=20, archive=False)
    try:
        yield anvil, proxy
    finally:
        proxy.close()
        anvil.stop()


def _vouch(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vouch", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_deploy_settle_and_audit_through_a_hosted_rpc_with_keystore_keys(
    remote: tuple[Any, RpcProxy], tmp_path: Path, artifacts_cache: Path
) -> None:
    anvil, proxy = remote
    direct = Web3(Web3.HTTPProvider(anvil.url))
    deployer = create_keystore(tmp_path / "deployer.json", DEPLOYER_PASSWORD, scrypt_n=2**12)
    direct.eth.send_transaction(
        {"from": direct.eth.accounts[0], "to": deployer, "value": 10**20}  # type: ignore[typeddict-item]
    )
    home = tmp_path / "home"
    copy_cache(artifacts_cache, home)
    env = {
        **os.environ,
        "VOUCH_HOME": str(home),
        "VOUCH_RPC_URL": proxy.url,
        "VOUCH_DEPLOYER_KEYSTORE": str(tmp_path / "deployer.json"),
        "VOUCH_KEY_PASSWORDS__DEPLOYER": DEPLOYER_PASSWORD,
        "VOUCH_KEYSTORE_PASSWORD": PASSWORD,
        "COLUMNS": "200",
    }
    try:
        deployed = _vouch(env, "deploy")
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr
        manifest = json.loads((home / "deployments" / f"{REMOTE_CHAIN_ID}.json").read_text())
        forwarder = manifest["contracts"]["Forwarder"]
        creator = direct.eth.get_transaction_receipt(
            direct.eth.get_transaction_by_block(manifest["block"], 0)["hash"]
        )["from"]
        assert creator == deployer  # the keystore's key deployed, not a dev key
        direct.provider.make_request("anvil_mine", [hex(200)])  # type: ignore[arg-type]
        refused_before = proxy.refused

        settled = _vouch(env, "demo", "settlement")
        assert settled.returncode == 0, settled.stdout + settled.stderr
        assert "settled in block" in settled.stdout
        assert f"chain {REMOTE_CHAIN_ID}" in settled.stdout
        assert proxy.refused > refused_before  # the 20-block cap was met, and worked around

        audited = _vouch(env, "audit", "--json")
        assert audited.returncode == 0, audited.stdout + audited.stderr
        report = json.loads(audited.stdout)
        assert report["context"]["chain_id"] == REMOTE_CHAIN_ID
        assert report["context"]["pins"]["forwarder"].lower() == forwarder.lower()
        dev_keys = {a.lower() for a in direct.eth.accounts}
        senders = {
            direct.eth.get_transaction_by_block(n, i)["from"].lower()
            for n in range(manifest["block"], direct.eth.block_number + 1)
            for i in range(direct.eth.get_block_transaction_count(n))
        }
        assert senders and not senders & dev_keys  # nothing vouch sent was signed by a dev key
    finally:
        _vouch(env, "don", "down")

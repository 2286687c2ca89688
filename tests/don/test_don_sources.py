"""A DON sources file picks each node's data source (and fault): unit checks and `vouch don up --sources`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account

from vouch.cre_adapters import ConfigError, DonConfig, DonSources, NodeSpec, SourceSpec

from ..conftest import PASSWORD, copy_cache, revert
from .test_cli_don import vouch

SOURCES = """
[source]
kind = "mock-rates"
[nodes.node-2.source]
kind = "http"
http = { "ETH/USD" = { url = "http://127.0.0.1:9/eth", path = "price" } }
[nodes.node-4]
fault = { mode = "lie", lie_bps = 300 }
"""


def four() -> DonConfig:
    nodes = [
        NodeSpec(
            name=f"node-{i}",
            address=Account.create().address,
            port=20_000 + i,
            keystore=Path(f"/k/{i}"),
            source=SourceSpec(node_seed=1000 + i),
        )
        for i in range(1, 5)
    ]
    return DonConfig(f=1, chain_id=31337, forwarder=Account.create().address, nodes=nodes)


def test_sources_file_sets_every_node_and_keeps_their_own_seeds(tmp_path: Path) -> None:
    path = tmp_path / "sources.toml"
    path.write_text(SOURCES)
    don = DonSources.load(path).apply(four())
    kinds = {n.name: n.source.kind for n in don.nodes}
    assert kinds == {
        "node-1": "mock-rates",
        "node-2": "http",
        "node-3": "mock-rates",
        "node-4": "mock-rates",
    }
    assert don.node("node-3").source.node_seed == 1003  # only the given fields change
    assert don.node("node-2").source.http["ETH/USD"].path == "price"
    assert don.node("node-4").fault.mode == "lie" and don.node("node-4").fault.lie_bps == 300
    assert don.node("node-1").fault.mode == "none"


def test_sources_file_naming_an_unknown_node_or_bad_source_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text('{"nodes": {"node-9": {"fault": {"mode": "down"}}}}')
    with pytest.raises(ConfigError, match="unknown node\\(s\\) \\['node-9'\\]; known: \\['node-1'"):
        DonSources.load(path).apply(four())
    path.write_text('{"source": {"kind": "carrier-pigeon"}}')
    with pytest.raises(ConfigError, match="node node-1: invalid source"):
        DonSources.load(path).apply(four())
    path.write_text('{"nodes": {"node-1": {"colour": "red"}}}')
    with pytest.raises(ConfigError, match="invalid DON sources file"):
        DonSources.load(path)


@pytest.mark.integration
@pytest.mark.slow
def test_vouch_don_up_with_a_sources_file(
    env: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    snapshot = env.w3.provider.make_request("evm_snapshot", [])["result"]
    home = tmp_path_factory.mktemp("sourced")
    copy_cache(env.settings.home / "cache", home)
    (home / "sources.yaml").write_text(
        "source: {kind: mock-rates}\nnodes:\n  node-4:\n    fault: {mode: stale, stale_by: 99}\n"
    )
    environ = {
        **os.environ,
        "VOUCH_HOME": str(home),
        "VOUCH_KEYSTORE_PASSWORD": PASSWORD,
        "VOUCH_RPC_URL": env.chain.url,
        "COLUMNS": "220",
    }
    try:
        up = vouch(environ, "don", "up", "--sources", str(home / "sources.yaml"))
        assert up.returncode == 0, up.stdout + up.stderr
        assert "node-4: source mock-rates, fault stale" in up.stdout
        don = DonConfig.load(home / "don" / "don.json")
        assert {n.source.kind for n in don.nodes} == {"mock-rates"}
        node = don.node("node-1")
        fx = httpx.post(node.url + "/observe", json={"request_id": "fx-1", "feed": "EUR/USD"})
        assert fx.status_code == 200, fx.text  # a rates source answers FX pairs
        eth = httpx.post(node.url + "/observe", json={"request_id": "fx-1", "feed": "ETH/USD"})
        assert eth.status_code == 400 and "unknown feed" in eth.json()["error"]
        assert httpx.get(don.node("node-4").url + "/health").json()["fault"] == "stale"
        kept = vouch({**environ, "VOUCH_DON_SOURCES": str(home / "sources.yaml")}, "don", "up")
        assert "already running" in kept.stdout, kept.stdout + kept.stderr  # sources kept
        assert DonConfig.load(home / "don" / "don.json") == don
        bad = vouch(environ, "don", "up", "--sources", str(home / "missing.toml"))
        assert bad.returncode != 0 and "cannot read DON sources file" in bad.stdout + bad.stderr
    finally:
        vouch(environ, "don", "down")
        revert(env.w3, snapshot)

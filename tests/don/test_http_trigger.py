"""The legacy spec engine's http trigger (FeedWorkflow serves POST /trigger), over real HTTP."""

from __future__ import annotations

import asyncio
import json
import stat
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from vouch.cre_adapters import ConfigError, FeedWorkflow, HttpTrigger, ReportDelivery, WorkflowSpec
from vouch.cre_adapters.evm import free_port
from vouch.verifier import AttestationLog

from ..integration.helpers import vouch_cli
from .test_workflow_spec import session_cli_env, write

SPEC = """
name = "eth-feed"
[trigger]
kind = "http"
port = {port}
runs = 50
token_file = "{token}"
[[capabilities]]
feed = "ETH/USD"
[[capabilities]]
feed = "BTC/USD"
[target]
kind = "feeds"
contract = "FeedConsumer"
function = "onReport"
"""


def test_the_http_trigger_serves_loopback_only(tmp_path: Path) -> None:
    assert HttpTrigger(kind="http").host == "127.0.0.1"
    for host in ("::1", "localhost", "127.0.0.2"):
        assert HttpTrigger(kind="http", host=host).host == host
    text = SPEC.format(port=0, token=tmp_path / "t").replace(
        "[trigger]\n", '[trigger]\nhost = "0.0.0.0"\n'
    )
    with pytest.raises(ConfigError, match="loopback only.*not 0.0.0.0"):
        WorkflowSpec.load(write(tmp_path, "w.toml", text))


def _wait_listening(url: str, done: threading.Event) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if done.is_set():
            raise AssertionError("the workflow ended before its trigger listened")
        try:
            httpx.post(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError("the trigger never listened")


@pytest.mark.integration
def test_post_trigger_runs_one_feed_execution_per_request(evm: Any, tmp_path: Path) -> None:
    """The legacy engine's http trigger (the CLI refuses specs now; a module's http trigger is
    tests/workflows/test_workflow_http_trigger.py): the feed log it wrote still audits."""
    port, token_file, log_path = free_port(), tmp_path / "trigger.token", tmp_path / "f.db"
    spec = WorkflowSpec.load(
        write(
            tmp_path,
            "w.toml",
            SPEC.format(port=port, token=token_file).replace("runs = 50", "runs = 2"),
        )
    )
    url = f"http://127.0.0.1:{port}/trigger"
    environ = session_cli_env(evm)
    done, ran = threading.Event(), []

    def serve() -> None:  # the log's SQLite connection belongs to the thread that made it
        journal = AttestationLog(log_path)
        runner = FeedWorkflow(
            spec,
            evm.don,
            journal,
            rpc_url=evm.chain.url,
            timeout=10,
            delivery=ReportDelivery(evm.deployment, evm.artifacts, evm.writer, journal),
            workflow=evm.deployment.feed_workflow,
        )
        try:
            ran.append(asyncio.run(runner.run()))
        finally:
            done.set()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    _wait_listening(url, done)
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    auth = {"Authorization": "Bearer " + token_file.read_text().strip()}
    with httpx.Client(timeout=60) as client:
        refused = client.post(url, json={})
        assert refused.status_code == 401 and "token" in refused.json()["error"]
        wrong = client.post(url, json={}, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        bare = {"Authorization": token_file.read_text().strip()}  # the token without "Bearer"
        assert client.post(url, json={}, headers=bare).status_code == 401
        unknown = client.post(url, json={"feeds": ["DOGE/USD"]}, headers=auth)
        assert unknown.status_code == 422 and "not DOGE/USD" in unknown.json()["error"]
        extra = client.post(url, json={"feed": "ETH/USD"}, headers=auth)
        assert extra.status_code == 422
        assert extra.json()["problems"][0]["field"] == "feed"
        bad = client.post(url, content=b"{not json", headers=auth)
        assert bad.status_code == 422
        one = client.post(url, json={"feeds": ["ETH/USD"]}, headers=auth)
        assert one.status_code == 200, one.text
        first = one.json()
        assert first["status"] == "delivered" and list(first["feeds"]) == ["ETH/USD"]
        value = first["feeds"]["ETH/USD"]["value"]
        consumer = evm.contract("FeedConsumer")
        assert consumer.functions.latest("ETH/USD").call()[0] == value  # type: ignore[attr-defined]
        both = client.post(url, json={}, headers=auth)  # the second firing: all feeds
        assert both.status_code == 200, both.text
        second = both.json()
        assert second["status"] == "delivered" and set(second["feeds"]) == {
            "ETH/USD",
            "BTC/USD",
        }
        assert second["submission"]["tx_hash"].startswith("0x")
        assert second["execution_id"] != first["execution_id"]
    thread.join(timeout=60)  # runs = 2: the server stops by itself
    assert not thread.is_alive() and len(ran) == 1 and len(ran[0]) == 2, ran
    with pytest.raises(httpx.TransportError):
        httpx.post(url, json={}, headers=auth, timeout=2)
    log = AttestationLog(log_path)
    assert [e.payload["cause"]["feeds"] for e in log.entries() if e.kind == "observations"] == [
        ["ETH/USD"],
        None,
        None,
    ]
    audited = vouch_cli(environ, "audit", "--json", "--log", str(log_path), timeout=120)
    assert audited.returncode == 0, audited.stdout + audited.stderr
    checks = [r for r in json.loads(audited.stdout)["results"] if r["check"] == "transaction"]
    assert len(checks) == 2 and all(r["status"] == "ok" for r in checks)

"""The http trigger: `vouch workflow run` serves POST /trigger; tested over real HTTP (httpx)."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from subprocess import Popen
from typing import Any

import httpx
import pytest

from vouch._agent_settlement import ActionProposal, FactRequest, SettlementParams
from vouch.cre_adapters import ConfigError, HttpTrigger, WorkflowSpec
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


def _wait_listening(url: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"vouch exited {process.returncode}: {process.communicate()}")
        try:
            httpx.post(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError("the trigger never listened")


@contextmanager
def serving(command: list[str], environ: dict[str, str], url: str) -> Iterator[Popen[str]]:
    """``vouch workflow run`` serving its http trigger at ``url``; killed if still up after."""
    process = subprocess.Popen(
        command, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        _wait_listening(url, process)
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


@pytest.mark.integration
def test_post_trigger_runs_one_feed_execution_per_request(evm: Any, tmp_path: Path) -> None:
    port, token_file, log_path = free_port(), tmp_path / "trigger.token", tmp_path / "f.db"
    spec = write(tmp_path, "w.toml", SPEC.format(port=port, token=token_file))
    url = f"http://127.0.0.1:{port}/trigger"
    environ = session_cli_env(evm)
    command = [sys.executable, "-m", "vouch", "workflow", "run", str(spec), "--log", str(log_path)]
    with serving([*command, "--max-firings", "2"], environ, url) as process:
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
        out, err = process.communicate(timeout=30)  # --max-firings 2: the server stops by itself
    assert process.returncode == 0, out + err
    assert "workflow eth-feed: 2 run(s) done" in out
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


SETTLE = """
name = "settlement"
[trigger]
kind = "http"
port = {port}
token_file = "{token}"
[[capabilities]]
feed = "ETH/USD"
[target]
kind = "settlement"
"""


@pytest.mark.integration
@pytest.mark.slow
def test_post_trigger_settles_a_goal_and_refuses_an_ambiguous_body(
    evm: Any, tmp_path: Path
) -> None:
    port, token_file = free_port(), tmp_path / "trigger.token"
    spec = write(tmp_path, "s.toml", SETTLE.format(port=port, token=token_file))
    url = f"http://127.0.0.1:{port}/trigger"
    with serving(
        [sys.executable, "-m", "vouch", "workflow", "run", str(spec)], session_cli_env(evm), url
    ) as process:
        auth = {"Authorization": "Bearer " + token_file.read_text().strip()}
        with httpx.Client(timeout=180) as client:
            neither = client.post(url, json={}, headers=auth)
            assert neither.status_code == 422 and "exactly one of goal" in neither.text
            goal = "Sell 1 WETH for USDC between 2,500 and 3,500 USDC per WETH within 10 minutes"
            answer = client.post(url, json={"goal": goal}, headers=auth)
            assert answer.status_code == 200, answer.text
            outcome = answer.json()
            assert outcome["status"] == "settled" and outcome["tx_hash"].startswith("0x")
            assert outcome["execution_id"].startswith("0x")
        out, err = process.communicate(timeout=30)  # runs = 1: one settlement, then it stops
    assert process.returncode == 0, out + err
    assert "workflow settlement: 1 run(s) done" in out


ONE = 10**18
SETTLED = 3  # SettlementGate.Status.Settled


def _proposal(weth: int) -> ActionProposal:
    """What the settlement agent proposes for "sell ``weth`` WETH for USDC at 2,500-3,500"."""
    params = SettlementParams(
        base_token="WETH",
        quote_token="USDC",
        base_amount=weth * ONE,
        min_price=2_500 * ONE,
        max_price=3_500 * ONE,
        deadline_seconds=600,
    )
    return ActionProposal(
        params=params, facts=[FactRequest(feed="ETH/USD")], rationale="the goal's numbers"
    )


@pytest.fixture
def home_log(evm: Any) -> Iterator[Path]:
    """The session home's log, empty for this test (a settlement spec logs there, no --log)."""
    path = evm.settings.log_path
    aside = path.with_name(path.name + ".aside")
    if path.exists():
        path.rename(aside)
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)
        if aside.exists():
            aside.rename(path)


@pytest.mark.integration
@pytest.mark.slow
def test_post_trigger_settles_a_proposal_and_refuses_one_above_the_approval_threshold(
    evm: Any, tmp_path: Path, home_log: Path
) -> None:
    port, token_file = free_port(), tmp_path / "trigger.token"
    spec = write(tmp_path, "s.toml", SETTLE.format(port=port, token=token_file))
    url = f"http://127.0.0.1:{port}/trigger"
    environ = {**session_cli_env(evm), "VOUCH_APPROVAL_THRESHOLD": str(ONE)}  # 1 WETH
    start = evm.w3.eth.block_number + 1
    with serving(
        [sys.executable, "-m", "vouch", "workflow", "run", str(spec)], environ, url
    ) as process:
        auth = {"Authorization": "Bearer " + token_file.read_text().strip()}
        valid = _proposal(1).model_dump(mode="json")
        with httpx.Client(timeout=180) as client:
            params = {k: v for k, v in valid["params"].items() if k != "deadline_seconds"}
            missing = client.post(url, json={"proposal": {**valid, "params": params}}, headers=auth)
            assert missing.status_code == 422
            assert missing.json()["problems"][0]["field"] == "proposal.params.deadline_seconds"
            inverted = {**valid["params"], "min_price": 4_000 * ONE}
            bounds = client.post(
                url, json={"proposal": {**valid, "params": inverted}}, headers=auth
            )
            assert bounds.status_code == 422
            problem = bounds.json()["problems"][0]
            assert problem["field"] == "proposal.params" and "above max_price" in problem["problem"]
            body = {"proposal": _proposal(2).model_dump(mode="json")}
            above = client.post(url, json=body, headers=auth)  # 2 WETH: refused before escrow
            assert above.status_code == 422, above.text
            assert "above the gate's approval threshold" in above.json()["error"]
            assert "vouch runs approve" in above.json()["error"]
            answer = client.post(url, json={"proposal": valid}, headers=auth)
            assert answer.status_code == 200, answer.text
            outcome = answer.json()
            assert outcome["status"] == "settled" and outcome["tx_hash"].startswith("0x")
            assert outcome["execution_id"].startswith("0x")
        out, err = process.communicate(timeout=30)  # runs = 1: the 422s were not firings
    assert process.returncode == 0, out + err
    assert "workflow settlement: 1 run(s) done" in out
    gate = evm.contract("SettlementGate")
    created = gate.events.TradeCreated().get_logs(from_block=start)  # type: ignore[attr-defined]
    assert len(created) == 1  # the refused proposals escrowed nothing
    entries = AttestationLog(home_log).by_execution(outcome["execution_id"])
    trade_id = next(e.payload["trade_id"] for e in entries if e.kind == "proposal")
    assert int(created[0]["args"]["tradeId"]) == trade_id
    assert gate.functions.getTrade(trade_id).call()[12] == SETTLED  # type: ignore[attr-defined]
    audited = vouch_cli(environ, "audit", "--json", timeout=120)
    assert audited.returncode == 0, audited.stdout + audited.stderr
    checks = [r for r in json.loads(audited.stdout)["results"] if r["check"] == "transaction"]
    assert len(checks) == 1 and checks[0]["status"] == "ok"

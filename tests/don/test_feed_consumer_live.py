"""A feeds target: a feed workflow's report goes through the Forwarder to FeedConsumer on anvil."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from vouch.cre_adapters import (
    ConfigError,
    ContractRevert,
    FeedWorkflow,
    ReportDelivery,
    TargetSpec,
    WorkflowSpec,
)
from vouch.verifier import AttestationLog, Web3ChainReader, audit

from ..integration.helpers import vouch_cli
from .test_workflow_spec import session_cli_env, write

FEEDS_SPEC = """
name = "eth-feed"
[trigger]
kind = "interval"
every = 1.1
runs = 2
[[capabilities]]
feed = "ETH/USD"
[[capabilities]]
feed = "BTC/USD"
[consensus]
mode = "median"
[target]
kind = "feeds"
contract = "FeedConsumer"
function = "onReport"
"""


def test_a_feeds_target_names_feed_consumer_on_report_or_is_refused(tmp_path: Path) -> None:
    spec = WorkflowSpec.load(write(tmp_path, "w.toml", FEEDS_SPEC))
    assert spec.target.call == ("FeedConsumer", "onReport")
    assert TargetSpec(kind="feeds").call == ("FeedConsumer", "onReport")
    for target, needle in (
        ('contract = "FeedConsumer"', "names no contract"),  # kind defaults to log
        ('kind = "feeds"\ncontract = "SettlementGate"', "not SettlementGate.onReport"),
        ('kind = "settlement"\ncontract = "FeedConsumer"', "not FeedConsumer.onReport"),
    ):
        text = FEEDS_SPEC.split("[target]", maxsplit=1)[0] + "[target]\n" + target + "\n"
        with pytest.raises(ConfigError, match=needle):
            WorkflowSpec.load(write(tmp_path, "t.toml", text))


def test_a_feeds_target_needs_a_delivery(env: Any, tmp_path: Path) -> None:
    spec = WorkflowSpec.load(write(tmp_path, "w.toml", FEEDS_SPEC))
    log = AttestationLog(tmp_path / "f.db")
    with pytest.raises(ConfigError, match="needs the deployment's FeedConsumer"):
        FeedWorkflow(spec, env.don, log)


def _latest(env: Any, feed: str) -> tuple[int, int]:
    consumer = env.contract("FeedConsumer")
    value, stamp = consumer.functions.latest(feed).call()  # type: ignore[attr-defined]
    return int(value), int(stamp)


@pytest.mark.integration
def test_a_feeds_log_written_by_a_spec_updates_feed_consumer_and_audits(
    evm: Any, tmp_path: Path
) -> None:
    """What `vouch workflow run SPEC` did before specs were replaced (it refuses them now):
    the legacy engine delivers to FeedConsumer; the log it wrote still audits."""
    spec = WorkflowSpec.load(write(tmp_path, "w.toml", FEEDS_SPEC))
    environ = session_cli_env(evm)
    log_path = tmp_path / "f.db"
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
    outcomes = asyncio.run(runner.run())
    assert [o["status"] for o in outcomes] == ["delivered", "delivered"], outcomes
    log = AttestationLog(log_path)
    submissions = [e for e in log.entries() if e.kind == "submission"]
    assert [s.payload["status"] for s in submissions] == ["delivered", "delivered"]
    consumer = evm.deployment.address("FeedConsumer")
    assert {s.payload["receiver"] for s in submissions} == {consumer}
    last = submissions[-1]
    receipt = evm.w3.eth.get_transaction_receipt(last.payload["tx_hash"])
    assert receipt["status"] == 1 and receipt["gasUsed"] == last.payload["gas_used"]
    agreed = {
        e.payload["feed"]: e.payload["value"]
        for e in log.entries()
        if e.kind == "consensus" and e.execution_id == last.execution_id
    }
    report = next(
        e for e in log.entries() if e.kind == "report" and e.execution_id == last.execution_id
    )
    stamp = int.from_bytes(bytes.fromhex(report.payload["raw"][2:])[33:37], "big")
    for feed in ("ETH/USD", "BTC/USD"):  # the consensus value of the last round, with its time
        assert _latest(evm, feed) == (agreed[feed], stamp)
    audited = vouch_cli(environ, "audit", "--json", "--log", str(log_path), timeout=120)
    assert audited.returncode == 0, audited.stdout + audited.stderr
    results = json.loads(audited.stdout)["results"]
    transactions = [r for r in results if r["check"] == "transaction"]
    assert len(transactions) == 2 and all(r["status"] == "ok" for r in transactions)
    assert all(r["status"] != "fail" for r in results)


@pytest.mark.integration
def test_an_older_report_is_refused_by_feed_consumer_and_a_replay_by_the_forwarder(
    evm: Any, tmp_path: Path
) -> None:
    log_target = FEEDS_SPEC.split("[target]", maxsplit=1)[0] + '[target]\nkind = "log"\n'
    spec = WorkflowSpec.load(write(tmp_path, "w.toml", log_target))
    log = AttestationLog(tmp_path / "f.db")
    assert evm.deployment.feed_workflow is not None
    delivery = ReportDelivery(evm.deployment, evm.artifacts, evm.writer, log)
    signer = FeedWorkflow(  # signs reports for the consumer without delivering them
        spec,
        evm.don,
        log,
        receiver=delivery.receiver,
        workflow=evm.deployment.feed_workflow,
        timeout=5,
    )

    async def scenario() -> tuple[dict[str, Any], ...]:
        async with signer.coordinator.connected():
            older = await signer.round({"kind": "test", "run": 1})
            await asyncio.sleep(1.1)  # a later report timestamp
            newer = await signer.round({"kind": "test", "run": 2})
        exec_new = bytes.fromhex(newer["execution_id"][2:])
        exec_old = bytes.fromhex(older["execution_id"][2:])
        first = await delivery.deliver(exec_new, newer["report"])
        late = await delivery.deliver(exec_old, older["report"])
        return older, newer, first, late

    older, newer, first, late = asyncio.run(scenario())
    assert first["status"] == "delivered"
    new_stamp = int(time.time())
    assert late["status"] == "refused"
    assert late["error"]["name"] == "StaleFeedReport"
    args = late["error"]["args"]
    assert args["feed"] == "ETH/USD" and args["reportTimestamp"] < args["latestTimestamp"]
    assert abs(args["latestTimestamp"] - new_stamp) <= 5
    assert _latest(evm, "ETH/USD")[0] == newer["feeds"]["ETH/USD"]["value"]
    report = audit(log, Web3ChainReader(evm.w3))  # the refusal is a checked submission too
    assert report.ok, [r for r in report.results if r.status == "fail"]

    async def replay() -> None:
        await delivery.deliver(bytes.fromhex(newer["execution_id"][2:]), newer["report"])

    with pytest.raises(ContractRevert) as caught:
        asyncio.run(replay())
    assert caught.value.name == "AlreadyAttempted"
    assert [e.payload["status"] for e in log.entries() if e.kind == "submission"][-1] == "rejected"
    assert _latest(evm, "ETH/USD")[0] == newer["feeds"]["ETH/USD"]["value"]

"""A settlement run killed (kill -9) mid side effect resumes without repeating it onchain.

The child process runs the real flow (offline model, the session's anvil,
deployment and DON, a log of its own) and SIGKILLs itself at a chosen point:
right after an escrow transaction is mined, right after the escrow is logged,
after the DON's report is logged but before it is sent, after the report
transaction is mined but before its submission is logged, or after the
settlement returned but before the engine recorded the effect. A second
process resumes the run from its checkpoint. Exactly one trade is opened and
funded, exactly one report reaches the forwarder, the log has one entry per
step of the execution (a DON round that is legitimately run again follows a
``retry`` entry), and ``vouch audit`` passes.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from ..conftest import PASSWORD

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CHILD = """
import asyncio, json, os, signal, sys
from pathlib import Path

from vouch.agents import SQLiteCheckpointStore
from vouch.cre_adapters import ReportDelivery, SettlementWorkflow
from vouch.cre_adapters.evm import ChainWriter
from vouch import load_settings
from vouch._demo import DEFAULT_GOAL
from vouch._flow import Services, offline_model, settlement_executor, settlement_planner, sign_decision
from vouch._settlement import ChainSubmitter

home, log_path, db, run_id, mode, kill_at = sys.argv[1:7]


def die():
    os.kill(os.getpid(), signal.SIGKILL)


def kill_after(cls, name, when=lambda *args: True):
    original = getattr(cls, name)
    if asyncio.iscoroutinefunction(original):
        async def wrapped(*args, **kwargs):
            result = await original(*args, **kwargs)
            if when(*args):
                die()
            return result
    else:
        def wrapped(*args, **kwargs):
            result = original(*args, **kwargs)
            if when(*args):
                die()
            return result
    setattr(cls, name, wrapped)


if kill_at in ("createTrade", "fundTrade"):  # the escrow's transaction is mined
    kill_after(ChainWriter, "transact", lambda self, fn, *rest: fn.fn_name == kill_at)
elif kill_at == "escrowed":  # escrowed and logged; the engine has not recorded the effect
    kill_after(ChainSubmitter, "escrow")
elif kill_at == "report-logged":  # the DON signed, the report is logged, nothing sent
    kill_after(SettlementWorkflow, "_log_report")
elif kill_at == "report-mined":  # the forwarder processed it; no submission entry yet
    kill_after(ReportDelivery, "_send")
elif kill_at == "settled":  # logged and settled; the engine has not recorded the effect
    kill_after(ChainSubmitter, "settle")

settings = load_settings(home=home)
services = Services(settings, log_path=Path(log_path))
model = offline_model()
executor = settlement_executor(services, model, SQLiteCheckpointStore(db))


async def main():
    if mode == "run":
        plan = await settlement_planner(model).plan(DEFAULT_GOAL)
        outcome = await executor.run(plan, run_id=run_id)
    else:
        outcome = await executor.resume(run_id)
    while outcome.status == "interrupted":
        for action in outcome.pending:
            signed = sign_decision(services, run_id, action, True, "approved by the test")
            executor.decide(run_id, action.key, True, "test", by=signed["approver"])
        outcome = await executor.resume(run_id)
    submitter = services.submitter()
    last = submitter.last_outcome
    print(json.dumps({
        "status": outcome.status,
        "reason": outcome.reason,
        "trade_id": submitter.last_trade_id,
        "outcome": last.model_dump(mode="json") if last else None,
    }))


asyncio.run(main())
"""


def child(
    evm: Any, tmp: Path, mode: str, kill_at: str = "none"
) -> subprocess.CompletedProcess[str]:
    script = tmp / "child.py"
    script.write_text(textwrap.dedent(CHILD))
    environ = {
        **os.environ,
        "VOUCH_KEYSTORE_PASSWORD": PASSWORD,
        "VOUCH_APPROVAL_THRESHOLD": "0",  # the session gate's policy: keep it
    }
    args = [str(evm.settings.home), str(tmp / "attestations.db"), str(tmp / "runs.db")]
    return subprocess.run(
        [sys.executable, str(script), *args, "killed-run", mode, kill_at],
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def kinds(log: Path) -> list[tuple[str, str, dict[str, Any]]]:
    with sqlite3.connect(log) as db:
        rows = db.execute("SELECT execution_id, kind, payload FROM entries ORDER BY seq")
        return [(e, k, json.loads(p)) for e, k, p in rows]


def events(evm: Any, name: str, event: str, start: int) -> list[Any]:
    found = getattr(evm.contract(name).events, event)().get_logs(from_block=start)
    return list(found)


def audit(evm: Any, log: Path) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "VOUCH_KEYSTORE_PASSWORD": PASSWORD, "COLUMNS": "200"}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "vouch",
            "--home",
            str(evm.settings.home),
            "audit",
            "--log",
            str(log),
        ],
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def killed_then_resumed(evm: Any, tmp: Path, kill_at: str) -> dict[str, Any]:
    """Run until the child kills itself at ``kill_at``; resume in a new process; its result."""
    first = child(evm, tmp, "run", kill_at)
    assert first.returncode == -signal.SIGKILL, first.stdout + first.stderr
    resumed = child(evm, tmp, "resume")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    result: dict[str, Any] = json.loads(resumed.stdout.strip().splitlines()[-1])
    assert result["status"] == "done", result
    return result


def assert_one_settlement(evm: Any, tmp: Path, start: int, result: dict[str, Any]) -> None:
    created = events(evm, "SettlementGate", "TradeCreated", start)
    assert len(created) == 1, created  # one trade for the proposal, not a second escrow
    assert [int(e["args"]["tradeId"]) for e in created] == [result["trade_id"]]
    assert len(events(evm, "SettlementGate", "TradeFunded", start)) == 1
    settled = events(evm, "SettlementGate", "TradeSettled", start)
    outcome = result["outcome"] or {}
    why = (outcome.get("status"), outcome.get("error"))
    assert [int(e["args"]["tradeId"]) for e in settled] == [result["trade_id"]], why
    processed = events(evm, "Forwarder", "ReportProcessed", start)
    assert len(processed) == 1  # one report delivered: no second settlement tx
    tx = "0x" + bytes(processed[0]["transactionHash"]).hex()
    assert result["outcome"]["status"] == "settled" and result["outcome"]["tx_hash"] == tx
    trade = evm.contract("SettlementGate").functions.getTrade(result["trade_id"]).call()
    assert trade[12] == 3  # Settled
    checked = audit(evm, tmp / "attestations.db")
    assert checked.returncode == 0, checked.stdout + checked.stderr


SETTLEMENT = ["proposal", "hitl", "observations", "consensus", "report", "submission"]


@pytest.mark.parametrize("kill_at", ["createTrade", "fundTrade", "escrowed"])
def test_killed_after_the_escrow_is_mined_resumes_with_one_trade(
    evm: Any, tmp_path: Path, kill_at: str
) -> None:
    start = evm.w3.eth.block_number + 1
    result = killed_then_resumed(evm, tmp_path, kill_at)
    assert_one_settlement(evm, tmp_path, start, result)
    log = kinds(tmp_path / "attestations.db")
    assert [k for _, k, _ in log] == SETTLEMENT  # the proposal logged once
    assert len({e for e, _, _ in log}) == 1
    assert log[0][2]["trade_id"] == result["trade_id"]


def test_killed_after_the_report_is_mined_adopts_it_and_logs_it_once(
    evm: Any, tmp_path: Path
) -> None:
    start = evm.w3.eth.block_number + 1
    result = killed_then_resumed(evm, tmp_path, "report-mined")
    assert_one_settlement(evm, tmp_path, start, result)
    log = kinds(tmp_path / "attestations.db")
    assert [k for _, k, _ in log] == SETTLEMENT  # no second DON round
    submission = log[-1][2]
    assert submission["tx_hash"] == result["outcome"]["tx_hash"]
    assert "logged when it resumed" in submission["recovered"]


def test_killed_after_the_settlement_returned_adopts_the_logged_outcome(
    evm: Any, tmp_path: Path
) -> None:
    start = evm.w3.eth.block_number + 1
    result = killed_then_resumed(evm, tmp_path, "settled")
    assert_one_settlement(evm, tmp_path, start, result)
    log = kinds(tmp_path / "attestations.db")
    assert [k for _, k, _ in log] == SETTLEMENT  # one submission entry
    assert result["outcome"]["log_seq"] == len(log)
    assert "recovered" not in log[-1][2]


def test_killed_before_the_report_is_sent_runs_the_don_again_marked_as_a_retry(
    evm: Any, tmp_path: Path
) -> None:
    start = evm.w3.eth.block_number + 1
    result = killed_then_resumed(evm, tmp_path, "report-logged")
    assert_one_settlement(evm, tmp_path, start, result)
    log = kinds(tmp_path / "attestations.db")
    assert [k for _, k, _ in log] == [
        *SETTLEMENT[:5],
        "retry",
        *SETTLEMENT[2:],
    ]
    assert len({e for e, _, _ in log}) == 1
    assert log[5][2]["earlier_seqs"] == [3, 4, 5]

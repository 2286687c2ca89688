"""Human in the loop: irreversible and high-value actions pause the run; a person decides later."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel

from vouch.agents import (
    Agent,
    Executor,
    Hitl,
    Limits,
    MemoryCheckpointStore,
    Plan,
    Step,
    Tool,
    agent_worker,
)

from .conftest import FREE, ScriptedModel, call, text

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "hitl_payout.py"


class Transfer(BaseModel):
    to: str
    amount: int


def payout_executor(
    store: MemoryCheckpointStore, sent: list[int], irreversible: bool, threshold: int | None
) -> Executor:
    async def transfer(args: Transfer) -> str:
        sent.append(args.amount)
        return f"sent {args.amount}"

    tool = Tool.from_function(transfer, irreversible=irreversible)
    model = ScriptedModel(
        lambda m: text("done") if m[-1].role == "tool" else call("transfer", to="bob", amount=900)
    )
    agent = Agent("payer", model=model, tools=[tool])
    return Executor(
        {"payer": agent_worker(agent)},
        store=store,
        hitl=Hitl(value_threshold=threshold),
        limits=Limits(prices=FREE),
    )


PLAN = Plan(goal="pay bob", steps=[Step(id="pay", task="pay bob 900", agent="payer")])


@pytest.mark.parametrize(("irreversible", "threshold"), [(True, None), (False, 500)])
def test_gated_tool_interrupts_before_acting_then_approval_resumes_there(
    irreversible: bool, threshold: int | None
) -> None:
    store, sent = MemoryCheckpointStore(), []
    executor = payout_executor(store, sent, irreversible, threshold)
    paused = asyncio.run(executor.run(PLAN, run_id="r"))
    assert paused.status == "interrupted" and sent == []
    (pending,) = paused.pending
    assert pending.kind == ("irreversible" if irreversible else "value")
    assert pending.detail["args"] == {"to": "bob", "amount": 900}
    executor.decide("r", pending.key, approved=True, note="ok")
    outcome = asyncio.run(executor.resume("r"))
    assert outcome.status == "done" and sent == [900]


def test_below_threshold_needs_no_human() -> None:
    store, sent = MemoryCheckpointStore(), []
    outcome = asyncio.run(payout_executor(store, sent, False, 1000).run(PLAN))
    assert outcome.status == "done" and sent == [900]


def test_rejection_is_a_recorded_normal_outcome() -> None:
    store, sent = MemoryCheckpointStore(), []
    executor = payout_executor(store, sent, True, None)
    paused = asyncio.run(executor.run(PLAN, run_id="r"))
    executor.decide("r", paused.pending[0].key, approved=False, note="wrong payee")
    outcome = asyncio.run(executor.resume("r"))
    assert outcome.status == "rejected" and sent == []
    assert "wrong payee" in outcome.reason
    assert (
        store.load_run("r").status == "rejected"
        and store.load_steps("r")["pay"].status == "rejected"
    )


def vouch(*args: str, db: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vouch", "runs", *args, "--db", str(db)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )


def start_payout(tmp_path: Path) -> tuple[Path, Path]:
    db, ledger = tmp_path / "runs.db", tmp_path / "payouts.log"
    out = subprocess.run(
        [sys.executable, str(EXAMPLE), str(db), str(ledger), "payout-1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert out.stdout.startswith("payout-1 interrupted waiting for a human")
    assert not ledger.exists()  # nothing paid before a human said so
    return db, ledger


@pytest.mark.slow
def test_approve_across_a_process_restart(tmp_path: Path) -> None:
    db, ledger = start_payout(tmp_path)
    listed = vouch("list", db=db)
    assert listed.returncode == 0 and "payout-1" in listed.stdout and "interrupted" in listed.stdout
    approved = vouch("approve", "payout-1", db=db)
    assert approved.returncode == 0, approved.stderr
    assert "payout-1: done" in approved.stdout
    assert ledger.read_text().count("paid 5000 to 0xSupplier") == 1
    shown = json.loads(vouch("show", "payout-1", "--json", db=db).stdout)
    assert shown["status"] == "done" and shown["steps"]["pay"]["output"] == "paid 5000"
    again = vouch("approve", "payout-1", db=db)
    assert again.returncode == 1 and "is done, not waiting" in again.stderr


@pytest.mark.slow
def test_reject_across_a_process_restart(tmp_path: Path) -> None:
    db, ledger = start_payout(tmp_path)
    rejected = vouch("reject", "payout-1", "--reason", "wrong payee", db=db)
    assert rejected.returncode == 0, rejected.stderr
    assert "payout-1: rejected" in rejected.stdout
    assert not ledger.exists()
    shown = json.loads(vouch("show", "payout-1", "--json", db=db).stdout)
    assert shown["status"] == "rejected" and "wrong payee" in shown["reason"]

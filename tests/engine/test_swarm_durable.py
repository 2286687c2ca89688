"""A swarm run as a step of an executor run: trace stored, humans in the loop, kill -9 and resume."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from vouch._agent_settlement import ActionProposal, FactRequest, SettlementParams
from vouch.agents import (
    Blackboard,
    Executor,
    Limits,
    Message,
    ModelReply,
    SQLiteCheckpointStore,
    Swarm,
    Tool,
    ToolCall,
    ToolError,
    Turn,
    model_swarm_agent,
    trace_hash,
    trace_prefix,
)

from .conftest import FREE, ScriptedModel, call, text
from .test_hitl import vouch
from .test_topologies import example

PARAMS = SettlementParams(
    base_token="0x" + "11" * 20,
    quote_token="0x" + "22" * 20,
    base_amount=10**18,
    min_price=2500 * 10**18,
    max_price=3500 * 10**18,
    deadline_seconds=600,
)


def tools(*calls: tuple[str, dict[str, Any]]) -> ModelReply:
    return ModelReply(
        tool_calls=[ToolCall(id=f"c{i}", name=n, arguments=a) for i, (n, a) in enumerate(calls)]
    )


def test_a_durable_swarms_trace_is_stored_and_a_proposal_built_in_it_carries_its_hash(
    tmp_path: Path,
) -> None:
    proposals: list[ActionProposal] = []

    async def scout(board: Blackboard) -> Turn:
        return Turn(writes={"price": 2993}, handoff="proposer")

    async def proposer(board: Blackboard) -> Turn:
        proposals.append(ActionProposal(params=PARAMS, facts=[FactRequest(feed="ETH/USD")]))
        return Turn(done=True, answer=f"proposed at {board.entries['price']}")

    swarm = Swarm({"scout": scout, "proposer": proposer})
    store = SQLiteCheckpointStore(tmp_path / "runs.db")
    executor = Executor({"swarm": swarm.worker()}, store=store)
    outcome = asyncio.run(swarm.run("propose", entry="scout", run_id="s1", executor=executor))
    assert outcome.status == "done" and outcome.answer == "proposed at 2993"
    assert [e["agent"] for e in outcome.board.log] == ["scout", "proposer"]
    trace = store.load_trace("s1")
    assert outcome.trace == trace and trace
    assert outcome.trace_hash == trace_hash(trace) == store.load_run("s1").trace_hash
    names = [s["name"] for s in trace]
    assert names == [
        "turn scout",
        "handoff",
        "turn proposer",
        "decision finish",
        "swarm",
        "step swarm",
        "run",
    ]
    (proposal,) = proposals
    assert trace_prefix(trace, proposal.trace_hash or "") == 2  # the scout's turn, the handoff
    assert store.load_steps("s1")["swarm"].output["board"]["entries"] == {"price": 2993}


class Transfer(BaseModel):
    to: str
    amount: int
    trace_hash: str | None = None


def payout_swarm(sent: list[Transfer]) -> tuple[Swarm, ScriptedModel, ScriptedModel]:
    async def transfer(args: Transfer) -> str:
        sent.append(args)
        return f"sent {args.amount}"

    scout = ScriptedModel(
        [tools(("write", {"key": "payee", "value": "bob"}), ("handoff", {"to": "payer"}))]
    )
    payer = ScriptedModel(
        lambda m: text("paid bob") if m[-1].role == "tool" else call("transfer", to="bob", amount=9)
    )
    tool = Tool.from_function(transfer, irreversible=True)
    swarm = Swarm(
        {
            "scout": model_swarm_agent("scout", scout, "Find the payee.", ["payer"]),
            "payer": model_swarm_agent("payer", payer, "Pay.", [], tools=[tool]),
        },
        Limits(prices=FREE),
    )
    return swarm, scout, payer


def payout_executor(swarm: Swarm, db: Path) -> Executor:
    store = SQLiteCheckpointStore(db)
    return Executor({"swarm": swarm.worker()}, store=store, limits=Limits(prices=FREE))


def test_an_irreversible_tool_in_a_swarm_interrupts_and_approval_resumes_exactly_there(
    tmp_path: Path,
) -> None:
    db, sent = tmp_path / "runs.db", []
    swarm, scout, payer = payout_swarm(sent)
    paused = asyncio.run(swarm.run("pay bob", "scout", "p1", payout_executor(swarm, db)))
    assert paused.status == "interrupted" and sent == []
    assert len(scout.calls) == 1 and len(payer.calls) == 1
    (pending,) = paused.pending
    assert pending.kind == "irreversible" and pending.step_id == "swarm"
    assert pending.detail["args"] == {"to": "bob", "amount": 9}
    assert paused.board.entries == {"payee": "bob"}  # the scout's finished turn
    # "the process exits": a new swarm, models, store and executor on the same database
    swarm, scout, payer = payout_swarm(sent)
    executor = payout_executor(swarm, db)
    executor.decide("p1", pending.key, approved=True, by="alice")
    outcome = asyncio.run(swarm.resume("p1", executor))
    assert outcome.status == "done" and outcome.answer == "paid bob"
    assert [t.amount for t in sent] == [9]
    assert scout.calls == []  # the scout's turn is not taken again
    (after,) = payer.calls  # the payer's first call replayed; only the one after the tool ran
    assert after[-1].role == "tool" and after[-1].content == "sent 9"
    trace = executor.store.load_trace("p1")
    assert outcome.trace == trace and outcome.trace_hash == trace_hash(trace)
    decisions = [s for s in trace if s["name"] == "hitl.decision"]
    assert [d["attributes"]["vouch.hitl.approver"] for d in decisions] == ["alice"]
    chats = [s["attributes"]["gen_ai.agent.name"] for s in trace if s["name"] == "chat scripted"]
    assert chats == ["scout", "payer", "payer"]  # each model call once in the stored trace
    assert trace_prefix(trace, sent[0].trace_hash or "") is not None  # the tool got the run's
    assert [u.agent for u in outcome.usage] == ["scout", "payer", "payer"]


def test_a_rejected_swarm_action_ends_the_run_as_rejected(tmp_path: Path) -> None:
    db, sent = tmp_path / "runs.db", []
    swarm, _, _ = payout_swarm(sent)
    paused = asyncio.run(swarm.run("pay bob", "scout", "p2", payout_executor(swarm, db)))
    swarm, scout, payer = payout_swarm(sent)
    executor = payout_executor(swarm, db)
    executor.decide("p2", paused.pending[0].key, approved=False, note="wrong payee")
    outcome = asyncio.run(swarm.resume("p2", executor))
    assert outcome.status == "rejected" and "wrong payee" in outcome.reason
    assert sent == [] and scout.calls == [] and payer.calls == []


def test_alone_a_swarm_refuses_an_irreversible_tool() -> None:
    swarm, _, _ = payout_swarm(sent := [])
    with pytest.raises(ToolError, match="transfer is irreversible"):
        asyncio.run(swarm.run("pay bob", entry="scout"))
    assert sent == []


class Quote(BaseModel):
    asset: str


def test_a_model_swarm_agent_sees_its_tools_results_within_its_turn() -> None:
    async def quote(args: Quote) -> dict[str, int]:
        return {"price": 2993}

    def scout(messages: list[Message]) -> ModelReply:
        if messages[-1].role != "tool":
            return call("quote", asset="ETH")
        return tools(("write", {"key": "price", "value": messages[-1].content}))

    agent = model_swarm_agent("scout", ScriptedModel(scout), "", [], [Tool.from_function(quote)])
    outcome = asyncio.run(Swarm({"scout": agent}, Limits(prices=FREE)).run("g", entry="scout"))
    assert outcome.status == "done" and outcome.board.entries == {"price": '{"price": 2993}'}


CHILD = """
import asyncio, sys
from decimal import Decimal
from pathlib import Path
from pydantic import BaseModel
from vouch.agents import (
    ChatModel, Executor, Limits, ModelReply, Price, PriceTable, SQLiteCheckpointStore, Swarm,
    Tool, ToolCall, model_swarm_agent,
)

HERE = Path(__file__).parent
FREE = PriceTable(prices={"*": Price(input_per_mtok=Decimal(0), output_per_mtok=Decimal(0))})


def reply(*calls, content=""):
    tool_calls = [ToolCall(id=f"c{i}", name=n, arguments=a) for i, (n, a) in enumerate(calls)]
    return ModelReply(content=content, tool_calls=tool_calls)


class Logged(ChatModel):
    name = "logged"

    def __init__(self, who, answer):
        self.who, self.answer = who, answer

    async def complete(self, messages, tools):
        with (HERE / "calls.log").open("a") as f:
            f.write(self.who + "\\n")
        return self.answer(messages)


class Transfer(BaseModel):
    to: str
    amount: int


async def transfer(args: Transfer) -> str:
    with (HERE / "paid.log").open("a") as f:
        f.write(f"paid {args.amount} to {args.to}\\n")
    return f"paid {args.amount}"


def swarm():
    scout = Logged("scout", lambda m: reply(("write", {"key": "payee", "value": "bob"}),
                                            ("handoff", {"to": "payer"})))
    payer = Logged("payer", lambda m: reply(content="paid bob") if m[-1].role == "tool"
                   else reply(("transfer", {"to": "bob", "amount": 5000})))
    tool = Tool.from_function(transfer, irreversible=True)
    return Swarm({
        "scout": model_swarm_agent("scout", scout, "Find the payee.", ["payer"]),
        "payer": model_swarm_agent("payer", payer, "Pay.", [], tools=[tool]),
    })


def build(store):
    return Executor({"swarm": swarm().worker()}, store=store, limits=Limits(prices=FREE),
                    entrypoint=f"{__file__}:build")


if __name__ == "__main__":
    store = SQLiteCheckpointStore(sys.argv[1])
    outcome = asyncio.run(swarm().run("pay bob", "scout", "swarm-1", build(store)))
    print(outcome.run_id, outcome.status)
"""


@pytest.mark.slow
def test_vouch_runs_approve_resumes_a_paused_swarm_in_another_process(tmp_path: Path) -> None:
    script, db = tmp_path / "desk.py", tmp_path / "runs.db"
    script.write_text(textwrap.dedent(CHILD))
    started = subprocess.run(
        [sys.executable, str(script), str(db)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert started.stdout.strip() == "swarm-1 interrupted", started.stderr
    assert not (tmp_path / "paid.log").exists()
    listed = vouch("list", db=db)
    assert "swarm-1" in listed.stdout and "interrupted" in listed.stdout
    approved = vouch("approve", "swarm-1", db=db)
    assert approved.returncode == 0, approved.stderr
    assert "swarm-1: done" in approved.stdout
    assert (tmp_path / "paid.log").read_text() == "paid 5000 to bob\n"
    calls = (tmp_path / "calls.log").read_text().split()
    assert calls == ["scout", "payer", "payer"]  # no model call repeated across the restart
    shown = json.loads(vouch("show", "swarm-1", "--json", db=db).stdout)
    assert shown["status"] == "done" and shown["steps"]["swarm"]["output"]["answer"] == "paid bob"


KILLED = """
import asyncio, sys
from pathlib import Path
from vouch.agents import Executor, SQLiteCheckpointStore, Swarm, Turn, current_step

log, effects = Path(sys.argv[2]), Path(sys.argv[3])
TURNS = 8


def note(line):
    with log.open("a") as f:
        f.write(line + "\\n")


async def take(board):
    n = board.entries.get("n", 0) + 1
    note(f"start {n}")
    await asyncio.sleep(0.15)
    if n == 4:
        async def ship(key):
            with effects.open("a") as f:
                f.write(f"shipped {key}\\n")
            return "shipped"

        await current_step().effect("ship", ship, {"order": 1})
        await asyncio.sleep(0.15)
    note(f"end {n}")
    if n == TURNS:
        return Turn(writes={"n": n}, done=True, answer=f"{n} turns")
    return Turn(writes={"n": n}, handoff="b" if board.log and board.log[-1]["agent"] == "a" else "a")


swarm = Swarm({"a": take, "b": take})
executor = Executor({"swarm": swarm.worker()}, store=SQLiteCheckpointStore(sys.argv[1]))
if sys.argv[4] == "run":
    outcome = asyncio.run(swarm.run("count", "a", "killed", executor))
else:
    outcome = asyncio.run(swarm.resume("killed", executor))
print(outcome.status, outcome.answer)
"""


def _turns_checkpointed(db: Path) -> int:
    try:
        with sqlite3.connect(db) as conn:
            rows = conn.execute("SELECT body FROM steps").fetchall()
    except sqlite3.OperationalError:
        return 0
    journal = [e for (body,) in rows for e in json.loads(body)["journal"]]
    return sum(1 for e in journal if e["kind"].startswith("turn ") and "result" in e)


@pytest.mark.slow
def test_kill_9_mid_swarm_then_resume_takes_no_turn_and_no_effect_twice(tmp_path: Path) -> None:
    script, db = tmp_path / "child.py", tmp_path / "runs.db"
    log, effects = tmp_path / "turns.log", tmp_path / "effects.log"
    script.write_text(textwrap.dedent(KILLED))
    args = [sys.executable, str(script), str(db), str(log), str(effects)]
    child = subprocess.Popen([*args, "run"])
    deadline = time.monotonic() + 20
    while _turns_checkpointed(db) < 4 and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(child.pid, signal.SIGKILL)  # in turn 5, after turn 4's effect
    child.wait()
    assert 4 <= _turns_checkpointed(db) < 8
    out = subprocess.run([*args, "resume"], capture_output=True, text=True, timeout=30, check=True)
    assert out.stdout.strip() == "done 8 turns"
    lines = log.read_text().splitlines()
    ends = [int(line.split()[1]) for line in lines if line.startswith("end")]
    assert ends == list(range(1, 9))  # every turn finished exactly once, in order
    starts = [int(line.split()[1]) for line in lines if line.startswith("start")]
    assert len(starts) - len(ends) <= 1  # at most the turn the kill interrupted started twice
    assert len(effects.read_text().splitlines()) == 1  # the keyed effect happened once


def test_the_swarm_example_runs_durably(tmp_path: Path) -> None:
    outcome = asyncio.run(example("swarm").durable(str(tmp_path / "runs.db")))
    assert outcome.status == "done" and outcome.answer == "price 2993 is inside bounds"
    assert [e["agent"] for e in outcome.board.log] == ["analyst", "scout", "analyst", "closer"]
    store = SQLiteCheckpointStore(tmp_path / "runs.db")
    assert outcome.trace == store.load_trace(outcome.run_id)
    assert store.load_run(outcome.run_id).status == "done"

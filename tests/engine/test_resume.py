"""The trace binds the proposal; a paused step resumes exactly there, its spans, TTL and usage kept."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import BaseModel

from vouch._agent_settlement import (
    ActionProposal,
    FactRequest,
    SettlementParams,
    settlement_agent,
    settlement_offline_model,
)
from vouch.agents import (
    Agent,
    AgentResult,
    Budget,
    BudgetExceeded,
    CheckpointStore,
    Criterion,
    Executor,
    Limits,
    MemoryCheckpointStore,
    Message,
    ModelReply,
    Plan,
    Price,
    PriceTable,
    RunTimedOut,
    SQLiteCheckpointStore,
    Step,
    StepContext,
    Tool,
    agent_worker,
    current_trace_hash,
    trace_hash,
    trace_prefix,
)

from .conftest import FREE, ScriptedModel, call, kill_when_blocked, resume_in_child, text
from .test_topologies import example

ROOT = Path(__file__).resolve().parents[2]


class Propose(BaseModel):
    amount: int


def proposal(amount: int, **extra: str | None) -> ActionProposal:
    params = SettlementParams(
        base_token="WETH",
        quote_token="USDC",
        base_amount=amount,
        min_price=1,
        max_price=2,
        deadline_seconds=60,
    )
    return ActionProposal(params=params, facts=[FactRequest(feed="ETH/USD")], **extra)


def proposing_agent(made: list[ActionProposal]) -> Agent:
    async def propose(args: Propose) -> str:
        made.append(proposal(args.amount))  # no trace hash given: the run's is taken
        return "proposed"

    model = ScriptedModel(
        lambda m: text("done") if m[-1].role == "tool" else call("propose", amount=5)
    )
    return Agent("trader", model=model, tools=[Tool.from_function(propose)])


async def research(ctx: StepContext) -> str:
    with ctx.tracer.span("tool lookup", "1", **{"gen_ai.tool.name": "lookup"}):
        return "price is inside the bounds"


def test_a_proposal_built_in_a_step_carries_the_hash_of_the_spans_that_led_to_it() -> None:
    made: list[ActionProposal] = []
    store = MemoryCheckpointStore()
    executor = Executor(
        {"research": research, "trader": agent_worker(proposing_agent(made))},
        store=store,
        limits=Limits(prices=FREE),
    )
    plan = Plan(
        goal="trade",
        steps=[
            Step(id="research", task="look", agent="research"),
            Step(id="trade", task="propose", agent="trader", depends_on=["research"]),
        ],
    )
    outcome = asyncio.run(executor.run(plan, run_id="bound"))
    assert outcome.status == "done" and len(made) == 1
    bound = made[0].trace_hash
    assert bound is not None
    trace = store.load_trace("bound")
    assert outcome.trace_hash == trace_hash(trace) != bound  # the whole trace binds more
    n = trace_prefix(trace, bound)
    assert n is not None and trace_hash(trace[:n]) == bound
    # exactly the spans closed before the tool ran: the research step, then the model's call
    assert [s["name"] for s in trace[:n]] == ["tool lookup", "step research", "chat scripted"]
    assert [s["name"] for s in trace[n:]] == ["tool propose", "chat scripted", "step trade", "run"]
    assert trace_prefix(trace, "0x" + "0" * 64) is None


def test_outside_a_run_nothing_is_bound_and_a_given_hash_is_kept() -> None:
    assert current_trace_hash() is None
    assert proposal(1).trace_hash is None
    assert proposal(1, trace_hash="0xabc").trace_hash == "0xabc"


def test_a_lone_agent_loop_binds_its_own_trace_while_a_tool_runs() -> None:
    made: list[ActionProposal] = []
    result = asyncio.run(proposing_agent(made).run("propose 5"))
    assert result.answer == "done" and len(made) == 1
    before_tool = AgentResult(answer="", trace=result.trace[:1])  # the model's call only
    assert made[0].trace_hash == before_tool.trace_hash() != result.trace_hash()


class Lookup(BaseModel):
    who: str


class Transfer(BaseModel):
    to: str
    amount: int


PRICES = PriceTable(prices={"*": Price(input_per_mtok=Decimal(1), output_per_mtok=Decimal(2))})


def payer(store: CheckpointStore, log: list[str]) -> Executor:
    """An agent that looks up a payee, then transfers (irreversible), then answers."""

    async def lookup(args: Lookup) -> str:
        log.append("lookup")
        return f"{args.who} is 0xB0b"

    async def transfer(args: Transfer) -> str:
        log.append("transfer")
        return f"sent {args.amount}"

    def script(messages: list[Message]) -> ModelReply:
        log.append(f"model {len(messages)}")
        last = messages[-1]
        if last.role == "user":
            reply = call("lookup", who="bob")
        elif last.content.startswith("bob is"):
            reply = call("transfer", to="0xB0b", amount=900)
        else:
            reply = text("paid")
        return reply.model_copy(update={"prompt_tokens": 100, "completion_tokens": 10})

    tools = [Tool.from_function(lookup), Tool.from_function(transfer, irreversible=True)]
    agent = Agent("payer", model=ScriptedModel(script), tools=tools)
    return Executor({"payer": agent_worker(agent)}, store=store, limits=Limits(prices=PRICES))


PAY = Plan(goal="pay bob", steps=[Step(id="pay", task="pay bob 900", agent="payer")])


def test_resume_replays_the_paused_step_and_keeps_its_spans_once(tmp_path: Path) -> None:
    db, log = tmp_path / "runs.db", list[str]()
    paused = asyncio.run(payer(SQLiteCheckpointStore(db), log).run(PAY, run_id="p"))
    assert paused.status == "interrupted"
    assert log == ["model 2", "lookup", "model 4"]
    before = SQLiteCheckpointStore(db).load_trace("p")
    assert [s["name"] for s in before] == [
        "chat scripted",
        "tool lookup",
        "chat scripted",
        "step pay",
        "run",
    ]
    assert (
        before[3]["status"]["code"] == "ERROR" and "Interrupted" in before[3]["status"]["message"]
    )

    store = SQLiteCheckpointStore(db)  # as if another process
    executor = payer(store, log)
    executor.decide("p", paused.pending[0].key, approved=True, by="alice")
    decided_at = store.load_decisions("p")[paused.pending[0].key].at
    outcome = asyncio.run(executor.resume("p"))

    assert outcome.status == "done" and outcome.outputs == {"pay": "paid"}
    # no model call and no tool call repeated; the approved transfer ran once, then the answer
    assert log == ["model 2", "lookup", "model 4", "transfer", "model 6"]
    record = store.load_steps("p")["pay"]
    assert record.status == "done" and record.attempts == 1 and record.journal == []

    after = store.load_trace("p")
    assert after[: len(before)] == before  # the pre-interrupt spans, once, first
    ids = [s["spanId"] for s in after]
    assert len(ids) == len(set(ids))
    decision = after[len(before)]
    assert decision["name"] == "hitl.decision"
    assert decision["attributes"] == {
        "vouch.hitl.key": paused.pending[0].key,
        "vouch.step.id": "pay",
        "vouch.decision": "approved",
        "vouch.hitl.approver": "alice",
        "vouch.hitl.decided_at": decided_at,
    }
    assert [s["name"] for s in after[len(before) + 1 :]] == [
        "tool transfer",
        "chat scripted",
        "step pay",
        "run",
    ]
    resumed_step = after[-2]
    assert resumed_step["attributes"]["vouch.step.resumed"] is True
    assert resumed_step["status"]["code"] == "OK"
    assert outcome.trace_hash == trace_hash(after) == store.load_run("p").trace_hash
    # the done step's record keeps its whole story: three model calls, both tools
    assert [s["name"] for s in record.spans].count("chat scripted") == 3


def test_a_paused_refinement_round_resumes_in_that_round_with_its_critique() -> None:
    sent: list[int] = []

    async def transfer(args: Transfer) -> str:
        sent.append(args.amount)
        return "sent"

    def script(messages: list[Message]) -> ModelReply:
        if messages[-1].role == "tool":
            return text("final: sent")
        if "not accepted" in messages[-1].content:
            return call("transfer", to="0xB0b", amount=900)
        return text("draft")

    model = ScriptedModel(script)
    agent = Agent("payer", model=model, tools=[Tool.from_function(transfer, irreversible=True)])
    executor = Executor({"payer": agent_worker(agent)}, refine_rounds=2, limits=Limits(prices=FREE))
    plan = Plan(
        goal="g",
        steps=[
            Step(
                id="pay",
                task="pay",
                agent="payer",
                criteria=[Criterion(text="final", must_contain=["final"])],
            )
        ],
    )
    paused = asyncio.run(executor.run(plan, run_id="f"))
    assert len(model.calls) == 2 and executor.store.load_steps("f")["pay"].attempts == 2
    executor.decide("f", paused.pending[0].key, approved=True)
    outcome = asyncio.run(executor.resume("f"))
    assert outcome.outputs == {"pay": "final: sent"} and sent == [900]
    assert len(model.calls) == 3  # round 1 was not run again, nor round 2's first call
    assert "final: missing ['final']" in model.calls[2][1].content  # round 2 kept its critique
    assert executor.store.load_steps("f")["pay"].attempts == 2


def test_a_rejected_action_is_traced_with_who_and_the_step_is_not_replayed_twice() -> None:
    store, log = MemoryCheckpointStore(), list[str]()
    executor = payer(store, log)
    paused = asyncio.run(executor.run(PAY, run_id="r"))
    executor.decide("r", paused.pending[0].key, approved=False, note="wrong payee", by="bob")
    outcome = asyncio.run(executor.resume("r"))
    assert outcome.status == "rejected" and log == ["model 2", "lookup", "model 4"]
    (decision,) = [s for s in store.load_trace("r") if s["name"] == "hitl.decision"]
    assert decision["attributes"]["vouch.decision"] == "rejected"
    assert decision["attributes"]["vouch.hitl.approver"] == "bob"
    assert store.load_steps("r")["pay"].status == "rejected"


def test_usage_per_run_step_and_agent_is_in_the_store_across_a_pause() -> None:
    store, log = MemoryCheckpointStore(), list[str]()
    executor = payer(store, log)
    paused = asyncio.run(executor.run(PAY, run_id="u"))
    interrupted = store.usage("u")
    assert interrupted.total.calls == 2 and interrupted.total.prompt_tokens == 200
    assert store.load_steps("u")["pay"].status == "interrupted"
    executor.decide("u", paused.pending[0].key, approved=True)
    asyncio.run(executor.resume("u"))
    usage = store.usage("u")
    assert (usage.total.calls, usage.total.prompt_tokens, usage.total.completion_tokens) == (
        3,
        300,
        30,
    )
    assert usage.total.usd == Decimal(300 * 1 + 30 * 2) / 1_000_000
    assert usage.by_step["pay"] == usage.by_agent["payer"] == usage.total
    assert set(usage.by_model) == {"scripted"} and len(usage.calls["pay"]) == 3


def test_usage_of_a_step_stopped_by_the_budget_is_kept() -> None:
    def talker(tokens: int) -> Agent:
        return Agent("talker", model=ScriptedModel([text("an answer", tokens=tokens)]), tools=[])

    async def paid(ctx: StepContext) -> str:
        ctx.charge_usd("api", Decimal("0.5"))
        return "ok"

    steps = [
        Step(id="s0", task="t", agent="talker"),
        Step(id="s1", task="t", agent="api", depends_on=["s0"]),
        Step(id="s2", task="t", agent="talker", depends_on=["s1"]),
    ]
    store = MemoryCheckpointStore()
    executor = Executor(
        {"talker": agent_worker(talker(100)), "api": paid},
        store=store,
        limits=Limits(budget=Budget(tokens=150), prices=FREE),
    )
    outcome = asyncio.run(executor.run(Plan(goal="g", steps=steps), run_id="b"))
    assert isinstance(outcome.error, BudgetExceeded) and outcome.error.spent_tokens == 200
    usage = store.usage("b")
    assert usage.total.tokens == 200 and usage.total.usd == Decimal("0.5")
    assert usage.by_step["s2"].tokens == 100 and usage.by_step["s1"].usd == Decimal("0.5")
    assert set(usage.by_agent) == {"talker", "api"} and usage.by_agent["talker"].calls == 2
    assert store.load_steps("b")["s2"].status == "stopped"


def ttl_executor(store: CheckpointStore) -> Executor:
    async def slow(ctx: StepContext) -> str:
        await asyncio.sleep(float(ctx.step.args["seconds"]))
        return ctx.step.id

    async def pay(ctx: StepContext) -> str:
        async def send(key: str) -> str:
            return "sent"

        result: str = await ctx.effect("send", send, {"n": 1}, irreversible=True)
        return result

    return Executor({"slow": slow, "pay": pay}, store=store, limits=Limits(ttl_seconds=1.5))


@pytest.mark.slow
def test_ttl_counts_active_time_across_a_resume_not_the_wait_for_a_human(tmp_path: Path) -> None:
    plan = Plan(
        goal="g",
        steps=[
            Step(id="a", task="t", agent="slow", args={"seconds": 0.5}),
            Step(id="pay", task="t", agent="pay", depends_on=["a"]),
            Step(id="c", task="t", agent="slow", depends_on=["pay"], args={"seconds": 1.2}),
        ],
    )
    db = tmp_path / "runs.db"
    paused = asyncio.run(ttl_executor(SQLiteCheckpointStore(db)).run(plan, run_id="t"))
    assert paused.status == "interrupted"
    active = SQLiteCheckpointStore(db).load_run("t").active_seconds
    assert 0.5 <= active < 1.5
    time.sleep(1.7)  # the human takes longer than the whole TTL: that does not count
    executor = ttl_executor(SQLiteCheckpointStore(db))
    executor.decide("t", paused.pending[0].key, approved=True)
    outcome = asyncio.run(executor.resume("t"))
    # the resumed run paid (the wait did not count), then ran out during c (0.5 + 1.2 > 1.5;
    # a TTL restarted on resume would have let c finish)
    assert outcome.status == "stopped" and isinstance(outcome.error, RunTimedOut)
    assert outcome.outputs == {"a": "a", "pay": "sent"}
    assert 1.5 <= executor.store.load_run("t").active_seconds < 1.5 + 1.7


CHILD = """
import asyncio
import sys
from decimal import Decimal
from pathlib import Path

from pydantic import BaseModel

from vouch.agents import (Agent, ChatModel, Executor, Limits, ModelReply, Plan, Price, PriceTable,
                    SQLiteCheckpointStore, Step, Tool, ToolCall, agent_worker)

LOG = Path(__file__).with_name("calls.log")
PRICES = PriceTable(prices={"*": Price(input_per_mtok=Decimal(1), output_per_mtok=Decimal(2))})


def log(line):
    with LOG.open("a") as f:
        f.write(line + "\\n")


class Scripted(ChatModel):
    name = "scripted"

    async def complete(self, messages, tools):
        log(f"model {len(messages)}")
        last = messages[-1]
        if last.role == "user":
            calls = [ToolCall(id="c1", name="lookup", arguments={"who": "bob"})]
        elif last.content.startswith("bob is"):
            calls = [ToolCall(id="c2", name="transfer", arguments={"to": "0xB0b", "amount": 900})]
        else:
            return ModelReply(content="paid", prompt_tokens=100, completion_tokens=10)
        return ModelReply(tool_calls=calls, prompt_tokens=100, completion_tokens=10)


class Lookup(BaseModel):
    who: str


class Transfer(BaseModel):
    to: str
    amount: int


async def lookup(args: Lookup) -> str:
    log("lookup")
    return f"{args.who} is 0xB0b"


async def transfer(args: Transfer) -> str:
    log("transfer")
    return f"sent {args.amount}"


def build(store):
    tools = [Tool.from_function(lookup), Tool.from_function(transfer, irreversible=True)]
    agent = Agent("payer", model=Scripted(), tools=tools)
    return Executor({"payer": agent_worker(agent)}, store=store, limits=Limits(prices=PRICES),
                    entrypoint=f"{__file__}:build")


if __name__ == "__main__":
    plan = Plan(goal="pay bob", steps=[Step(id="pay", task="pay bob 900", agent="payer")])
    outcome = asyncio.run(build(SQLiteCheckpointStore(sys.argv[1])).run(plan, "agent-pay"))
    print(outcome.status)
"""


@pytest.mark.slow
def test_approve_across_a_process_restart_repeats_no_model_call(tmp_path: Path) -> None:
    script, db, calls = tmp_path / "payer.py", tmp_path / "runs.db", tmp_path / "calls.log"
    script.write_text(textwrap.dedent(CHILD))
    first = subprocess.run(
        [sys.executable, str(script), str(db)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert first.stdout.strip() == "interrupted", first.stderr
    assert calls.read_text().splitlines() == ["model 2", "lookup", "model 4"]
    approved = subprocess.run(
        [sys.executable, "-m", "vouch", "runs", "approve", "agent-pay", "--db", str(db)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )
    assert approved.returncode == 0, approved.stderr
    assert "agent-pay: done" in approved.stdout
    lines = calls.read_text().splitlines()
    assert lines == ["model 2", "lookup", "model 4", "transfer", "model 6"]
    store = SQLiteCheckpointStore(db)
    record = store.load_steps("agent-pay")["pay"]
    assert record.status == "done" and record.output == "paid" and record.attempts == 1
    usage = store.usage("agent-pay")  # what `vouch runs show` reads, from another process
    assert usage.total.calls == 3 and usage.total.tokens == 330
    assert usage.by_agent["payer"].usd == Decimal(300 + 2 * 30) / 1_000_000
    shown = json.loads(
        subprocess.run(
            [sys.executable, "-m", "vouch", "runs", "show", "agent-pay", "--json", "--db", str(db)],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
            check=True,
        ).stdout
    )
    assert shown["status"] == "done" and shown["resumes"] == 1


CRASHING = """
import asyncio
import sys
import time
from pathlib import Path

from pydantic import BaseModel

from vouch.agents import (Agent, ChatModel, Executor, Limits, ModelReply, Plan, SQLiteCheckpointStore,
                    Step, Tool, ToolCall, agent_worker)
from vouch.agents import Price, PriceTable

LOG = Path(__file__).with_name("calls.log")
FREE = PriceTable(prices={"*": Price(input_per_mtok=0, output_per_mtok=0)})


def log(line):
    with LOG.open("a") as f:
        f.write(line + "\\n")


class Scripted(ChatModel):
    name = "scripted"

    async def complete(self, messages, tools):
        log(f"model {len(messages)}")
        last = messages[-1]
        if last.role == "user":
            return ModelReply(tool_calls=[ToolCall(id="1", name="lookup", arguments={"who": "bob"})])
        if last.content.startswith("bob is"):
            return ModelReply(tool_calls=[ToolCall(id="2", name="quote", arguments={"who": "bob"})])
        if sys.argv[2] == "run":
            log("blocked")
            time.sleep(60)  # killed here
        return ModelReply(content="quoted 42")


class Who(BaseModel):
    who: str


async def lookup(args: Who) -> str:
    log("lookup")
    return f"{args.who} is 0xB0b"


async def quote(args: Who) -> str:
    log("quote")
    return "42"


agent = Agent("quoter", model=Scripted(), tools=[Tool.from_function(lookup), Tool.from_function(quote)])
executor = Executor({"quoter": agent_worker(agent)}, store=SQLiteCheckpointStore(sys.argv[1]),
                    limits=Limits(prices=FREE))
plan = Plan(goal="quote", steps=[Step(id="quote", task="quote bob", agent="quoter")])
if sys.argv[2] == "run":
    asyncio.run(executor.run(plan, "crash"))
else:
    print(asyncio.run(executor.resume("crash")).status)
"""


@pytest.mark.slow
def test_kill_9_mid_step_then_resume_repeats_no_finished_model_or_tool_call(
    tmp_path: Path,
) -> None:
    script, db, calls = tmp_path / "quoter.py", tmp_path / "runs.db", tmp_path / "calls.log"
    script.write_text(textwrap.dedent(CRASHING))
    kill_when_blocked(script, db, calls)
    running = SQLiteCheckpointStore(db).load_steps("crash")["quote"]
    assert running.status == "running" and len(running.journal) == 4
    stdout = resume_in_child(script, db)
    assert stdout.strip() == "done"
    # model 6 was cut short by the kill and runs again; nothing before it does
    assert calls.read_text().splitlines() == [
        "model 2",
        "lookup",
        "model 4",
        "quote",
        "model 6",
        "blocked",
        "model 6",
    ]
    store = SQLiteCheckpointStore(db)
    assert store.load_steps("crash")["quote"].output == "quoted 42"
    names = [s["name"] for s in store.load_trace("crash")]
    assert names.count("tool lookup") == names.count("tool quote") == 1  # pre-crash spans kept


class Submitter:
    def __init__(self) -> None:
        self.proposals: list[ActionProposal] = []

    async def submit(self, proposal: ActionProposal) -> dict[str, str]:
        self.proposals.append(proposal)
        return {"status": "settled"}


def test_the_settlement_agent_in_a_step_binds_the_run_trace_and_the_human_decision() -> None:
    submitter, store = Submitter(), MemoryCheckpointStore()
    executor = Executor(
        {"settler": agent_worker(settlement_agent(settlement_offline_model(), submitter))},
        store=store,
        limits=Limits(prices=FREE),
    )
    goal = "Sell 1.5 WETH for USDC between 2,500 and 3,500 USDC per WETH within 10 minutes"
    plan = Plan(goal="settle", steps=[Step(id="settle", task=goal, agent="settler")])
    paused = asyncio.run(executor.run(plan, run_id="s"))
    assert paused.status == "interrupted" and submitter.proposals == []
    executor.decide("s", paused.pending[0].key, approved=True, by="ops")
    outcome = asyncio.run(executor.resume("s"))
    # one approval was enough: the action's key does not depend on the growing trace hash
    assert outcome.status == "done" and len(submitter.proposals) == 1
    trace = store.load_trace("s")
    n = trace_prefix(trace, submitter.proposals[0].trace_hash or "")
    assert n is not None
    led_to_it = [s["name"] for s in trace[:n]]
    assert led_to_it[-1] == "hitl.decision" and "chat vouch-offline-1" in led_to_it
    assert [s["name"] for s in trace[n:]][:1] == ["tool propose_settlement"]


def test_audited_settlement_example_binds_the_decision_and_asks_the_model_twice() -> None:
    result = asyncio.run(example("audited_settlement").main())
    assert result["outcome"].status == "done"
    assert result["led_to_it"] == ["chat vouch-offline-1", "step settle", "run", "hitl.decision"]
    assert result["usage"].total.calls == 2  # one plan call before the pause, one answer after
    assert result["proposal"].params.base_amount == 15 * 10**17


def test_two_parallel_steps_paused_together_both_resume_where_they_were() -> None:
    store, log = MemoryCheckpointStore(), list[str]()
    executor = payer(store, log)
    plan = Plan(
        goal="pay twice",
        steps=[Step(id=s, task=f"pay bob 900 ({s})", agent="payer") for s in ("p1", "p2")],
    )
    paused = asyncio.run(executor.run(plan, run_id="two"))
    assert paused.status == "interrupted" and len(paused.pending) == 2
    assert log.count("lookup") == 2 and log.count("transfer") == 0
    assert {r.status for r in store.load_steps("two").values()} == {"interrupted"}
    for action in paused.pending:
        executor.decide("two", action.key, approved=True, by="alice")
    outcome = asyncio.run(executor.resume("two"))
    assert outcome.status == "done" and outcome.outputs == {"p1": "paid", "p2": "paid"}
    assert log.count("lookup") == 2 and log.count("transfer") == 2
    assert [line for line in log if line.startswith("model")].count("model 2") == 2  # not 4
    decisions = [s for s in store.load_trace("two") if s["name"] == "hitl.decision"]
    assert sorted(d["attributes"]["vouch.step.id"] for d in decisions) == ["p1", "p2"]


def test_from_the_first_call_that_differs_on_resume_everything_runs_for_real() -> None:
    ran: list[str] = []
    world = {"b": "before"}

    def live(name: str) -> Callable[[], Awaitable[str]]:
        async def call() -> str:
            ran.append(name)
            return f"{name}:{world['b']}"

        return call

    async def work(ctx: StepContext) -> list[str]:
        got = [
            await ctx.once("model", {"q": "a"}, live("a")),
            await ctx.once("model", {"q": world["b"]}, live("b")),  # differs after the pause
            await ctx.once("model", {"q": "c"}, live("c")),
        ]

        async def pay(key: str) -> str:
            return "paid"

        got.append(await ctx.effect("pay", pay, {"n": 1}, irreversible=True))
        return got

    store = MemoryCheckpointStore()
    executor = Executor({"w": work}, store=store)
    paused = asyncio.run(executor.run(Plan(goal="g", steps=[Step(id="s", task="t", agent="w")])))
    assert ran == ["a", "b", "c"] and len(store.load_steps(paused.run_id)["s"].journal) == 3
    world["b"] = "after"
    executor.decide(paused.run_id, paused.pending[0].key, approved=True)
    outcome = asyncio.run(executor.resume(paused.run_id))
    assert ran == ["a", "b", "c", "b", "c"]  # a replayed; b differed, so b and c ran again
    assert outcome.outputs["s"] == ["a:before", "b:after", "c:after", "paid"]

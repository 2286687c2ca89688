"""A goal is planned inside its run: a ``plan`` span, charged to ``planner``, checkpointed."""

from __future__ import annotations

import asyncio
import textwrap
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from vouch._agent_settlement import ActionProposal, FactRequest, SettlementParams
from vouch.agents import (
    Budget,
    BudgetExceeded,
    CheckpointError,
    Executor,
    Limits,
    MemoryCheckpointStore,
    Message,
    ModelReply,
    Plan,
    PlanError,
    Planner,
    Price,
    PriceTable,
    RunRecord,
    SQLiteCheckpointStore,
    StepContext,
    trace_hash,
    trace_prefix,
)
from vouch.agents._errors import AgentBudgetExceeded

from .conftest import ScriptedModel, call, echo, kill_when_blocked, resume_in_child

# 2 USD per million tokens in, 10 out: a planning call of 1,000 in and 200 out is 0.004 USD
PRICED = PriceTable(prices={"*": Price(input_per_mtok=Decimal(2), output_per_mtok=Decimal(10))})
STEPS = [
    {"id": "a", "task": "first", "agent": "w"},
    {"id": "b", "task": "second", "agent": "w", "depends_on": ["a"]},
]
PARAMS = SettlementParams(
    base_token="WETH",
    quote_token="USDC",
    base_amount=5,
    min_price=1,
    max_price=2,
    deadline_seconds=60,
)


def submit(
    steps: list[dict[str, Any]] = STEPS, tokens: tuple[int, int] = (1000, 200)
) -> ModelReply:
    """The planner model's answer: a submit_plan call, with its usage."""
    reply = call("submit_plan", steps=steps)
    return reply.model_copy(update={"prompt_tokens": tokens[0], "completion_tokens": tokens[1]})


def executor(
    model: ScriptedModel,
    store: Any = None,
    limits: Limits | None = None,
    workers: dict[str, Any] | None = None,
) -> Executor:
    planner = Planner(model, {"w": "does the work"})
    return Executor(
        workers or {"w": echo},
        store=store or MemoryCheckpointStore(),
        limits=limits or Limits(prices=PRICED),
        planner=planner,
    )


def subtree(trace: list[dict[str, Any]], root: dict[str, Any]) -> list[dict[str, Any]]:
    """``root`` and every span under it."""
    ids = {root["spanId"]}
    for span in reversed(trace):
        if span["parentSpanId"] in ids:
            ids.add(span["spanId"])
    return [s for s in trace if s["spanId"] in ids]


def test_the_stored_trace_starts_with_the_plan_span_holding_the_planners_chat_span() -> None:
    model = ScriptedModel([submit()])
    ex = executor(model)
    outcome = asyncio.run(ex.run("do a then b", run_id="p"))
    assert outcome.status == "done"
    assert outcome.outputs == {"a": "a()", "b": "b(a=a())"}  # no planning record among them
    trace = ex.store.load_trace("p")
    chat, plan = trace[0], trace[1]
    assert plan["name"] == "plan" and plan["status"]["code"] == "OK"
    assert plan["attributes"]["gen_ai.operation.name"] == "invoke_agent"
    assert plan["attributes"]["gen_ai.agent.name"] == "planner"
    assert plan["attributes"]["vouch.run.id"] == "p"
    assert plan["attributes"]["vouch.output.hash"]  # binds the plan it made
    assert chat["name"] == "chat scripted" and chat["parentSpanId"] == plan["spanId"]
    assert chat["attributes"]["gen_ai.operation.name"] == "chat"
    assert chat["attributes"]["gen_ai.agent.name"] == "planner"
    assert chat["attributes"]["gen_ai.usage.input_tokens"] == 1000
    run = trace[-1]
    assert run["name"] == "run" and plan["parentSpanId"] == run["spanId"]
    assert [s["name"] for s in trace[2:]] == ["step a", "step b", "run"]
    assert outcome.trace_hash == trace_hash(trace)
    stored = ex.store.load_run("p")
    assert stored.plan is not None and [s.id for s in stored.plan.steps] == ["a", "b"]
    assert ex.store.load_steps("p")["@plan"].status == "done"


def test_the_planners_tokens_and_usd_are_in_the_runs_usage() -> None:
    ex = executor(ScriptedModel([submit()]))
    asyncio.run(ex.run("do a then b", run_id="u"))
    usage = ex.store.usage("u")
    planner = usage.by_agent["planner"]
    assert (planner.calls, planner.prompt_tokens, planner.completion_tokens) == (1, 1000, 200)
    assert planner.usd == Decimal("0.004")
    assert usage.total.usd == Decimal("0.004") and usage.by_step["@plan"].tokens == 1200


def test_a_usd_budget_smaller_than_the_planning_call_stops_the_run() -> None:
    limits = Limits(prices=PRICED, budget=Budget(usd=Decimal("0.001")))
    model = ScriptedModel([submit()])
    ex = executor(model, limits=limits)
    outcome = asyncio.run(ex.run("do a then b", run_id="b"))
    assert outcome.status == "stopped" and isinstance(outcome.error, BudgetExceeded)
    assert model.calls == [] and "not sent" in outcome.reason  # its worst case did not fit
    assert "budget" in outcome.reason and outcome.outputs == {}
    with pytest.raises(BudgetExceeded):
        outcome.raise_for_status()
    # nothing was sent, so nothing is charged; the trace says why
    assert "planner" not in ex.store.usage("b").by_agent
    record = ex.store.load_run("b")
    assert record.status == "stopped" and record.plan is None and record.error == "BudgetExceeded"
    assert ex.store.load_steps("b")["@plan"].status == "stopped"
    plan = next(s for s in ex.store.load_trace("b") if s["name"] == "plan")
    assert plan["status"]["code"] == "ERROR" and "BudgetExceeded" in plan["status"]["message"]


def test_the_planners_own_budget_applies_to_its_calls() -> None:
    limits = Limits(prices=PRICED, agent_budgets={"planner": Budget(tokens=500)})
    ex = executor(ScriptedModel([submit()]), limits=limits)
    outcome = asyncio.run(ex.run("do a then b"))
    assert outcome.status == "stopped" and isinstance(outcome.error, AgentBudgetExceeded)
    assert outcome.error.agent == "planner"


def test_a_proposal_in_a_later_step_carries_a_hash_that_covers_the_plan_span() -> None:
    made: list[ActionProposal] = []

    async def propose(ctx: StepContext) -> str:
        made.append(ActionProposal(params=PARAMS, facts=[FactRequest(feed="ETH/USD")]))
        return "proposed"

    ex = executor(ScriptedModel([submit()]), workers={"w": propose})
    outcome = asyncio.run(ex.run("propose twice", run_id="h"))
    assert outcome.status == "done" and len(made) == 2
    trace = ex.store.load_trace("h")
    n = trace_prefix(trace, made[0].trace_hash or "")
    assert n is not None and [s["name"] for s in trace[:n]] == ["chat scripted", "plan"]
    later = trace_prefix(trace, made[1].trace_hash or "")
    assert later is not None and [s["name"] for s in trace[:later]][:2] == ["chat scripted", "plan"]


def test_no_valid_plan_ends_the_run_failed_and_recorded() -> None:
    bad = call("submit_plan", steps=[{"id": "x", "task": "t", "agent": "nobody"}])
    ex = executor(ScriptedModel([bad]))
    outcome = asyncio.run(ex.run("g", run_id="f"))
    assert outcome.status == "failed" and isinstance(outcome.error, PlanError)
    assert outcome.reason.startswith("planning failed: planner gave up after 3 attempts")
    assert ex.store.load_run("f").status == "failed"
    assert ex.store.usage("f").by_agent["planner"].calls == 3  # the repairs are charged too
    assert [s["name"] for s in ex.store.load_trace("f")] == ["chat scripted"] * 3 + ["plan", "run"]


def test_a_goal_without_a_planner_is_refused_before_a_run_exists() -> None:
    store = MemoryCheckpointStore()
    with pytest.raises(PlanError, match="needs a planner"):
        asyncio.run(Executor({"w": echo}, store=store).run("g"))
    assert store.list_runs() == []


def test_a_plan_object_runs_as_before_with_no_planning_span_or_record() -> None:
    ex = executor(ScriptedModel([submit()]))
    plan = Plan.model_validate({"goal": "g", "steps": STEPS})
    outcome = asyncio.run(ex.run(plan, run_id="o"))
    assert outcome.status == "done" and ex.planner is not None
    assert ex.planner.model.calls == []  # type: ignore[attr-defined]
    assert [s["name"] for s in ex.store.load_trace("o")] == ["step a", "step b", "run"]
    assert "@plan" not in ex.store.load_steps("o")


class Killed(BaseException):
    """Stands for the process dying: nothing in the engine catches it."""


def test_killed_during_planning_resumes_replaying_the_journaled_call(tmp_path: Path) -> None:
    invalid = call("submit_plan", steps=[{"id": "x", "task": "t", "agent": "nobody"}])
    invalid = invalid.model_copy(update={"prompt_tokens": 100})
    kill = True

    def script(messages: list[Message]) -> ModelReply:
        if len(messages) == 2:
            return invalid  # the first answer is sent back for repair
        if kill:
            raise Killed
        return submit()

    db = tmp_path / "runs.db"
    first = ScriptedModel(script)
    with pytest.raises(Killed):
        asyncio.run(executor(first, SQLiteCheckpointStore(db)).run("do a then b", run_id="k"))
    store = SQLiteCheckpointStore(db)
    assert store.load_run("k").status == "running" and store.load_run("k").plan is None
    planning = store.load_steps("k")["@plan"]
    assert planning.status == "running" and len(planning.journal) == 1
    kill = False
    again = ScriptedModel(script)
    outcome = asyncio.run(executor(again, store).resume("k"))
    assert outcome.status == "done" and outcome.outputs == {"a": "a()", "b": "b(a=a())"}
    assert len(again.calls) == 1 and len(again.calls[0]) == 4  # only the repair call ran again
    usage = store.usage("k").by_agent["planner"]
    assert (usage.calls, usage.prompt_tokens) == (2, 1100)  # each call charged once
    trace = store.load_trace("k")
    names = [s["name"] for s in trace]
    assert names.count("chat scripted") == 2 and names.count("plan") == 1
    plan = trace[names.index("plan")]
    assert plan["attributes"]["vouch.step.resumed"] is True
    assert outcome.trace_hash == trace_hash(trace)


class DiesOnPlan(SQLiteCheckpointStore):
    """The process dies when the run's header first gets its plan: before or after it is written."""

    def __init__(self, path: Path, after: bool) -> None:
        super().__init__(path)
        self.after = after

    def save_run(self, run: RunRecord) -> None:
        if run.plan is not None and not self.after:
            raise Killed
        super().save_run(run)
        if run.plan is not None:
            raise Killed


@pytest.mark.parametrize("after", [False, True], ids=["before-header", "after-header"])
def test_killed_after_planning_resumes_without_planning_again(tmp_path: Path, after: bool) -> None:
    db = tmp_path / "runs.db"
    model = ScriptedModel([submit()])
    with pytest.raises(Killed):
        asyncio.run(executor(model, DiesOnPlan(db, after)).run("do a then b", run_id="k2"))
    store = SQLiteCheckpointStore(db)
    assert store.load_steps("k2")["@plan"].status == "done"
    assert (store.load_run("k2").plan is not None) is after
    outcome = asyncio.run(executor(model, store).resume("k2"))
    assert outcome.status == "done" and outcome.outputs == {"a": "a()", "b": "b(a=a())"}
    assert len(model.calls) == 1  # planned once, before the kill
    names = [s["name"] for s in store.load_trace("k2")]
    assert names == ["chat scripted", "plan", "step a", "step b", "run"]
    assert store.usage("k2").by_agent["planner"].calls == 1


def test_a_run_without_a_plan_yet_needs_a_planner_to_resume(tmp_path: Path) -> None:
    def script(messages: list[Message]) -> ModelReply:
        raise Killed

    db = tmp_path / "runs.db"
    with pytest.raises(Killed):
        asyncio.run(executor(ScriptedModel(script), SQLiteCheckpointStore(db)).run("g", "np"))
    store = SQLiteCheckpointStore(db)
    with pytest.raises(CheckpointError, match="no plan yet"):
        asyncio.run(Executor({"w": echo}, store=store).resume("np"))


def test_a_replans_model_calls_are_chat_spans_charged_to_the_planner() -> None:
    async def work(ctx: StepContext) -> str:
        if ctx.step.id == "b":
            raise RuntimeError("venue down")
        return f"ok {ctx.step.id}"

    replanned = [{"id": "b2", "task": "other venue", "agent": "w", "depends_on": ["a"]}]
    model = ScriptedModel([submit(), submit(replanned, (300, 30))])
    ex = executor(model, workers={"w": work})
    ex.refine_rounds = 0
    outcome = asyncio.run(ex.run("do a then b", run_id="r"))
    assert outcome.status == "done" and outcome.outputs == {"a": "ok a", "b2": "ok b2"}
    usage = ex.store.usage("r")
    assert usage.by_agent["planner"].calls == 2 and usage.by_step["@replan.1"].tokens == 330
    trace = ex.store.load_trace("r")
    replan = next(s for s in trace if s["name"] == "decision replan")
    [chat] = [s for s in subtree(trace, replan) if s is not replan]
    assert chat["name"] == "chat scripted" and chat["attributes"]["gen_ai.agent.name"] == "planner"


CRASHING = """
import asyncio
import sys
import time
from pathlib import Path

from vouch.agents import (ChatModel, Executor, Limits, ModelReply, Planner, Price, PriceTable,
                    SQLiteCheckpointStore, ToolCall)

LOG = Path(sys.argv[1]).with_name("calls.log")
FREE = PriceTable(prices={"*": Price(input_per_mtok=0, output_per_mtok=0)})


def log(line):
    with LOG.open("a") as f:
        f.write(line + "\\n")


class Scripted(ChatModel):
    name = "scripted"

    async def complete(self, messages, tools):
        log(f"model {len(messages)}")
        agent = "nobody" if len(messages) == 2 else "w"
        if agent == "w" and sys.argv[2] == "run":
            log("blocked")
            time.sleep(60)  # killed here
        steps = [{"id": "a", "task": "t", "agent": agent}]
        return ModelReply(tool_calls=[ToolCall(id="1", name="submit_plan", arguments={"steps": steps})])


async def work(ctx):
    log("step " + ctx.step.id)
    return "done " + ctx.step.id


executor = Executor({"w": work}, store=SQLiteCheckpointStore(sys.argv[1]),
                    limits=Limits(prices=FREE), planner=Planner(Scripted(), {"w": "worker"}))
if sys.argv[2] == "run":
    asyncio.run(executor.run("g", "crash"))
else:
    print(asyncio.run(executor.resume("crash")).status)
"""


@pytest.mark.slow
def test_kill_9_during_planning_then_resume_repeats_no_finished_planning_call(
    tmp_path: Path,
) -> None:
    script, db, calls = tmp_path / "planning.py", tmp_path / "runs.db", tmp_path / "calls.log"
    script.write_text(textwrap.dedent(CRASHING))
    kill_when_blocked(script, db, calls)
    assert SQLiteCheckpointStore(db).load_steps("crash")["@plan"].status == "running"
    stdout = resume_in_child(script, db)
    assert stdout.strip() == "done"
    # the first (invalid) plan is replayed; the repair call cut short by the kill runs again
    assert calls.read_text().splitlines() == ["model 2", "model 4", "blocked", "model 4", "step a"]
    store = SQLiteCheckpointStore(db)
    assert store.load_run("crash").plan is not None
    assert [s["name"] for s in store.load_trace("crash")][-3:] == ["plan", "step a", "run"]

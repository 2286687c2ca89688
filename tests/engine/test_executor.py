from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vouch.agents import (
    Criterion,
    Executor,
    Limits,
    Plan,
    PlanCycle,
    Planner,
    Step,
    StepContext,
    StepFailed,
)

from .conftest import FREE, ScriptedModel, call, echo


def test_parallel_branches_overlap_in_time_and_outputs_flow_along_edges() -> None:
    spans: dict[str, tuple[float, float]] = {}

    async def slow(ctx: StepContext) -> str:
        start = time.perf_counter()
        await asyncio.sleep(0.2)
        spans[ctx.step.id] = (start, time.perf_counter())
        return await echo(ctx)

    plan = Plan(
        goal="g",
        steps=[
            Step(id="root", task="r", agent="w"),
            Step(id="left", task="l", agent="w", depends_on=["root"]),
            Step(id="right", task="r", agent="w", depends_on=["root"]),
            Step(id="join", task="j", agent="w", depends_on=["left", "right"]),
        ],
    )
    started = time.perf_counter()
    outcome = asyncio.run(Executor({"w": slow}).run(plan))
    elapsed = time.perf_counter() - started
    assert outcome.status == "done"
    (l0, l1), (r0, r1) = spans["left"], spans["right"]
    assert l0 < r1 and r0 < l1  # the two branches ran at the same time
    assert elapsed < 0.75  # 3 levels of 0.2 s, not 4 steps of 0.2 s
    assert spans["join"][0] >= max(l1, r1)
    assert outcome.outputs["join"] == "join(left=left(root=root()),right=right(root=root()))"


def test_concurrency_limit_is_respected() -> None:
    running = peak = 0

    async def work(ctx: StepContext) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        running -= 1
        return 1

    plan = Plan(goal="g", steps=[Step(id=f"s{i}", task="t", agent="w") for i in range(20)])
    outcome = asyncio.run(Executor({"w": work}, concurrency=3).run(plan))
    assert outcome.status == "done" and peak == 3


def test_cycle_is_rejected_before_anything_runs() -> None:
    ran: list[str] = []

    async def work(ctx: StepContext) -> None:
        ran.append(ctx.step.id)

    plan = Plan(
        goal="g",
        steps=[
            Step(id="a", task="t", agent="w", depends_on=["b"]),
            Step(id="b", task="t", agent="w", depends_on=["a"]),
        ],
    )
    with pytest.raises(PlanCycle):
        asyncio.run(Executor({"w": work}).run(plan))
    assert ran == []


def must(word: str) -> list[Criterion]:
    return [Criterion(text=f"says {word}", must_contain=[word])]


def test_refinement_gets_the_critique_and_passes_on_a_later_round() -> None:
    seen: list[list[str]] = []

    async def learner(ctx: StepContext) -> str:
        seen.append(ctx.feedback)
        return "draft" if ctx.attempt < 3 else "final answer"

    plan = Plan(goal="g", steps=[Step(id="s", task="t", agent="w", criteria=must("final"))])
    outcome = asyncio.run(Executor({"w": learner}, refine_rounds=2).run(plan))
    assert outcome.status == "done" and outcome.outputs["s"] == "final answer"
    assert seen[0] == [] and "missing ['final']" in seen[2][-1] and len(seen[2]) == 2


def test_recovery_agent_gets_the_failure_then_the_run_fails_with_step_failed() -> None:
    contexts: list[str] = []

    async def stubborn(ctx: StepContext) -> str:
        raise RuntimeError("database locked")

    async def recovery(ctx: StepContext) -> str:
        contexts.append(ctx.prompt())
        return "fixed" if "database locked" in ctx.prompt() else "?"

    plan = Plan(goal="g", steps=[Step(id="s", task="t", agent="w", criteria=must("fixed"))])
    outcome = asyncio.run(Executor({"w": stubborn}, refine_rounds=1, recovery=recovery).run(plan))
    assert outcome.status == "done" and outcome.outputs["s"] == "fixed"
    assert "RuntimeError: database locked" in contexts[0]

    outcome = asyncio.run(Executor({"w": stubborn}, refine_rounds=1).run(plan))
    assert outcome.status == "failed" and isinstance(outcome.error, StepFailed)
    assert "database locked" in outcome.reason


def test_replan_on_unmet_criteria_keeps_finished_steps() -> None:
    counts: dict[str, int] = {}

    async def work(ctx: StepContext) -> str:
        counts[ctx.step.id] = counts.get(ctx.step.id, 0) + 1
        return "bad" if ctx.step.id == "b" else f"ok {ctx.step.id}"

    new_steps = [{"id": "b2", "task": "other way", "agent": "w", "depends_on": ["a"]}]
    planner = Planner(ScriptedModel([call("submit_plan", steps=new_steps)]), {"w": "worker"})
    plan = Plan(
        goal="g",
        steps=[
            Step(id="a", task="t", agent="w"),
            Step(id="b", task="t", agent="w", depends_on=["a"], criteria=must("ok")),
        ],
    )
    # the re-plan's model call is charged to the run: the scripted model needs a price
    executor = Executor({"w": work}, planner=planner, refine_rounds=0, limits=Limits(prices=FREE))
    outcome = asyncio.run(executor.run(plan))
    assert outcome.status == "done"
    assert outcome.outputs == {"a": "ok a", "b2": "ok b2"}
    assert counts == {"a": 1, "b": 1, "b2": 1}
    assert "failed at step 'b'" in planner.model.calls[0][1].content  # type: ignore[attr-defined]


def test_replan_when_a_step_keeps_failing_keeps_finished_steps() -> None:
    ran: list[str] = []

    async def work(ctx: StepContext) -> str:
        ran.append(ctx.step.id)
        if ctx.step.id == "b":
            raise RuntimeError("venue down")
        return f"ok {ctx.step.id}"

    new_steps = [{"id": "b2", "task": "use the other venue", "agent": "w", "depends_on": ["a"]}]
    planner = Planner(ScriptedModel([call("submit_plan", steps=new_steps)]), {"w": "worker"})
    plan = Plan(
        goal="g",
        steps=[
            Step(id="a", task="t", agent="w"),
            Step(id="b", task="t", agent="w", depends_on=["a"]),
        ],
    )
    executor = Executor({"w": work}, planner=planner, refine_rounds=1, limits=Limits(prices=FREE))
    outcome = asyncio.run(executor.run(plan, run_id="rp"))
    assert outcome.status == "done" and outcome.outputs == {"a": "ok a", "b2": "ok b2"}
    assert ran == ["a", "b", "b", "b2"]  # b and its refinement round failed, a did not run again
    assert "RuntimeError: venue down" in planner.model.calls[0][1].content  # type: ignore[attr-defined]
    assert executor.store.load_run("rp").replans == 1


@st.composite
def dags(draw: Any) -> Plan:
    n = draw(st.integers(1, 25))
    steps = []
    for i in range(n):
        deps = draw(st.lists(st.integers(0, i - 1), unique=True, max_size=4)) if i else []
        steps.append(Step(id=f"s{i}", task="t", agent="w", depends_on=[f"s{d}" for d in deps]))
    order = draw(st.permutations(steps))
    return Plan(goal="g", steps=list(order))


@settings(max_examples=60, deadline=None)
@given(
    plan=dags(),
    limit=st.integers(1, 6),
    delays=st.lists(st.integers(0, 3), min_size=25, max_size=25),
)
def test_random_dags_run_each_step_once_after_its_dependencies(
    plan: Plan, limit: int, delays: list[int]
) -> None:
    finished: list[str] = []
    started: list[str] = []

    async def work(ctx: StepContext) -> str:
        started.append(ctx.step.id)
        assert all(d in finished for d in ctx.step.depends_on)
        await asyncio.sleep(delays[int(ctx.step.id[1:])] / 1000)
        finished.append(ctx.step.id)
        return ctx.step.id

    outcome = asyncio.run(Executor({"w": work}, concurrency=limit).run(plan))
    assert outcome.status == "done"
    assert sorted(started) == sorted(s.id for s in plan.steps) == sorted(finished)
    assert set(outcome.outputs) == {s.id for s in plan.steps}

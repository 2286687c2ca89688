from __future__ import annotations

import asyncio

import pytest
from pydantic import ValidationError

from vouch.agents import Plan, PlanCycle, PlanError, Planner, Step, UnknownAgent, UnknownDependency

from .conftest import ScriptedModel, call, text


def plan(*steps: tuple[str, list[str]]) -> Plan:
    return Plan(goal="g", steps=[Step(id=i, task=i, agent="a", depends_on=d) for i, d in steps])


def test_valid_plan_gives_a_topological_order() -> None:
    order = plan(("c", ["a", "b"]), ("a", []), ("b", ["a"])).check({"a"})
    assert order.index("a") < order.index("b") < order.index("c")


def test_cycle_is_rejected_and_named() -> None:
    with pytest.raises(PlanCycle) as err:
        plan(("a", ["c"]), ("b", ["a"]), ("c", ["b"]), ("d", [])).check()
    assert set(err.value.cycle) == {"a", "b", "c"}
    assert err.value.cycle[0] == err.value.cycle[-1]
    assert "cycle" in str(err.value)


def test_self_dependency_is_a_cycle() -> None:
    with pytest.raises(PlanCycle):
        plan(("a", ["a"])).check()


def test_unknown_dependency_is_rejected() -> None:
    with pytest.raises(UnknownDependency, match="'b' depends on 'zz'"):
        plan(("a", []), ("b", ["zz"])).check()


def test_unknown_agent_and_capability_are_rejected() -> None:
    with pytest.raises(UnknownAgent, match="agent 'a'"):
        plan(("a", [])).check({"other"})
    p = Plan(goal="g", steps=[Step(id="s", task="t", capability="fly")])
    with pytest.raises(UnknownAgent, match="capability 'fly'"):
        p.check({"x"}, {"swim"})


def test_duplicate_ids_are_rejected() -> None:
    with pytest.raises(ValidationError, match="used twice"):
        plan(("a", []), ("a", []))


def test_done_steps_count_as_known_dependencies() -> None:
    assert plan(("b", ["a"])).check(done={"a"}) == ["b"]


STEPS = [
    {"id": "fetch", "task": "fetch prices", "agent": "researcher"},
    {
        "id": "risk",
        "task": "assess risk",
        "agent": "analyst",
        "depends_on": ["fetch"],
        "criteria": [{"text": "mentions risk", "must_contain": ["risk"]}],
    },
]


def test_planner_turns_a_goal_into_a_validated_plan() -> None:
    model = ScriptedModel([call("submit_plan", steps=STEPS)])
    planner = Planner(model, {"researcher": "finds data", "analyst": "judges risk"})
    result = asyncio.run(planner.plan("settle safely"))
    assert [s.id for s in result.steps] == ["fetch", "risk"]
    assert result.goal == "settle safely"
    assert result.steps[1].criteria[0].must_contain == ["risk"]
    assert "researcher: finds data" in model.calls[0][0].content


def test_planner_sends_an_invalid_plan_back_with_the_error() -> None:
    cyclic = [{**STEPS[0], "depends_on": ["risk"]}, STEPS[1]]
    model = ScriptedModel(
        [call("submit_plan", steps=cyclic), text("no"), call("submit_plan", steps=STEPS)]
    )
    planner = Planner(model, {"researcher": "", "analyst": ""})
    result = asyncio.run(planner.plan("g"))
    assert len(result.steps) == 2
    assert "cycle" in model.calls[1][-1].content
    assert "without calling submit_plan" in model.calls[2][-1].content


def test_planner_gives_up_with_a_plan_error() -> None:
    model = ScriptedModel([call("submit_plan", steps=[{**STEPS[0], "agent": "ghost"}])])
    with pytest.raises(PlanError, match="gave up after 3 attempts.*ghost"):
        asyncio.run(Planner(model, {"researcher": ""}).plan("g"))

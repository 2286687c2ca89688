"""The offline model plans through the planner's own interface: a ``submit_plan`` tool call.

Templates (goal pattern -> steps) are tried in the order registered; a goal no
template fits gets one step per agent or capability it names, staged by how the
goal orders them; a goal naming none is a PlanError that says what to do.
"""

from __future__ import annotations

import asyncio

import pytest

from vouch._demo import DEFAULT_GOAL
from vouch._flow import SETTLEMENT_AGENTS, SETTLEMENT_TEMPLATE, offline_model, settlement_planner
from vouch.agents import (
    AgentCard,
    Endpoint,
    Executor,
    Message,
    OfflineModel,
    OpenAIChatModel,
    Plan,
    PlanError,
    Planner,
    PlanTemplate,
    Registry,
    StepContext,
    ToolSpec,
)

from .fake_openai import FakeOpenAI

TEAM = {
    "researcher": "finds data (capabilities: market-data)",
    "analyst": "judges risk (capabilities: risk)",
    "writer": "writes reports (capabilities: -)",
}


def plan(model: OfflineModel, goal: str, agents: dict[str, str] = TEAM) -> Plan:
    caps = {"market-data", "risk"} if agents is TEAM else ()
    return asyncio.run(Planner(model, agents, caps).plan(goal))


def shape(p: Plan) -> list[tuple[str, str | None, str | None, list[str]]]:
    return [(s.id, s.agent, s.capability, s.depends_on) for s in p.steps]


def test_the_offline_model_answers_the_planner_with_a_submit_plan_call() -> None:
    planner = settlement_planner(offline_model())
    messages = [
        Message(role="system", content="Agents:\n- settlement-agent: x\n- escrow: y\n- settle: z"),
        Message(role="user", content=DEFAULT_GOAL),
    ]
    reply = asyncio.run(planner.model.complete(messages, [planner._spec()]))
    [call] = reply.tool_calls
    assert call.name == "submit_plan" and set(call.arguments) == {"steps"}
    # the arguments are what the planner's schema describes: a Plan without its goal
    assert Plan.model_validate({"goal": DEFAULT_GOAL, **call.arguments}).check(
        set(SETTLEMENT_AGENTS)
    ) == ["propose", "escrow", "settle"]


def test_the_demo_goal_plans_propose_escrow_settle() -> None:
    result = asyncio.run(settlement_planner(offline_model()).plan(DEFAULT_GOAL))
    assert shape(result) == [
        ("propose", "settlement-agent", None, []),
        ("escrow", "escrow", None, ["propose"]),
        ("settle", "settle", None, ["escrow"]),
    ]
    assert result.steps[0].task == DEFAULT_GOAL and result.goal == DEFAULT_GOAL


def test_without_the_template_the_settlement_goal_is_a_clear_plan_error() -> None:
    with pytest.raises(PlanError, match="no plan template matches.*settlement-agent"):
        asyncio.run(settlement_planner(OfflineModel()).plan(DEFAULT_GOAL))


def test_templates_match_deterministically_first_registered_wins() -> None:
    first = PlanTemplate(
        name="first",
        pattern=r"report on (?P<topic>\w+)",
        steps=[{"id": "write", "task": "write about {topic}: {goal} {kept}", "agent": "writer"}],
    )
    second = PlanTemplate(
        name="second", pattern=r"report", steps=[{"id": "other", "task": "x", "agent": "writer"}]
    )
    model = OfflineModel([first, second])
    goal = "Please report on liquidity"
    plans = [plan(model, goal) for _ in range(3)]
    assert plans[0] == plans[1] == plans[2]
    assert shape(plans[0]) == [("write", "writer", None, [])]
    assert plans[0].steps[0].task == f"write about liquidity: {goal} {{kept}}"
    assert shape(plan(OfflineModel([second, first]), goal)) == [("other", "writer", None, [])]


def test_a_template_naming_agents_the_planner_lacks_does_not_apply() -> None:
    model = OfflineModel([SETTLEMENT_TEMPLATE])
    result = plan(model, "Sell 1 WETH for USDC, writer explains it")  # TEAM has no escrow agent
    assert shape(result) == [("writer", "writer", None, [])]


def test_a_generic_goal_gets_one_step_per_named_agent_in_stages() -> None:
    goal = "Have the researcher and the analyst look at WETH, then the writer summarizes"
    result = plan(OfflineModel(), goal)
    assert shape(result) == [
        ("researcher", "researcher", None, []),
        ("analyst", "analyst", None, []),
        ("writer", "writer", None, ["researcher", "analyst"]),
    ]
    assert result.steps[2].task == "the writer summarizes"


def test_capabilities_are_routed_unless_a_named_agent_has_them() -> None:
    result = plan(OfflineModel(), "Gather market data; after that the writer reports")
    assert shape(result) == [
        ("market-data", None, "market-data", []),
        ("writer", "writer", None, ["market-data"]),
    ]
    # the researcher declares market-data: no second step for the capability
    result = plan(OfflineModel(), "The researcher gathers market data. Finally risk is judged")
    assert shape(result) == [
        ("researcher", "researcher", None, []),
        ("risk", None, "risk", ["researcher"]),
    ]


def test_a_goal_naming_no_agent_goes_to_the_only_agent_or_is_a_plan_error() -> None:
    solo = plan(OfflineModel(), "summarize the week", {"writer": "writes"})
    assert shape(solo) == [("writer", "writer", None, [])]
    assert solo.steps[0].task == "summarize the week"
    with pytest.raises(PlanError, match=r"names none of the agents.*analyst, researcher, writer"):
        plan(OfflineModel(), "summarize the week")


def test_a_replan_plans_only_what_is_not_finished() -> None:
    planner = Planner(OfflineModel(), TEAM)
    first = asyncio.run(planner.plan("researcher, then analyst, then writer"))
    again = asyncio.run(planner.replan(first, {"researcher": "prices"}, "analyst", "timed out"))
    assert shape(again) == [
        ("analyst", "analyst", None, ["researcher"]),
        ("writer", "writer", None, ["analyst"]),
    ]


def test_an_offline_plan_runs_on_the_executor_from_the_goal_alone() -> None:
    async def worker(ctx: StepContext) -> str:
        return f"{ctx.agent} did {ctx.step.id} after {sorted(ctx.inputs)}"

    reg = Registry()
    for name, caps in {"researcher": ["market-data"], "analyst": ["risk"], "writer": []}.items():
        reg.add(AgentCard(name=name, description=f"the {name}", capabilities=caps), worker)
    planner = Planner(OfflineModel(), reg.descriptions(), reg.capabilities)
    outcome = asyncio.run(Executor(reg, planner=planner).run("the analyst, then the writer"))
    assert outcome.status == "done"
    assert outcome.outputs["writer"] == "writer did writer after ['analyst']"


def test_a_hosted_model_over_http_plans_through_the_same_tool(
    server: FakeOpenAI, endpoint: Endpoint
) -> None:
    # the local server answers like OfflineModel(), over the real openai client
    planner = Planner(OpenAIChatModel(endpoint), TEAM)
    result = asyncio.run(planner.plan("researcher, then writer"))
    assert shape(result) == [
        ("researcher", "researcher", None, []),
        ("writer", "writer", None, ["researcher"]),
    ]
    [request] = server.chat_requests()
    assert [t["function"]["name"] for t in request["tools"]] == ["submit_plan"]


def test_other_requests_are_answered_as_before() -> None:
    tool = ToolSpec(name="propose_settlement", description="", parameters={})
    reply = asyncio.run(
        offline_model().complete([Message(role="user", content=DEFAULT_GOAL)], [tool])
    )
    assert reply.tool_calls[0].name == "propose_settlement"
    assert reply.tool_calls[0].arguments["base_amount"] == 15 * 10**17

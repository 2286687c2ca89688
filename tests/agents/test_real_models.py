"""Agents on a real OpenAI-compatible server that misbehaves as real ones do.

Each test drives the real ``openai`` client against the local server
(``fake_openai``) and asserts what the user is told: dated model names under a
USD budget, budgets checked before a call is sent, garbage and empty plans, a
strict plan schema filled by a schema-following server, refusals, 429 storms,
timeouts and streams without usage.
"""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

import pytest

from vouch.agents import (
    Agent,
    AgentCard,
    Budget,
    BudgetExceeded,
    Endpoint,
    Executor,
    Limits,
    ModelConfigError,
    ModelError,
    Models,
    ModelSettings,
    OpenAIChatModel,
    Plan,
    PlanError,
    Planner,
    Price,
    PriceTable,
    Registry,
    Step,
    UsageLedger,
    agent_worker,
)
from vouch.agents._plan import plan_schema

from .fake_openai import (
    Answer,
    FakeOpenAI,
    FollowSchema,
    Garbage,
    Refusal,
    Stall,
    Status,
    schema_problems,
)

MINI = "gpt-4o-mini"
DATED = "gpt-4o-mini-2024-07-18"
# USD 100 per million in, 400 out: 1,000 tokens in and 100 out cost USD 0.14
PRICES = PriceTable(prices={MINI: Price(input_per_mtok=Decimal(100), output_per_mtok=Decimal(400))})


def mini(endpoint: Endpoint, **update: Any) -> OpenAIChatModel:
    return OpenAIChatModel(endpoint.model_copy(update={"model": MINI, **update}))


def planner_run(server_model: OpenAIChatModel, goal: str, limits: Limits | None = None) -> Any:
    registry = Registry()
    registry.add(AgentCard(name="writer", description="writes"), _echo)
    registry.add(AgentCard(name="checker", description="checks"), _echo)
    planner = Planner(server_model, registry.descriptions())
    executor = Executor(registry, planner=planner, limits=limits or Limits())
    return asyncio.run(executor.run(goal, run_id="r")), executor


async def _echo(ctx: Any) -> str:
    return f"{ctx.agent} did {ctx.step.id}"


# --- prices under the configured name, budgets before spending ---------------------------


def test_a_dated_model_name_is_charged_at_the_configured_models_price(
    server: FakeOpenAI, endpoint: Endpoint
) -> None:
    server.served_as = DATED
    server.then(Answer("hi", usage=(1000, 100)))
    ledger = UsageLedger("r", PRICES, Budget(usd=Decimal(1)))
    agent = Agent("a", model=mini(endpoint, max_tokens=100), tools=[])
    result = asyncio.run(agent.run("hello", ledger=ledger))
    assert result.answer == "hi" and result.trace[0].data["model"] == DATED  # as served
    (record,) = ledger.records
    assert (record.name, record.usd, record.priced) == (MINI, Decimal("0.14"), True)
    # the documented snapshot rule prices a dated name configured as such, too
    assert PRICES.cost(DATED, 1000, 100) == Decimal("0.14")


def test_a_late_answer_is_waited_for_not_lost_to_a_retry(
    server: FakeOpenAI, endpoint: Endpoint
) -> None:
    # a loaded machine: the server takes its scripted answer, then answers 0.7 s later;
    # a client that gave up at 0.5 s (the old fixture) retried and was answered by the
    # offline default instead, and the dated-name price test above saw USD 0.007, not 0.14
    server.served_as = DATED
    server.then(Stall(0.7), Answer("hi", usage=(1000, 100)))
    ledger = UsageLedger("r", PRICES, Budget(usd=Decimal(1)))
    model = mini(endpoint, max_tokens=100, backoff_seconds=1.0, backoff_max_seconds=1.0)
    result = asyncio.run(Agent("a", model=model, tools=[]).run("hello", ledger=ledger))
    assert result.answer == "hi" and len(server.chat_requests()) == 1
    (record,) = ledger.records
    assert (record.name, record.usd) == (MINI, Decimal("0.14"))


def test_under_a_usd_budget_the_call_that_could_cross_it_is_never_sent(
    server: FakeOpenAI, endpoint: Endpoint
) -> None:
    server.served_as = DATED
    server.then(*[Answer(tool_calls=[("tick", "{}")], usage=(1000, 900)) for _ in range(10)])
    # a call costs USD 0.46; its worst case (~70 prompt tokens + 1,000 max_tokens) ~0.41:
    # 0 + 0.41 fits, 0.46 + 0.41 fits, 0.92 + 0.41 does not: the third is never sent
    ledger = UsageLedger("r", PRICES, Budget(usd=Decimal("1.00")))
    ticks: list[int] = []
    agent = Agent("a", model=mini(endpoint, max_tokens=1000), tools=[_tick(ticks)], max_steps=20)
    with pytest.raises(BudgetExceeded, match=r"not sent: the call \(gpt-4o-mini: \d+ prompt") as e:
        asyncio.run(agent.run("spend", ledger=ledger))
    assert ledger.total().usd == Decimal("0.92") and e.value.before is not None  # never over
    assert len(server.chat_requests()) == len(ledger.records) == 2 and len(ticks) == 2
    assert all(r.name == MINI and r.usd > 0 for r in ledger.records)


def test_parallel_steps_hold_their_share_of_the_budget(
    server: FakeOpenAI, endpoint: Endpoint
) -> None:
    server.then(Stall(0.3), Answer("late", usage=(10, 10)), Answer("one", usage=(10, 10)))
    model = mini(endpoint, max_tokens=1000, timeout_seconds=5)
    registry = Registry()
    for name in ("x", "y"):
        registry.add(AgentCard(name=name), agent_worker(Agent(name, model=model, tools=[])))
    plan = Plan(
        goal="g", steps=[Step(id="x", task="t", agent="x"), Step(id="y", task="t", agent="y")]
    )
    # one call's worst case (~0.4) fits in 0.6, two held at once do not
    limits = Limits(prices=PRICES, budget=Budget(usd=Decimal("0.6")))
    outcome = asyncio.run(Executor(registry, limits=limits).run(plan))
    assert outcome.status == "stopped" and isinstance(outcome.error, BudgetExceeded)
    assert "not sent" in outcome.reason and "calls running now hold" in outcome.reason
    assert len(server.chat_requests()) <= 1  # the second step's call never went out


def test_without_a_budget_a_real_model_needs_no_price_table(
    server: FakeOpenAI, endpoint: Endpoint
) -> None:
    models = Models(ModelSettings(small=endpoint))  # no prices at all
    server.then(Answer("fine", usage=(5, 5)))
    ledger = UsageLedger("r")
    result = asyncio.run(
        Agent("a", model=models.for_tier("small"), tools=[]).run("hi", ledger=ledger)
    )
    assert result.answer == "fine" and ledger.records[0].priced is False
    assert models.for_tier("small").max_tokens == 1024  # the tier's default
    assert models.for_tier("large").max_tokens == 4096
    assert server.chat_requests()[0]["max_tokens"] == 1024
    with pytest.raises(ModelConfigError, match="no price for model 'test-model' and a USD budget"):
        UsageLedger("r", budget=Budget(usd=Decimal(1))).charge_model("a", 1, "test-model", 1, 1)


def test_configured_names_are_checked_against_the_endpoints_models(
    server: FakeOpenAI, endpoint: Endpoint
) -> None:
    models = Models(ModelSettings(small=endpoint.model_copy(update={"model": MINI})))
    assert asyncio.run(models.check()) == {MINI: None}  # /models not answered: not checked
    server.models = [DATED, "gpt-4o"]
    assert asyncio.run(models.check()) == {MINI: [DATED, "gpt-4o"]}  # a snapshot of it is served
    server.models = ["llama-3"]
    with pytest.raises(ModelConfigError, match=r"model 'gpt-4o-mini' is not served at .*llama-3"):
        asyncio.run(models.check())


def test_a_stream_without_usage_is_charged_as_an_estimate(
    server: FakeOpenAI, endpoint: Endpoint
) -> None:
    streaming = endpoint.model_copy(update={"stream": True, "max_tokens": 50})
    server.then(Answer("streamed answer", usage=None))
    model = OpenAIChatModel(streaming)
    registry = Registry()
    registry.add(AgentCard(name="w"), agent_worker(Agent("w", model=model, tools=[])))
    executor = Executor(registry)
    outcome = asyncio.run(executor.run(Plan(goal="g", steps=[Step(id="s", task="t", agent="w")])))
    assert outcome.outputs == {"s": "streamed answer"}
    (record,) = executor.store.usage(outcome.run_id).calls["s"]
    assert record.estimated and record.prompt_tokens > 0 and record.completion_tokens > 0


# --- plans -------------------------------------------------------------------------------


def test_garbage_plans_fail_planning_and_the_repair_shows_the_models_own_call(
    server: FakeOpenAI, endpoint: Endpoint
) -> None:
    server.then(*[Garbage("submit_plan") for _ in range(3)])
    outcome, _ = planner_run(OpenAIChatModel(endpoint), "write then check")
    assert outcome.status == "failed"
    assert "planning failed: planner gave up after 3 attempts" in outcome.reason
    assert "arguments are not valid JSON" in outcome.reason
    repair = server.chat_requests()[1]["messages"]
    assert repair[-2]["role"] == "assistant"
    assert repair[-2]["tool_calls"][0]["function"]["name"] == "submit_plan"  # its own call
    assert repair[-1]["role"] == "tool" and "not valid JSON" in repair[-1]["content"]


def test_an_empty_plan_is_a_planning_failure_not_done(
    server: FakeOpenAI, endpoint: Endpoint
) -> None:
    empty = json.dumps({"steps": [], "goal_done": False, "done_reason": ""})
    server.then(*[Answer(tool_calls=[("submit_plan", empty)]) for _ in range(3)])
    outcome, _ = planner_run(OpenAIChatModel(endpoint), "write then check")
    assert outcome.status == "failed" and outcome.outputs == {}
    assert "the plan has no steps" in outcome.reason and "all" not in outcome.reason
    assert "declare the goal done" in server.chat_requests()[1]["messages"][-1]["content"]


def test_a_goal_declared_done_with_a_reason_ends_done_saying_why(
    server: FakeOpenAI, endpoint: Endpoint
) -> None:
    done = json.dumps({"steps": [], "goal_done": True, "done_reason": "already written"})
    server.then(Answer(tool_calls=[("submit_plan", done)]))
    outcome, _ = planner_run(OpenAIChatModel(endpoint), "write then check")
    assert (outcome.status, outcome.reason) == ("done", "nothing to do: already written")
    server.then(
        Answer(
            tool_calls=[
                ("submit_plan", json.dumps({"steps": [], "goal_done": True, "done_reason": " "}))
            ]
        )
    )
    with pytest.raises(PlanError, match="no steps"):
        asyncio.run(Planner(OpenAIChatModel(endpoint), {"w": ""}, max_repairs=0).plan("g"))


def test_a_schema_following_server_fills_the_strict_flat_plan_schema(
    server: FakeOpenAI, endpoint: Endpoint
) -> None:
    schema = plan_schema(["writer", "checker"])
    assert schema_problems(schema) == [] and "$ref" not in json.dumps(schema)
    step = schema["properties"]["steps"]["items"]["properties"]
    assert step["agent"] == {"type": "string", "enum": ["checker", "writer"]}
    # the attack: the old schema (pydantic's, with $defs and a free agent string) is refused
    old = Plan.model_json_schema()
    assert any("$defs" in p for p in schema_problems(old))
    server.then(FollowSchema("submit_plan", fill={"goal_done": False, "done_reason": ""}))
    outcome, executor = planner_run(OpenAIChatModel(endpoint), "write then check")
    request = server.chat_requests()[0]["tools"][0]["function"]
    assert request["strict"] is True and request["parameters"] == schema
    assert outcome.status == "done", outcome.reason
    plan = executor.store.load_run("r").plan
    assert plan is not None and [s.agent for s in plan.steps] == ["checker"]


# --- failures the user must be told about ------------------------------------------------


def test_a_refusal_is_an_error_naming_it(server: FakeOpenAI, endpoint: Endpoint) -> None:
    server.then(Refusal("I can't help with that."))
    with pytest.raises(ModelError, match="refused the request: I can't help with that"):
        asyncio.run(Agent("a", model=OpenAIChatModel(endpoint), tools=[]).run("do it"))


def test_a_429_storm_ends_the_run_with_the_reason(server: FakeOpenAI, endpoint: Endpoint) -> None:
    server.then(*[Status(429, retry_after="0") for _ in range(3)])
    outcome, _ = planner_run(OpenAIChatModel(endpoint), "write")
    assert outcome.status == "failed"
    assert "failed after 3 attempt(s): HTTP 429" in outcome.reason
    assert len(server.chat_requests()) == 3


def test_timeouts_end_the_run_with_the_reason(server: FakeOpenAI, endpoint: Endpoint) -> None:
    slow = endpoint.model_copy(update={"timeout_seconds": 0.2, "max_retries": 1})
    server.then(Stall(1.0), Stall(1.0))
    outcome, _ = planner_run(OpenAIChatModel(slow), "write")
    assert outcome.status == "failed" and "timed out after 0.2s" in outcome.reason


def _tick(ticks: list[int]) -> Any:
    from vouch.agents import tool

    @tool
    def tick() -> str:
        """Count one tick."""
        ticks.append(1)
        return "ticked"

    return tick

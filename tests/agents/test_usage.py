"""Usage accounting per call, step, agent and run; budgets in USD and tokens stop a run."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from pydantic import BaseModel

from vouch._agent_settlement import settlement_agent, settlement_offline_model
from vouch.agents import (
    Agent,
    Budget,
    BudgetExceeded,
    Endpoint,
    ModelConfigError,
    OfflineModel,
    OpenAIChatModel,
    Price,
    PriceTable,
    Tool,
    UsageLedger,
)

from .fake_openai import Answer, FakeOpenAI

PRICES = PriceTable(
    prices={
        "test-model": Price(input_per_mtok=Decimal("100"), output_per_mtok=Decimal("300")),
        "vouch-offline-1": Price(input_per_mtok=0, output_per_mtok=0),
    }
)


class NoArgs(BaseModel):
    pass


def looping_tool(counter: list[int], cost: Decimal | None = None) -> Tool:
    async def tick(_: NoArgs) -> str:
        counter.append(1)
        return "again"

    return Tool(name="tick", description="tick", args_model=NoArgs, fn=tick, cost_usd=cost)


def test_price_table_cost_is_exact_decimal() -> None:
    # 1000 prompt * 100/M + 200 completion * 300/M = 0.1 + 0.06
    assert PRICES.cost("test-model", 1000, 200) == Decimal("0.16")


def test_unpriced_model_is_an_error_under_a_usd_budget_unless_a_wildcard_prices_it() -> None:
    assert PRICES.cost("gpt-x", 1, 1) == 0  # no budget: nothing to bypass, charged as unpriced
    with pytest.raises(ModelConfigError, match="no price for model 'gpt-x' and a USD budget"):
        PRICES.cost("gpt-x", 1, 1, require=True)
    ledger = UsageLedger("r", PRICES, Budget(usd=Decimal(1)))
    with pytest.raises(ModelConfigError, match="no price for model 'gpt-x'"):
        ledger.charge_model("a", 1, "gpt-x", 1, 1)
    free = UsageLedger("r", PRICES, Budget(tokens=100))  # a token budget needs no prices
    assert not free.charge_model("a", 1, "gpt-x", 1, 1).priced
    wildcard = PriceTable(
        prices={"*": Price(input_per_mtok=Decimal(1), output_per_mtok=Decimal(2))}
    )
    assert wildcard.cost("gpt-x", 1_000_000, 0) == Decimal(1)


def test_ledger_sums_per_call_step_agent_and_run() -> None:
    ledger = UsageLedger("run-1", PRICES)
    ledger.charge_model("planner", 1, "test-model", 1000, 100)
    ledger.charge_model("planner", 2, "test-model", 2000, 0)
    ledger.charge_model("reviewer", 1, "vouch-offline-1", 50, 50, estimated=True)
    ledger.charge_tool("planner", 2, "http_fetch", Decimal("0.01"))
    total = ledger.total()
    assert (total.calls, total.tokens, total.usd, total.estimated) == (
        4,
        3200,
        Decimal("0.34"),
        True,
    )
    assert ledger.by_agent()["planner"].usd == Decimal("0.34")
    assert ledger.by_agent()["reviewer"].tokens == 100
    assert ledger.by_step()["planner:2"].usd == Decimal("0.21")
    summary = ledger.summary()
    assert summary["total"] == {
        "calls": 4,
        "prompt_tokens": 3050,
        "completion_tokens": 150,
        "usd": "0.34",
        "estimated": True,
        "tokens": 3200,
    }
    assert len(summary["calls"]) == 4  # type: ignore[arg-type]


def test_a_run_over_its_usd_budget_stops(server: FakeOpenAI, endpoint: Endpoint) -> None:
    # each call: 1000 * 100/M + 100 * 300/M = 0.13 USD; budget 0.30 -> the third call crosses it
    server.then(*[Answer(tool_calls=[("tick", "{}")], usage=(1000, 100)) for _ in range(10)])
    ticks: list[int] = []
    ledger = UsageLedger("run-usd", PRICES, Budget(usd=Decimal("0.30")))
    agent = Agent(
        "spender",
        model=OpenAIChatModel(endpoint.model_copy(update={"max_tokens": 100})),
        tools=[looping_tool(ticks)],
        max_steps=10,
    )
    with pytest.raises(BudgetExceeded, match=r"USD 0.39 > budget 0.30") as caught:
        asyncio.run(agent.run("spend", ledger=ledger))
    assert (caught.value.spent_usd, caught.value.budget_usd) == (Decimal("0.39"), Decimal("0.30"))
    assert caught.value.run_id == "run-usd"
    assert len(server.requests) == 3 and len(ticks) == 2  # stopped before acting on the third reply
    assert ledger.by_agent()["spender"].calls == 3


def test_a_run_over_its_token_budget_stops(server: FakeOpenAI, endpoint: Endpoint) -> None:
    server.then(*[Answer(tool_calls=[("tick", "{}")], usage=(400, 100)) for _ in range(10)])
    ledger = UsageLedger("run-tok", PRICES, Budget(tokens=1200))
    agent = Agent(
        "a",
        model=OpenAIChatModel(endpoint.model_copy(update={"max_tokens": 100})),
        tools=[looping_tool([])],
        max_steps=10,
        ledger=ledger,
    )
    with pytest.raises(BudgetExceeded, match="tokens 1500 > budget 1200"):
        asyncio.run(agent.run("spend"))


def test_tool_costs_count_against_the_budget(server: FakeOpenAI, endpoint: Endpoint) -> None:
    server.then(*[Answer(tool_calls=[("tick", "{}")], usage=(1, 1)) for _ in range(10)])
    ticks: list[int] = []
    ledger = UsageLedger("run-tool", PRICES, Budget(usd=Decimal("1")))
    agent = Agent(
        "a",
        model=OpenAIChatModel(endpoint.model_copy(update={"max_tokens": 100})),
        tools=[looping_tool(ticks, Decimal("0.4"))],
        max_steps=10,
    )
    with pytest.raises(BudgetExceeded):
        asyncio.run(agent.run("spend", ledger=ledger))
    assert len(ticks) == 2  # the third charge crossed 1 USD before the tool ran
    assert ledger.by_model()["tick"].usd == Decimal("1.2")


def test_agents_sharing_a_ledger_add_up_and_the_offline_model_is_free() -> None:
    class Recorder:
        async def submit(self, proposal: object) -> dict[str, str]:
            return {"status": "settled"}

    ledger = UsageLedger("run-offline", budget=Budget(usd=Decimal(0)))
    goal = "Sell 1 WETH for USDC between 2,500 and 3,500"
    for _ in range(2):
        asyncio.run(
            settlement_agent(settlement_offline_model(), Recorder()).run(goal, ledger=ledger)
        )
    total = ledger.total()
    assert total.usd == 0 and total.calls == 4 and total.tokens > 0
    assert total.estimated  # the offline model reports estimates, not server usage


def test_budget_exceeded_raised_inside_a_tool_is_not_swallowed() -> None:
    ledger = UsageLedger("inner", budget=Budget(tokens=0))

    async def inner(_: NoArgs) -> str:
        ledger.charge_model("sub", 1, "vouch-offline-1", 5, 5)
        return "unreachable"

    class CallOnce(OfflineModel):
        async def complete(self, messages, tools):  # type: ignore[no-untyped-def]
            from vouch.agents import ModelReply, ToolCall

            return ModelReply(tool_calls=[ToolCall(id="1", name="inner", arguments={})])

    agent = Agent(
        "outer",
        model=CallOnce(),
        tools=[Tool(name="inner", description="", args_model=NoArgs, fn=inner)],
    )
    with pytest.raises(BudgetExceeded):
        asyncio.run(agent.run("go"))

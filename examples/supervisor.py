"""Supervisor: a manager plans, delegates to workers by capability, and synthesizes their reports.

    python examples/supervisor.py

The manager's model is scripted here (no key, no network); any ChatModel works.
"""

from __future__ import annotations

import asyncio

from vouch.agents import (
    AgentCard,
    ChatModel,
    Executor,
    Limits,
    Message,
    ModelReply,
    Planner,
    Price,
    PriceTable,
    Registry,
    StepContext,
    Supervisor,
    ToolCall,
    ToolSpec,
    TopologyResult,
)

PLAN = [
    {
        "id": "liquidity",
        "task": "check liquidity of WETH on both chains",
        "capability": "market-data",
    },
    {"id": "risk", "task": "price risk of the trade from volatility", "capability": "risk"},
    {
        "id": "decide",
        "task": "decide whether to settle",
        "agent": "settler",
        "depends_on": ["liquidity", "risk"],
    },
]


class ManagerModel(ChatModel):
    """A scripted manager: one plan, then a synthesis of the reports."""

    name = "scripted-manager"

    async def complete(self, messages: list[Message], tools: list[ToolSpec]) -> ModelReply:
        """Plan when asked to, else summarize the reports it was given."""
        if tools:
            return ModelReply(
                tool_calls=[ToolCall(id="p", name="submit_plan", arguments={"steps": PLAN})]
            )
        reports = messages[-1].content.split("Reports:\n", 1)[1]
        return ModelReply(content="Manager: " + " | ".join(reports.splitlines()))


def registry() -> Registry:
    """Three workers, routed by capability."""

    async def market(ctx: StepContext) -> str:
        return "liquidity ok: 420 WETH"

    async def risk(ctx: StepContext) -> str:
        return "risk low: 30d vol 41%"

    async def settler(ctx: StepContext) -> str:
        return "settle" if all("ok" in v or "low" in v for v in ctx.inputs.values()) else "hold"

    reg = Registry()
    reg.add(
        AgentCard(
            name="market", description="market data and liquidity", capabilities=["market-data"]
        ),
        market,
    )
    reg.add(AgentCard(name="risk", description="volatility and risk", capabilities=["risk"]), risk)
    reg.add(AgentCard(name="settler", description="settlement decisions"), settler)
    return reg


async def main() -> TopologyResult:
    """Plan, delegate, synthesize; print the manager's answer."""
    reg, manager = registry(), ManagerModel()
    planner = Planner(manager, reg.descriptions(), reg.capabilities)
    # the manager plans inside the run, so its calls are charged: a scripted model costs nothing
    free = Limits(prices=PriceTable(prices={"*": Price(input_per_mtok=0, output_per_mtok=0)}))
    executor = Executor(reg, limits=free)
    result = await Supervisor(planner, executor, manager).run("settle 1.5 WETH if safe")
    print(result.answer)
    return result


if __name__ == "__main__":
    asyncio.run(main())

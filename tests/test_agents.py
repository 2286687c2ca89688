"""agents without a chain: the Reason-Act-Observe loop, typed tools, the offline model."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import BaseModel

from vouch._agent_settlement import (
    ActionProposal,
    SettlementParams,
    settlement_agent,
    settlement_offline_model,
)
from vouch.agents import (
    Agent,
    ChatModel,
    MaxStepsExceeded,
    Message,
    ModelReply,
    Tool,
    ToolCall,
    ToolSpec,
)

ONE = 10**18


class Recorder:
    def __init__(self) -> None:
        self.proposals: list[ActionProposal] = []

    async def submit(self, proposal: ActionProposal) -> dict[str, Any]:
        self.proposals.append(proposal)
        return {"status": "settled", "price": 3000 * ONE}


def test_offline_model_turns_a_goal_into_a_typed_proposal() -> None:
    recorder = Recorder()
    agent = settlement_agent(settlement_offline_model(), recorder)
    result = asyncio.run(
        agent.run("Sell 1.5 WETH for USDC between 2,500 and 3,500 within 5 minutes")
    )
    [proposal] = recorder.proposals
    assert proposal.params == SettlementParams(
        base_token="WETH",
        quote_token="USDC",
        base_amount=15 * ONE // 10,
        min_price=2500 * ONE,
        max_price=3500 * ONE,
        deadline_seconds=300,
    )
    assert proposal.facts[0].feed == "ETH/USD"
    assert proposal.irreversible
    assert proposal.trace_hash is not None and proposal.trace_hash.startswith("0x")
    assert "settled" in result.answer
    assert [e.kind for e in result.trace] == ["model", "tool", "model"]


def test_goal_it_cannot_parse_gets_an_answer_not_a_proposal() -> None:
    recorder = Recorder()
    result = asyncio.run(settlement_agent(settlement_offline_model(), recorder).run("make me rich"))
    assert recorder.proposals == []
    assert "Sell 1.5 WETH" in result.answer


def test_inverted_bounds_come_back_to_the_model_as_an_observation() -> None:
    recorder = Recorder()
    result = asyncio.run(
        settlement_agent(settlement_offline_model(), recorder).run(
            "Sell 1 WETH for USDC between 3,500 and 2,500"
        )
    )
    assert recorder.proposals == []
    assert "invalid arguments" in result.trace[1].data["result"]


class Looper(ChatModel):
    async def complete(self, messages: list[Message], tools: list[ToolSpec]) -> ModelReply:
        return ModelReply(tool_calls=[ToolCall(id="1", name="noop", arguments={})])


class NoArgs(BaseModel):
    pass


def test_a_model_that_never_stops_hits_max_steps() -> None:
    async def noop(_: NoArgs) -> str:
        return "ok"

    agent = Agent(
        "looper",
        model=Looper(),
        tools=[Tool(name="noop", description="", args_model=NoArgs, fn=noop)],
        max_steps=3,
    )
    with pytest.raises(MaxStepsExceeded, match="3 steps"):
        asyncio.run(agent.run("go"))


def test_unknown_tool_is_an_observation_not_a_crash() -> None:
    class Wrong(ChatModel):
        async def complete(self, messages: list[Message], tools: list[ToolSpec]) -> ModelReply:
            if messages[-1].role == "tool":
                return ModelReply(content=messages[-1].content)
            return ModelReply(tool_calls=[ToolCall(id="1", name="launch_missiles", arguments={})])

    result = asyncio.run(Agent("a", model=Wrong(), tools=[]).run("go"))
    assert "no tool named 'launch_missiles'" in result.answer

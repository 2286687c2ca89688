"""The model interface the agent loop talks to, and a deterministic offline model."""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, Field


class ToolCall(BaseModel):
    """A model's request to call one tool."""

    id: str
    name: str
    arguments: dict[str, Any]


class Message(BaseModel):
    """One chat message."""

    role: Literal["system", "user", "assistant", "tool"]
    content: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    tool_call_id: str | None = None


class ToolSpec(BaseModel):
    """What the model is told about a tool."""

    name: str
    description: str
    parameters: dict[str, Any]


class ModelReply(BaseModel):
    """The model's answer: text, tool calls, and token usage."""

    content: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0


class ChatModel(ABC):
    """Any chat model: the engine asks through this and never knows the backend."""

    name: str = "model"

    @abstractmethod
    async def complete(self, messages: list[Message], tools: list[ToolSpec]) -> ModelReply:
        """Answer the conversation, possibly with tool calls."""


_SELL = re.compile(r"sell\s+([\d.,]+)\s+([A-Za-z]+)\s+for\s+([A-Za-z]+)", re.I)
_BOUNDS = re.compile(r"between\s+([\d.,]+)\s+and\s+([\d.,]+)", re.I)
_WITHIN = re.compile(r"within\s+(\d+)\s+minutes?", re.I)
_FEED = {"WETH": "ETH", "WBTC": "BTC"}


def _units(text: str) -> int:
    return int(Decimal(text.replace(",", "")) * 10**18)


class OfflineModel(ChatModel):
    """A deterministic, rule-based model: needs no key and no network.

    It understands settlement goals such as "Sell 1.5 WETH for USDC between
    2,500 and 3,500 USDC per WETH within 10 minutes" and answers with a
    ``propose_settlement`` tool call, then summarizes the tool's result.
    It is honest about what it is: templates, not reasoning.
    """

    name = "vouch-offline-1"

    async def complete(self, messages: list[Message], tools: list[ToolSpec]) -> ModelReply:
        """Plan one tool call for the goal, or summarize the last tool result."""
        last = messages[-1]
        if last.role == "tool":
            return ModelReply(content=f"Done. Result: {last.content}", completion_tokens=16)
        goal = next(m.content for m in reversed(messages) if m.role == "user")
        if not any(t.name == "propose_settlement" for t in tools):
            return ModelReply(content="I have no tool that can act on this goal.")
        return self._plan_settlement(goal)

    def _plan_settlement(self, goal: str) -> ModelReply:
        sell, bounds = _SELL.search(goal), _BOUNDS.search(goal)
        if not sell or not bounds:
            return ModelReply(
                content="I need a goal like 'Sell 1.5 WETH for USDC between 2,500 and 3,500 within 10 minutes'."
            )
        within = _WITHIN.search(goal)
        base, quote = sell.group(2).upper(), sell.group(3).upper()
        args = {
            "base_token": base,
            "quote_token": quote,
            "base_amount": _units(sell.group(1)),
            "min_price": _units(bounds.group(1)),
            "max_price": _units(bounds.group(2)),
            "deadline_seconds": int(within.group(1)) * 60 if within else 600,
            "feed": f"{_FEED.get(base, base)}/{'USD' if quote in ('USDC', 'USDT', 'DAI') else quote}",
            "rationale": f"Goal asks to sell {sell.group(1)} {base} for {quote} inside fixed price bounds; "
            "the price itself must come from the DON, not from me.",
        }
        call = ToolCall(id="call-1", name="propose_settlement", arguments=args)
        return ModelReply(
            tool_calls=[call],
            prompt_tokens=len(goal) // 4,
            completion_tokens=len(json.dumps(args)) // 4,
        )

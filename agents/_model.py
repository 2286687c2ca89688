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
    arguments_error: str | None = None
    """Set when the model's arguments were not a JSON object (the raw text and the parse error)."""


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
    strict: bool = False
    """True when ``parameters`` is a strict-mode schema (closed objects, all properties required)."""


class ModelReply(BaseModel):
    """The model's answer: text, tool calls, and token usage."""

    content: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model: str = ""
    """The model that answered, as the server named it (empty: the backend's own name)."""
    usage_estimated: bool = False
    """True when the token counts are estimates rather than the server's usage field."""


class ChatModel(ABC):
    """Any chat model: the engine asks through this and never knows the backend."""

    name: str = "model"

    @abstractmethod
    async def complete(self, messages: list[Message], tools: list[ToolSpec]) -> ModelReply:
        """Answer the conversation, possibly with tool calls."""


SUMMARIZE_TASK = "[task:summarize]"
"""First line of the system prompt when a model is asked to fold turns into a running summary."""

_SELL = re.compile(r"sell\s+([\d.,]+)\s+([A-Za-z]+)\s+for\s+([A-Za-z]+)", re.I)
_BOUNDS = re.compile(r"between\s+([\d.,]+)\s+and\s+([\d.,]+)", re.I)
_WITHIN = re.compile(r"within\s+(\d+)\s+minutes?", re.I)
_FEED = {"WETH": "ETH", "WBTC": "BTC"}
_PROPOSERS = ("propose_settlement", "propose_onchain")  # settlement_agent's, proposal_tool's


def _units(text: str) -> int:
    return int(Decimal(text.replace(",", "")) * 10**18)


class OfflineModel(ChatModel):
    """A deterministic, rule-based model: needs no key and no network.

    It understands settlement goals such as "Sell 1.5 WETH for USDC between
    2,500 and 3,500 USDC per WETH within 10 minutes" and answers with a
    ``propose_settlement`` (or ``propose_onchain``) tool call, then reports the tool's result.
    Asked to summarize (system prompt starting with ``SUMMARIZE_TASK``) it keeps
    the sentences that carry numbers, addresses or names, verbatim. Asked a
    question (a goal ending in "?") with no tool to use, it answers with the
    sentence of the conversation sharing the most words with the question.
    It is honest about what it is: templates and word overlap, not reasoning.
    """

    name = "vouch-offline-1"

    async def complete(self, messages: list[Message], tools: list[ToolSpec]) -> ModelReply:
        """Plan one tool call for the goal, summarize, answer from context, or report a result.

        Token counts are estimates (there is no server to report usage).
        """
        from ._tokens import estimate_message_tokens, estimate_tokens  # they import this module

        reply = self._answer(messages, tools)
        completion = estimate_tokens(reply.content) + sum(
            estimate_tokens(json.dumps(c.arguments)) for c in reply.tool_calls
        )
        return reply.model_copy(
            update={
                "model": self.name,
                "prompt_tokens": estimate_message_tokens(messages),
                "completion_tokens": completion,
                "usage_estimated": True,
            }
        )

    def _answer(self, messages: list[Message], tools: list[ToolSpec]) -> ModelReply:
        last = messages[-1]
        if messages[0].role == "system" and messages[0].content.startswith(SUMMARIZE_TASK):
            return _summarize(last.content)
        if last.role == "tool":
            return ModelReply(content=f"Done. Result: {last.content}")
        goal = next(m.content for m in reversed(messages) if m.role == "user")
        proposer = next((t.name for t in tools if t.name in _PROPOSERS), None)
        if proposer is not None:
            return self._plan_settlement(goal, proposer)
        if goal.rstrip().endswith("?"):
            return _answer_from_context(goal, messages[:-1])
        return ModelReply(content="I have no tool that can act on this goal.")

    def _plan_settlement(self, goal: str, tool: str) -> ModelReply:
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
        call = ToolCall(id="call-1", name=tool, arguments=args)
        return ModelReply(tool_calls=[call])


_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_SALIENT = re.compile(r"\d|0x[0-9a-fA-F]+|\b[A-Z]{2,}\b|\b[a-z]+[A-Z]\w*\b|\b[A-Z][a-z]+[A-Z]\w*")
_WORDS = re.compile(r"[a-z0-9]+")
_STOP = frozenset(
    "the a an and or of to in on for is are was were be what which who whom when where how "
    "did does do we our you your i it its this that with at by from as my me please tell".split()
)


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.split(text) if s.strip()]


def _summarize(prompt: str) -> ModelReply:
    """Extractive summary: the earlier summary plus every new sentence carrying a number or name."""
    earlier, _, new = prompt.partition("\nNew turns:\n")
    earlier = earlier.removeprefix("Running summary:\n").strip()
    kept = [s for s in _sentences(new) if _SALIENT.search(s)]
    lines = [line for line in [earlier, *kept] if line and line != "(none)"]
    content = "\n".join(dict.fromkeys(lines))
    return ModelReply(content=content)


def _content_words(text: str) -> set[str]:
    """Lowercased words minus stop words, cut to 5 letters (a crude stem: refund ~ refunds)."""
    return {w[:5] for w in _WORDS.findall(text.lower()) if w not in _STOP and len(w) > 1}


def _answer_from_context(question: str, context: list[Message]) -> ModelReply:
    """The context sentence sharing the most content words with the question."""
    wanted = _content_words(question)
    best, best_score = "", 0
    for message in context:
        for sentence in _sentences(message.content):
            if question.strip() in sentence:  # the question itself, e.g. pinned as the goal
                continue
            score = len(wanted & _content_words(sentence))
            if score > best_score:
                best, best_score = sentence, score
    if not best:
        return ModelReply(content="I cannot find that in this conversation.")
    return ModelReply(content=f"From the conversation: {best}")

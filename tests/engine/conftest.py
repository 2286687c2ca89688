"""Helpers for the engine tests: a scripted model and small workers."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from agents import (
    ChatModel,
    Message,
    ModelReply,
    Price,
    PriceTable,
    StepContext,
    ToolCall,
    ToolSpec,
)

FREE = PriceTable(prices={"*": Price(input_per_mtok=Decimal(0), output_per_mtok=Decimal(0))})


class ScriptedModel(ChatModel):
    """Answers from a script: a list of replies (the last repeats) or a function of the messages."""

    name = "scripted"

    def __init__(self, script: list[ModelReply] | Callable[[list[Message]], ModelReply]) -> None:
        self.script = script
        self.calls: list[list[Message]] = []

    async def complete(self, messages: list[Message], tools: list[ToolSpec]) -> ModelReply:
        self.calls.append(list(messages))
        if callable(self.script):
            return self.script(messages)
        index = min(len(self.calls) - 1, len(self.script) - 1)
        return self.script[index]


def call(name: str, **arguments: Any) -> ModelReply:
    return ModelReply(tool_calls=[ToolCall(id=f"c-{name}", name=name, arguments=arguments)])


def text(content: str, tokens: int = 0) -> ModelReply:
    return ModelReply(content=content, prompt_tokens=tokens, completion_tokens=0)


async def echo(ctx: StepContext) -> str:
    """A worker that reports its task and what it got."""
    got = ",".join(f"{k}={v}" for k, v in sorted(ctx.inputs.items()))
    return f"{ctx.step.id}({got})"

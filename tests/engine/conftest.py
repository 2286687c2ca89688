"""Helpers for the engine tests: a scripted model and small workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from vouch.agents import (
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
    max_tokens = 10  # the worst case a budget holds for each call

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


def kill_when_blocked(script: Path, db: Path, calls: Path) -> None:
    """Run ``script db run`` in a child, SIGKILL it once ``calls`` says it is blocked."""
    child = subprocess.Popen([sys.executable, str(script), str(db), "run"])
    deadline = time.monotonic() + 30
    while "blocked" not in (calls.read_text() if calls.exists() else ""):
        assert time.monotonic() < deadline and child.poll() is None
        time.sleep(0.02)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()


def resume_in_child(script: Path, db: Path) -> str:
    """Run ``script db resume`` in a child; what it printed."""
    out = subprocess.run(
        [sys.executable, str(script), str(db), "resume"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return out.stdout

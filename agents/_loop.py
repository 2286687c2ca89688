"""The Reason-Act-Observe loop: the model reasons, a tool acts, the result is observed."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from ._errors import MaxStepsExceeded
from ._model import ChatModel, Message, ToolCall, ToolSpec


class Tool(BaseModel):
    """A typed tool: a pydantic argument model, a description, and whether it is irreversible."""

    model_config = {"arbitrary_types_allowed": True}

    name: str
    description: str
    args_model: type[BaseModel]
    fn: Callable[[Any], Awaitable[Any]]
    irreversible: bool = False

    def spec(self) -> ToolSpec:
        """What the model is told about this tool."""
        return ToolSpec(
            name=self.name,
            description=self.description,
            parameters=self.args_model.model_json_schema(),
        )


class TraceEvent(BaseModel):
    """One step of a run: a model call or a tool call."""

    step: int
    kind: str
    data: dict[str, Any]


class AgentResult(BaseModel):
    """How a run ended: the final answer and the trace that led there."""

    answer: str
    trace: list[TraceEvent] = Field(default_factory=list)

    def trace_hash(self) -> str:
        """SHA-256 of the canonical trace: what an onchain proposal binds."""
        blob = json.dumps(
            [e.model_dump(mode="json") for e in self.trace], sort_keys=True, separators=(",", ":")
        )
        return "0x" + hashlib.sha256(blob.encode()).hexdigest()


class Agent:
    """An agent: a model, some tools, and a step limit.

    Args:
        name: shown in traces.
        model: any ChatModel.
        tools: what the agent may call.
        instructions: the system prompt.
        max_steps: model calls allowed before the run stops with MaxStepsExceeded.
    """

    def __init__(
        self,
        name: str,
        model: ChatModel,
        tools: list[Tool],
        instructions: str = "",
        max_steps: int = 8,
    ) -> None:
        self.name = name
        self.model = model
        self.tools = {tool.name: tool for tool in tools}
        self.instructions = instructions
        self.max_steps = max_steps

    async def run(self, goal: str) -> AgentResult:
        """Reason, act and observe until the model answers without a tool call."""
        messages = [
            Message(role="system", content=self.instructions),
            Message(role="user", content=goal),
        ]
        result = AgentResult(answer="")
        specs = [tool.spec() for tool in self.tools.values()]
        for step in range(1, self.max_steps + 1):
            reply = await self.model.complete(messages, specs)
            result.trace.append(
                TraceEvent(step=step, kind="model", data=reply.model_dump(mode="json"))
            )
            if not reply.tool_calls:
                result.answer = reply.content
                return result
            messages.append(
                Message(role="assistant", content=reply.content, tool_calls=reply.tool_calls)
            )
            for call in reply.tool_calls:
                observation = await self._act(call, result)
                result.trace.append(
                    TraceEvent(
                        step=step, kind="tool", data={"call": call.name, "result": observation}
                    )
                )
                messages.append(Message(role="tool", content=observation, tool_call_id=call.id))
        raise MaxStepsExceeded(self.max_steps)

    async def _act(self, call: ToolCall, result: AgentResult) -> str:
        """Run one tool call; errors become observations for the model, not crashes."""
        tool = self.tools.get(call.name)
        if tool is None:
            return f"error: no tool named {call.name!r}; available: {sorted(self.tools)}"
        try:
            args = tool.args_model.model_validate(call.arguments)
        except ValidationError as exc:
            return f"error: invalid arguments for {call.name}: {exc.error_count()} problems: {exc.errors()[0]['msg']}"
        args_with_trace = (
            args.model_copy(update={"trace_hash": result.trace_hash()})
            if "trace_hash" in type(args).model_fields
            else args
        )
        outcome = await tool.fn(args_with_trace)
        return json.dumps(outcome, default=str) if not isinstance(outcome, str) else outcome

"""Agents as executor workers: traced, charged, guarded model calls and tools.

``agent_worker(agent)`` runs an ``Agent``'s Reason-Act-Observe loop as one plan
step: every model call is a span, charged to the step's agent against the run's
and the agent's budgets, and counted by the run's step guard; every tool call is
a span, watched by loop detection, and an irreversible tool (or one whose value
is above the run's threshold) goes through ``StepContext.effect``, so it asks a
human first and never runs twice for the same arguments. Model calls and the
other tool calls go through ``StepContext.once``: when a step resumes after a
human's decision, they replay from the checkpoint instead of running again.

An agent with handoffs hands off inside its step: each handoff is checked
against the run's ``Limits.max_handoff_depth``, is a ``handoff`` span of the
step, and is journaled like a model call, so a resumed step replays the
handoffs it made and continues with the agent that held the conversation; each
agent's model calls are spans naming it and are charged to it (the agent the
step was routed to under its registry name, targets under their own names), so
``Limits.agent_budgets`` apply to each.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel

from ._errors import ActionRejected, BudgetExceeded, Interrupted, RunStopped
from ._guards import fingerprint
from ._loop import Agent, Tool, _HandoffHooks
from ._memory import ShortTermMemory
from ._model import ChatModel, Message, ModelReply, ToolSpec
from ._plan import Step
from ._spend import counted, prompt_estimate, worst_output
from ._step import StepContext, Verdict, current_step
from ._trace import (
    AGENT_NAME,
    INPUT_TOKENS,
    OPERATION,
    OUTPUT_TOKENS,
    REQUEST_MODEL,
    RESPONSE_MODEL,
    STEP_ID,
    TOOL_NAME,
    handoff_span,
)

_STOPS: tuple[type[Exception], ...] = (Interrupted, ActionRejected, RunStopped, BudgetExceeded)
VALUE_FIELDS = ("value", "amount", "base_amount", "notional", "value_wei")


class TracedModel(ChatModel):
    """A ChatModel seen through a step: a span per call, usage charged, guards checked.

    Args:
        inner: the model.
        ctx: the step attempt it works for.
        agent: who is charged (and named on the span) if not the step's agent, e.g. ``"critic"``.
    """

    def __init__(self, inner: ChatModel, ctx: StepContext, agent: str | None = None) -> None:
        self.inner = inner
        self.ctx = ctx
        self.agent = agent
        self.name = inner.name

    async def complete(self, messages: list[Message], tools: list[ToolSpec]) -> ModelReply:
        """Check guards, call the model in a span, charge its usage; or replay a recorded reply."""
        request = {
            "messages": [m.model_dump(mode="json") for m in messages],
            "tools": [t.name for t in tools],
        }
        reply = await self.ctx.once("model", request, lambda: self._call(messages, tools))
        return ModelReply.model_validate(reply)

    async def _call(self, messages: list[Message], tools: list[ToolSpec]) -> dict[str, Any]:
        """Tick the step guard, hold the worst case against the budgets, call, charge."""
        self.ctx.guard.tick()
        who = self.agent or self.ctx.agent
        model = self.inner.name  # prices are keyed by the configured name, not the server's
        prompt = prompt_estimate(messages, tools)
        attrs = {OPERATION: "chat", REQUEST_MODEL: model}
        if self.agent is not None:
            attrs[AGENT_NAME] = self.agent
        with (
            self.ctx.guard.reserve(who, model, prompt, worst_output(self.inner)),
            self.ctx.tracer.span("chat " + model, **attrs) as span,
        ):
            reply = counted(await self.inner.complete(messages, tools), messages)
            span.set(INPUT_TOKENS, reply.prompt_tokens)
            span.set(OUTPUT_TOKENS, reply.completion_tokens)
            if reply.model and reply.model != model:
                span.set(RESPONSE_MODEL, reply.model)
        self.ctx.charge(
            model, reply.prompt_tokens, reply.completion_tokens, self.agent, reply.usage_estimated
        )
        return reply.model_dump(mode="json")


def _value(args: BaseModel) -> int | None:
    for name in VALUE_FIELDS:
        value = getattr(args, name, None)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def _identity(args: Any) -> Any:
    """What a call is, for idempotency keys, approvals, replay and loops: not its trace hash.

    The trace hash grows with the trace (after a pause it also binds the human's
    decision), so the same action must keep its key without it.
    """
    if isinstance(args, BaseModel):
        return args.model_dump(mode="json", exclude={"trace_hash"})
    return args


def guarded_tools(tools: list[Tool], ctx: StepContext) -> list[Tool]:
    """The tools as a step may use them: traced, loop-checked, HITL-gated, idempotent.

    Loop detection sees each call (the same tool and arguments repeating) and
    the step's state after it: the distinct results its calls observed. Calls
    that only bring back what the step already saw (``stale_limit`` in a row)
    stop the run with ``LoopDetected("no-progress")``.
    """
    seen: set[str] = set()
    return [_guarded(tool, ctx, seen, ctx.agent) for tool in tools]


def _guarded(tool: Tool, ctx: StepContext, seen: set[str], agent: str) -> Tool:
    async def run(args: Any) -> Any:
        ctx.guard.tick()
        with ctx.tracer.span(
            "tool " + tool.name, **{OPERATION: "execute_tool", TOOL_NAME: tool.name}
        ):
            return await tool.fn(args)

    async def call(args: Any) -> Any:
        dumped = _identity(args)
        scope = f"step {ctx.step.id}/{ctx.attempt}"
        ctx.guard.observe(agent, tool.name, dumped, scope=scope)
        value = _value(args) if isinstance(args, BaseModel) else None
        threshold = ctx.value_threshold
        gated = tool.irreversible or (
            value is not None and threshold is not None and value > threshold
        )
        if gated:
            ctx.guard.tick()
            result = await ctx.effect(
                tool.name,
                lambda _key: tool.fn(args),
                dumped,
                irreversible=tool.irreversible,
                value=value,
            )
        else:
            result = await ctx.once("tool " + tool.name, dumped, lambda: run(args))
        seen.add(f"{tool.name}:{fingerprint(result)}")
        ctx.guard.observe_state(agent, sorted(seen), scope)
        return result

    return tool.model_copy(update={"fn": call, "reraise": (*tool.reraise, *_STOPS)})


class _AgentWorker:
    """The worker ``agent_worker`` makes; it keeps its agent, so handoffs can find it by name."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent

    async def __call__(self, ctx: StepContext) -> str:
        directory = {
            w.agent.name: w.agent
            for w in ctx.registry.workers.values()
            if isinstance(w, _AgentWorker)
        }
        team = self.agent.team(directory)
        seen: set[str] = set()  # what the step observed, whichever agent called
        clones = {
            name: _in_step(member, ctx, seen, entry=member is self.agent)
            for name, member in team.items()
        }
        entry = clones[self.agent.name]
        result = await entry._run_team(ctx.prompt(), None, None, clones, _StepHandoffs(ctx))
        return result.answer


def agent_worker(agent: Agent) -> Callable[[StepContext], Awaitable[str]]:
    """A worker that runs ``agent``'s loop on the step's prompt and returns its answer.

    Its handoff targets (``Agent(handoffs=...)``) hand off inside the step; a
    target given by name is also looked up among the run registry's agents
    made by ``agent_worker`` (by their ``Agent.name``).
    """
    return _AgentWorker(agent)


def _in_step(agent: Agent, ctx: StepContext, seen: set[str], entry: bool) -> Agent:
    """``agent`` as it runs in the step: traced model, guarded tools, handoffs by name."""
    who = ctx.agent if entry else agent.name
    return Agent(
        agent.name,
        model=TracedModel(agent.model, ctx, None if entry else agent.name),
        tools=[_guarded(tool, ctx, seen, who) for tool in agent.tools.values()],
        instructions=agent.instructions,
        max_steps=agent.max_steps,
        max_repairs=agent.max_repairs,
        memory=_step_memory(agent.memory, ctx) if entry else None,
        handoffs=[h if isinstance(h, str) else h.name for h in agent.handoffs],
        handoff_description=agent.handoff_description,
    )


class _StepHandoffs(_HandoffHooks):
    """Handoffs in a step: the run's depth guard; a span each, journaled for exact resume."""

    def __init__(self, ctx: StepContext) -> None:
        super().__init__(ctx.guard.limits.max_handoff_depth)
        self.ctx = ctx

    def check(self, path: list[str]) -> None:
        """The run's guard decides."""
        self.ctx.guard.handoff(path)

    async def record(self, source: str, target: str, path: list[str], note: str) -> None:
        """A ``handoff`` span, once: a resumed step replays it from the journal."""

        async def trace() -> str:
            handoff_span(
                self.ctx.tracer, source, target, len(path) - 1, **{STEP_ID: self.ctx.step.id}
            )
            return target

        request = {"from": source, "to": target, "path": path, "note": note}
        await self.ctx.once("handoff", request, trace)


def _step_memory(memory: ShortTermMemory | None, ctx: StepContext) -> ShortTermMemory | None:
    """A fresh conversation per step, shaped like the agent's memory (steps run concurrently).

    Its summaries are model calls of the step: spans, charged, replayed on resume.
    """
    if memory is None:
        return None
    return ShortTermMemory(
        TracedModel(memory.summarizer, ctx),
        window_tokens=memory.window_tokens,
        keep_recent=memory.keep_recent,
        instructions=memory.instructions,
    )


_VERDICT = re.compile(r"^\s*(PASS|FAIL)\b[:\s-]*(.*)", re.I | re.S)


class ModelCritic:
    """A critic that asks a model whether an output meets the step's criteria.

    The model answers ``PASS`` or ``FAIL: what is wrong``. The rule parts of the
    criteria (``must_contain``, ``must_match``) are checked first, without a model.
    In an executor's step, its calls are traced and charged to the agent
    ``"critic"`` (budgets, usage, replay on resume), like a worker's.
    """

    def __init__(self, model: ChatModel) -> None:
        self.model = model

    async def review(self, step: Step, output: Any) -> Verdict:
        """Rules first, then the model's judgement."""
        text = output if isinstance(output, str) else json.dumps(output, default=str)
        problems = [p for c in step.criteria if (p := c.check(text)) is not None]
        if problems:
            return Verdict(ok=False, critique="; ".join(problems))
        criteria = "\n".join(f"- {c.text}" for c in step.criteria)
        messages = [
            Message(
                role="system",
                content="You are a critic. Answer PASS, or FAIL: followed by what is wrong.",
            ),
            Message(
                role="user", content=f"Task: {step.task}\nCriteria:\n{criteria}\nOutput:\n{text}"
            ),
        ]
        ctx = current_step()
        model = self.model if ctx is None else TracedModel(self.model, ctx, agent="critic")
        reply = await model.complete(messages, [])
        match = _VERDICT.match(reply.content)
        if match is None:
            return Verdict(ok=False, critique=f"critic gave no verdict: {reply.content[:200]}")
        return Verdict(ok=match.group(1).upper() == "PASS", critique=match.group(2).strip())

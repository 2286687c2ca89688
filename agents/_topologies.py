"""Topologies: supervisor (hierarchical), sequential chain, and swarm over a blackboard."""

from __future__ import annotations

import contextvars
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ._errors import BudgetExceeded, RunStopped, UnknownAgent
from ._executor import Executor, RunOutcome
from ._guards import Limits, RunGuard
from ._loop import _counted
from ._model import ChatModel, Message, ModelReply, ToolSpec
from ._plan import Criterion, Plan, Planner, Step
from ._trace import (
    AGENT_NAME,
    DECISION,
    INPUT_TOKENS,
    OPERATION,
    OUTPUT_TOKENS,
    REQUEST_MODEL,
    RUN_ID,
    Tracer,
    handoff_span,
)
from ._usage import UsageRecord


class TopologyResult(BaseModel):
    """A topology's answer and the run underneath it."""

    answer: str
    outcome: RunOutcome


class Supervisor:
    """Hierarchical: a manager decomposes the goal, workers do the steps, the manager synthesizes.

    Args:
        planner: the manager's planner (decomposes and delegates by agent or capability).
        executor: runs the plan over the worker registry.
        manager: writes the final answer from the workers' reports; None joins them.
    """

    def __init__(self, planner: Planner, executor: Executor, manager: ChatModel | None = None):
        self.planner = planner
        self.executor = executor
        self.manager = manager

    async def run(self, goal: str, run_id: str | None = None) -> TopologyResult:
        """Plan, delegate, collect the reports and synthesize."""
        plan = await self.planner.plan(goal)
        outcome = await self.executor.run(plan, run_id)
        final = self.executor.store.load_run(outcome.run_id).plan or plan  # after any re-plan
        done = [
            s.id for s in final.steps if s.id in outcome.outputs
        ]  # plan order, not finish order
        reports = "\n".join(f"{k}: {_text(outcome.outputs[k])}" for k in done)
        if self.manager is None or outcome.status != "done":
            return TopologyResult(answer=reports, outcome=outcome)
        messages = [
            Message(role="system", content="You are the manager. Synthesize the workers' reports."),
            Message(role="user", content=f"Goal: {goal}\nReports:\n{reports}"),
        ]
        reply = await self.manager.complete(messages, [])
        return TopologyResult(answer=reply.content, outcome=outcome)


def chain_plan(goal: str, agents: list[str], criteria: list[Criterion] | None = None) -> Plan:
    """A sequential plan: each agent works on the previous one's output; the last gets criteria."""
    steps = [
        Step(
            id=f"{i + 1}-{name}",
            task=goal if i == 0 else f"Continue the work towards: {goal}",
            agent=name,
            depends_on=[] if i == 0 else [f"{i}-{agents[i - 1]}"],
            criteria=(criteria or []) if i == len(agents) - 1 else [],
        )
        for i, name in enumerate(agents)
    ]
    return Plan(goal=goal, steps=steps)


class Chain:
    """Sequential: each agent's output is the next one's input.

    Args:
        executor: runs the chain (checkpoints, guards, reflection all apply).
        agents: the agents in order, by registry name.
    """

    def __init__(self, executor: Executor, agents: list[str]) -> None:
        self.executor = executor
        self.agents = agents

    async def run(
        self, goal: str, run_id: str | None = None, criteria: list[Criterion] | None = None
    ) -> TopologyResult:
        """Run the chain; the answer is the last agent's output."""
        plan = chain_plan(goal, self.agents, criteria)
        outcome = await self.executor.run(plan, run_id)
        last = plan.steps[-1].id
        return TopologyResult(answer=_text(outcome.outputs.get(last, "")), outcome=outcome)


class Blackboard(BaseModel):
    """The swarm's shared state: entries anyone may read and write, and who wrote what."""

    goal: str
    entries: dict[str, Any] = Field(default_factory=dict)
    log: list[dict[str, Any]] = Field(default_factory=list)


class Turn(BaseModel):
    """What a swarm agent does in one turn: write entries, then hand off or finish."""

    model_config = ConfigDict(extra="forbid")

    writes: dict[str, Any] = Field(default_factory=dict)
    handoff: str | None = None
    done: bool = False
    answer: str = ""


SwarmAgent = Callable[[Blackboard], Awaitable[Turn]]


class SwarmOutcome(BaseModel):
    """How a swarm ended: its answer or the guard that stopped it, the board, the trace and usage.

    Attributes:
        trace: every span of the swarm (``Span.to_otel`` form, in the order they
            closed): the root ``swarm`` span, each ``turn``, each ``handoff`` and
            the final ``decision``, and the model calls of ``model_swarm_agent``
            turns. ``trace_hash`` is ``trace_hash(trace)``.
        usage: every charge of the swarm's model calls, in order (per agent).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    status: Literal["done", "stopped"]
    answer: str = ""
    reason: str = ""
    error: Exception | None = Field(default=None, exclude=True)
    board: Blackboard
    path: list[str] = Field(default_factory=list)
    trace_hash: str = ""
    trace: list[dict[str, Any]] = Field(default_factory=list)
    usage: list[UsageRecord] = Field(default_factory=list)


@dataclass(slots=True)
class _SwarmTurn:
    """The swarm turn running now: what a model-backed agent charges and traces against."""

    guard: RunGuard
    tracer: Tracer
    agent: str


_turn: contextvars.ContextVar[_SwarmTurn | None] = contextvars.ContextVar(
    "vouch_swarm_turn", default=None
)


class Swarm:
    """Peers handing off to each other over a blackboard; no central controller.

    Each turn, the agent holding the work reads the board, writes entries and
    either finishes or hands off to a peer it names. Guards apply: max steps,
    TTL, handoff depth (handoffs in a row without a new entry on the board),
    loop detection (the same agent writing the same thing and handing to the
    same peer, or a board that stopped changing), and the run's and each
    agent's token/USD budget (``model_swarm_agent`` charges its model calls).
    An entry or a handoff to an agent that is not in the swarm raises
    ``UnknownAgent``. While it runs, the swarm's trace is bound
    (``current_trace_hash()``).

    Args:
        agents: name -> swarm agent.
        limits: the guards' limits.
    """

    def __init__(self, agents: dict[str, SwarmAgent], limits: Limits | None = None) -> None:
        self.agents = agents
        self.limits = limits or Limits()

    async def run(self, goal: str, entry: str, run_id: str | None = None) -> SwarmOutcome:
        """Start with ``entry`` and go until an agent finishes or a guard stops the swarm."""
        if entry not in self.agents:
            raise UnknownAgent("entry", entry, sorted(self.agents), "peer")
        run_id = run_id or uuid.uuid4().hex[:12]
        guard, tracer = RunGuard(run_id, self.limits), Tracer(run_id)
        outcome = SwarmOutcome(status="done", board=Blackboard(goal=goal), path=[entry])
        try:
            with tracer.bind(), tracer.span("swarm", **{RUN_ID: run_id}):
                outcome.answer = await self._turns(guard, tracer, outcome, entry)
        except (RunStopped, BudgetExceeded) as exc:
            reason = getattr(exc, "reason", "budget")
            outcome.status, outcome.reason, outcome.error = "stopped", f"{reason}: {exc}", exc
        outcome.trace = [span.to_otel() for span in tracer.spans]
        outcome.trace_hash = tracer.trace_hash()
        outcome.usage = list(guard.ledger.records)
        return outcome

    async def _turns(
        self, guard: RunGuard, tracer: Tracer, outcome: SwarmOutcome, current: str
    ) -> str:
        """Turn after turn until one finishes; its answer."""
        board = outcome.board
        while True:
            guard.tick()
            with tracer.span("turn " + current, str(guard.steps), **{AGENT_NAME: current}):
                token = _turn.set(_SwarmTurn(guard, tracer, current))
                try:
                    turn = await self.agents[current](board)
                finally:
                    _turn.reset(token)
            progressed = _apply(board, current, turn)
            guard.observe(current, f"handoff:{turn.handoff}", turn.writes, board.entries)
            if turn.done or turn.handoff is None:
                tracer.event("decision finish", **{AGENT_NAME: current, DECISION: "done"})
                return turn.answer
            if turn.handoff not in self.agents:
                raise UnknownAgent(current, turn.handoff, sorted(self.agents), "peer")
            path = outcome.path
            outcome.path = [current, turn.handoff] if progressed else [*path, turn.handoff]
            guard.handoff(outcome.path)
            handoff_span(tracer, current, turn.handoff, len(outcome.path) - 1)
            current = turn.handoff


def _apply(board: Blackboard, agent: str, turn: Turn) -> bool:
    """Write a turn's entries; True when the board changed."""
    changed = any(board.entries.get(k) != v for k, v in turn.writes.items())
    board.entries.update(turn.writes)
    board.log.append({"agent": agent, "writes": turn.writes, "handoff": turn.handoff})
    return changed


_SWARM_TOOLS = [
    ToolSpec(
        name="write",
        description="Write an entry on the blackboard.",
        parameters={
            "type": "object",
            "properties": {"key": {"type": "string"}, "value": {"type": "string"}},
            "required": ["key", "value"],
        },
    ),
    ToolSpec(
        name="handoff",
        description="Hand the work to a peer.",
        parameters={"type": "object", "properties": {"to": {"type": "string"}}, "required": ["to"]},
    ),
]


def model_swarm_agent(
    name: str, model: ChatModel, instructions: str, peers: list[str]
) -> SwarmAgent:
    """A swarm agent backed by a chat model: it may call ``write`` and ``handoff``; text finishes."""

    async def turn(board: Blackboard) -> Turn:
        messages = [
            Message(
                role="system",
                content=f"You are {name}. {instructions}\nPeers you may hand off to: {peers}",
            ),
            Message(
                role="user",
                content=f"Goal: {board.goal}\nBlackboard: {json.dumps(board.entries, sort_keys=True, default=str)}",
            ),
        ]
        reply = await _complete(model, messages, name)
        result = Turn()
        for call in reply.tool_calls:
            if call.name == "write":
                result.writes[str(call.arguments.get("key"))] = call.arguments.get("value")
            elif call.name == "handoff":
                result.handoff = str(call.arguments.get("to"))
        if result.handoff is None:
            result.done, result.answer = True, reply.content
        return result

    return turn


async def _complete(model: ChatModel, messages: list[Message], agent: str) -> ModelReply:
    """A model call of a swarm turn: a span, charged to ``agent`` (budgets checked first and after)."""
    turn = _turn.get()
    if turn is None:  # called outside a swarm
        return await model.complete(messages, _SWARM_TOOLS)
    turn.guard.check_budget(agent)
    attrs = {OPERATION: "chat", REQUEST_MODEL: model.name, AGENT_NAME: agent}
    with turn.tracer.span("chat " + model.name, **attrs) as span:
        reply = _counted(await model.complete(messages, _SWARM_TOOLS), messages)
        span.set(INPUT_TOKENS, reply.prompt_tokens)
        span.set(OUTPUT_TOKENS, reply.completion_tokens)
    name = reply.model or model.name
    turn.guard.charge(agent, turn.guard.steps, name, reply.prompt_tokens, reply.completion_tokens)
    return reply


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)

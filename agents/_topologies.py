"""Topologies: supervisor (hierarchical), sequential chain, and swarm over a blackboard."""

from __future__ import annotations

import asyncio
import contextvars
import json
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal, overload

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ._checkpoint import CheckpointStore, PendingAction
from ._config import Models
from ._errors import BudgetExceeded, RunStopped, ToolError, UnknownAgent
from ._executor import Executor
from ._guards import Limits, RunGuard
from ._loop import Agent, AgentResult, Tool
from ._model import ChatModel, Message, ModelReply, ToolCall, ToolSpec
from ._plan import Criterion, Plan, Planner, Step
from ._registry import AgentCard, Registry
from ._spend import counted as _counted
from ._spend import prompt_estimate, worst_output
from ._step import RunOutcome, StepContext
from ._trace import (
    AGENT_NAME,
    DECISION,
    INPUT_TOKENS,
    OPERATION,
    OUTPUT_TOKENS,
    REQUEST_MODEL,
    RUN_ID,
    STEP_ID,
    Span,
    Tracer,
    current_trace_hash,
    handoff_span,
)
from ._usage import UsageRecord
from ._workers import _STOPS, TracedModel, _guarded, agent_worker


class TopologyResult(BaseModel):
    """A topology's answer and the run underneath it (``str()``: the answer, or why none)."""

    answer: str
    outcome: RunOutcome

    @property
    def ok(self) -> bool:
        """True when the run finished every step."""
        return self.outcome.status == "done"

    def __str__(self) -> str:
        if self.ok:
            return self.answer
        return f"run {self.outcome.run_id} {self.outcome.status}: {self.outcome.reason}"


class Supervisor:
    """Hierarchical: a manager decomposes the goal, workers do the steps, the manager synthesizes.

    ``Supervisor(agents=[analyst, trader])`` is all it takes: each agent is a
    worker (an ``agent_worker`` registered under its name, its instructions as
    its description), the large tier plans over them, and the run's outputs are
    joined into the answer. Or give the parts yourself (``planner``, ``executor``).

    Args:
        planner: the manager's planner (decomposes and delegates by agent or capability);
            it becomes the executor's planner, so the manager plans (and re-plans) inside
            each run: its calls are spans of the run's trace, charged to its budget.
        executor: runs the plan over the worker registry.
        manager: writes the final answer from the workers' reports; None joins them.
        agents: the workers, instead of ``planner`` and ``executor``.
        models: serves the agents' tiers and the planner (default: ``Models()``).
        limits: the runs' limits (with ``agents``).
        store: where runs are checkpointed (with ``agents``; default: in memory).
    """

    def __init__(
        self,
        planner: Planner | None = None,
        executor: Executor | None = None,
        manager: ChatModel | None = None,
        *,
        agents: Sequence[Agent] = (),
        models: Models | None = None,
        limits: Limits | None = None,
        store: CheckpointStore | None = None,
    ) -> None:
        self.models = models
        if agents:
            if planner is not None or executor is not None:
                raise TypeError("give Supervisor agents=[...], or a planner and an executor")
            models = models or Models()
            registry = Registry()
            for agent in agents:
                _serve(agent, models)
                card = AgentCard(
                    name=agent.name,
                    description=agent.instructions,
                    tools=list(agent.tools),
                    tier="large" if agent.tier == "large" else "small",
                )
                registry.add(card, agent_worker(agent))
            planner = Planner(models.for_tier("large"), registry.descriptions())
            executor = Executor(registry, store=store, limits=limits)
        if planner is None or executor is None:
            raise TypeError("Supervisor needs agents=[...], or a planner and an executor")
        self.planner = planner
        self.executor = executor
        self.executor.planner = planner
        self.manager = manager

    def run_sync(self, goal: str, run_id: str | None = None) -> TopologyResult:
        """``run`` from synchronous code (not from inside a running event loop)."""
        return asyncio.run(self.run(goal, run_id))

    async def run(self, goal: str, run_id: str | None = None) -> TopologyResult:
        """Check the configured model names, plan, delegate, collect the reports and synthesize."""
        if self.models is not None:
            await self.models.check_once()
        outcome = await self.executor.run(goal, run_id)
        final = self.executor.store.load_run(outcome.run_id).plan  # after any re-plan
        steps = final.steps if final is not None else []  # None: planning itself failed
        done = [s.id for s in steps if s.id in outcome.outputs]  # plan order, not finish order
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
SwarmStatus = Literal["done", "stopped", "interrupted", "rejected", "failed"]
SWARM_STEP = "swarm"
"""The id of the step a durable swarm runs as (``Swarm.plan``)."""


class SwarmOutcome(BaseModel):
    """How a swarm ended: its answer or the guard that stopped it, the board, the trace and usage.

    Attributes:
        status: ``done`` or ``stopped``; a durable swarm (run through an
            executor) may also be ``interrupted`` (waiting for a human, see
            ``pending``), ``rejected`` or ``failed``.
        board: the blackboard at the end (a durable swarm that did not finish:
            as its finished turns left it).
        trace: every span of the swarm (``Span.to_otel`` form, in the order they
            closed): the root ``swarm`` span, each ``turn``, each ``handoff`` and
            the final ``decision``, and the model calls of ``model_swarm_agent``
            turns. ``trace_hash`` is ``trace_hash(trace)``. A durable swarm's is
            its run's stored trace (``store.load_trace(run_id)``).
        usage: every charge of the swarm's model calls, in order (per agent).
        run_id: the run (a durable swarm's is its executor run).
        pending: what an interrupted durable swarm waits for.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    status: SwarmStatus
    answer: str = ""
    reason: str = ""
    error: Exception | None = Field(default=None, exclude=True)
    board: Blackboard
    path: list[str] = Field(default_factory=list)
    trace_hash: str = ""
    trace: list[dict[str, Any]] = Field(default_factory=list)
    usage: list[UsageRecord] = Field(default_factory=list)
    run_id: str = ""
    pending: list[PendingAction] = Field(default_factory=list)


@dataclass(slots=True)
class _Host:
    """Where a swarm's turns run: alone (its own guard and tracer) or in an executor step."""

    guard: RunGuard
    tracer: Tracer
    ctx: StepContext | None = None
    seen: set[str] = field(default_factory=set)  # what the swarm's tools brought back

    @property
    def scope(self) -> str:
        """Whose state the loop guard watches: the run's alone, the step's in a run."""
        return "" if self.ctx is None else f"swarm {self.ctx.step.id}"

    async def turn(self, kind: str, request: Any, call: Callable[[], Awaitable[Any]]) -> Any:
        """A turn: in a step journaled as one call (its model and tool calls inside it)."""
        return await call() if self.ctx is None else await self.ctx.scope(kind, request, call)

    async def event(self, kind: str, request: Any, emit: Callable[[], Span]) -> None:
        """A span of the swarm's own (a handoff, the decision); in a step once (resume has it)."""
        if self.ctx is None:
            emit()
            return

        async def call() -> str:
            return emit().name

        await self.ctx.once(kind, request, call)


@dataclass(slots=True)
class _SwarmTurn:
    """The swarm turn running now: what a model-backed agent charges and traces against."""

    host: _Host
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

    Durable: ``run(..., executor=...)`` runs the swarm as one step of an
    executor run (``plan``, ``worker``), so everything an executor run has
    applies to it: the run's ``Limits`` (instead of ``limits``), a checkpoint
    after every turn (``StepContext.scope``: each turn, its model and tool
    calls and each handoff journaled), a human's approval before an
    irreversible tool of a ``model_swarm_agent`` acts (or any
    ``current_step().effect(..., irreversible=True)`` in a turn), idempotent
    effects, the trace stored with the run. A swarm that is
    interrupted or killed resumes at the turn it was in (``resume``, or
    ``Executor.resume``): finished turns are not taken again, the turn cut
    short replays its recorded model and tool calls.

    Args:
        agents: name -> swarm agent.
        limits: the guards' limits (a swarm run alone).
        name: the agent name the swarm's worker has in an executor's registry.
    """

    def __init__(
        self,
        agents: Mapping[str, SwarmAgent] | Sequence[Agent],
        limits: Limits | None = None,
        name: str = "swarm",
        *,
        models: Models | None = None,
    ) -> None:
        self.models = models
        self.entry = ""
        if isinstance(agents, Mapping):
            self.agents: dict[str, SwarmAgent] = dict(agents)
        else:  # Agents: each a model-backed peer of all the others; the first starts
            team = list(agents)
            names = [a.name for a in team]
            served = models or Models()
            self.agents = {}
            for agent in team:
                _serve(agent, served)
                peers = [n for n in names if n != agent.name]
                self.agents[agent.name] = model_swarm_agent(
                    agent.name,
                    agent.model,
                    agent.instructions,
                    peers,
                    list(agent.tools.values()),
                )
            self.entry = names[0] if names else ""
        self.limits = limits or Limits()
        self.name = name

    def run_sync(self, goal: str, entry: str | None = None) -> SwarmOutcome:
        """``run`` from synchronous code (not from inside a running event loop)."""
        return asyncio.run(self.run(goal, entry))

    async def run(
        self,
        goal: str,
        entry: str | None = None,
        run_id: str | None = None,
        executor: Executor | None = None,
    ) -> SwarmOutcome:
        """Start with ``entry`` and go until an agent finishes or a guard stops the swarm.

        Args:
            goal: what the swarm works on (the board's goal).
            entry: the agent that takes the first turn (default: the first of the
                ``Agent``s the swarm was given).
            run_id: the run's id (default: a new one).
            executor: run durably, as a step of this executor's run; its registry
                must have ``worker()`` under ``name`` (so that it can resume).
        """
        entry = entry or self.entry
        self._check_entry(entry)
        if self.models is not None:
            await self.models.check_once()
        if executor is not None:
            ran = await executor.run(self.plan(goal, entry), run_id)
            return _durable_outcome(ran, executor.store, goal)
        run_id = run_id or uuid.uuid4().hex[:12]
        host = _Host(RunGuard(run_id, self.limits), Tracer(run_id))
        outcome = SwarmOutcome(
            status="done", board=Blackboard(goal=goal), path=[entry], run_id=run_id
        )
        try:
            with host.tracer.bind(), host.tracer.span("swarm", **{RUN_ID: run_id}):
                outcome.answer = await self._turns(host, outcome, entry)
        except (RunStopped, BudgetExceeded) as exc:
            reason = getattr(exc, "reason", "budget")
            outcome.status, outcome.reason, outcome.error = "stopped", f"{reason}: {exc}", exc
        outcome.trace = [span.to_otel() for span in host.tracer.spans]
        outcome.trace_hash = host.tracer.trace_hash()
        outcome.usage = list(host.guard.ledger.records)
        return outcome

    async def resume(self, run_id: str, executor: Executor) -> SwarmOutcome:
        """Continue a durable swarm (after a human's decision, or a crash) where it was."""
        store = executor.store
        goal = store.load_run(run_id).goal
        return _durable_outcome(await executor.resume(run_id), store, goal)

    def plan(self, goal: str, entry: str) -> Plan:
        """The plan of a durable swarm: one step (``SWARM_STEP``) for this swarm's worker."""
        step = Step(id=SWARM_STEP, task=goal, agent=self.name, args={"entry": entry})
        return Plan(goal=goal, steps=[step])

    def worker(self) -> Callable[[StepContext], Awaitable[dict[str, Any]]]:
        """The swarm as an executor worker: the step's task is the goal, ``args["entry"]`` who starts.

        Its output: ``{"answer", "board", "path"}``.
        """
        return self._work

    async def _work(self, ctx: StepContext) -> dict[str, Any]:
        entry = str(ctx.step.args.get("entry", ""))
        self._check_entry(entry)
        host = _Host(ctx.guard, ctx.tracer, ctx)
        outcome = SwarmOutcome(status="done", board=Blackboard(goal=ctx.step.task), path=[entry])
        with ctx.tracer.span("swarm", **{RUN_ID: ctx.run_id, STEP_ID: ctx.step.id}):
            answer = await self._turns(host, outcome, entry)
        board = outcome.board.model_dump(mode="json")
        return {"answer": answer, "board": board, "path": outcome.path}

    def _check_entry(self, entry: str) -> None:
        if entry not in self.agents:
            raise UnknownAgent("entry", entry, sorted(self.agents), "peer")

    async def _turns(self, host: _Host, outcome: SwarmOutcome, current: str) -> str:
        """Turn after turn until one finishes; its answer."""
        board, n = outcome.board, 0
        while True:
            n += 1
            turn = await self._turn(host, board, current, n)
            progressed = _apply(board, current, turn)
            host.guard.observe(
                current, f"handoff:{turn.handoff}", turn.writes, board.entries, host.scope
            )
            if turn.done or turn.handoff is None:
                attrs = {AGENT_NAME: current, DECISION: "done"}
                await host.event(
                    "decision", n, partial(host.tracer.event, "decision finish", **attrs)
                )
                return turn.answer
            if turn.handoff not in self.agents:
                raise UnknownAgent(current, turn.handoff, sorted(self.agents), "peer")
            path = outcome.path
            outcome.path = [current, turn.handoff] if progressed else [*path, turn.handoff]
            host.guard.handoff(outcome.path)
            depth = len(outcome.path) - 1
            span = partial(handoff_span, host.tracer, current, turn.handoff, depth)
            await host.event("handoff", {"turn": n, "path": outcome.path}, span)
            current = turn.handoff

    async def _turn(self, host: _Host, board: Blackboard, agent: str, n: int) -> Turn:
        """One agent's turn (in a step: replayed from the journal once it finished)."""

        async def take() -> Any:
            host.guard.tick()
            with host.tracer.span("turn " + agent, str(n), **{AGENT_NAME: agent}):
                token = _turn.set(_SwarmTurn(host, agent))
                try:
                    turn = await self.agents[agent](board)
                finally:
                    _turn.reset(token)
            return turn if host.ctx is None else turn.model_dump(mode="json")  # as replayed

        request = {"turn": n, "agent": agent, "board": board.entries}
        return Turn.model_validate(await host.turn("turn " + agent, request, take))


def _durable_outcome(run: RunOutcome, store: CheckpointStore, goal: str) -> SwarmOutcome:
    """A durable swarm's outcome from its run's outcome and checkpoint."""
    record = store.load_steps(run.run_id).get(SWARM_STEP)
    output = run.outputs.get(SWARM_STEP)
    outcome = SwarmOutcome(
        status="stopped" if run.status == "running" else run.status,
        reason=run.reason,
        error=run.error,
        board=Blackboard(goal=goal),
        trace_hash=run.trace_hash,
        trace=store.load_trace(run.run_id),
        usage=list(record.usage) if record is not None else [],
        run_id=run.run_id,
        pending=list(run.pending),
    )
    if isinstance(output, dict):
        outcome.answer, outcome.path = str(output["answer"]), list(output["path"])
        outcome.board = Blackboard.model_validate(output["board"])
    elif record is not None:  # the board as the finished turns left it
        for entry in record.journal:
            if entry["kind"].startswith("turn ") and "result" in entry:
                _apply(outcome.board, entry["kind"][5:], Turn.model_validate(entry["result"]))
    return outcome


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
    name: str,
    model: ChatModel,
    instructions: str,
    peers: list[str],
    tools: Sequence[Tool] = (),
    max_calls: int = 4,
) -> SwarmAgent:
    """A swarm agent backed by a chat model: it may call ``write``, ``handoff`` and ``tools``.

    A reply that calls one of ``tools`` gets their results and the model is
    asked again (up to ``max_calls`` model calls a turn); a reply without one
    ends the turn, and one without a handoff finishes the swarm with its text.
    In a durable swarm (``Swarm.run(..., executor=...)``) the tools are guarded
    as in an agent step: each call a span; an irreversible one (or one above the
    run's value threshold) waits for a human's approval and runs at most once;
    the others replay on resume. Run alone, a swarm cannot ask anyone: an
    irreversible tool raises ``ToolError`` instead of acting.
    """
    specs = [*_SWARM_TOOLS, *(tool.spec() for tool in tools)]
    by_name = {tool.name: tool for tool in tools}

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
        result = Turn()
        for _ in range(max_calls):
            reply = await _complete(model, messages, name, specs)
            if not await _answer(reply, by_name, result, messages, name):
                break
        if result.handoff is None:
            result.done, result.answer = True, reply.content
        return result

    return turn


async def _answer(
    reply: ModelReply, tools: dict[str, Tool], turn: Turn, messages: list[Message], agent: str
) -> bool:
    """Take a reply's writes and handoff; run its tool calls. True when it called a tool."""
    for call in reply.tool_calls:
        if call.name == "write":
            turn.writes[str(call.arguments.get("key"))] = call.arguments.get("value")
        elif call.name == "handoff":
            turn.handoff = str(call.arguments.get("to"))
    if not any(call.name in tools for call in reply.tool_calls):
        return False
    messages.append(Message(role="assistant", content=reply.content, tool_calls=reply.tool_calls))
    for call in reply.tool_calls:
        tool = tools.get(call.name)
        text = "ok" if tool is None else await _use(tool, call, agent)
        messages.append(Message(role="tool", content=text, tool_call_id=call.id))
    return True


async def _use(tool: Tool, call: ToolCall, agent: str) -> str:
    """One tool call of a swarm turn; what the model observes (errors too)."""
    try:
        args = tool.parse(call)
    except (ValidationError, ValueError) as exc:
        return f"error: invalid arguments for {call.name}: {exc}"
    if "trace_hash" in type(args).model_fields:  # a proposal binds the swarm's trace so far
        args = args.model_copy(update={"trace_hash": current_trace_hash()})
    turn = _turn.get()
    host = turn.host if turn is not None else None
    fn = tool.fn
    if host is not None and host.ctx is not None:
        fn = _guarded(tool, host.ctx, host.seen, agent).fn
    elif tool.irreversible:
        raise ToolError(
            f"{tool.name} is irreversible and a swarm run alone cannot ask a human: "
            "run it durably, Swarm.run(..., executor=...)"
        )
    try:
        outcome = await fn(args)
    except (*_STOPS, *tool.reraise):
        raise
    except Exception as exc:  # a failing tool is something the model must hear about
        return f"error: tool {call.name} failed: {type(exc).__name__}: {exc}"
    return outcome if isinstance(outcome, str) else json.dumps(outcome, default=str)


async def _complete(
    model: ChatModel, messages: list[Message], agent: str, tools: list[ToolSpec]
) -> ModelReply:
    """A model call of a swarm turn: a span, charged to ``agent`` (budgets checked first and after).

    In a durable swarm it is a call of the step (``TracedModel``): journaled,
    replayed on resume instead of called again.
    """
    turn = _turn.get()
    if turn is None:  # called outside a swarm
        return await model.complete(messages, tools)
    host = turn.host
    if host.ctx is not None:
        return await TracedModel(model, host.ctx, agent).complete(messages, tools)
    attrs = {OPERATION: "chat", REQUEST_MODEL: model.name, AGENT_NAME: agent}
    prompt = prompt_estimate(messages, tools)
    with (
        host.guard.reserve(agent, model.name, prompt, worst_output(model)),
        host.tracer.span("chat " + model.name, **attrs) as span,
    ):
        reply = _counted(await model.complete(messages, tools), messages)
        span.set(INPUT_TOKENS, reply.prompt_tokens)
        span.set(OUTPUT_TOKENS, reply.completion_tokens)
    host.guard.charge(
        agent,
        host.guard.steps,
        model.name,  # the configured name: prices are keyed by it, not by the server's
        reply.prompt_tokens,
        reply.completion_tokens,
        reply.usage_estimated,
    )
    return reply


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _serve(agent: Agent, models: Models) -> None:
    """Let ``models`` serve ``agent``'s tier, unless it has a model or models of its own."""
    if agent.models is None:
        agent.models = models


@overload
def run_sync(runner: Agent, goal: str, **kwargs: Any) -> AgentResult: ...
@overload
def run_sync(runner: Supervisor, goal: str, **kwargs: Any) -> TopologyResult: ...
@overload
def run_sync(runner: Swarm, goal: str, **kwargs: Any) -> SwarmOutcome: ...


def run_sync(runner: Agent | Supervisor | Swarm, goal: str, **kwargs: Any) -> Any:
    """Run an agent, a supervisor or a swarm on ``goal`` from synchronous code.

    ``kwargs`` go to its ``run``. Not for use inside a running event loop (await
    ``runner.run(goal)`` there).
    """
    return asyncio.run(runner.run(goal, **kwargs))

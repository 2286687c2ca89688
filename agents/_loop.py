"""The Reason-Act-Observe loop: the model reasons, a tool acts, the result is observed.

An agent may hand the conversation to another agent (``Agent(handoffs=[...])``):
the model sees each target as a tool ``transfer_to_<name>``; calling one hands
the whole conversation (and the goal, and the facts) to that agent, which
continues the loop with its own instructions, model and tools. The answer comes
from whoever finishes; ``AgentResult.agent`` and ``AgentResult.path`` say who
that was and how the work got there.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, ValidationError

from ._errors import BudgetExceeded, MaxStepsExceeded, RepairFailed, RunStopped, UnknownAgent
from ._guards import check_handoff_depth
from ._model import ChatModel, Message, ModelReply, ToolCall, ToolSpec
from ._schema import arguments_for, strict_schema
from ._spend import within
from ._tools import Tool as Tool  # re-exported: Tool lived here
from ._tools import as_tool
from ._trace import bind_trace, current_trace_hash
from ._usage import UsageLedger

if TYPE_CHECKING:  # _memory and _config import this module
    from ._config import Models
    from ._memory import LongTermMemory, ShortTermMemory

TIERS = ("small", "large")


class TraceEvent(BaseModel):
    """One step of a run: a model call, a tool call, a tool error, or a handoff."""

    step: int
    kind: str
    data: dict[str, Any]


class AgentResult(BaseModel):
    """A run's state, and how it ended: the final answer and the trace that led there.

    Attributes:
        agent: who holds the conversation (at the end: who gave the answer).
        path: every agent that held it, in order, the first one first (one name
            when nobody handed off).
    """

    answer: str
    trace: list[TraceEvent] = Field(default_factory=list)
    agent: str = ""
    path: list[str] = Field(default_factory=list)

    def trace_hash(self) -> str:
        """SHA-256 of the canonical trace: what an onchain proposal binds."""
        blob = json.dumps(
            [e.model_dump(mode="json") for e in self.trace], sort_keys=True, separators=(",", ":")
        )
        return "0x" + hashlib.sha256(blob.encode()).hexdigest()


class _Observation(BaseModel):
    text: str
    kind: str = "tool"  # "tool" | "tool_error" | "invalid_arguments" | "transfer"


class _TransferArgs(BaseModel):
    note: str = Field(
        default="",
        description="What the next agent needs to know that the conversation does not say.",
    )


def transfer_tool_name(agent: str) -> str:
    """The tool a model calls to hand the conversation to ``agent``: ``transfer_to_<name>``."""
    return "transfer_to_" + re.sub(r"[^A-Za-z0-9_-]", "_", agent)[:52]


class _HandoffHooks:
    """Where a loop's handoffs are checked and recorded: alone, the entry agent's depth limit.

    An engine step (``agent_worker``) checks the run's guard instead and traces
    each handoff as a journaled span.
    """

    def __init__(self, max_depth: int) -> None:
        self.max_depth = max_depth

    def check(self, path: list[str]) -> None:
        """Raise HandoffDepthExceeded when ``path`` holds more handoffs than allowed."""
        check_handoff_depth(path, self.max_depth)

    async def record(self, source: str, target: str, path: list[str], note: str) -> None:
        """Record one handoff (alone: the loop's trace event is the record)."""


class Agent:
    """An agent: instructions, tools, a model (a tier or a ChatModel), a step limit, a budget.

    ``Agent("analyst", "Look up prices.", tools=[price], model="large")`` is all it
    takes; the tier is served by ``models`` (default: ``Models()``, where every
    unconfigured tier is the offline model, which says plainly what it cannot do).

    Args:
        name: shown in traces and in the usage ledger.
        instructions: the system prompt.
        tools: what the agent may call: ``Tool``s, or plain typed functions (made
            tools as by ``@tool``).
        model: a tier (``"small"``, ``"large"``) served by ``models``, or any ChatModel.
        models: serves a tier given as ``model`` (default: the offline ``Models()``;
            ``run_sync``, ``Supervisor`` and ``Swarm`` pass theirs to agents without one).
        max_steps: model calls allowed before the run stops with MaxStepsExceeded
            (the agent a run starts with sets it for the whole run, handoffs included).
        ledger: where usage is charged; its budget stops the run with BudgetExceeded
            (before a call whose worst case does not fit is sent).
        max_repairs: how many replies in a row may carry only invalid tool arguments
            (each error is sent back to the model) before the run stops with RepairFailed.
        memory: keeps the conversation inside its window budget, across runs: before
            every model call, older turns are folded into a running summary by the
            memory's summarizer (give it the small tier) and charged to this agent.
            Without one, every run starts a fresh conversation that is never cut.
            A memory is one conversation: do not run an agent that has one concurrently.
            The memory of the agent a run starts with is the run's conversation;
            agents handed to continue in it (their own memories are not used).
        handoffs: agents this one may hand the conversation to, as agents or by
            name (a name is found among the agents reachable from the one a run
            starts with, then in the directory given to ``team``; in an engine
            step, among the registry's ``agent_worker`` agents). Each is offered
            to the model as the tool ``transfer_to_<name>``; calling it hands
            over the whole conversation, the goal, the facts and the call's
            ``note``; the target continues with its own instructions, model and
            tools, and its model calls are charged to it. A target that cannot be
            found is a configuration error (``UnknownAgent`` before the first
            model call); a model calling a transfer tool it was not offered gets
            the usual "no tool named" observation back, so it can correct itself.
            Only the first transfer in one reply counts; later ones are answered
            with an error observation.
        handoff_description: what the transfer tool tells a model about this agent
            (default: its instructions).
        max_handoff_depth: how many handoffs a run of this agent may make before it
            stops with ``HandoffDepthExceeded`` (its ``partial`` is the result so far).
            In an engine step, the run's ``Limits.max_handoff_depth`` applies instead.
        long_term: where the answer of every finished run is kept (kind ``outcome``,
            metadata: the agent that answered and the goal), for later recall.
    """

    def __init__(
        self,
        name: str,
        instructions: str = "",
        tools: Sequence[Tool | Callable[..., Any]] = (),
        model: ChatModel | str = "small",
        *,
        models: Models | None = None,
        max_steps: int = 8,
        ledger: UsageLedger | None = None,
        max_repairs: int = 2,
        memory: ShortTermMemory | None = None,
        handoffs: Sequence[Agent | str] = (),
        handoff_description: str = "",
        max_handoff_depth: int = 8,
        long_term: LongTermMemory | None = None,
    ) -> None:
        if isinstance(model, str) and model not in TIERS:
            raise ValueError(
                f"agent {name}: model {model!r} is neither a tier {TIERS} nor a ChatModel; "
                "name the model in ModelSettings and pick its tier here"
            )
        if not isinstance(instructions, str):
            raise TypeError(
                f"agent {name}: instructions must be text; the model goes in model= "
                "(Agent(name, instructions, tools=[...], model=...))"
            )
        self.name = name
        self.long_term = long_term
        self._model = model
        self.models = models
        self.tools = {t.name: t for t in (as_tool(t) for t in tools)}
        self.instructions = instructions
        self.max_steps = max_steps
        self.ledger = ledger
        self.max_repairs = max_repairs
        self.memory = memory
        self.handoffs = list(handoffs)
        self.handoff_description = handoff_description
        self.max_handoff_depth = max_handoff_depth
        if memory is not None and not memory.instructions:
            memory.instructions = instructions

    @property
    def model(self) -> ChatModel:
        """The chat model: the one given, or the one serving the agent's tier."""
        if isinstance(self._model, ChatModel):
            return self._model
        from ._config import Models  # _config builds on this module

        return (self.models or Models()).for_tier("large" if self._model == "large" else "small")

    @model.setter
    def model(self, model: ChatModel) -> None:
        self._model = model

    @property
    def tier(self) -> str:
        """The tier the agent asked for (``"small"`` when given a ChatModel)."""
        return self._model if isinstance(self._model, str) else "small"

    def team(self, directory: Mapping[str, Agent] | None = None) -> dict[str, Agent]:
        """Every agent reachable from this one through handoffs, by name, this one first.

        Args:
            directory: where targets given by name are looked up when no agent
                reachable as an object has that name.

        Raises:
            UnknownAgent: a handoff target is found nowhere.
            ValueError: two different agents share a name, or a transfer tool's name
                collides with a tool of the agent.
        """
        directory = directory or {}
        team: dict[str, Agent] = {}
        queue: list[Agent] = [self]
        wanted: list[tuple[str, str]] = []
        tried: set[str] = set()
        while queue:
            agent = queue.pop(0)
            if _admit(team, agent):
                for target in agent.handoffs:
                    if isinstance(target, Agent):
                        queue.append(target)
                    else:
                        wanted.append((agent.name, target))
            if not queue:
                fresh = {n for _, n in wanted if n not in team and n not in tried}
                tried |= fresh
                queue = [directory[n] for n in sorted(fresh) if n in directory]
        for source, name in wanted:
            if name not in team:
                known = sorted({*team, *directory})
                raise UnknownAgent(source, name, known, "handoff target")
        for agent in team.values():
            _Menu(agent, team)  # refuses a transfer tool that shadows a tool
        return team

    def run_sync(
        self, goal: str, ledger: UsageLedger | None = None, facts: dict[str, str] | None = None
    ) -> AgentResult:
        """``run`` from synchronous code (not from inside a running event loop)."""
        return asyncio.run(self.run(goal, ledger, facts))

    async def run(
        self, goal: str, ledger: UsageLedger | None = None, facts: dict[str, str] | None = None
    ) -> AgentResult:
        """Reason, act and observe (handing off where the model asks) until an agent answers.

        Args:
            goal: the user's request.
            ledger: charge this run's usage here (overrides the agent's ledger).
            facts: kept verbatim in every prompt of this run, in the system message;
                with a memory they are never summarized away while the run needs
                them, and neither is the goal.

        Raises:
            MaxStepsExceeded, RepairFailed, BudgetExceeded: as their names say.
            HandoffDepthExceeded: more than ``max_handoff_depth`` handoffs; its
                ``partial`` is the ``AgentResult`` so far (trace, path, agent).
            UnknownAgent: a handoff target cannot be found (see ``team``).
        """
        team = self.team()
        return await self._run_team(
            goal, ledger, facts, team, _HandoffHooks(self.max_handoff_depth)
        )

    async def _run_team(
        self,
        goal: str,
        ledger: UsageLedger | None,
        facts: dict[str, str] | None,
        team: Mapping[str, Agent],
        hooks: _HandoffHooks,
    ) -> AgentResult:
        """A run starting with this agent, handing off within ``team`` as ``hooks`` allow."""
        ledger = ledger or self.ledger
        conversation = _Conversation(self.instructions, self.memory, goal, facts or {})
        result = AgentResult(answer="", agent=self.name, path=[self.name])
        try:
            result = await self._loop(conversation, ledger, result, team, hooks)
        except RunStopped as exc:
            exc.partial = result
            raise
        finally:
            conversation.close()
        if self.long_term is not None and result.answer:
            meta: dict[str, str | int | float | bool] = {"agent": result.agent, "goal": goal[:500]}
            await self.long_term.remember(result.answer, "outcome", meta)
        return result

    async def _loop(
        self,
        conversation: _Conversation,
        ledger: UsageLedger | None,
        result: AgentResult,
        team: Mapping[str, Agent],
        hooks: _HandoffHooks,
    ) -> AgentResult:
        active, menu = self, _Menu(self, team)
        repairs = 0
        for step in range(1, self.max_steps + 1):
            messages = await conversation.prompt(result, step, ledger, active.name)
            reply = await within(active.model, messages, menu.specs, ledger, active.name, step)
            conversation.measured(reply)
            result.trace.append(
                TraceEvent(step=step, kind="model", data=reply.model_dump(mode="json"))
            )
            if not reply.tool_calls:
                result.answer = reply.content
                conversation.add(Message(role="assistant", content=reply.content))
                return result
            conversation.add(
                Message(role="assistant", content=reply.content, tool_calls=reply.tool_calls)
            )
            kinds, transfer = await active._answer(reply, menu, result, step, ledger, conversation)
            if transfer is not None:
                active = await self._hand_off(active, *transfer, result, team, hooks, conversation)
                menu = _Menu(active, team)
            repairs = repairs + 1 if all(k == "invalid_arguments" for k in kinds) else 0
            if repairs > self.max_repairs:
                raise RepairFailed(reply.tool_calls[-1].name, repairs, conversation.last())
        raise MaxStepsExceeded(self.max_steps)

    async def _answer(
        self,
        reply: ModelReply,
        menu: _Menu,
        result: AgentResult,
        step: int,
        ledger: UsageLedger | None,
        conversation: _Conversation,
    ) -> tuple[list[str], tuple[str, str, int] | None]:
        """Answer every call of a reply; the kinds of the answers and the transfer asked for, if any."""
        kinds: list[str] = []
        transfer: tuple[str, str, int] | None = None
        for call in reply.tool_calls:
            target = menu.transfers.get(call.name)
            if target is None:
                observation = await self._act(call, result, step, ledger, menu.transfers)
            elif transfer is not None:
                observation = _Observation(
                    text=f"error: ignored; the conversation is already handed to {transfer[0]}",
                    kind="tool_error",
                )
            else:
                observation, note = _transfer(call, target)
                if note is not None:
                    transfer = (target, note, step)
            kinds.append(observation.kind)
            result.trace.append(
                TraceEvent(
                    step=step,
                    kind=observation.kind,
                    data={"call": call.name, "result": observation.text},
                )
            )
            conversation.add(Message(role="tool", content=observation.text, tool_call_id=call.id))
        return kinds, transfer

    @staticmethod
    async def _hand_off(
        source: Agent,
        target: str,
        note: str,
        step: int,
        result: AgentResult,
        team: Mapping[str, Agent],
        hooks: _HandoffHooks,
        conversation: _Conversation,
    ) -> Agent:
        """Check the depth, record the handoff, and let ``target`` hold the conversation."""
        path = [*result.path, target]
        hooks.check(path)
        await hooks.record(source.name, target, path, note)
        data = {"from": source.name, "to": target, "depth": len(path) - 1, "note": note}
        result.trace.append(TraceEvent(step=step, kind="handoff", data=data))
        result.path, result.agent = path, target
        agent = team[target]
        conversation.switch(agent.instructions)
        return agent

    async def _act(
        self,
        call: ToolCall,
        result: AgentResult,
        step: int,
        ledger: UsageLedger | None,
        transfers: Mapping[str, str] | None = None,
    ) -> _Observation:
        """Run one tool call; errors become observations for the model, not crashes."""
        tool = self.tools.get(call.name)
        if tool is None:
            offered = sorted([*self.tools, *(transfers or {})])
            return _Observation(
                text=f"error: no tool named {call.name!r}; available: {offered}",
                kind="invalid_arguments",
            )
        try:
            args = tool.parse(call)
        except (ValidationError, ValueError) as exc:
            return _Observation(text=_repair_prompt(call.name, exc), kind="invalid_arguments")
        if "trace_hash" in type(args).model_fields:  # an engine run's trace, else this loop's
            bound = current_trace_hash() or result.trace_hash()
            args = args.model_copy(update={"trace_hash": bound})
        if ledger is not None and tool.cost_usd:
            ledger.charge_tool(self.name, step, tool.name, tool.cost_usd)
        stop: tuple[type[Exception], ...] = (BudgetExceeded, *tool.reraise)
        try:
            with bind_trace(result.trace_hash, weak=True):
                outcome = await tool.fn(args)
        except stop:
            raise
        except Exception as exc:  # a failing tool is something the model must hear about
            return _Observation(
                text=f"error: tool {call.name} failed: {type(exc).__name__}: {exc}",
                kind="tool_error",
            )
        text = outcome if isinstance(outcome, str) else json.dumps(outcome, default=str)
        return _Observation(text=text)


class _Menu:
    """What the model of ``agent`` is offered: its tools, then one transfer tool per handoff."""

    def __init__(self, agent: Agent, team: Mapping[str, Agent]) -> None:
        self.specs = [tool.spec() for tool in agent.tools.values()]
        self.transfers: dict[str, str] = {}  # tool name -> agent name
        for handoff in agent.handoffs:
            target = team[handoff if isinstance(handoff, str) else handoff.name]
            if target.name == agent.name:
                continue
            tool = transfer_tool_name(target.name)
            if tool in agent.tools or self.transfers.get(tool, target.name) != target.name:
                raise ValueError(f"{agent.name}: the transfer tool {tool!r} is taken")
            if tool not in self.transfers:
                self.transfers[tool] = target.name
                self.specs.append(_transfer_spec(tool, target))


def _transfer_spec(tool: str, target: Agent) -> ToolSpec:
    about = target.handoff_description or target.instructions or f"the agent {target.name}"
    return ToolSpec(
        name=tool,
        description=f"Hand the conversation to {target.name}, who continues it: {about}",
        parameters=strict_schema(_TransferArgs),
        strict=True,
    )


def _transfer(call: ToolCall, target: str) -> tuple[_Observation, str | None]:
    """The observation of a transfer call, and its note (None: its arguments were invalid)."""
    try:
        args = _TransferArgs.model_validate(arguments_for(_TransferArgs, call.arguments))
        if call.arguments_error is not None:
            raise ValueError(call.arguments_error)
    except (ValidationError, ValueError) as exc:
        return _Observation(text=_repair_prompt(call.name, exc), kind="invalid_arguments"), None
    text = f"transferred to {target}" + (f"; note: {args.note}" if args.note else "")
    return _Observation(text=text, kind="transfer"), args.note


def _admit(team: dict[str, Agent], agent: Agent) -> bool:
    """Add ``agent`` to ``team``; False when it is already there."""
    known = team.get(agent.name)
    if known is agent:
        return False
    if known is not None:
        raise ValueError(f"two different agents are named {agent.name!r}; handoffs need one each")
    team[agent.name] = agent
    return True


class _Conversation:
    """A run's messages: a plain list, or a short-term memory that keeps them in its window."""

    def __init__(
        self,
        instructions: str,
        memory: ShortTermMemory | None,
        goal: str,
        facts: dict[str, str],
    ) -> None:
        self.memory = memory
        self.pinned = {"goal": f"Current goal: {goal}", **facts}
        self.facts = facts
        self.messages = [Message(role="system", content=self._head(instructions))]
        if memory is not None:
            self.instructions = memory.instructions
            self.shadowed = {k: memory.facts[k] for k in self.pinned if k in memory.facts}
            for key, fact in self.pinned.items():
                memory.pin(key, fact)
        self.add(Message(role="user", content=goal))

    def _head(self, instructions: str) -> str:
        if not self.facts:
            return instructions
        listed = "\n".join(f"- {f}" for f in self.facts.values())
        return f"{instructions}\n\nFacts (verbatim):\n{listed}".lstrip()

    def switch(self, instructions: str) -> None:
        """Another agent holds the conversation now: its instructions head the prompt."""
        if self.memory is not None:
            self.memory.instructions = instructions
        else:
            self.messages[0] = Message(role="system", content=self._head(instructions))

    def add(self, message: Message) -> None:
        """Append a turn."""
        if self.memory is not None:
            self.memory.add(message)
        else:
            self.messages.append(message)

    def last(self) -> str:
        """The text of the latest turn."""
        turns = self.memory.turns if self.memory is not None else self.messages
        return turns[-1].content if turns else ""

    async def prompt(
        self, result: AgentResult, step: int, ledger: UsageLedger | None, agent: str
    ) -> list[Message]:
        """What the model sees next; with a memory, folded into its window first."""
        memory = self.memory
        if memory is None:
            return list(self.messages)
        folded = await memory.fit(ledger, agent, step)
        tokens = memory.tokens()
        over = tokens > memory.window_tokens  # facts, summary and the latest turns alone
        if folded or over:
            data = {
                "folds": memory.folds,
                "summary": memory.summary,
                "tokens": tokens,
                "over_window": over,
            }
            result.trace.append(TraceEvent(step=step, kind="memory", data=data))
        return memory.context()

    def measured(self, reply: ModelReply) -> None:
        """Let the memory count the window by the server's usage, when it reported one."""
        if self.memory is not None and not reply.usage_estimated and reply.prompt_tokens:
            self.memory.measured(reply.prompt_tokens)

    def close(self) -> None:
        """Unpin this run's facts (restoring any pinned under the same key before the run)."""
        if self.memory is None:
            return
        self.memory.instructions = self.instructions
        for key in self.pinned:
            self.memory.unpin(key)
        for key, fact in self.shadowed.items():
            self.memory.pin(key, fact)


def _repair_prompt(name: str, exc: ValidationError | ValueError) -> str:
    if isinstance(exc, ValidationError):
        problems = [
            f"{'.'.join(str(p) for p in e['loc']) or '(arguments)'}: {e['msg']}"
            for e in exc.errors()
        ]
        detail = f"{exc.error_count()} problems: " + "; ".join(problems)
    else:
        detail = str(exc)
    return (
        f"error: invalid arguments for {name}: {detail}. Fix the arguments and call {name} again."
    )

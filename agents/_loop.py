"""The Reason-Act-Observe loop: the model reasons, a tool acts, the result is observed."""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any, get_type_hints

from pydantic import BaseModel, Field, ValidationError

from ._errors import BudgetExceeded, MaxStepsExceeded, RepairFailed
from ._model import ChatModel, Message, ModelReply, ToolCall, ToolSpec
from ._schema import arguments_for, strict_schema
from ._tokens import estimate_message_tokens, estimate_tokens
from ._trace import bind_trace, current_trace_hash
from ._usage import UsageLedger

if TYPE_CHECKING:  # _memory imports this module for Tool
    from ._memory import ShortTermMemory


class Tool(BaseModel):
    """A typed tool: a pydantic argument model, a description, and what calling it risks or costs.

    Attributes:
        irreversible: calling it changes something that cannot be undone (guards may interrupt).
        cost_usd: charged to the run's ledger on every call, when set.
        reraise: exception types that stop the run instead of becoming observations
            (``BudgetExceeded`` always does).
    """

    model_config = {"arbitrary_types_allowed": True}

    name: str
    description: str
    args_model: type[BaseModel]
    fn: Callable[[Any], Awaitable[Any]]
    irreversible: bool = False
    cost_usd: Decimal | None = Field(default=None, ge=0)
    reraise: tuple[type[Exception], ...] = ()

    def spec(self) -> ToolSpec:
        """What the model is told about this tool: a strict-mode schema of its arguments."""
        return ToolSpec(
            name=self.name,
            description=self.description,
            parameters=strict_schema(self.args_model),
            strict=True,
        )

    def parse(self, call: ToolCall) -> BaseModel:
        """Validate a call's arguments against the argument model.

        Raises:
            ValueError: the arguments were not a JSON object.
            ValidationError: they did not validate.
        """
        if call.arguments_error is not None:
            raise ValueError(call.arguments_error)
        return self.args_model.model_validate(arguments_for(self.args_model, call.arguments))

    @classmethod
    def from_function(
        cls,
        fn: Callable[[Any], Any],
        *,
        name: str | None = None,
        description: str | None = None,
        irreversible: bool = False,
        cost_usd: Decimal | None = None,
    ) -> Tool:
        """A tool from a function of one pydantic-model argument (sync or async).

        The name defaults to the function's, the description to its docstring.
        """
        hints = get_type_hints(fn)
        params = [p for p in inspect.signature(fn).parameters if p != "return"]
        args_model = hints.get(params[0]) if len(params) == 1 else None
        if not (isinstance(args_model, type) and issubclass(args_model, BaseModel)):
            raise TypeError(f"{fn.__name__} must take exactly one pydantic model argument")

        async def call(args: Any) -> Any:
            outcome = fn(args)
            return await outcome if inspect.isawaitable(outcome) else outcome

        return cls(
            name=name or fn.__name__,
            description=description or inspect.getdoc(fn) or "",
            args_model=args_model,
            fn=call,
            irreversible=irreversible,
            cost_usd=cost_usd,
        )


class TraceEvent(BaseModel):
    """One step of a run: a model call, a tool call, or a tool error."""

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


class _Observation(BaseModel):
    text: str
    kind: str = "tool"  # "tool" | "tool_error" | "invalid_arguments"


class Agent:
    """An agent: a model, some tools, a step limit, and optionally a ledger with a budget.

    Args:
        name: shown in traces and in the usage ledger.
        model: any ChatModel.
        tools: what the agent may call.
        instructions: the system prompt.
        max_steps: model calls allowed before the run stops with MaxStepsExceeded.
        ledger: where usage is charged; its budget stops the run with BudgetExceeded.
        max_repairs: how many replies in a row may carry only invalid tool arguments
            (each error is sent back to the model) before the run stops with RepairFailed.
        memory: keeps the conversation inside its window budget, across runs: before
            every model call, older turns are folded into a running summary by the
            memory's summarizer (give it the small tier) and charged to this agent.
            Without one, every run starts a fresh conversation that is never cut.
            A memory is one conversation: do not run an agent that has one concurrently.
    """

    def __init__(
        self,
        name: str,
        model: ChatModel,
        tools: list[Tool],
        instructions: str = "",
        max_steps: int = 8,
        ledger: UsageLedger | None = None,
        max_repairs: int = 2,
        memory: ShortTermMemory | None = None,
    ) -> None:
        self.name = name
        self.model = model
        self.tools = {tool.name: tool for tool in tools}
        self.instructions = instructions
        self.max_steps = max_steps
        self.ledger = ledger
        self.max_repairs = max_repairs
        self.memory = memory
        if memory is not None and not memory.instructions:
            memory.instructions = instructions

    async def run(
        self, goal: str, ledger: UsageLedger | None = None, facts: dict[str, str] | None = None
    ) -> AgentResult:
        """Reason, act and observe until the model answers without a tool call.

        Args:
            goal: the user's request.
            ledger: charge this run's usage here (overrides the agent's ledger).
            facts: kept verbatim in every prompt of this run, in the system message;
                with a memory they are never summarized away while the run needs
                them, and neither is the goal.
        """
        ledger = ledger or self.ledger
        conversation = _Conversation(self.instructions, self.memory, goal, facts or {})
        try:
            return await self._loop(conversation, ledger)
        finally:
            conversation.close()

    async def _loop(self, conversation: _Conversation, ledger: UsageLedger | None) -> AgentResult:
        result = AgentResult(answer="")
        specs = [tool.spec() for tool in self.tools.values()]
        repairs = 0
        for step in range(1, self.max_steps + 1):
            messages = await conversation.prompt(result, step, ledger, self.name)
            reply = _counted(await self.model.complete(messages, specs), messages)
            conversation.measured(reply)
            result.trace.append(
                TraceEvent(step=step, kind="model", data=reply.model_dump(mode="json"))
            )
            if ledger is not None:
                ledger.charge_model(
                    self.name,
                    step,
                    reply.model or self.model.name,
                    reply.prompt_tokens,
                    reply.completion_tokens,
                    reply.usage_estimated,
                )
            if not reply.tool_calls:
                result.answer = reply.content
                conversation.add(Message(role="assistant", content=reply.content))
                return result
            conversation.add(
                Message(role="assistant", content=reply.content, tool_calls=reply.tool_calls)
            )
            kinds = []
            for call in reply.tool_calls:
                observation = await self._act(call, result, step, ledger)
                kinds.append(observation.kind)
                result.trace.append(
                    TraceEvent(
                        step=step,
                        kind=observation.kind,
                        data={"call": call.name, "result": observation.text},
                    )
                )
                conversation.add(
                    Message(role="tool", content=observation.text, tool_call_id=call.id)
                )
            repairs = repairs + 1 if all(k == "invalid_arguments" for k in kinds) else 0
            if repairs > self.max_repairs:
                raise RepairFailed(reply.tool_calls[-1].name, repairs, conversation.last())
        raise MaxStepsExceeded(self.max_steps)

    async def _act(
        self, call: ToolCall, result: AgentResult, step: int, ledger: UsageLedger | None
    ) -> _Observation:
        """Run one tool call; errors become observations for the model, not crashes."""
        tool = self.tools.get(call.name)
        if tool is None:
            return _Observation(
                text=f"error: no tool named {call.name!r}; available: {sorted(self.tools)}",
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
        listed = "\n".join(f"- {f}" for f in facts.values())
        head = f"{instructions}\n\nFacts (verbatim):\n{listed}".lstrip() if facts else instructions
        self.messages = [Message(role="system", content=head)]
        if memory is not None:
            self.shadowed = {k: memory.facts[k] for k in self.pinned if k in memory.facts}
            for key, fact in self.pinned.items():
                memory.pin(key, fact)
        self.add(Message(role="user", content=goal))

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


def _counted(reply: ModelReply, messages: list[Message]) -> ModelReply:
    """The reply with estimated token counts when the model reported none."""
    if reply.prompt_tokens or reply.completion_tokens:
        return reply
    completion = estimate_tokens(reply.content) + sum(
        estimate_tokens(json.dumps(c.arguments, default=str)) for c in reply.tool_calls
    )
    return reply.model_copy(
        update={
            "prompt_tokens": estimate_message_tokens(messages),
            "completion_tokens": completion,
            "usage_estimated": True,
        }
    )

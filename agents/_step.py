"""A step as its worker sees it, and the state of one run in one process.

``StepContext`` is what a worker gets (its step, inputs, feedback, and the run's
services: journaled calls, effects, charges); ``_Run`` and ``_Tally`` are the
executor's bookkeeping of a run and of each step's attempts. The executor itself
(scheduling, planning, recovery, resume) is in ``_executor``.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from ._checkpoint import (
    CheckpointStore,
    Decision,
    PendingAction,
    RunRecord,
    RunStatus,
    StepRecord,
    StepStatus,
)
from ._errors import (
    ActionRejected,
    Interrupted,
)
from ._guards import RunGuard, fingerprint
from ._plan import Plan, Step
from ._registry import Registry
from ._trace import (
    STEP_ID,
    TOOL_NAME,
    Span,
    Tracer,
)
from ._usage import UsageRecord

PLANNER = "planner"
"""The agent a run's planning model calls are charged to (``Limits.agent_budgets[PLANNER]``)."""
PLANNING = "@plan"
"""The step record of a run's planning (no plan step can have this id: step ids have no ``@``)."""


class Verdict(BaseModel):
    """A critic's judgement of one output."""

    ok: bool
    critique: str = ""


class Critic(Protocol):
    """Checks a step's output against its acceptance criteria."""

    async def review(self, step: Step, output: Any) -> Verdict:
        """Pass or fail, with what is wrong."""
        ...


class RuleCritic:
    """The default critic: checks each criterion's ``must_contain``/``must_match`` rules."""

    async def review(self, step: Step, output: Any) -> Verdict:
        """Fail with every unmet rule, or pass."""
        text = output if isinstance(output, str) else json.dumps(output, default=str)
        problems = [p for c in step.criteria if (p := c.check(text)) is not None]
        return Verdict(ok=not problems, critique="; ".join(problems))


class Hitl(BaseModel):
    """When a run stops for a human.

    Attributes:
        value_threshold: an action whose value is above this needs approval, even if reversible.
        review_failures: a step that failed every other recovery goes to a human
            (approve accepts its last output, reject ends the run as rejected).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    value_threshold: int | None = None
    review_failures: bool = False


class RunOutcome(BaseModel):
    """How a run ended (or paused): status, outputs so far, and why.

    ``error`` is the exception that stopped it (a guard's, ``BudgetExceeded``,
    ``StepFailed``, ``ActionRejected``), kept for ``raise_for_status``.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    run_id: str
    status: RunStatus
    outputs: dict[str, Any] = Field(default_factory=dict)
    reason: str = ""
    error: Exception | None = Field(default=None, exclude=True)
    pending: list[PendingAction] = Field(default_factory=list)
    trace_hash: str = ""

    def raise_for_status(self) -> None:
        """Raise the stopping error, if the run did not finish."""
        if self.error is not None:
            raise self.error


class _Unresolved(Exception):
    def __init__(self, reason: str, output: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        self.output = output


class StepContext:
    """What a worker gets: its step, its inputs, the critic's feedback, and the run's services.

    Attributes:
        tokens: tokens this attempt was charged.
        usd: USD this attempt was charged.
        journal: this attempt's calls through ``once``, in order (JSON results).
    """

    def __init__(
        self,
        run: _Run,
        step: Step,
        agent: str,
        attempt: int,
        feedback: list[str],
        replay: list[dict[str, Any]] | None = None,
        usage: list[UsageRecord] | None = None,
        checkpoint: Callable[[], None] | None = None,
    ):
        self._run = run
        self.step = step
        self.agent = agent
        self.attempt = attempt
        self.feedback = feedback
        self.inputs: dict[str, Any] = {d: run.outputs[d] for d in step.depends_on}
        self.tokens = 0
        self.usd = Decimal(0)
        self.journal: list[dict[str, Any]] = []
        self._replay: deque[dict[str, Any]] = deque(replay or ())
        self._usage: list[UsageRecord] = usage if usage is not None else []
        self._checkpoint = checkpoint

    @property
    def run_id(self) -> str:
        """The run this step belongs to."""
        return self._run.record.run_id

    @property
    def guard(self) -> RunGuard:
        """The run's guards (step count, TTL, loops, budgets)."""
        return self._run.guard

    @property
    def tracer(self) -> Tracer:
        """The run's tracer."""
        return self._run.tracer

    @property
    def registry(self) -> Registry:
        """The run's agents (where a step's handoff targets named by name are found)."""
        return self._run.registry

    @property
    def value_threshold(self) -> int | None:
        """Actions worth more than this need a human's approval (None: no threshold)."""
        return self._run.hitl.value_threshold

    def prompt(self) -> str:
        """The task, its inputs and any critique, as one prompt for a model."""
        parts = [self.step.task]
        if self.step.args:
            parts.append(f"Arguments: {json.dumps(self.step.args, sort_keys=True)}")
        for dep, value in self.inputs.items():
            parts.append(
                f"Input from {dep}: {value if isinstance(value, str) else json.dumps(value)}"
            )
        if self.step.criteria:
            parts.append("Acceptance criteria: " + "; ".join(c.text for c in self.step.criteria))
        for note in self.feedback:
            parts.append(f"Your last attempt was not accepted: {note}")
        return "\n".join(parts)

    def charge(
        self,
        model: str,
        prompt_tokens: int,
        completion_tokens: int,
        agent: str | None = None,
        estimated: bool = False,
    ) -> None:
        """Charge a model call to this step's agent, then check the run's and the agent's budgets.

        Args:
            model: the model that answered (priced by the run's price table).
            prompt_tokens: tokens in.
            completion_tokens: tokens out.
            agent: charge another agent of the step (``"critic"``) instead.
            estimated: the counts are local estimates, not the server's (kept as such).

        Raises:
            BudgetExceeded: the run or (``AgentBudgetExceeded``) the agent is over budget.
        """
        who = agent or self.agent
        with self._charging():
            self.guard.charge(who, self.attempt, model, prompt_tokens, completion_tokens, estimated)

    def charge_usd(self, what: str, usd: Decimal) -> None:
        """Charge a cost in USD (a paid API, gas) to this step's agent, then check budgets."""
        with self._charging():
            self.guard.charge_usd(self.agent, self.attempt, what, usd)

    @contextmanager
    def _charging(self) -> Iterator[None]:
        """Keep the ledger records a charge adds (also when it then raises BudgetExceeded)."""
        records = self.guard.ledger.records
        first = len(records)
        try:
            yield
        finally:
            for record in records[first:]:
                self._usage.append(record)
                self.tokens += record.prompt_tokens + record.completion_tokens
                self.usd += record.usd

    async def once(self, kind: str, request: Any, call: Callable[[], Awaitable[Any]]) -> Any:
        """Run ``call``, or, in a resumed attempt, return what it returned before the pause.

        Each call is journaled (kind, a fingerprint of ``request``, the result as
        JSON) and the step's ``running`` record is checkpointed with it, so the
        journal survives a pause for a human and a crash alike; on resume
        (after either), calls made again in the same order with
        the same kind and request get their recorded result (as JSON) without
        running. From the first call that differs, everything runs for real.
        ``TracedModel`` (model calls) and ``guarded_tools`` (tool calls) use it.

        Args:
            kind: what is called (``"model"``, ``"tool NAME"``).
            request: what identifies the call (JSON-able: the messages, the arguments).
            call: does it; its result must be JSON-able to be replayed faithfully.
        """
        digest = fingerprint(request)
        if self._replay:
            entry = self._replay.popleft()
            if entry["kind"] == kind and entry["request"] == digest:
                self.journal.append(entry)
                return entry["result"]
            self._replay.clear()  # the attempt went another way: nothing after this matches
        result = await call()
        recorded = json.loads(json.dumps(result, default=str))
        self.journal.append({"kind": kind, "request": digest, "result": recorded})
        if self._checkpoint is not None:
            self._checkpoint()
        return result

    async def scope(self, kind: str, request: Any, call: Callable[[], Awaitable[Any]]) -> Any:
        """Like ``once``, for a call that makes journaled calls itself (a swarm's turn).

        The journal holds an open entry while ``call`` runs, followed by the
        calls it makes through ``once`` (so a pause or a crash inside it keeps
        them); when it returns, they are folded into its one entry with its
        result, and the step is checkpointed. On resume, a finished scope
        returns its recorded result without running; an unfinished one runs
        again and its calls replay from the journal.

        Args:
            kind: what is called (``"turn AGENT"``).
            request: what identifies the call (JSON-able).
            call: does it; its result must be JSON-able.
        """
        digest = fingerprint(request)
        if self._replay:
            first = self._replay.popleft()
            if first["kind"] != kind or first["request"] != digest:
                self._replay.clear()  # the attempt went another way
            elif not first.get("open"):
                self.journal.append(first)
                return first["result"]
        entry: dict[str, Any] = {"kind": kind, "request": digest, "open": True}
        self.journal.append(entry)
        inner = len(self.journal)
        result = await call()
        del self.journal[inner:]
        del entry["open"]
        entry["result"] = json.loads(json.dumps(result, default=str))
        if self._checkpoint is not None:
            self._checkpoint()
        return result

    def idempotency_key(self, action: str, args: Any) -> str:
        """The key of a side effect: the same run, step, action and arguments give the same key."""
        raw = f"{self.run_id}|{self.step.id}|{action}|{fingerprint(args)}"
        return "0x" + hashlib.sha256(raw.encode()).hexdigest()

    async def effect(
        self,
        action: str,
        fn: Callable[[str], Awaitable[Any]],
        args: Any = None,
        *,
        irreversible: bool = False,
        value: int | None = None,
    ) -> Any:
        """Do a side effect at most once per idempotency key, after approval where needed.

        ``fn`` gets the idempotency key (pass it on to whatever can dedupe, e.g. a
        contract's replay key). A completed effect is never repeated: on resume its
        recorded result is returned.

        Raises:
            Interrupted: it needs a human's approval that has not been given yet.
            ActionRejected: a human rejected it.
        """
        key = self.idempotency_key(action, args)
        store = self._run.store
        seen, result = store.effect(key)
        if seen:
            return result
        threshold = self._run.hitl.value_threshold
        above = value is not None and threshold is not None and value > threshold
        if irreversible or above:
            self._approval(key, action, args, "irreversible" if irreversible else "value", value)
        with self.tracer.span("tool " + action, key, **{TOOL_NAME: action, STEP_ID: self.step.id}):
            result = await fn(key)
        store.record_effect(key, self.run_id, result)
        return result

    def _approval(self, key: str, action: str, args: Any, kind: str, value: int | None) -> None:
        """Go on if a human approved; the decision's span was added when the run resumed."""
        decision = self._run.decisions.get(key)
        if decision is None:
            summary = f"{self.step.id}: {action}({json.dumps(args, default=str)[:120]})"
            detail = {"action": action, "args": args, "value": value}
            self._run.pending.append(
                PendingAction(
                    key=key, step_id=self.step.id, kind=kind, summary=summary, detail=detail
                )
            )
            raise Interrupted(key, kind, summary)
        if not decision.approved:
            raise ActionRejected(key, decision.note)


class _Run:
    """The mutable state of one run inside one process."""

    def __init__(
        self,
        record: RunRecord,
        store: CheckpointStore,
        guard: RunGuard,
        hitl: Hitl,
        registry: Registry | None = None,
    ):
        self.record = record
        self.store = store
        self.guard = guard
        self.hitl = hitl
        self.registry = registry or Registry()
        self.tracer = Tracer(record.run_id)
        self.outputs: dict[str, Any] = {}
        self.records: dict[str, StepRecord] = {}
        self.decisions: dict[str, Decision] = {}
        self.pending: list[PendingAction] = []
        self.tallies: dict[str, _Tally] = {}  # steps started and not (yet) done
        self.unsaved: list[StepRecord] = []  # done steps the scheduler has not committed yet
        self.saved_spans = 0  # how many of tracer.spans the store has

    @property
    def plan(self) -> Plan:
        assert self.record.plan is not None
        return self.record.plan


Ended = tuple[str, Any, BaseException | None]
_RESUMABLE = ("interrupted", "running")  # a step record whose attempt continues on resume
_step: contextvars.ContextVar[StepContext | None] = contextvars.ContextVar(
    "vouch_step", default=None
)


@contextmanager
def _within(ctx: StepContext) -> Iterator[None]:
    token = _step.set(ctx)
    try:
        yield
    finally:
        _step.reset(token)


def current_step() -> StepContext | None:
    """The step attempt the calling code runs in (its worker or its critic), if any.

    A critic gets only the step and the output; through this it can charge and
    trace its own model calls (``ModelCritic`` does).
    """
    return _step.get()


Ending = tuple[RunStatus, str, BaseException | None]


class _Tally:
    """What one step took over all its attempts, and where it stands."""

    __slots__ = (
        "agent",
        "attempts",
        "feedback",
        "journal",
        "note",
        "output",
        "replay",
        "spans",
        "started",
        "status",
        "usage",
    )

    def __init__(self, spans: list[Span], started: float) -> None:
        self.spans = spans
        self.started = started
        self.attempts = 0
        self.usage: list[UsageRecord] = []
        self.feedback: list[str] = []
        self.output: Any = None
        self.agent = ""
        self.journal: list[dict[str, Any]] = []
        self.replay: list[dict[str, Any]] | None = None  # the interrupted attempt's journal
        self.status: StepStatus = "stopped"  # until the step says otherwise
        self.note = ""

    def restore(self, record: StepRecord) -> None:
        """Carry over what the step spent and traced; continue an interrupted attempt."""
        self.usage = list(record.usage)
        self.spans[:0] = [Span.from_otel(s) for s in record.spans]
        self.started = record.started_at or self.started
        if record.status in _RESUMABLE:
            self.attempts = record.attempts - 1
            self.feedback = list(record.feedback)
            self.replay = list(record.journal)

    def record(self, step_id: str, status: StepStatus, output: Any, elapsed: float) -> StepRecord:
        """The step's checkpoint record."""
        return StepRecord(
            step_id=step_id,
            status=status,
            output=output,
            agent=self.agent,
            attempts=self.attempts,
            tokens=sum(u.prompt_tokens + u.completion_tokens for u in self.usage),
            usd=sum((u.usd for u in self.usage), Decimal(0)),
            started_at=self.started,
            finished_at=time.time(),
            note=self.note,
            usage=self.usage,
            run_elapsed=elapsed,
            feedback=self.feedback if status in _RESUMABLE else [],
            journal=self.journal if status in _RESUMABLE else [],
            spans=[s.to_otel() for s in self.spans],
        )


def _carried(run_id: str, record: StepRecord) -> UsageRecord:
    """A ledger record carrying the usage of a step saved without its charges (older records)."""
    return UsageRecord(
        run_id=run_id,
        agent=record.agent,
        step=0,
        kind="model",
        name=f"resumed:{record.step_id}",
        prompt_tokens=record.tokens,
        usd=record.usd,
    )

"""Exceptions raised by agents.

The tree::

    AgentError
    ├── ToolError            a tool call failed or its arguments did not validate
    │   └── RepairFailed     the model kept sending invalid arguments after its repair attempts
    ├── ModelError           the model answered with something the loop cannot use
    │   └── ModelUnavailable the endpoint did not answer (timeouts, 429/5xx, connection) after retries
    ├── MaxStepsExceeded     the loop hit its step limit before the agent finished
    ├── BudgetExceeded       a run spent more USD or tokens than its budget allows
    ├── ModelConfigError     model settings are incomplete or unsafe (missing key, open secret file)
    └── VectorStoreError     a vector store cannot store or recall (dimension mismatch, bad filter)

The orchestration engine adds::

    AgentError
    ├── PlanError            a plan is not a valid DAG over known agents
    │   ├── PlanCycle        (the cycle, in order)
    │   ├── UnknownDependency
    │   └── UnknownAgent     (an agent or a capability nobody registered)
    ├── RunStopped           a guard stopped the run; the outcome keeps partial results and reason
    │   ├── RunStepLimit, RunTimedOut, HandoffDepthExceeded, LoopDetected
    │   └── LeaseLost    a worker's lease changed hands: its write was refused (fencing)
    ├── BudgetExceeded
    │   └── AgentBudgetExceeded  one agent over its own budget
    ├── StepFailed           a step failed after refinement, recovery and re-planning
    ├── Interrupted          paused for a human (caught by the executor)
    ├── ActionRejected       a human said no: a normal, recorded outcome
    └── CheckpointError      a checkpoint store cannot load or save
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any


class AgentError(Exception):
    """Root of every error raised by agents."""


class ToolError(AgentError):
    """A tool call failed, or its arguments did not validate."""


class RepairFailed(ToolError):
    """The model sent invalid tool arguments more often than its repair attempts allow."""

    def __init__(self, tool: str, attempts: int, last_error: str) -> None:
        super().__init__(
            f"model sent invalid arguments for {tool!r} {attempts} times in a row; "
            f"last error: {last_error}. Use a stronger model tier or simplify the tool's arguments"
        )
        self.tool = tool
        self.attempts = attempts
        self.last_error = last_error


class ModelError(AgentError):
    """The model answered with something the loop cannot use."""


class ModelUnavailable(ModelError):
    """The model endpoint failed on every attempt (timeout, rate limit, server error, connection)."""

    def __init__(self, model: str, base_url: str, attempts: int, reason: str) -> None:
        super().__init__(
            f"model {model!r} at {base_url} failed after {attempts} attempt(s): {reason}; "
            "check the endpoint is up, the key and the model name, or raise the timeout/retries"
        )
        self.model = model
        self.base_url = base_url
        self.attempts = attempts
        self.reason = reason


class MaxStepsExceeded(AgentError):
    """The agent did not finish within its step limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"agent did not finish within {limit} steps; raise max_steps or simplify the goal"
        )
        self.limit = limit


class BeforeSending:
    """Why a call was not sent: its worst case did not fit in what was left of a budget."""

    def __init__(
        self,
        call: str,
        usd: Decimal,
        tokens: int,
        left_usd: Decimal | None,
        left_tokens: int | None,
    ) -> None:
        self.call = call
        self.usd = usd
        self.tokens = tokens
        self.left_usd = left_usd
        self.left_tokens = left_tokens

    def __str__(self) -> str:
        left = []
        if self.left_usd is not None:
            left.append(f"USD {self.left_usd}")
        if self.left_tokens is not None:
            left.append(f"{self.left_tokens} tokens")
        return (
            f"not sent: the call ({self.call}) could cost up to USD {self.usd} and "
            f"{self.tokens} tokens, and only {' and '.join(left)} of the budget is left "
            "(after what was spent and what calls running now hold)"
        )


class BudgetExceeded(AgentError):
    """A run would go (or went) over its budget; the call that would cross it is not sent.

    ``before`` says why a call was not sent (its worst case did not fit); without
    it the budget was crossed by a call's actual usage (more than estimated).

    Attributes:
        run_id: the run that stopped.
        spent_usd: USD spent including the call that crossed the budget.
        budget_usd: the USD budget, or None if only tokens were limited.
        spent_tokens: tokens spent including that call.
        budget_tokens: the token budget, or None if only USD was limited.
    """

    def __init__(
        self,
        run_id: str,
        spent_usd: Decimal,
        budget_usd: Decimal | None,
        spent_tokens: int,
        budget_tokens: int | None,
        *,
        before: BeforeSending | None = None,
    ) -> None:
        over = []
        if budget_usd is not None and spent_usd > budget_usd:
            over.append(f"USD {spent_usd} > budget {budget_usd}")
        if budget_tokens is not None and spent_tokens > budget_tokens:
            over.append(f"tokens {spent_tokens} > budget {budget_tokens}")
        if before is not None:
            super().__init__(
                f"run {run_id!r} would go over budget ({'; '.join(over)}): {before}; "
                "raise the budget, lower max_tokens, use the small tier, or shorten the goal"
            )
        else:
            super().__init__(
                f"run {run_id!r} went over budget ({'; '.join(over)}); "
                "raise the budget, use the small tier, or shorten the goal"
            )
        self.before = before
        self.run_id = run_id
        self.spent_usd = spent_usd
        self.budget_usd = budget_usd
        self.spent_tokens = spent_tokens
        self.budget_tokens = budget_tokens


class ModelConfigError(AgentError):
    """Model settings are incomplete or unsafe."""


class VectorStoreError(AgentError):
    """A vector store cannot store or recall what was asked."""


# --- the orchestration engine (plan, executor, guards, checkpoints, HITL) ---


class PlanError(AgentError):
    """A plan is not a valid DAG over known agents (see the subclasses)."""


class PlanCycle(PlanError):
    """The plan's dependencies form a cycle."""

    def __init__(self, cycle: list[str]) -> None:
        super().__init__(
            f"plan has a dependency cycle: {' -> '.join(cycle)}; "
            "remove one of these dependencies so the steps form a DAG"
        )
        self.cycle = cycle


class UnknownDependency(PlanError):
    """A step depends on a step id the plan does not have."""

    def __init__(self, step: str, dependency: str, known: list[str]) -> None:
        super().__init__(
            f"step {step!r} depends on {dependency!r}, which is not a step of this plan; "
            f"steps are: {known}"
        )
        self.step = step
        self.dependency = dependency


class UnknownAgent(PlanError):
    """A step names an agent (or a capability) nobody in the registry has."""

    def __init__(self, step: str, wanted: str, known: list[str], what: str = "agent") -> None:
        super().__init__(
            f"step {step!r} asks for {what} {wanted!r}, which no registered agent provides; "
            f"known {what}s: {known}"
        )
        self.step = step
        self.wanted = wanted
        self.what = what


class RunStopped(AgentError):
    """A guard stopped a run; the run's outcome keeps the partial result and this reason.

    Attributes:
        partial: what a lone ``Agent`` run had done when it stopped (its ``AgentResult``);
            an engine run keeps its partial result in its outcome instead.
    """

    reason: str = "stopped"
    partial: Any = None


class RunStepLimit(RunStopped):
    """The run executed more steps (attempts, turns, tool calls) than its limit."""

    reason = "max_steps"

    def __init__(self, limit: int) -> None:
        super().__init__(f"run stopped after {limit} steps (max_steps); raise it or split the goal")
        self.limit = limit


class RunTimedOut(RunStopped):
    """The run exceeded its wall-clock time to live."""

    reason = "ttl"

    def __init__(self, ttl_seconds: float) -> None:
        super().__init__(f"run stopped: over its time to live of {ttl_seconds:g} s")
        self.ttl_seconds = ttl_seconds


class HandoffDepthExceeded(RunStopped):
    """Agents handed work to each other deeper than allowed."""

    reason = "handoff_depth"

    def __init__(self, depth: int, limit: int, path: list[str]) -> None:
        super().__init__(
            f"run stopped: handoff depth {depth} > {limit} ({' -> '.join(path)}); "
            "agents keep passing the work on instead of doing it"
        )
        self.depth = depth
        self.limit = limit
        self.path = path


class LoopDetected(RunStopped):
    """The same agent/action/arguments kept repeating, or the state stopped changing."""

    reason = "loop"

    def __init__(self, kind: str, detail: str, repeats: int) -> None:
        super().__init__(f"run stopped: loop detected ({kind}): {detail} x{repeats}")
        self.kind = kind
        self.detail = detail
        self.repeats = repeats


class AgentBudgetExceeded(BudgetExceeded):
    """One agent of a run went over its own budget."""

    def __init__(
        self,
        run_id: str,
        agent: str,
        spent_usd: Decimal,
        budget_usd: Decimal | None,
        spent_tokens: int,
        budget_tokens: int | None,
        *,
        before: BeforeSending | None = None,
    ) -> None:
        super().__init__(
            f"{run_id}/{agent}", spent_usd, budget_usd, spent_tokens, budget_tokens, before=before
        )
        self.agent = agent


class StepFailed(AgentError):
    """A step failed or missed its acceptance criteria after every recovery the run allows."""

    def __init__(self, step: str, reason: str) -> None:
        super().__init__(
            f"step {step!r} failed after refinement, recovery and re-planning: {reason}"
        )
        self.step = step
        self.reason = reason


class Interrupted(AgentError):
    """A run paused for a human decision (raised inside a step, caught by the executor)."""

    def __init__(self, key: str, kind: str, summary: str) -> None:
        super().__init__(
            f"waiting for a human: {summary} (record a decision with Executor.decide, then resume)"
        )
        self.key = key
        self.kind = kind
        self.summary = summary


class ActionRejected(AgentError):
    """A human rejected an action; the run records it as its outcome."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"action {key[:18]} rejected by a human: {reason or 'no reason given'}")
        self.key = key
        self.reason = reason


class CheckpointError(AgentError):
    """A checkpoint store cannot load or save what was asked (unknown run, wrong state)."""


class LeaseLost(RunStopped):
    """The worker's lease on a run changed hands: the store refused its write, and it must stop.

    Raised by a fenced store (``CheckpointStore.fenced``) when a write or an
    effect look-up comes from a worker whose lease is no longer the run's
    current one (it was paused past its ttl and another worker claimed the
    run). Nothing of the refused write was stored.

    Attributes:
        run_id, owner, epoch: the run and the stale worker's token.
        holder, holder_epoch, expires_at: the lease now on the run (None: nobody's).
    """

    reason = "lease lost"

    def __init__(
        self,
        run_id: str,
        owner: str,
        epoch: int,
        holder: str | None = None,
        holder_epoch: int | None = None,
        expires_at: float | None = None,
    ) -> None:
        if holder is None:
            now = "nobody holds it now"
        elif expires_at is not None and expires_at <= time.time():
            now = f"it was last held by {holder} (lease epoch {holder_epoch}, now ended)"
        else:
            now = f"it is now held by {holder} (lease epoch {holder_epoch})"
        super().__init__(
            f"lost the lease on run {run_id!r}: {owner} (lease epoch {epoch}) no longer holds "
            f"it; {now}. This worker's write was refused and nothing was stored; it stops "
            "work on the run"
        )
        self.run_id, self.owner, self.epoch = run_id, owner, epoch
        self.holder, self.holder_epoch, self.expires_at = holder, holder_epoch, expires_at

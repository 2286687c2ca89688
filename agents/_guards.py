"""Guards on every run: step limit, time to live, handoff depth, loop detection, budgets.

A ``RunGuard`` is shared by everything that acts within one run (the executor,
the agents' tools, the swarm's turns). Each limit raises its own error; the
executor turns it into the run's outcome, keeping the partial result.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import deque
from contextlib import AbstractContextManager
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ._errors import (
    AgentBudgetExceeded,
    HandoffDepthExceeded,
    LoopDetected,
    RunStepLimit,
    RunTimedOut,
)
from ._usage import Budget, PriceTable, UsageLedger, UsageRecord


class Limits(BaseModel):
    """What a run may do before a guard stops it.

    Attributes:
        max_steps: step attempts, swarm turns and guarded tool calls, all counted together.
        ttl_seconds: time to live of the run, in seconds of active time: the time
            it spent running, summed across resumes (persisted with the
            checkpoint). Time paused waiting for a human, or dead between a crash
            and its resume, does not count: a run should not time out because
            its approver was asleep.
        max_handoff_depth: how long a chain of handoffs may get: in a swarm, handoffs
            in a row without a new entry on the board; in an agent step, every
            handoff of the step's attempt (``Agent(handoffs=...)``).
        loop_repeats: the same (agent, action, arguments) this many times within
            ``loop_window`` recent actions of one scope (a step attempt; a swarm),
            with no new observation in between, is a loop.
        loop_window: how many recent actions of a scope loop detection looks at.
        stale_limit: this many actions in a row without the state changing is a
            loop. A swarm's state is its blackboard; an agent step's state is
            what its tool calls have observed (the set of distinct results), so
            calls that only return what the step already saw make no progress.
        budget: tokens/USD for the whole run.
        agent_budgets: tokens/USD per agent name.
        prices: how model tokens become USD (an unpriced model is an error, not free).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_steps: int = Field(default=1_000, gt=0)
    ttl_seconds: float = Field(default=3600.0, gt=0)
    max_handoff_depth: int = Field(default=8, ge=0)
    loop_repeats: int = Field(default=3, ge=2)
    loop_window: int = Field(default=12, ge=2)
    stale_limit: int = Field(default=6, ge=2)
    budget: Budget = Field(default_factory=Budget)
    agent_budgets: dict[str, Budget] = Field(default_factory=dict)
    prices: PriceTable = Field(default_factory=PriceTable)


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)
"""What ``json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)`` builds, once."""


def fingerprint(value: Any) -> str:
    """A short stable hash of a JSON-able value."""
    blob = _CANONICAL.encode(value)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def check_handoff_depth(path: list[str], limit: int) -> None:
    """Check a chain of handoffs (agent names, first to last) against ``limit`` handoffs.

    The one rule for a swarm's turns, an ``Agent``'s loop and an engine step.

    Raises:
        HandoffDepthExceeded: ``path`` holds more than ``limit`` handoffs.
    """
    depth = len(path) - 1
    if depth > limit:
        raise HandoffDepthExceeded(depth, limit, path)


class RunGuard:
    """Enforces ``Limits`` for one run.

    Args:
        run_id: the run.
        limits: the limits.
        ledger: the run's usage ledger (its budget should be ``limits.budget``).
        steps: steps already counted (when a run resumes).
        elapsed: active seconds the run already spent (when a run resumes).
    """

    def __init__(
        self,
        run_id: str,
        limits: Limits,
        ledger: UsageLedger | None = None,
        steps: int = 0,
        elapsed: float = 0.0,
    ) -> None:
        self.run_id = run_id
        self.limits = limits
        self.ledger = ledger or UsageLedger(run_id, limits.prices, limits.budget)
        for agent, budget in limits.agent_budgets.items():  # reservations check them too
            self.ledger.agent_budgets.setdefault(agent, budget)
        self.steps = steps
        self.started = time.monotonic() - elapsed
        self._recent: dict[str, deque[str]] = {}  # scope -> its recent action keys
        self._repeats: dict[tuple[str, str], int] = {}  # (scope, action key) -> stale repeats
        self._acting: dict[str, tuple[str, str, Any]] = {}  # scope -> the action being taken
        self._states: dict[str, tuple[str, int]] = {}  # scope -> (state digest, unchanged for)

    @property
    def elapsed(self) -> float:
        """Active seconds of the run so far, counting earlier resumes."""
        return time.monotonic() - self.started

    @property
    def deadline(self) -> float:
        """Monotonic time at which the run's TTL runs out."""
        return self.started + self.limits.ttl_seconds

    def tick(self) -> None:
        """Count one step; raise when over max_steps or the TTL.

        Raises:
            RunStepLimit, RunTimedOut.
        """
        self.steps += 1
        if self.steps > self.limits.max_steps:
            raise RunStepLimit(self.limits.max_steps)
        self.check_time()

    def check_time(self) -> None:
        """Raise RunTimedOut once the TTL has passed."""
        if time.monotonic() > self.deadline:
            raise RunTimedOut(self.limits.ttl_seconds)

    def handoff(self, path: list[str]) -> None:
        """Check a chain of handoffs (agent names, first to last).

        Raises:
            HandoffDepthExceeded: more handoffs than ``max_handoff_depth``.
        """
        check_handoff_depth(path, self.limits.max_handoff_depth)

    def observe(
        self, agent: str, action: str, args: Any, state: Any = None, scope: str = ""
    ) -> None:
        """Record one action of ``scope``; with ``state``, also the state it left (see below).

        A loop is the same agent taking the same action with the same arguments
        ``loop_repeats`` times among its scope's last ``loop_window`` actions, each
        repeat observing nothing new (the scope's state, ``observe_state``, left as
        it was). Scopes are apart: parallel steps each calling ``price(ETH/USD)``
        once are no loop, and neither is one step polling a value that changes.

        Args:
            agent: who acted.
            action: what it did (tool name, handoff target).
            args: with which arguments (JSON-able).
            state: the state after the action (JSON-able), or None when the caller
                reports it once the action has run (``observe_state``).
            scope: where it acted: a step attempt (``step ID/ATTEMPT``) or a swarm.

        Raises:
            LoopDetected: as above (``repeat``), or see ``observe_state``.
        """
        key = f"{agent}|{action}|{fingerprint(args)}"
        recent = self._recent.setdefault(scope, deque(maxlen=self.limits.loop_window))
        if key not in recent:  # not within the window: an earlier run of repeats is over
            self._repeats.pop((scope, key), None)
        recent.append(key)
        self._acting[scope] = (key, action, args)
        if state is not None:
            self.observe_state(agent, state, scope)

    def observe_state(self, agent: str, state: Any, scope: str = "") -> None:
        """Record the state of ``scope`` after an action of ``agent``.

        Args:
            agent: who acted.
            state: the state after the action (JSON-able): a swarm's board; what a
                step's tool calls have observed (the set of distinct results).
            scope: whose state: ``""`` for a swarm run alone, a step attempt's id for
                a step (concurrent steps each keep their own).

        Raises:
            LoopDetected: the action just taken repeats one that saw nothing new
                (``repeat``), or ``stale_limit`` actions in a row left the state
                unchanged (``no-progress``).
        """
        digest = fingerprint(state)
        last, stale = self._states.get(scope, ("", 0))
        unchanged = digest == last
        stale = stale + 1 if unchanged else 0
        self._states[scope] = (digest, stale)
        where = f" in {scope}" if scope else ""
        acting = self._acting.pop(scope, None)
        if acting is not None:
            key, action, args = acting
            repeats = self._repeats.get((scope, key), -1) + 1 if unchanged else 0
            self._repeats[(scope, key)] = repeats
            if repeats + 1 >= self.limits.loop_repeats:
                raise LoopDetected(
                    "repeat",
                    f"{agent} -> {action}({_short(args)}){where}, observing nothing new",
                    repeats + 1,
                )
        if stale >= self.limits.stale_limit:
            raise LoopDetected("no-progress", f"state unchanged{where}, last by {agent}", stale)

    def check_budget(self, agent: str | None = None) -> None:
        """Raise BudgetExceeded (run) or AgentBudgetExceeded (``agent``) when over budget."""
        self.ledger.check()
        budget = self.limits.agent_budgets.get(agent) if agent else None
        if agent is None or budget is None:
            return
        spent = self.ledger.by_agent().get(agent)
        if spent is None:
            return
        over_usd = budget.usd is not None and spent.usd > budget.usd
        over_tokens = budget.tokens is not None and spent.tokens > budget.tokens
        if over_usd or over_tokens:
            raise AgentBudgetExceeded(
                self.run_id, agent, spent.usd, budget.usd, spent.tokens, budget.tokens
            )

    def reserve(
        self, agent: str, model: str, prompt_tokens: int, max_tokens: int
    ) -> AbstractContextManager[None]:
        """Hold a model call's worst case against the run's and ``agent``'s budgets while it runs.

        Raises:
            BudgetExceeded: (``AgentBudgetExceeded``) it does not fit; the call must not be sent.
        """
        return self.ledger.reserve(agent, model, prompt_tokens, max_tokens)

    def charge(
        self,
        agent: str,
        step: int,
        model: str,
        prompt: int,
        completion: int,
        estimated: bool = False,
    ) -> UsageRecord:
        """Charge one model call (``model``: the configured name) and check both budgets."""
        try:
            return self.ledger.charge_model(agent, step, model, prompt, completion, estimated)
        finally:
            self.check_budget(agent)

    def charge_usd(self, agent: str, step: int, what: str, usd: Decimal) -> UsageRecord:
        """Charge a cost in USD (a paid tool) and check both budgets."""
        try:
            return self.ledger.charge_tool(agent, step, what, usd)
        finally:
            self.check_budget(agent)


def _short(args: Any) -> str:
    text = json.dumps(args, sort_keys=True, default=str)
    return text if len(text) <= 80 else text[:77] + "..."

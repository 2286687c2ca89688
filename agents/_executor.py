"""The executor: runs a Plan's steps concurrently as their dependencies finish.

The scheduling and each step's ladder are in ``_schedule.py`` (a mixin), the
step's context and the run's bookkeeping in ``_step.py``, the planner in ``_plan.py``;
this module starts, plans, re-plans, pauses, resumes and finishes runs.

For each step: route it to an agent, run the agent's worker with the outputs of
the step's dependencies, let the critic check the output against the step's
acceptance criteria, and on failure climb the ladder: refine (up to
``refine_rounds`` more attempts, each told what was wrong), then the recovery
agent (given the failure and its context), then re-plan the rest of the goal
(``max_replans``), then a human (``Hitl.review_failures``), else the run fails.

Every finished step is checkpointed before its dependents start: the steps that
finish together (a wave of a fan-out) are committed together, in one
``CheckpointStore.batch()``, then their dependents are released. Side effects go
through ``StepContext.effect``: an idempotency key per (run, step, action,
arguments), a human's approval first when the action is irreversible or above
the value threshold. A run that pauses for a human or is killed resumes with
``Executor.resume(run_id)``, possibly in another process.

Resuming exactly there: while a step runs, its model calls and tool results go
through ``StepContext.once`` and are journaled in order; after each, the step's
``running`` record (journal, spans, what it spent) is checkpointed. When the
step is interrupted for a human, the record becomes ``interrupted``. On resume
(after a pause or a crash) the step starts its unfinished attempt again and
every call that matches the journal gets its recorded result without running
(no model call repeats, nothing is charged twice), up to the approved action,
which then runs. The pre-interrupt spans stay in the run's trace once, followed
by one ``hitl.decision`` span per decision (approver, decision, time). A call
cut short by a crash (a model call or a tool still running) runs again. A call
that makes calls itself (a swarm's turn, ``StepContext.scope``) is journaled as
one entry once it returns; until then its calls are, so it resumes inside.

The run's trace is bound while it executes (``current_trace_hash()``), so an
``ActionProposal`` built in a step carries the hash of the spans that led to it.

Planning is part of the run. Given a goal, ``run`` saves the run first and then
plans inside it: a ``plan`` span whose model calls are ``chat`` spans charged to
the agent ``"planner"`` (``PLANNER``), so the run's and the planner's budgets
apply, ``store.usage`` counts the tokens, and the trace hash (the run's, and
every later proposal's) binds the plan. The planning call is checkpointed like
a step (the record ``"@plan"``, ``PLANNING``: journal while it runs, the plan
when done), so a run killed while planning resumes by replaying the journaled
model calls, and one killed after it does not plan again. A re-plan is the
same inside its ``decision replan`` span (records ``"@replan.N"``).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from ._checkpoint import (
    CheckpointStore,
    Decision,
    MemoryCheckpointStore,
    PendingAction,
    RunRecord,
    RunStatus,
    StepRecord,
)
from ._errors import (
    ActionRejected,
    AgentError,
    BudgetExceeded,
    CheckpointError,
    Interrupted,
    PlanError,
    RunStopped,
    StepFailed,
)
from ._guards import Limits, RunGuard, fingerprint
from ._model import ChatModel
from ._plan import Plan, Planner, Step
from ._registry import Registry, Worker
from ._schedule import _Scheduling
from ._step import (
    PLANNER,
    PLANNING,
    Critic,
    Ending,
    Hitl,
    RuleCritic,
    RunOutcome,
    StepContext,
    _carried,
    _Run,
    _Unresolved,
    _within,
)
from ._trace import (
    ACTION_KEY,
    AGENT_NAME,
    APPROVER,
    DECIDED_AT,
    DECISION,
    OPERATION,
    OUTPUT_HASH,
    RESUMED,
    RUN_ID,
    STEP_ID,
)
from ._usage import UsageLedger


class Executor(_Scheduling):
    """Runs plans: concurrently, bounded, checkpointed, with reflection and humans in the loop.

    Args:
        agents: a Registry, or a plain mapping of agent name to worker.
        store: where runs are checkpointed (default: in memory).
        limits: the guards' limits for every run.
        concurrency: how many steps may run at once.
        critic: checks outputs against acceptance criteria (default: RuleCritic).
        refine_rounds: extra attempts a failed step gets, each told what was wrong.
        recovery: a worker given the failure and its context once refinement is exhausted.
        planner: re-plans the rest of the goal when a step cannot be fixed.
        max_replans: how often a run may re-plan.
        hitl: when a human is asked.
        entrypoint: ``"module:function"`` recorded with each run so another process
            (an approval command, for one) can rebuild this executor and resume.
    """

    def __init__(
        self,
        agents: Registry | Mapping[str, Worker],
        store: CheckpointStore | None = None,
        limits: Limits | None = None,
        concurrency: int = 16,
        critic: Critic | None = None,
        refine_rounds: int = 2,
        recovery: Worker | None = None,
        planner: Planner | None = None,
        max_replans: int = 1,
        hitl: Hitl | None = None,
        entrypoint: str | None = None,
    ) -> None:
        self.registry = Registry.of(agents)
        self.store = store or MemoryCheckpointStore()
        self.limits = limits or Limits()
        self.concurrency = concurrency
        self.critic: Critic = critic or RuleCritic()
        self.refine_rounds = refine_rounds
        self.recovery = recovery
        self.planner = planner
        self.max_replans = max_replans
        self.hitl = hitl or Hitl()
        self.entrypoint = entrypoint

    async def run(self, plan: Plan | str, run_id: str | None = None) -> RunOutcome:
        """Run a plan, or plan a goal within the run with the planner, to its outcome.

        Given a goal, the run exists before its plan: the planning is the run's
        first span, charged to ``PLANNER`` and checkpointed (see the module's
        docstring); a planner that makes no valid plan ends the run ``failed``
        with the ``PlanError`` (or the model's ``AgentError``), a budget or guard it
        trips ends it ``stopped``.

        Raises:
            PlanError: the plan is not a valid DAG over the registered agents, or
                a goal was given and there is no planner.
        """
        run_id = run_id or uuid.uuid4().hex[:12]
        if isinstance(plan, str):
            return await self._run_goal(plan, run_id)
        self._validate(plan)
        record = RunRecord(run_id=run_id, goal=plan.goal, plan=plan, entrypoint=self.entrypoint)
        self.store.save_run(record)
        return await self._execute(self._new_run(record, steps=0, elapsed=0.0))

    async def _run_goal(self, goal: str, run_id: str) -> RunOutcome:
        if self.planner is None:
            raise PlanError("a goal without a plan needs a planner; pass planner=")
        record = RunRecord(run_id=run_id, goal=goal, entrypoint=self.entrypoint)
        self.store.save_run(record)
        return await self._execute(self._new_run(record, steps=0, elapsed=0.0))

    async def resume(self, run_id: str) -> RunOutcome:
        """Continue a run from its checkpoint: finished steps are not run again.

        Decisions recorded since the run paused (``decide``) apply now, each
        traced as a ``hitl.decision`` span. An interrupted step continues its
        attempt, replaying its journal (see the module's docstring). The TTL
        counts the active time of the run before the pause.

        Raises:
            CheckpointError: the run is unknown or already finished.
        """
        record = self.store.load_run(run_id)
        if record.status not in ("running", "interrupted"):
            raise CheckpointError(f"run {run_id} is {record.status}; only unfinished runs resume")
        if record.plan is None and self.planner is None:
            raise CheckpointError(f"run {run_id} has no plan yet; resume it with a planner=")
        records = self.store.load_steps(run_id)
        steps = max(record.steps_executed, sum(r.attempts for r in records.values()))
        elapsed = max([record.active_seconds, *(r.run_elapsed for r in records.values())])
        record.resumes += 1
        run = self._new_run(record, steps, elapsed)
        self._restore_steps(run, records)
        self._restore_trace(run, records)
        self._trace_decisions(run, record.pending)
        review = self._apply_reviews(run, record.pending)
        if review is not None:
            return self._finish(run, *review)
        record.status, record.pending = "running", []
        return await self._execute(run)

    def decide(self, run_id: str, key: str, approved: bool, note: str = "", by: str = "") -> None:
        """Record a human's decision on a pending action of a paused run."""
        record = self.store.load_run(run_id)
        if all(p.key != key for p in record.pending):
            raise CheckpointError(f"run {run_id} has no pending action {key}")
        self.store.save_decision(run_id, Decision(key=key, approved=approved, note=note, by=by))

    def _validate(self, plan: Plan, done: set[str] | None = None) -> None:
        caps = self.registry.capabilities
        plan.check(set(self.registry.cards), caps, done or ())

    def _new_run(self, record: RunRecord, steps: int, elapsed: float) -> _Run:
        ledger = UsageLedger(record.run_id, self.limits.prices, self.limits.budget)
        guard = RunGuard(record.run_id, self.limits, ledger, steps, elapsed)
        run = _Run(record, self.store, guard, self.hitl, self.registry)
        run.decisions = self.store.load_decisions(record.run_id)
        return run

    @staticmethod
    def _restore_steps(run: _Run, records: dict[str, StepRecord]) -> None:
        """Finished steps' outputs; every step's charges back in the ledger (for the budgets)."""
        for r in records.values():
            run.records[r.step_id] = r
            if r.status == "done" and not r.step_id.startswith("@"):  # not a planning record
                run.outputs[r.step_id] = r.output
            carried = [_carried(run.record.run_id, r)] if r.tokens or r.usd else []
            run.guard.ledger.records.extend(r.usage or carried)

    def _restore_trace(self, run: _Run, records: dict[str, StepRecord]) -> None:
        """The saved trace, then spans of steps finished after it was saved (a killed run)."""
        saved = self.store.load_trace(run.record.run_id)
        run.tracer.extend(saved)
        run.saved_spans = len(saved)
        known = {s["spanId"] for s in saved}
        for record in sorted(records.values(), key=lambda r: r.finished_at):
            later = [s for s in record.spans if s["spanId"] not in known]
            known.update(s["spanId"] for s in later)
            run.tracer.extend(later)

    def _trace_decisions(self, run: _Run, pending: list[PendingAction]) -> None:
        """One ``hitl.decision`` span per decided pending action: who, what, when."""
        for action in pending:
            decision = run.decisions.get(action.key)
            if decision is not None:
                run.tracer.event(
                    "hitl.decision",
                    action.key,
                    **{
                        ACTION_KEY: action.key,
                        STEP_ID: action.step_id,
                        DECISION: "approved" if decision.approved else "rejected",
                        APPROVER: decision.by,
                        DECIDED_AT: decision.at,
                    },
                )

    def _apply_reviews(self, run: _Run, pending: list[PendingAction]) -> Ending | None:
        """Human decisions on failed steps: approve keeps the last output, reject ends the run."""
        for action in (p for p in pending if p.kind == "review"):
            decision = run.decisions.get(action.key)
            if decision is None:
                continue
            if not decision.approved:
                error = ActionRejected(action.key, decision.note)
                return "rejected", f"rejected by a human: {decision.note}", error
            failed = run.records.get(action.step_id)
            update = {"status": "done", "output": action.detail.get("output")}
            record = (
                failed.model_copy(update=update)
                if failed is not None
                else StepRecord(step_id=action.step_id, **update)
            )
            self._save_step(run, record.model_copy(update={"note": "approved by a human"}))
        return None

    async def _execute(self, run: _Run) -> RunOutcome:
        with run.tracer.bind():
            key = str(run.record.resumes)
            with run.tracer.span("run", key, **{RUN_ID: run.record.run_id}):
                try:
                    ending = await self._drive(run)
                except (RunStopped, BudgetExceeded) as exc:
                    reason = getattr(exc, "reason", "budget")
                    ending = "stopped", f"{reason}: {exc}", exc
            return self._finish(run, *ending)

    async def _drive(self, run: _Run) -> Ending:
        if run.record.plan is None:
            unplanned = await self._plan_goal(run)
            if unplanned is not None:
                return unplanned
        if not run.plan.steps:  # a planner declared the goal done, with its reason
            return "done", f"nothing to do: {run.plan.done_reason}", None
        while True:
            ended = await self._schedule(run)
            if ended is None:
                return "done", f"all {len(run.plan.steps)} steps done", None
            step_id, reason, error = ended
            if isinstance(error, Interrupted):
                return self._pause(run)
            if isinstance(error, ActionRejected):
                return "rejected", f"rejected by a human: {error.reason}", error
            if isinstance(error, RunStopped | BudgetExceeded):
                raise error
            try:
                replanned = await self._replan(run, step_id, str(reason))
            except (RunStopped, BudgetExceeded):
                raise
            except AgentError as exc:  # no valid plan, the model failed or has no price
                return "failed", f"re-planning after step {step_id} failed: {exc}", exc
            if replanned:
                continue
            if self.hitl.review_failures:
                self._ask_review(run, step_id, str(reason), error)
                return self._pause(run)
            failure = StepFailed(step_id, str(reason))
            return "failed", str(failure), failure

    async def _plan_goal(self, run: _Run) -> Ending | None:
        """Plan the run's goal in a ``plan`` span; a plan made before a crash is not made again."""
        planner, goal = self.planner, run.record.goal
        assert planner is not None  # run() and resume() make sure
        made = run.records.get(PLANNING)
        attrs = {OPERATION: "invoke_agent", AGENT_NAME: PLANNER, RUN_ID: run.record.run_id}
        try:
            if made is not None and made.status == "done":
                plan = Plan.model_validate(made.output)
            else:
                plan = await asyncio.create_task(
                    self._plan_in(
                        run,
                        PLANNING,
                        "plan",
                        "",
                        attrs,
                        lambda m: planner.plan(goal, model=m),
                        set(),
                    )
                )
        except (RunStopped, BudgetExceeded):
            raise
        except AgentError as exc:  # no valid plan, the model failed or has no price
            return "failed", f"planning failed: {exc}", exc
        run.record.plan = plan
        run.record.updated_at = time.time()
        self.store.save_run(run.record)
        return None

    async def _plan_in(
        self,
        run: _Run,
        record_id: str,
        name: str,
        key: str,
        attrs: dict[str, Any],
        make: Callable[[ChatModel], Awaitable[Plan]],
        done: set[str],
    ) -> Plan:
        """Make and validate a plan as the agent ``PLANNER``: traced, charged, journaled.

        Callers run it in a task of its own, so its spans are collected apart, as a step's.

        Checkpointed like a step attempt under ``record_id``: ``running`` with its
        journal after each model call (a resumed run replays them), ``done`` with
        the plan; left in ``run.tallies`` when it raises, so the run's end saves it
        (``stopped`` by a guard or a budget, ``failed`` by any other ``AgentError``).
        """
        from ._workers import TracedModel  # _workers builds on this module

        assert self.planner is not None
        step = Step.model_construct(id=record_id, task=run.record.goal, agent=PLANNER)
        tally = self._tally(run, step)
        replay, tally.replay = tally.replay, None
        tally.attempts += 1
        tally.agent = PLANNER

        def checkpoint() -> None:
            self._save_planning(run, tally.record(record_id, "running", None, run.guard.elapsed))

        ctx = StepContext(run, step, PLANNER, tally.attempts, [], replay, tally.usage, checkpoint)
        tally.journal = ctx.journal
        if replay is not None:
            key, attrs = f"{key}/resume{run.record.resumes}", {**attrs, RESUMED: True}
        with run.tracer.span(name, key, **attrs) as span, _within(ctx):
            try:
                plan = await make(TracedModel(self.planner.model, ctx, PLANNER))
                self._validate(plan, done)
            except (RunStopped, BudgetExceeded):
                raise
            except AgentError:
                tally.status = "failed"
                raise
            span.set(OUTPUT_HASH, fingerprint(plan.model_dump(mode="json")))
        run.tallies.pop(record_id, None)
        output = plan.model_dump(mode="json")
        self._save_planning(run, tally.record(record_id, "done", output, run.guard.elapsed))
        return plan

    @staticmethod
    def _save_planning(run: _Run, record: StepRecord) -> None:
        """Save a planning record (never one of the run's outputs)."""
        run.records[record.step_id] = record
        run.store.save_step(run.record.run_id, record)

    async def _replan(self, run: _Run, step_id: str, reason: str) -> bool:
        planner = self.planner
        if planner is None or run.record.replans >= self.max_replans:
            return False
        done = {k: json.dumps(v, default=str) for k, v in run.outputs.items()}
        old = run.plan
        attrs = {STEP_ID: step_id, DECISION: "replan", AGENT_NAME: PLANNER}
        plan = await asyncio.create_task(
            self._plan_in(
                run,
                f"@replan.{run.record.replans + 1}",
                "decision replan",
                step_id,
                attrs,
                lambda m: planner.replan(old, done, step_id, reason, model=m),
                set(run.outputs),
            )
        )
        run.record.plan = plan
        run.record.replans += 1
        run.record.updated_at = time.time()
        self.store.save_run(run.record)
        return True

    def _ask_review(
        self, run: _Run, step_id: str, reason: str, error: BaseException | None
    ) -> None:
        output = error.output if isinstance(error, _Unresolved) else None
        key = "0x" + hashlib.sha256(f"{run.record.run_id}|{step_id}|review".encode()).hexdigest()
        detail = {"reason": reason, "output": output}
        run.pending.append(
            PendingAction(
                key=key,
                step_id=step_id,
                kind="review",
                summary=f"{step_id} failed: {reason}",
                detail=detail,
            )
        )

    def _pause(self, run: _Run) -> Ending:
        run.record.pending = list({p.key: p for p in run.pending}.values())
        summary = "; ".join(p.summary for p in run.record.pending)
        return "interrupted", f"waiting for a human: {summary}", None

    def _finish(
        self, run: _Run, status: RunStatus, reason: str, error: BaseException | None
    ) -> RunOutcome:
        """Record the run's end (or pause): unfinished steps, the trace, the header."""
        elapsed = run.guard.elapsed
        record = run.record
        record.status, record.reason = status, reason
        record.error = type(error).__name__ if error is not None else ""
        record.steps_executed = run.guard.steps
        record.active_seconds = elapsed
        record.trace_hash = run.tracer.trace_hash()
        record.updated_at = time.time()
        with run.store.batch():  # one commit: the last steps, the trace, the header
            self._flush(run)
            for step_id, tally in run.tallies.items():
                self._save_step(run, tally.record(step_id, tally.status, None, elapsed))
            run.tallies.clear()
            run.store.append_trace(
                run.record.run_id, [s.to_otel() for s in run.tracer.spans[run.saved_spans :]]
            )
            run.saved_spans = len(run.tracer.spans)
            self.store.save_run(record)
        return RunOutcome(
            run_id=record.run_id,
            status=status,
            outputs=dict(run.outputs),
            reason=reason,
            error=error if isinstance(error, Exception) else None,
            pending=list(record.pending),
            trace_hash=record.trace_hash,
        )

"""Scheduling: a plan's steps run concurrently as their dependencies finish.

``_Scheduling._schedule`` releases the steps whose dependencies are done, at most
``concurrency`` at once, under the run's TTL; the steps that finish together (a
wave of a fan-out) are committed in one ``CheckpointStore.batch()`` (``_flush``)
before any dependent starts. Each step climbs its ladder here: attempts by the
routed agent, each told what the critic found wrong (``refine_rounds``), then the
recovery worker; a step that stays unresolved is the scheduler's "problem", which
the executor (``agents/_executor.py``) answers by re-planning, asking a human or
failing the run. The step's context (journal, effects, tallies) is in ``_step.py``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from ._checkpoint import StepRecord
from ._errors import (
    ActionRejected,
    AgentError,
    BudgetExceeded,
    Interrupted,
    RunStopped,
    RunTimedOut,
)
from ._guards import Limits, fingerprint
from ._plan import Step
from ._registry import Registry, Worker
from ._step import Critic, Ended, StepContext, _Run, _Tally, _Unresolved, _within
from ._tools import call_maybe_sync
from ._trace import AGENT_NAME, ATTEMPT, DECISION, OUTPUT_HASH, RESUMED, STEP_ID, collect_spans


class _Scheduling:
    """The executor's scheduler and step ladder (a mixin of ``Executor``, which sets these)."""

    registry: Registry
    limits: Limits
    concurrency: int
    critic: Critic
    refine_rounds: int
    recovery: Worker | None

    async def _schedule(self, run: _Run) -> Ended | None:
        """Run the plan's unfinished steps; None when all are done, else the first problem."""
        plan = run.plan
        by_id = {s.id: s for s in plan.steps}
        waiting = {
            s.id: {d for d in s.depends_on if d not in run.outputs}
            for s in plan.steps
            if s.id not in run.outputs
        }
        children: dict[str, list[str]] = {}
        for sid, deps in waiting.items():
            for d in deps:
                children.setdefault(d, []).append(sid)
        ready = [sid for sid, deps in waiting.items() if not deps]
        queue: asyncio.Queue[Ended] = asyncio.Queue()
        loop = asyncio.get_running_loop()
        remaining = run.guard.deadline - time.monotonic()
        timer = loop.call_later(
            max(remaining, 0), queue.put_nowait, ("", "ttl", RunTimedOut(self.limits.ttl_seconds))
        )
        tasks: dict[str, asyncio.Task[None]] = {}
        problem: Ended | None = None
        try:
            while (ready and problem is None) or tasks:
                while ready and problem is None and len(tasks) < self.concurrency:
                    sid = ready.pop()
                    tasks[sid] = asyncio.create_task(self._step_task(run, by_id[sid], queue))
                ended = [await queue.get()]
                while not queue.empty():  # every step that finished meanwhile
                    ended.append(queue.get_nowait())
                self._flush(run)  # their records, one commit, before any dependent starts
                for sid, output, error in ended:
                    if isinstance(error, RunTimedOut):
                        raise error
                    tasks.pop(sid, None)
                    if error is not None:
                        if isinstance(error, RunStopped | BudgetExceeded):
                            raise error
                        problem = problem or (sid, output, error)
                        continue
                    for child in children.get(sid, ()):
                        deps = waiting[child]
                        deps.discard(sid)
                        if not deps:
                            ready.append(child)
        finally:
            timer.cancel()
            for task in tasks.values():
                task.cancel()
            self._flush(run)
        return problem

    def _flush(self, run: _Run) -> None:
        """Save the records of the steps that finished since the last flush, in one commit."""
        if run.unsaved:
            records, run.unsaved = run.unsaved, []
            with run.store.batch():
                for record in records:
                    self._save_step(run, record)

    async def _step_task(self, run: _Run, step: Step, queue: asyncio.Queue[Ended]) -> None:
        try:
            output = await self._run_step(run, step)
        except _Unresolved as exc:
            self._failed(run, step.id, exc.reason)
            queue.put_nowait((step.id, exc.reason, exc))
        except (Interrupted, ActionRejected, RunStopped, BudgetExceeded) as exc:
            queue.put_nowait((step.id, str(exc), exc))
        except AgentError as exc:
            self._failed(run, step.id, str(exc))
            queue.put_nowait((step.id, str(exc), exc))
        except Exception as exc:  # a worker's bug fails its step, not the engine
            self._failed(run, step.id, str(exc))
            queue.put_nowait((step.id, f"{type(exc).__name__}: {exc}", _Unresolved(str(exc), None)))
        else:
            queue.put_nowait((step.id, output, None))

    @staticmethod
    def _failed(run: _Run, step_id: str, note: str) -> None:
        tally = run.tallies.get(step_id)
        if tally is not None:
            tally.status, tally.note = "failed", note

    def _tally(self, run: _Run, step: Step) -> _Tally:
        """A new tally for the step, carrying over a saved or earlier one that did not finish."""
        tally = _Tally(collect_spans(), time.time())
        earlier = run.tallies.get(step.id)
        record = run.records.get(step.id)
        if earlier is not None:
            tally.usage, tally.spans[:0] = earlier.usage, earlier.spans
        elif record is not None and record.status != "done":
            tally.restore(record)
        run.tallies[step.id] = tally
        return tally

    async def _run_step(self, run: _Run, step: Step) -> Any:
        named = step.agent if step.agent in self.registry.cards else None  # no routing to do
        routed = named or (await self.registry.route(step)).agent
        tally = self._tally(run, step)
        while True:
            agent, worker, feedback = self._next_attempt(step, routed, tally)
            ok, output, note = await self._attempt(run, step, agent, worker, tally, feedback)
            if ok:
                return self._done(run, step, output, tally)
            tally.feedback.append(note)
            tally.output = output

    def _next_attempt(self, step: Step, agent: str, tally: _Tally) -> tuple[str, Worker, list[str]]:
        """Who makes the next attempt: the agent (refinement rounds), then the recovery agent.

        Raises:
            _Unresolved: both are exhausted.
        """
        attempt = tally.attempts + 1
        if attempt <= self.refine_rounds + 1:
            return agent, self.registry.workers[agent], list(tally.feedback)
        if attempt == self.refine_rounds + 2 and self.recovery is not None:
            context = (
                f"step {step.id} failed {tally.attempts} times; last problem: {tally.feedback[-1]}"
            )
            return "recovery", self.recovery, [*tally.feedback, context]
        raise _Unresolved(tally.feedback[-1], tally.output)

    async def _attempt(
        self, run: _Run, step: Step, agent: str, worker: Worker, tally: _Tally, feedback: list[str]
    ) -> tuple[bool, Any, str]:
        replay, tally.replay = tally.replay, None
        if replay is None:  # a resumed attempt was counted when it first started
            run.guard.tick()
        tally.attempts += 1
        tally.agent = agent

        def checkpoint() -> None:
            self._save_step(run, tally.record(step.id, "running", None, run.guard.elapsed))

        ctx = StepContext(
            run, step, agent, tally.attempts, list(feedback), replay, tally.usage, checkpoint
        )
        tally.journal = ctx.journal
        attrs: dict[str, Any] = {STEP_ID: step.id, AGENT_NAME: agent, ATTEMPT: tally.attempts}
        key = f"{step.id}/{tally.attempts}"
        if replay is not None:
            key, attrs[RESUMED] = f"{key}/resume{run.record.resumes}", True
        with run.tracer.span("step " + step.id, key, **attrs) as span, _within(ctx):
            try:
                output = await call_maybe_sync(worker, ctx)  # a sync worker: in a thread
            except (Interrupted, ActionRejected) as exc:
                tally.status = "interrupted" if isinstance(exc, Interrupted) else "rejected"
                tally.note = str(exc)
                raise
            except (RunStopped, BudgetExceeded):
                raise
            except Exception as exc:  # the critique of a crash is the crash
                span.status, span.status_message = "ERROR", str(exc)
                return False, None, f"{type(exc).__name__}: {exc}"
            span.set(OUTPUT_HASH, fingerprint(output))
            run.guard.check_budget(agent)
            if not step.criteria:
                return True, output, ""
            verdict = await self.critic.review(step, output)
            span.set(DECISION, "accepted" if verdict.ok else "refine")
            return verdict.ok, output, verdict.critique

    def _done(self, run: _Run, step: Step, output: Any, tally: _Tally) -> Any:
        """The step is done: its record waits for the scheduler's next commit (``_flush``)."""
        run.tallies.pop(step.id, None)
        run.unsaved.append(tally.record(step.id, "done", output, run.guard.elapsed))
        return output

    def _save_step(self, run: _Run, record: StepRecord) -> None:
        run.records[record.step_id] = record
        if record.status == "done":
            run.outputs[record.step_id] = record.output
        run.store.save_step(run.record.run_id, record)

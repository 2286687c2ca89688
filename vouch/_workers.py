"""Workers that share one run store: each takes runs by lease and drives them to an end.

``vouch runs submit GOAL`` saves a settlement run for the workers (status
``running``, no lease, no steps yet); ``vouch runs work`` on any number of
hosts claims runs one at a time (``RunLeases.claim_next``), renews the lease
while it drives the run (``LeaseKeeper``) and releases it when the run ends or
pauses for a human. A worker that dies stops renewing; once its lease expires
another worker claims the run and resumes it from its checkpoint: finished
steps are not run again, and recorded effects are not done again (their
idempotency keys; see ``agents._lease``).

With ``VOUCH_RUNS_URL`` and ``VOUCH_LOG_URL`` on one PostgreSQL server, the
workers may run on different hosts; with the SQLite defaults, in different
processes of one host.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from vouch.agents import (
    CheckpointStore,
    Executor,
    LeaseKeeper,
    RunLeases,
    RunOutcome,
    RunRecord,
    open_checkpoints,
    run_leases,
)

from ._flow import ENTRYPOINT, use_settings
from ._settings import VouchSettings

OnPause = Callable[[Executor, RunOutcome], bool]
"""Called when a run pauses for a human: decide (``executor.decide``) and return True to resume."""


def default_owner() -> str:
    """``host:pid``: names the worker in the lease table."""
    return f"{socket.gethostname()}:{os.getpid()}"


def submit(settings: VouchSettings, goal: str, run_id: str | None = None) -> RunRecord:
    """Save a settlement run for the workers to take (its plan is made by the worker)."""
    store = open_checkpoints(settings.runs_location)
    record = RunRecord(run_id=run_id or uuid.uuid4().hex[:12], goal=goal, entrypoint=ENTRYPOINT)
    store.save_run(record)
    _close(store)
    return record


@dataclass
class Worked:
    """One run a worker drove: how it ended and the lease it held."""

    outcome: RunOutcome
    owner: str
    epoch: int
    lost: bool


class Worker:
    """Takes runs by lease from the settings' run store and drives them.

    Args:
        settings: the home, ``runs_url``/``log_url``.
        owner: the name the lease carries (default ``host:pid``).
        ttl: lease seconds; renewed every ttl/3 while a run is driven.
        on_pause: decides for a run that pauses for a human (tests, bots); None
            leaves the run paused for ``vouch runs approve``.
    """

    def __init__(
        self,
        settings: VouchSettings,
        owner: str | None = None,
        ttl: float = 30.0,
        on_pause: OnPause | None = None,
    ) -> None:
        self.settings, self.owner, self.ttl = settings, owner or default_owner(), ttl
        self.on_pause = on_pause
        use_settings(settings)
        self.store: CheckpointStore = open_checkpoints(settings.runs_location)
        self.leases: RunLeases = run_leases(self.store)

    def work_one(self) -> Worked | None:
        """Claim one run nobody holds and drive it; None if there is none."""
        lease = self.leases.claim_next(self.owner, self.ttl)
        if lease is None:
            return None
        from ._runs import load_entrypoint

        run = self.store.load_run(lease.run_id)
        with LeaseKeeper(self.leases, lease, self.ttl) as keeper:
            executor = load_entrypoint(run.entrypoint or ENTRYPOINT)(self.store)
            outcome = asyncio.run(self._drive(executor, run.run_id))
        return Worked(outcome, self.owner, lease.epoch, keeper.lost.is_set())

    async def _drive(self, executor: Executor, run_id: str) -> RunOutcome:
        outcome = await executor.resume(run_id)
        while (
            outcome.status == "interrupted" and self.on_pause and self.on_pause(executor, outcome)
        ):
            outcome = await executor.resume(run_id)
        return outcome

    def work(
        self, *, runs: int | None = None, idle_exit: float | None = None, poll: float = 0.5
    ) -> list[Worked]:
        """Drive runs until ``runs`` are done or nothing came for ``idle_exit`` seconds."""
        done: list[Worked] = []
        idle_since = time.monotonic()
        while runs is None or len(done) < runs:
            worked = self.work_one()
            if worked is not None:
                done.append(worked)
                idle_since = time.monotonic()
                continue
            if idle_exit is not None and time.monotonic() - idle_since > idle_exit:
                break
            time.sleep(poll)
        return done

    def close(self) -> None:
        """Close the store's connections."""
        _close(self.leases, self.store)


def _close(*things: object) -> None:
    for thing in things:
        close = getattr(thing, "close", None)
        if callable(close):
            close()

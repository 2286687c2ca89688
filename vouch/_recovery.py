"""What a stopped run is waiting for, and how it ends: settled exactly once, or refunded.

A run's checkpoint says ``running`` both while a process drives it and after
that process was killed; the process driving a run holds an exclusive lock on
``<runs dir>/runs.locks/<run_id>`` (``RunLock``), so a run marked ``running``
whose lock is free was interrupted. ``describe`` turns a run's record, steps
and decisions into what ``vouch runs list`` shows; ``plan_resume`` says what
``vouch runs resume`` will do:

- ``resume``  the run continues from its checkpoint (a run killed at any
  point, a run whose decision was recorded but not acted on, a failed run
  whose trade can still settle): every side effect is idempotent, so nothing
  done is done twice.
- ``refund``  the trade can no longer settle (refused onchain, rejected by the
  approver, or past its deadline unsettled): it is refunded and logged once.
- ``nothing`` there is nothing left to do (settled; refunded; no escrow).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import ValidationError

from vouch.agents import CheckpointStore, RunRecord, StepRecord

from ._errors import VouchError

if TYPE_CHECKING:  # start-up (issue 19): _settlement brings web3; `runs list` needs neither
    from ._settlement import Escrow


class RunBusy(VouchError):
    """Another process is driving this run."""


class RunLock:
    """An exclusive, crash-safe lock on one run (released by the kernel when its process dies).

    Args:
        db: the run's checkpoint database; locks live next to it.
        run_id: the run.
    """

    def __init__(self, db: Path, run_id: str) -> None:
        self.path = db.parent / "runs.locks" / run_id
        self._fd: int | None = None

    def holder(self) -> int | None:
        """The pid of the process driving the run, or None if none is."""
        if not self.path.exists():
            return None
        fd = os.open(self.path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = self.path.read_text().strip()
            return int(text) if text.isdigit() else -1
        finally:
            os.close(fd)
        return None

    def acquire(self) -> None:
        """Take the lock.

        Raises:
            RunBusy: another live process holds it.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RunBusy(
                f"run {self.path.name} is being driven by process {self.holder()}; "
                "wait for it or stop it first"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def release(self) -> None:
        """Let go of the lock."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    @contextmanager
    def held(self) -> Iterator[None]:
        """Hold the lock for the block."""
        self.acquire()
        try:
            yield
        finally:
            self.release()


@dataclass
class Settlement:
    """A settlement run's escrow and settle step, as its checkpoint has them."""

    escrow: Escrow | None
    escrow_step: str | None
    outcome: dict[str, Any] | None
    settle_step: str | None


def settlement_of(run: RunRecord, steps: dict[str, StepRecord]) -> Settlement:
    """Find the escrow and the settle outcome by what the steps produced, whatever their ids."""
    from ._settlement import Escrow

    found = Settlement(None, None, None, None)
    for step_id, record in steps.items():
        if record.status != "done" or not isinstance(record.output, dict):
            continue
        try:
            found.escrow, found.escrow_step = Escrow.model_validate(record.output), step_id
            continue
        except ValidationError:
            pass
        if {"tx_hash", "status", "execution_id"} <= set(record.output):
            found.outcome, found.settle_step = record.output, step_id
    for step in run.plan.steps if run.plan else []:
        if step.agent == "settle":
            found.settle_step = found.settle_step or step.id
    return found


def escrow_key(run: RunRecord, steps: dict[str, StepRecord], found: Settlement) -> str | None:
    """The escrow's idempotency key (its parties derive from it), recorded or recomputed."""
    if found.escrow is None:
        return None
    if found.escrow.party_key:
        return found.escrow.party_key
    from vouch.agents._guards import fingerprint  # checkpoints from before party_key was recorded

    step = next(s for s in (run.plan.steps if run.plan else []) if s.id == found.escrow_step)
    raw = next(steps[d].output for d in step.depends_on if d in steps)
    import hashlib

    text = f"{run.run_id}|{step.id}|escrow|{fingerprint(raw)}"
    return "0x" + hashlib.sha256(text.encode()).hexdigest()


def unfinished_step(run: RunRecord, steps: dict[str, StepRecord]) -> str:
    """The step a stopped run was in: the first of its plan that is not done."""
    for step in run.plan.steps if run.plan else []:
        record = steps.get(step.id)
        if record is None or record.status != "done":
            return step.id
    return "planning" if run.plan is None else "its end"


def describe(store: CheckpointStore, run: RunRecord, lock: RunLock) -> str:
    """What the run is doing or waiting for, and the command that moves it on."""
    steps = store.load_steps(run.run_id)
    hint = f"`vouch runs resume {run.run_id}`"
    if run.status == "running":
        pid = lock.holder()
        if pid is not None:
            return f"running in process {pid}"
        step = unfinished_step(run, steps)
        return f"interrupted in step {step} (its process stopped); resume: {hint}"
    if run.status == "interrupted":
        decisions = store.load_decisions(run.run_id)
        open_ = [p for p in run.pending if p.key not in decisions]
        if open_:
            waiting = "; ".join(p.summary for p in open_)
            return f"waiting for a decision: {waiting}; `vouch runs approve|reject {run.run_id}`"
        pid = lock.holder()
        if pid is not None:
            return f"running in process {pid}"
        made = ", ".join(
            sorted({"approved" if d.approved else "rejected" for d in decisions.values()})
        )
        step = unfinished_step(run, steps)
        return f"{made}; interrupted in step {step} (its process stopped); resume: {hint}"
    found = settlement_of(run, steps)
    trade = f"trade #{found.escrow.job.trade_id}" if found.escrow else None
    if run.reason.startswith("refunded trade #"):
        return run.reason
    if run.status == "failed" and trade:
        step = unfinished_step(run, steps)
        return f"failed in step {step}: {run.reason}; {hint} settles {trade}, or refunds it"
    if run.status == "rejected" and trade:
        return f"{run.reason}; {trade} stays escrowed until refunded: {hint}"
    if found.outcome is not None and found.outcome.get("status") != "settled" and trade:
        error = found.outcome.get("error") or {}
        return f"{trade} {found.outcome.get('status')} ({error.get('name', '?')}): refund: {hint}"
    return run.reason


Next = Literal["resume", "refund", "nothing", "decide"]


def plan_resume(
    run: RunRecord, steps: dict[str, StepRecord], decided: set[str], trade: Any, now: int
) -> Next:
    """What ``vouch runs resume`` does with this run.

    Args:
        run: its record.
        steps: its step records.
        decided: keys of the pending actions a person has decided.
        trade: its trade onchain (a ``TradeView``), None if it escrowed none.
        now: the chain's time (a trade past its deadline can no longer settle).
    """
    if run.status == "interrupted" and any(p.key not in decided for p in run.pending):
        return "decide"
    if trade is not None and trade.status in ("Settled", "Refunded"):
        return "nothing" if run.status in ("done", "rejected", "failed") else "resume"
    if trade is not None and trade.escrowed:
        found = settlement_of(run, steps)
        refused = found.outcome is not None and found.outcome.get("status") != "settled"
        if run.status == "rejected" or refused or now > trade.deadline:
            return "refund"
        if run.status == "done":
            return "nothing"
    if run.status in ("running", "interrupted", "failed"):
        return "resume"
    return "nothing"


def find_escrow(store: CheckpointStore, trade_id: int, gate: str) -> tuple[RunRecord, str] | None:
    """The run that escrowed ``trade_id`` on ``gate`` and its escrow key, if a run of ``store`` did."""
    for run in store.list_runs():
        steps = store.load_steps(run.run_id)
        found = settlement_of(run, steps)
        escrow = found.escrow
        if escrow is None or escrow.job.trade_id != trade_id:
            continue
        if escrow.gate.lower() != gate.lower():
            continue
        key = escrow_key(run, steps, found)
        if key is not None:
            return run, key
    return None


@dataclass
class ChainParts:
    """What refunds and escrow reads need of a home: no DON."""

    writer: Any
    artifacts: Any
    deployment: Any
    party_secret: bytes


def chain_parts(settings: Any, start: bool) -> ChainParts:
    """The home's chain, contracts and deployer; the chain is started only with ``start``.

    Raises:
        ChainNotRunning: the chain is down and not ``start`` (exit 2, names `vouch chain up`).
        MissingEnvironment: the chain has no live vouch deployment.
    """
    from ._stack import Stack

    stack = Stack(settings)
    chain = stack.chain_up() if start else stack.require_chain()
    artifacts = stack.artifacts()
    deployment = stack.require_deployment(chain, artifacts)
    return ChainParts(
        stack.writer(chain, artifacts), artifacts, deployment, stack.party_secret(chain)
    )


def refunder(parts: ChainParts, log: Any, on_event: Any = None) -> Any:
    """A ``Refunder`` acting as the derived parties of the home's escrows."""
    from ._refunds import Refunder
    from ._settlement import party_writers

    def parties(key: str) -> Any:
        return party_writers(parts.writer, parts.party_secret, key)

    extra = {} if on_event is None else {"on_event": on_event}
    return Refunder(parts.writer, parts.artifacts, parts.deployment, log, parties, **extra)


def stopped_hint(store: CheckpointStore, run_id: str) -> str:
    """What Ctrl-C left behind: the run, the step it stopped in, the command that resumes it."""
    run = store.load_run(run_id)
    step = unfinished_step(run, store.load_steps(run_id))
    return f"run {run_id} stopped in step {step}; resume it with `vouch runs resume {run_id}`"


def close_refunded(store: CheckpointStore, run: RunRecord, payload: dict[str, Any]) -> None:
    """Record on the run that its trade was refunded (an unfinished run ends as failed)."""
    if run.status in ("running", "interrupted", "failed"):
        run.status, run.pending = "failed", []
    run.reason = (
        f"refunded trade #{payload['trade_id']} in tx {payload['tx_hash']}: {payload['reason']}"
    )
    store.save_run(run)


@contextmanager
def interrupted_says(hint: Callable[[], str | None]) -> Iterator[None]:
    """Ctrl-C in the block prints ``hint`` (with the CLI's other hints) and exits 130 at once.

    The hint is registered with ``vouch._interrupt`` and the CLI's ``interrupted``
    runs while it still is: once a KeyboardInterrupt has left the block, typer
    has turned it into a plain exit code 130 and the hint is gone.
    """
    from ._interrupt import interrupt_hint

    with interrupt_hint(hint):
        try:
            yield
        except KeyboardInterrupt:
            from .cli import interrupted

            interrupted()

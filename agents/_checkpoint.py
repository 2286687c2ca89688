"""Checkpoint stores: a run's plan, steps, pending approvals, side effects, trace and usage.

One ABC, one conformance suite (``tests/engine/test_checkpoint.py``), two
implementations: ``MemoryCheckpointStore`` and ``SQLiteCheckpointStore`` (WAL).
The executor writes a step's record as soon as the step finishes, so a run
killed at any point resumes from its last finished step; a step making model
and tool calls is saved as ``running`` after each call, with the journal of
those calls, so it resumes where it was (a pause for a human or a crash alike).
When the run ends or pauses, the steps that did not finish are recorded too
(``interrupted``, ``failed``, ``stopped``, ``rejected``), with what they spent
and their spans. The run's whole trace (every span, in the order they closed)
is appended at the same moments (``load_trace``).

Usage for another process (a CLI showing runs): ``store.usage(run_id)`` is a
``UsageSummary`` (tokens in/out and USD in total, per step, per agent, per model).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from ._errors import CheckpointError, LeaseLost
from ._plan import Plan
from ._usage import UsageRecord, UsageTotals

if TYPE_CHECKING:
    from ._lease import Lease

RunStatus = Literal["running", "interrupted", "done", "failed", "stopped", "rejected"]
StepStatus = Literal["done", "failed", "rejected", "skipped", "interrupted", "stopped", "running"]


class StepRecord(BaseModel):
    """A step that ran: its output (JSON) if it finished, and what it took.

    Attributes:
        status: ``done``; ``running`` while it makes model and tool calls
            (saved after each); or, saved when the run ended or paused with the
            step unfinished, ``interrupted`` (waiting for a human), ``failed``,
            ``stopped`` (a guard stopped the run) or ``rejected``.
        attempts: attempts so far (refinements and the recovery agent count).
        tokens: prompt plus completion tokens of every attempt.
        usd: USD of every attempt.
        usage: every charge of the step, in order (``UsageRecord.step`` is the attempt).
        run_elapsed: the run's active seconds when this record was saved (for the TTL).
        feedback: the critiques the current attempt was given (a running or interrupted step).
        journal: the current attempt's model outputs and tool results, in order
            (a running or interrupted step replays them on resume instead of calling again).
        spans: the step's spans (``Span.to_otel`` form), in the order they closed.
    """

    step_id: str
    status: StepStatus
    output: Any = None
    agent: str = ""
    attempts: int = 1
    tokens: int = 0
    usd: Decimal = Decimal(0)
    started_at: float = 0.0
    finished_at: float = 0.0
    note: str = ""
    usage: list[UsageRecord] = Field(default_factory=list)
    run_elapsed: float = 0.0
    feedback: list[str] = Field(default_factory=list)
    journal: list[dict[str, Any]] = Field(default_factory=list)
    spans: list[dict[str, Any]] = Field(default_factory=list)


class UsageSummary(BaseModel):
    """What a run spent: tokens in/out and USD, in total and per step, agent and model.

    Built from the step records (``CheckpointStore.usage``), so any process can
    read it. Use ``UsageTotals.tokens`` for prompt plus completion tokens.

    Attributes:
        by_step: plan step id -> totals.
        by_agent: agent name (``recovery`` for the recovery agent) -> totals.
        by_model: model name (or paid tool name) -> totals.
        calls: plan step id -> every charge of that step, in order.
    """

    run_id: str
    total: UsageTotals = Field(default_factory=UsageTotals)
    by_step: dict[str, UsageTotals] = Field(default_factory=dict)
    by_agent: dict[str, UsageTotals] = Field(default_factory=dict)
    by_model: dict[str, UsageTotals] = Field(default_factory=dict)
    calls: dict[str, list[UsageRecord]] = Field(default_factory=dict)

    @classmethod
    def of(cls, run_id: str, steps: dict[str, StepRecord]) -> UsageSummary:
        """Sum the usage of a run's step records."""
        summary = cls(run_id=run_id)
        for step_id, record in steps.items():
            summary.calls[step_id] = list(record.usage)
            for charge in record.usage:
                summary.total.add(charge)
                for group, key in (
                    (summary.by_step, step_id),
                    (summary.by_agent, charge.agent),
                    (summary.by_model, charge.name),
                ):
                    group.setdefault(key, UsageTotals()).add(charge)
        return summary


class PendingAction(BaseModel):
    """An action waiting for a human: what it is, where, and why it needs approval."""

    key: str
    step_id: str
    kind: Literal["irreversible", "value", "review"]
    summary: str
    detail: dict[str, Any] = Field(default_factory=dict)


class Decision(BaseModel):
    """A human's decision on one pending action."""

    key: str
    approved: bool
    by: str = ""
    note: str = ""
    at: float = Field(default_factory=time.time)


class RunRecord(BaseModel):
    """A run's header: everything but its step records.

    Attributes:
        entrypoint: ``"module:function"`` or ``"path/file.py:function"`` that rebuilds
            the executor for this run (``function(store) -> Executor``), so
            an approval command can resume it in another process.
        reason: why the run ended (or paused), in words.
        error: the class name of the error that stopped it, if any.
        resumes: how often the run was resumed.
        active_seconds: time the run spent running, summed over its resumes
            (what the TTL counts; time waiting for a human is not in it).
    """

    run_id: str
    goal: str
    status: RunStatus = "running"
    plan: Plan | None = None
    reason: str = ""
    error: str = ""
    entrypoint: str | None = None
    pending: list[PendingAction] = Field(default_factory=list)
    replans: int = 0
    steps_executed: int = 0
    trace_hash: str = ""
    resumes: int = 0
    active_seconds: float = 0.0
    created_at: float = Field(default_factory=time.time)
    updated_at: float = Field(default_factory=time.time)


class CheckpointStore(ABC):
    """Where runs are checkpointed. Every implementation passes the conformance suite."""

    @abstractmethod
    def save_run(self, run: RunRecord) -> None:
        """Insert or replace a run's header."""

    @abstractmethod
    def load_run(self, run_id: str) -> RunRecord:
        """A run's header.

        Raises:
            CheckpointError: no such run.
        """

    @abstractmethod
    def list_runs(self, status: RunStatus | None = None) -> list[RunRecord]:
        """Runs, newest first, optionally only those with ``status``."""

    @abstractmethod
    def save_step(self, run_id: str, record: StepRecord) -> None:
        """Insert or replace one step's record (durable when this returns)."""

    @abstractmethod
    def load_steps(self, run_id: str) -> dict[str, StepRecord]:
        """Step id -> record, for every finished step of the run."""

    @abstractmethod
    def save_decision(self, run_id: str, decision: Decision) -> None:
        """Record a human's decision on a pending action (last decision wins)."""

    @abstractmethod
    def load_decisions(self, run_id: str) -> dict[str, Decision]:
        """Action key -> decision."""

    @abstractmethod
    def effect(self, key: str) -> tuple[bool, Any]:
        """``(True, result)`` if a side effect with this idempotency key completed, else ``(False, None)``."""

    @abstractmethod
    def record_effect(self, key: str, run_id: str, result: Any) -> None:
        """Record that the side effect ``key`` completed with ``result`` (JSON)."""

    @abstractmethod
    def append_trace(self, run_id: str, spans: list[dict[str, Any]]) -> None:
        """Append spans (``Span.to_otel`` form, in the order they closed) to the run's trace."""

    @abstractmethod
    def load_trace(self, run_id: str) -> list[dict[str, Any]]:
        """The run's trace: every span appended, in order (empty for an unknown run)."""

    def usage(self, run_id: str) -> UsageSummary:
        """What the run spent, in total and per step, agent and model."""
        return UsageSummary.of(run_id, self.load_steps(run_id))

    def batch(self) -> contextlib.AbstractContextManager[None]:
        """Group the writes made inside the block into one commit, made when it exits.

        The executor saves the steps that finish together (a wave of a fan-out)
        in one batch before any of their dependents starts, and a run's end
        (its unfinished steps, trace and header) in another. A write inside the
        block is durable once the block exits, not before. Nested blocks join
        the outer one.

        The default (for stores that cannot group) commits each write as it is
        made: correct, one commit per write. ``SQLiteCheckpointStore`` makes the
        block one transaction: all of it or, if the block raises, none of it.
        """
        return contextlib.nullcontext()

    def fenced(self, lease: Lease) -> contextlib.AbstractContextManager[None]:
        """Fence the block's writes by ``lease``: the store refuses them once the lease is not the run's.

        Inside the block every write (and every effect look-up, so no effect
        starts) first checks, in the same transaction as the write, that
        ``lease`` (its run, owner and epoch) is still the run's current lease;
        if another worker claimed the run meanwhile, the write is not made and
        ``LeaseLost`` names the run, the stale token and the new holder. A lease
        that expired but that nobody claimed still holds (as ``renew`` does).

        Raises:
            CheckpointError: the store keeps no leases (``MemoryCheckpointStore``).
        """
        raise CheckpointError(
            f"{type(self).__name__} keeps no run leases, so its writes cannot be fenced: use "
            "a SQLite file or a PostgreSQL URL"
        )


@contextlib.contextmanager
def fence_block(store: Any, lease: Lease) -> Iterator[None]:
    """Set ``store._fence`` to ``lease`` for the block (the stores' ``fenced``)."""
    if store._fence is not None:
        raise CheckpointError(
            f"the store is already fenced by run {store._fence.run_id}'s lease; one run at a time"
        )
    store._fence = lease
    try:
        yield
    finally:
        store._fence = None


def _copy(run: RunRecord) -> RunRecord:
    """A copy that shares the plan: plans are frozen and replaced, never changed in place."""
    return run.model_copy(update={"pending": [p.model_copy(deep=True) for p in run.pending]})


class MemoryCheckpointStore(CheckpointStore):
    """A checkpoint store in a dict: for tests and runs that need not survive the process."""

    def __init__(self) -> None:
        self._runs: dict[str, RunRecord] = {}
        self._steps: dict[str, dict[str, StepRecord]] = {}
        self._decisions: dict[str, dict[str, Decision]] = {}
        self._effects: dict[str, Any] = {}
        self._traces: dict[str, list[dict[str, Any]]] = {}

    def save_run(self, run: RunRecord) -> None:  # noqa: D102
        self._runs[run.run_id] = _copy(run)

    def load_run(self, run_id: str) -> RunRecord:  # noqa: D102
        if run_id not in self._runs:
            raise CheckpointError(f"no run {run_id!r} in this store")
        return _copy(self._runs[run_id])

    def list_runs(self, status: RunStatus | None = None) -> list[RunRecord]:  # noqa: D102
        runs = [r for r in self._runs.values() if status is None or r.status == status]
        return sorted(runs, key=lambda r: r.created_at, reverse=True)

    def save_step(self, run_id: str, record: StepRecord) -> None:  # noqa: D102
        self._steps.setdefault(run_id, {})[record.step_id] = record

    def load_steps(self, run_id: str) -> dict[str, StepRecord]:  # noqa: D102
        return dict(self._steps.get(run_id, {}))

    def save_decision(self, run_id: str, decision: Decision) -> None:  # noqa: D102
        self._decisions.setdefault(run_id, {})[decision.key] = decision

    def load_decisions(self, run_id: str) -> dict[str, Decision]:  # noqa: D102
        return dict(self._decisions.get(run_id, {}))

    def effect(self, key: str) -> tuple[bool, Any]:  # noqa: D102
        return (True, self._effects[key]) if key in self._effects else (False, None)

    def record_effect(self, key: str, run_id: str, result: Any) -> None:  # noqa: D102
        self._effects[key] = json.loads(json.dumps(result, default=str))

    def append_trace(self, run_id: str, spans: list[dict[str, Any]]) -> None:  # noqa: D102
        self._traces.setdefault(run_id, []).extend(spans)

    def load_trace(self, run_id: str) -> list[dict[str, Any]]:  # noqa: D102
        return list(self._traces.get(run_id, []))


_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (run_id TEXT PRIMARY KEY, status TEXT NOT NULL,
    created_at REAL NOT NULL, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS steps (run_id TEXT NOT NULL, step_id TEXT NOT NULL,
    body TEXT NOT NULL, PRIMARY KEY (run_id, step_id));
CREATE TABLE IF NOT EXISTS decisions (run_id TEXT NOT NULL, key TEXT NOT NULL,
    body TEXT NOT NULL, PRIMARY KEY (run_id, key));
CREATE TABLE IF NOT EXISTS effects (key TEXT PRIMARY KEY, run_id TEXT NOT NULL,
    result TEXT NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS traces (run_id TEXT NOT NULL, seq INTEGER NOT NULL,
    body TEXT NOT NULL, PRIMARY KEY (run_id, seq));
"""


class SQLiteCheckpointStore(CheckpointStore):
    """A checkpoint store in one SQLite file (WAL): survives kill -9 and restarts.

    Every write is its own committed transaction, except inside ``batch()``:
    there the block is one transaction, committed when it exits. The executor
    commits the steps that finished together in one batch before any of their
    dependents starts, so after a crash every step whose dependents had started
    (and every step of a run that ended) is on disk; a step that finished in
    the last moments before the crash may not be, and runs again on resume
    (its side effects, recorded apart, do not repeat). Several processes may
    open the same file.

    Args:
        path: the database file (its folder is created).
        synchronous: SQLite's ``synchronous`` in WAL mode. ``NORMAL`` (default): a
            commit survives the process being killed, and a power loss may lose the
            last commits (never corrupt the file). ``FULL``: every commit is fsynced,
            so it survives a power loss too (what LangGraph's ``SqliteSaver`` gets by
            default), at the cost of one fsync per step.
    """

    def __init__(self, path: str | Path, synchronous: Literal["NORMAL", "FULL"] = "NORMAL") -> None:
        if synchronous not in ("NORMAL", "FULL"):
            raise CheckpointError(f"synchronous must be NORMAL or FULL, not {synchronous!r}")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()  # a batch's own writes take it again
        self._depth = 0  # open batch() blocks (of the thread holding the lock)
        self._fence: Lease | None = None  # fenced(): the lease every write must still hold
        self.commits = 0
        """Transactions this store committed (one per write, or per batch)."""
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={synchronous}")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the connection."""
        self._db.close()

    @contextlib.contextmanager
    def _batch(self) -> Iterator[None]:
        with self._lock:
            self._depth += 1
            try:
                yield
            except BaseException:
                if self._depth == 1:
                    self._db.rollback()
                raise
            else:
                if self._depth == 1:
                    self._db.commit()
                    self.commits += 1
            finally:
                self._depth -= 1

    def batch(self) -> contextlib.AbstractContextManager[None]:
        """One transaction for the block: committed when it exits, rolled back if it raises.

        Other threads' writes wait for it to end.
        """
        return self._batch()

    def fenced(self, lease: Lease) -> contextlib.AbstractContextManager[None]:  # noqa: D102
        return fence_block(self, lease)

    def _guard(self, lease: Lease, write: bool) -> None:
        """Refuse unless ``lease`` is the run's current one; a write takes the file's write lock."""
        if write:  # a no-op update of the lease row: the write lock until this transaction ends
            held = self._db.execute(
                "UPDATE leases SET epoch = epoch WHERE run_id = ? AND owner = ? AND epoch = ?",
                (lease.run_id, lease.owner, lease.epoch),
            ).rowcount
        else:
            held = self._db.execute(
                "SELECT count(*) FROM leases WHERE run_id = ? AND owner = ? AND epoch = ?",
                (lease.run_id, lease.owner, lease.epoch),
            ).fetchone()[0]
        if held != 1:
            now = self._db.execute(
                "SELECT owner, epoch, expires_at FROM leases WHERE run_id = ?", (lease.run_id,)
            ).fetchone()
            raise LeaseLost(lease.run_id, lease.owner, lease.epoch, *(now or ()))

    def _write(self, sql: str, params: tuple[Any, ...]) -> None:
        with self._lock:
            if self._depth:  # inside a batch: it commits
                if self._fence is not None:
                    self._guard(self._fence, write=True)
                self._db.execute(sql, params)
                return
            try:
                if self._fence is not None:
                    self._guard(self._fence, write=True)
                self._db.execute(sql, params)
                self._db.commit()
            except BaseException:
                self._db.rollback()
                raise
            self.commits += 1

    def _rows(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def save_run(self, run: RunRecord) -> None:  # noqa: D102
        self._write(
            "INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?)",
            (run.run_id, run.status, run.created_at, run.model_dump_json()),
        )

    def load_run(self, run_id: str) -> RunRecord:  # noqa: D102
        rows = self._rows("SELECT body FROM runs WHERE run_id = ?", (run_id,))
        if not rows:
            raise CheckpointError(f"no run {run_id!r} in {self.path}")
        return RunRecord.model_validate_json(rows[0][0])

    def list_runs(self, status: RunStatus | None = None) -> list[RunRecord]:  # noqa: D102
        sql = "SELECT body FROM runs {} ORDER BY created_at DESC"
        rows = (
            self._rows(sql.format("WHERE status = ?"), (status,))
            if status
            else self._rows(sql.format(""), ())
        )
        return [RunRecord.model_validate_json(r[0]) for r in rows]

    def save_step(self, run_id: str, record: StepRecord) -> None:  # noqa: D102
        self._write(
            "INSERT OR REPLACE INTO steps VALUES (?, ?, ?)",
            (run_id, record.step_id, record.model_dump_json()),
        )

    def load_steps(self, run_id: str) -> dict[str, StepRecord]:  # noqa: D102
        rows = self._rows("SELECT body FROM steps WHERE run_id = ?", (run_id,))
        records = [StepRecord.model_validate_json(r[0]) for r in rows]
        return {r.step_id: r for r in records}

    def save_decision(self, run_id: str, decision: Decision) -> None:  # noqa: D102
        self._write(
            "INSERT OR REPLACE INTO decisions VALUES (?, ?, ?)",
            (run_id, decision.key, decision.model_dump_json()),
        )

    def load_decisions(self, run_id: str) -> dict[str, Decision]:  # noqa: D102
        rows = self._rows("SELECT body FROM decisions WHERE run_id = ?", (run_id,))
        decisions = [Decision.model_validate_json(r[0]) for r in rows]
        return {d.key: d for d in decisions}

    def effect(self, key: str) -> tuple[bool, Any]:  # noqa: D102
        with self._lock:
            if self._fence is not None:  # no effect starts once the lease changed hands
                self._guard(self._fence, write=False)
            rows = self._rows("SELECT result FROM effects WHERE key = ?", (key,))
        return (True, json.loads(rows[0][0])) if rows else (False, None)

    def record_effect(self, key: str, run_id: str, result: Any) -> None:  # noqa: D102
        self._write(
            "INSERT OR REPLACE INTO effects VALUES (?, ?, ?, ?)",
            (key, run_id, json.dumps(result, default=str), time.time()),
        )

    def append_trace(self, run_id: str, spans: list[dict[str, Any]]) -> None:  # noqa: D102
        if spans:
            self._write(
                "INSERT INTO traces VALUES (?, (SELECT COALESCE(MAX(seq), -1) + 1 FROM traces "
                "WHERE run_id = ?), ?)",
                (run_id, run_id, json.dumps(spans, default=str)),
            )

    def load_trace(self, run_id: str) -> list[dict[str, Any]]:  # noqa: D102
        rows = self._rows("SELECT body FROM traces WHERE run_id = ? ORDER BY seq", (run_id,))
        return [span for row in rows for span in json.loads(row[0])]

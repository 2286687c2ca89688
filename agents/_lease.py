"""Run leases: several workers share one run store, and each run is worked on by one of them.

A worker ``claim``s a run for ``ttl`` seconds and ``renew``s the lease while
it works (``LeaseKeeper`` does it in a thread); when it is done it
``release``s it. A worker that dies (kill -9, a lost host) stops renewing: once
its lease expires, another worker's ``claim_next`` takes the run and resumes
it from its checkpoint. Side effects stay once-only through their idempotency
keys (``StepContext.effect``): an effect whose result was recorded is not done
again, and one that was done but not recorded gets the same key again (pass it
to whatever can dedupe, as the settlement flow does with the gate's trade and
the forwarder's report).

Each claim that changes hands bumps the lease's ``epoch``: a worker that lost
its lease (it was paused longer than the ttl) finds out at its next renewal
(``LeaseKeeper.lost``) and must stop. Writes are fenced by the lease: inside
``store.fenced(lease)`` the store refuses (``LeaseLost``) every write and
effect look-up once ``lease`` is not the run's current one, checked in the
write's own transaction.

Implementations: ``SQLiteRunLeases`` (a ``leases`` table in the runs.db file,
one row per run, changed in one transaction per call) and
``PostgresCheckpointStore`` (``agents._checkpoint_pg``), both tested by
``tests/postgres/test_checkpoint_stores.py``. ``open_checkpoints(location)``
opens the store for a path or a ``postgresql://`` URL; ``run_leases(store)``
gives its leases.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from ._checkpoint import CheckpointStore, RunStatus, SQLiteCheckpointStore
from ._errors import CheckpointError


class Lease(BaseModel):
    """A worker's hold on a run until ``expires_at`` (unix seconds of the store's clock)."""

    run_id: str
    owner: str
    expires_at: float
    epoch: int
    """How often the run changed hands (1 for the first claim)."""


class RunLeases(ABC):
    """Leases on runs. Every implementation passes the lease conformance suite."""

    @abstractmethod
    def claim(self, run_id: str, owner: str, ttl: float) -> Lease | None:
        """Take the run for ``ttl`` seconds if no one else holds an unexpired lease on it.

        The run need not be in the store yet (a worker may claim before it saves
        the run). Claiming a run one already holds extends the lease.
        """

    @abstractmethod
    def renew(self, lease: Lease, ttl: float) -> Lease | None:
        """Extend ``lease`` by ``ttl`` seconds from now; None if it was lost to another worker."""

    @abstractmethod
    def release(self, lease: Lease) -> None:
        """Give the run up (only if ``lease`` still holds it).

        The lease row stays, ended, with its epoch bumped: ``lease`` no longer
        renews or passes a fenced write, and the row still names the last holder.
        """

    @abstractmethod
    def holder(self, run_id: str) -> Lease | None:
        """The current unexpired lease on the run, if any."""

    @abstractmethod
    def claimable(self, statuses: Sequence[RunStatus]) -> list[str]:
        """Runs with one of ``statuses`` and no unexpired lease, oldest first."""

    def claim_next(
        self, owner: str, ttl: float, statuses: Sequence[RunStatus] = ("running",)
    ) -> Lease | None:
        """Claim the oldest run with one of ``statuses`` that no live worker holds.

        ``running`` (the default) covers a run saved for workers to pick up and a
        run whose worker died mid-way (its lease expired).
        """
        for run_id in self.claimable(statuses):
            lease = self.claim(run_id, owner, ttl)
            if lease is not None:
                return lease
        return None


class LeaseKeeper:
    """Renews a lease every ``ttl / 3`` seconds in a thread until stopped; releases it at the end.

    ``lost`` is set when a renewal finds the run taken by another worker.
    """

    def __init__(self, leases: RunLeases, lease: Lease, ttl: float) -> None:
        self.leases, self.lease, self.ttl = leases, lease, ttl
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, daemon=True, name="lease-keeper")

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        if not self.lost.is_set():
            self.leases.release(self.lease)

    def _renew(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            renewed = self.leases.renew(self.lease, self.ttl)
            if renewed is None:
                self.lost.set()
                return
            self.lease = renewed


_SQLITE_LEASES = """
CREATE TABLE IF NOT EXISTS leases (run_id TEXT PRIMARY KEY, owner TEXT NOT NULL,
    expires_at REAL NOT NULL, epoch INTEGER NOT NULL);
"""
# one statement: take a free, expired or own lease; nothing returned if someone else holds it
_CLAIM = """
INSERT INTO leases (run_id, owner, expires_at, epoch) VALUES (?, ?, ?, 1)
ON CONFLICT (run_id) DO UPDATE SET
    epoch = CASE WHEN leases.owner = excluded.owner THEN leases.epoch ELSE leases.epoch + 1 END,
    owner = excluded.owner, expires_at = excluded.expires_at
WHERE leases.owner = excluded.owner OR leases.expires_at <= ?
RETURNING owner, expires_at, epoch
"""


class SQLiteRunLeases(RunLeases):
    """Leases in the ``leases`` table of a SQLite runs file (one row per run), its own connection.

    Args:
        path: the runs database (``SQLiteCheckpointStore.path``).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SQLITE_LEASES)

    def close(self) -> None:
        """Close the connection."""
        self._db.close()

    def _one(self, sql: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
        with self._lock, self._db:
            row: tuple[Any, ...] | None = self._db.execute(sql, params).fetchone()
            return row

    def claim(self, run_id: str, owner: str, ttl: float) -> Lease | None:  # noqa: D102
        now = time.time()
        row = self._one(_CLAIM, (run_id, owner, now + ttl, now))
        return (
            None
            if row is None
            else Lease(run_id=run_id, owner=row[0], expires_at=row[1], epoch=row[2])
        )

    def renew(self, lease: Lease, ttl: float) -> Lease | None:  # noqa: D102
        row = self._one(
            "UPDATE leases SET expires_at = ? WHERE run_id = ? AND owner = ? AND epoch = ? "
            "RETURNING expires_at",
            (time.time() + ttl, lease.run_id, lease.owner, lease.epoch),
        )
        return None if row is None else lease.model_copy(update={"expires_at": row[0]})

    def release(self, lease: Lease) -> None:  # noqa: D102
        self._one(  # ended, and its token void: a fenced write under it is refused
            "UPDATE leases SET expires_at = ?, epoch = epoch + 1 "
            "WHERE run_id = ? AND owner = ? AND epoch = ? RETURNING run_id",
            (time.time(), lease.run_id, lease.owner, lease.epoch),
        )

    def holder(self, run_id: str) -> Lease | None:  # noqa: D102
        row = self._one(
            "SELECT owner, expires_at, epoch FROM leases WHERE run_id = ? AND expires_at > ?",
            (run_id, time.time()),
        )
        return (
            None
            if row is None
            else Lease(run_id=run_id, owner=row[0], expires_at=row[1], epoch=row[2])
        )

    def claimable(self, statuses: Sequence[RunStatus]) -> list[str]:  # noqa: D102
        marks = ",".join("?" * len(statuses))
        with self._lock:
            rows = self._db.execute(
                f"SELECT run_id FROM runs WHERE status IN ({marks}) AND run_id NOT IN "  # noqa: S608
                "(SELECT run_id FROM leases WHERE expires_at > ?) ORDER BY created_at",
                (*statuses, time.time()),
            ).fetchall()
        return [run_id for (run_id,) in rows]


def open_checkpoints(location: str | Path) -> CheckpointStore:
    """The run store at ``location``: a ``postgresql://`` URL or a SQLite file path.

    Raises:
        CheckpointError: a PostgreSQL URL and psycopg is not installed, or the
            server cannot be reached (the message says what to do).
    """
    if isinstance(location, str) and location.startswith(("postgresql://", "postgres://")):
        try:
            from ._checkpoint_pg import PostgresCheckpointStore
        except ImportError as exc:
            raise CheckpointError(
                f"a PostgreSQL run store needs psycopg ({exc}): pip install 'vouch[postgres]'"
            ) from None
        return PostgresCheckpointStore(location)
    return SQLiteCheckpointStore(location)


def run_leases(store: CheckpointStore) -> RunLeases:
    """The leases of ``store``'s runs (the store itself when it implements them).

    Raises:
        CheckpointError: the store keeps no leases (e.g. ``MemoryCheckpointStore``).
    """
    if isinstance(store, RunLeases):
        return store
    if isinstance(store, SQLiteCheckpointStore):
        return SQLiteRunLeases(store.path)
    raise CheckpointError(
        f"{type(store).__name__} keeps no run leases: use a SQLite file or a PostgreSQL URL"
    )

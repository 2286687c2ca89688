"""The run store in PostgreSQL: checkpoints and leases shared by workers on several hosts.

Built the way LangGraph's ``PostgresSaver`` is (libs/checkpoint-postgres): an
autocommit psycopg connection guarded by a lock, idempotent ``CREATE ... IF NOT
EXISTS`` migrations run by ``setup`` (here under an advisory lock, so workers
may start together), and upserts (``ON CONFLICT``) for every record. Records
are the same JSON documents the SQLite store keeps.

Leases (``RunLeases``) live in ``vouch_leases``, one row per run, and are timed
by the server's clock (``clock_timestamp()``), so workers on hosts whose clocks
disagree still agree on when a lease expired. A claim is one ``INSERT ... ON
CONFLICT DO UPDATE ... WHERE`` statement: two workers racing for a run cannot
both get it.

Imported only by ``open_checkpoints`` for a ``postgresql://`` URL (psycopg is optional).
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
from collections.abc import Sequence
from typing import Any

import psycopg

from ._checkpoint import (
    CheckpointStore,
    Decision,
    RunRecord,
    RunStatus,
    StepRecord,
    fence_block,
)
from ._errors import CheckpointError, LeaseLost
from ._lease import Lease, RunLeases

_MIGRATIONS = [
    """CREATE TABLE IF NOT EXISTS vouch_runs (run_id TEXT PRIMARY KEY, status TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL, body TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS vouch_runs_by_status ON vouch_runs (status, created_at)",
    """CREATE TABLE IF NOT EXISTS vouch_steps (run_id TEXT NOT NULL, step_id TEXT NOT NULL,
        body TEXT NOT NULL, PRIMARY KEY (run_id, step_id))""",
    """CREATE TABLE IF NOT EXISTS vouch_decisions (run_id TEXT NOT NULL, key TEXT NOT NULL,
        body TEXT NOT NULL, PRIMARY KEY (run_id, key))""",
    """CREATE TABLE IF NOT EXISTS vouch_effects (key TEXT PRIMARY KEY, run_id TEXT NOT NULL,
        result TEXT NOT NULL, at DOUBLE PRECISION NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS vouch_traces (id BIGSERIAL PRIMARY KEY, run_id TEXT NOT NULL,
        body TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS vouch_traces_by_run ON vouch_traces (run_id, id)",
    """CREATE TABLE IF NOT EXISTS vouch_leases (run_id TEXT PRIMARY KEY, owner TEXT NOT NULL,
        expires_at DOUBLE PRECISION NOT NULL, epoch INTEGER NOT NULL)""",
]
_SETUP_LOCK = 0x766F75636872756E  # "vouchrun": pg_advisory_xact_lock key for the table setup
_NOW = "extract(epoch FROM clock_timestamp())"
_CLAIM = f"""
INSERT INTO vouch_leases (run_id, owner, expires_at, epoch) VALUES (%s, %s, {_NOW} + %s, 1)
ON CONFLICT (run_id) DO UPDATE SET
    epoch = CASE WHEN vouch_leases.owner = excluded.owner
                 THEN vouch_leases.epoch ELSE vouch_leases.epoch + 1 END,
    owner = excluded.owner, expires_at = excluded.expires_at
WHERE vouch_leases.owner = excluded.owner OR vouch_leases.expires_at <= {_NOW}
RETURNING owner, expires_at, epoch
"""


class PostgresCheckpointStore(CheckpointStore, RunLeases):
    """Runs, steps, decisions, effects, traces and leases in a PostgreSQL database.

    Args:
        url: ``postgresql://user[:password]@host[:port]/database`` (``VOUCH_RUNS_URL``).

    Raises:
        CheckpointError: the server cannot be reached or refuses the login.
    """

    def __init__(self, url: str) -> None:
        self.location = re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)
        self._lock = threading.Lock()
        self._fence: Lease | None = None  # fenced(): the lease every write must still hold
        try:
            self._db = psycopg.connect(url, autocommit=True)
        except psycopg.Error as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise CheckpointError(
                f"cannot open the PostgreSQL run store {self.location}: {first}; check the URL "
                "(VOUCH_RUNS_URL), that the server runs and that the user may log in"
            ) from None
        self.setup()

    def setup(self) -> None:
        """Create the tables if they are missing (safe to run from several workers at once)."""
        with self._lock, self._db.transaction():
            self._db.execute("SELECT pg_advisory_xact_lock(%s)", (_SETUP_LOCK,))
            for statement in _MIGRATIONS:
                self._db.execute(statement.encode())

    def close(self) -> None:
        """Close the connection."""
        self._db.close()

    def fenced(self, lease: Lease) -> contextlib.AbstractContextManager[None]:  # noqa: D102
        return fence_block(self, lease)

    def _guard(self, lease: Lease, write: bool) -> None:
        """Refuse unless ``lease`` is the run's current one (call in a transaction, lock held).

        For a write it locks the lease row (``FOR UPDATE``) until the write
        commits, so a claim by another worker waits for the write or comes first.
        """
        lock = " FOR UPDATE" if write else ""
        held = self._db.execute(
            "SELECT 1 FROM vouch_leases WHERE run_id = %s AND owner = %s AND epoch = %s"  # noqa: S608
            + lock,
            (lease.run_id, lease.owner, lease.epoch),
        ).fetchall()
        if not held:
            now = self._db.execute(
                "SELECT owner, epoch, expires_at FROM vouch_leases WHERE run_id = %s",
                (lease.run_id,),
            ).fetchone()
            raise LeaseLost(lease.run_id, lease.owner, lease.epoch, *(now or ()))

    def _write(self, sql: str, params: Sequence[Any]) -> None:
        with self._lock:
            if self._fence is None:
                self._db.execute(sql.encode(), params)
                return
            with self._db.transaction():  # the check and the write commit together, or neither
                self._guard(self._fence, write=True)
                self._db.execute(sql.encode(), params)

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql.encode(), params).fetchall()

    def save_run(self, run: RunRecord) -> None:  # noqa: D102
        self._write(
            "INSERT INTO vouch_runs VALUES (%s, %s, %s, %s) ON CONFLICT (run_id) DO UPDATE "
            "SET status = excluded.status, created_at = excluded.created_at, body = excluded.body",
            (run.run_id, run.status, run.created_at, run.model_dump_json()),
        )

    def load_run(self, run_id: str) -> RunRecord:  # noqa: D102
        rows = self._rows("SELECT body FROM vouch_runs WHERE run_id = %s", (run_id,))
        if not rows:
            raise CheckpointError(f"no run {run_id!r} in {self.location}")
        return RunRecord.model_validate_json(rows[0][0])

    def list_runs(self, status: RunStatus | None = None) -> list[RunRecord]:  # noqa: D102
        if status:
            rows = self._rows(
                "SELECT body FROM vouch_runs WHERE status = %s ORDER BY created_at DESC", (status,)
            )
        else:
            rows = self._rows("SELECT body FROM vouch_runs ORDER BY created_at DESC")
        return [RunRecord.model_validate_json(r[0]) for r in rows]

    def save_step(self, run_id: str, record: StepRecord) -> None:  # noqa: D102
        self._write(
            "INSERT INTO vouch_steps VALUES (%s, %s, %s) ON CONFLICT (run_id, step_id) "
            "DO UPDATE SET body = excluded.body",
            (run_id, record.step_id, record.model_dump_json()),
        )

    def load_steps(self, run_id: str) -> dict[str, StepRecord]:  # noqa: D102
        rows = self._rows("SELECT body FROM vouch_steps WHERE run_id = %s", (run_id,))
        records = [StepRecord.model_validate_json(r[0]) for r in rows]
        return {r.step_id: r for r in records}

    def save_decision(self, run_id: str, decision: Decision) -> None:  # noqa: D102
        self._write(
            "INSERT INTO vouch_decisions VALUES (%s, %s, %s) ON CONFLICT (run_id, key) "
            "DO UPDATE SET body = excluded.body",
            (run_id, decision.key, decision.model_dump_json()),
        )

    def load_decisions(self, run_id: str) -> dict[str, Decision]:  # noqa: D102
        rows = self._rows("SELECT body FROM vouch_decisions WHERE run_id = %s", (run_id,))
        decisions = [Decision.model_validate_json(r[0]) for r in rows]
        return {d.key: d for d in decisions}

    def effect(self, key: str) -> tuple[bool, Any]:  # noqa: D102
        with self._lock:
            if self._fence is not None:  # no effect starts once the lease changed hands
                self._guard(self._fence, write=False)
            rows = self._db.execute(
                b"SELECT result FROM vouch_effects WHERE key = %s", (key,)
            ).fetchall()
        return (True, json.loads(rows[0][0])) if rows else (False, None)

    def record_effect(self, key: str, run_id: str, result: Any) -> None:  # noqa: D102
        self._write(
            f"INSERT INTO vouch_effects VALUES (%s, %s, %s, {_NOW}) ON CONFLICT (key) "
            "DO UPDATE SET run_id = excluded.run_id, result = excluded.result, at = excluded.at",
            (key, run_id, json.dumps(result, default=str)),
        )

    def append_trace(self, run_id: str, spans: list[dict[str, Any]]) -> None:  # noqa: D102
        if spans:
            self._write(
                "INSERT INTO vouch_traces (run_id, body) VALUES (%s, %s)",
                (run_id, json.dumps(spans, default=str)),
            )

    def load_trace(self, run_id: str) -> list[dict[str, Any]]:  # noqa: D102
        rows = self._rows("SELECT body FROM vouch_traces WHERE run_id = %s ORDER BY id", (run_id,))
        return [span for row in rows for span in json.loads(row[0])]

    # leases
    def claim(self, run_id: str, owner: str, ttl: float) -> Lease | None:  # noqa: D102
        rows = self._rows(_CLAIM, (run_id, owner, ttl))
        return _lease(run_id, rows)

    def renew(self, lease: Lease, ttl: float) -> Lease | None:  # noqa: D102
        rows = self._rows(
            f"UPDATE vouch_leases SET expires_at = {_NOW} + %s "  # noqa: S608
            "WHERE run_id = %s AND owner = %s AND epoch = %s RETURNING owner, expires_at, epoch",
            (ttl, lease.run_id, lease.owner, lease.epoch),
        )
        return _lease(lease.run_id, rows)

    def release(self, lease: Lease) -> None:  # noqa: D102
        with self._lock:  # ended, and its token void: a fenced write under it is refused
            self._db.execute(
                f"UPDATE vouch_leases SET expires_at = {_NOW}, epoch = epoch + 1 "  # noqa: S608
                "WHERE run_id = %s AND owner = %s AND epoch = %s",
                (lease.run_id, lease.owner, lease.epoch),
            )

    def holder(self, run_id: str) -> Lease | None:  # noqa: D102
        rows = self._rows(
            f"SELECT owner, expires_at, epoch FROM vouch_leases WHERE run_id = %s "  # noqa: S608
            f"AND expires_at > {_NOW}",
            (run_id,),
        )
        return _lease(run_id, rows)

    def claimable(self, statuses: Sequence[RunStatus]) -> list[str]:  # noqa: D102
        rows = self._rows(
            "SELECT run_id FROM vouch_runs WHERE status = ANY(%s) AND run_id NOT IN "  # noqa: S608
            f"(SELECT run_id FROM vouch_leases WHERE expires_at > {_NOW}) ORDER BY created_at",
            (list(statuses),),
        )
        return [run_id for (run_id,) in rows]


def _lease(run_id: str, rows: list[tuple[Any, ...]]) -> Lease | None:
    if not rows:
        return None
    owner, expires_at, epoch = rows[0]
    return Lease(run_id=run_id, owner=owner, expires_at=float(expires_at), epoch=int(epoch))

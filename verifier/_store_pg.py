"""The attestation log in PostgreSQL: one hash chain that many processes and hosts append to.

Tables (created on the first writable open, under an advisory lock, so
several processes may start at once)::

    vouch_log_entries (seq BIGINT PRIMARY KEY, execution_id, kind, payload,
                       created_at BIGINT, prev_hash, entry_hash)   -- the rows, as in SQLite
    vouch_log_head    (one row: seq, entry_hash of the newest entry)
    vouch_log_meta    (key, value): 'format' -> LOG_FORMAT

An append locks the head row (``SELECT ... FOR UPDATE``) in its transaction,
computes the entries' seqs and hashes from it, inserts them and moves the head;
a concurrent appender waits on that row lock and then reads the new head, so
seqs stay contiguous and each ``prev_hash`` is the entry committed just before
(the chain is serialized by the database, not by a file lock). A crash before
the commit leaves nothing: the rows and the head move together or not at all.

Imported only by ``open_log`` for a ``postgresql://`` URL (psycopg is optional).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg

from ._canonical import canonical_json
from ._errors import LogIntegrityError
from ._log import (
    _COLUMNS,
    GENESIS,
    LOG_FORMAT,
    LogEntry,
    _hex_id,
    chained,
    check_format,
    entry_from_row,
)
from ._store import LogStore, redact

_MIGRATIONS = [
    """CREATE TABLE IF NOT EXISTS vouch_log_entries (
        seq BIGINT PRIMARY KEY,
        execution_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        payload TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        prev_hash TEXT NOT NULL,
        entry_hash TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS vouch_log_entries_by_execution ON vouch_log_entries (execution_id)",
    """CREATE TABLE IF NOT EXISTS vouch_log_head (
        id BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (id),
        seq BIGINT NOT NULL,
        entry_hash TEXT NOT NULL
    )""",
    f"INSERT INTO vouch_log_head (id, seq, entry_hash) VALUES (TRUE, 0, '{GENESIS}') "
    "ON CONFLICT (id) DO NOTHING",
    "CREATE TABLE IF NOT EXISTS vouch_log_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    f"INSERT INTO vouch_log_meta (key, value) VALUES ('format', '{LOG_FORMAT}') "
    "ON CONFLICT (key) DO NOTHING",
]
_SETUP_LOCK = 0x766F7563686C6F67  # "vouchlog": pg_advisory_xact_lock key for the table setup
_PAGE = 5_000


class PostgresLog(LogStore):
    """An attestation log in a PostgreSQL database (the ``LogStore`` for ``VOUCH_LOG_URL``).

    Args:
        url: ``postgresql://user[:password]@host[:port]/database`` (libpq URL; a
            unix socket folder as ``?host=/path``).
        readonly: open an existing log for auditing only: nothing is created, and
            the session is read-only (the server refuses any write).

    Raises:
        LogIntegrityError: the server cannot be reached or refuses the login; the
            database holds no vouch log (read-only); or its format is not ``LOG_FORMAT``.
    """

    def __init__(self, url: str, readonly: bool = False) -> None:
        self.location, self.reopen_with = redact(url), url
        self._readonly = readonly
        self._lock = threading.Lock()
        try:
            self._db = psycopg.connect(url, autocommit=True)
        except psycopg.Error as exc:
            raise LogIntegrityError(
                f"cannot open the PostgreSQL log {self.location}: {_first_line(exc)}; check "
                "the URL (VOUCH_LOG_URL), that the server runs and that the user may log in"
            ) from None
        try:
            if readonly:
                self._db.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
            else:
                self._setup()
            check_format(self.location, self._format())
        except BaseException:
            self._db.close()
            raise

    def _setup(self) -> None:
        with self._db.transaction():
            self._db.execute("SELECT pg_advisory_xact_lock(%s)", (_SETUP_LOCK,))
            for statement in _MIGRATIONS:
                self._db.execute(statement)

    def _format(self) -> int:
        exists = self._db.execute("SELECT to_regclass('vouch_log_entries') IS NOT NULL").fetchone()
        if not exists or not exists[0]:
            raise LogIntegrityError(
                f"{self.location} holds no vouch attestation log (no vouch_log_entries table): "
                "check the database name in the URL, or write to it first (a writable open "
                "creates the tables)"
            )
        row = self._db.execute("SELECT value FROM vouch_log_meta WHERE key = 'format'").fetchone()
        return int(row[0]) if row else 0

    @property
    def format_version(self) -> int:
        """The log format version the database carries."""
        with self._lock:
            return self._format()

    def close(self) -> None:
        """Close the connection."""
        self._db.close()

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def append_many(
        self, items: Sequence[tuple[bytes | str, str, dict[str, Any]]]
    ) -> list[LogEntry]:
        """Append several entries in one transaction, after the head's row lock (see the module)."""
        if self._readonly:
            raise LogIntegrityError(f"{self.location} was opened read-only: nothing appended")
        texts = [(_hex_id(e), kind, canonical_json(p).decode()) for e, kind, p in items]
        with self._lock, self._db.transaction():
            head = self._db.execute(
                "SELECT seq, entry_hash FROM vouch_log_head WHERE id FOR UPDATE"
            ).fetchone()
            if head is None:
                raise LogIntegrityError(f"{self.location}: the log's head row is missing (altered)")
            seq, prev = int(head[0]), str(head[1])
            entries = chained(seq, prev, texts)
            with self._db.cursor() as cursor:
                cursor.executemany(
                    f"INSERT INTO vouch_log_entries ({_COLUMNS}) "  # noqa: S608
                    "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                    [
                        (e.seq, e.execution_id, e.kind, e.payload_text, e.created_at)
                        + (e.prev_hash, e.entry_hash)
                        for e in entries
                    ],
                )
            if entries:
                head_seq, head_hash = entries[-1].seq, entries[-1].entry_hash
                self._db.execute(
                    "UPDATE vouch_log_head SET seq = %s, entry_hash = %s WHERE id",
                    (head_seq, head_hash),
                )
        return entries

    def entries(self) -> Iterator[LogEntry]:
        """Every entry, in sequence order (read in pages of 5,000)."""
        after = -(2**62)
        while True:
            page = self._rows(
                f"SELECT {_COLUMNS} FROM vouch_log_entries WHERE seq > %s "  # noqa: S608
                "ORDER BY seq LIMIT %s",
                (after, _PAGE),
            )
            for row in page:
                yield entry_from_row(row)
            if len(page) < _PAGE:
                return
            after = page[-1][0]

    def rows(self) -> list[tuple[Any, ...]]:  # noqa: D102
        return self._rows(f"SELECT {_COLUMNS} FROM vouch_log_entries ORDER BY seq")  # noqa: S608

    def heads(self) -> list[tuple[int, str, str, str]]:  # noqa: D102
        rows = self._rows(
            "SELECT seq, execution_id, prev_hash, entry_hash FROM vouch_log_entries ORDER BY seq"
        )
        return [(int(a), str(b), str(c), str(d)) for a, b, c, d in rows]

    def executions(self) -> list[tuple[Any, int, int, int]]:  # noqa: D102
        rows = self._rows(
            "SELECT execution_id, MIN(seq), MAX(seq), COUNT(*) FROM vouch_log_entries "
            "GROUP BY execution_id"
        )
        return [(e, int(a), int(b), int(c)) for e, a, b, c in rows]

    def seqs_of(self, execution_id: Any) -> list[int]:  # noqa: D102
        rows = self._rows(
            "SELECT seq FROM vouch_log_entries WHERE execution_id = %s ORDER BY seq",
            (execution_id,),
        )
        return [int(seq) for (seq,) in rows]

    def rows_between(self, first: int, last: int) -> list[tuple[Any, ...]]:  # noqa: D102
        return self._rows(
            f"SELECT {_COLUMNS} FROM vouch_log_entries WHERE seq BETWEEN %s AND %s "  # noqa: S608
            "ORDER BY seq",
            (first, last),
        )

    def rows_at(self, seqs: Sequence[int]) -> list[tuple[Any, ...]]:  # noqa: D102
        return self._rows(
            f"SELECT {_COLUMNS} FROM vouch_log_entries WHERE seq = ANY(%s) ORDER BY seq",  # noqa: S608
            (list(seqs),),
        )

    def by_execution(self, execution_id: bytes | str) -> list[LogEntry]:  # noqa: D102
        rows = self._rows(
            f"SELECT {_COLUMNS} FROM vouch_log_entries WHERE execution_id = %s "  # noqa: S608
            "ORDER BY seq",
            (_hex_id(execution_id),),
        )
        return [entry_from_row(row) for row in rows]

    def entries_after(self, seq: int) -> list[LogEntry]:  # noqa: D102
        rows = self._rows(
            f"SELECT {_COLUMNS} FROM vouch_log_entries WHERE seq > %s ORDER BY seq",  # noqa: S608
            (seq,),
        )
        return [entry_from_row(row) for row in rows]

    def tail_after(self, seq: int) -> tuple[int, int | None, int | None, int | None]:  # noqa: D102
        count, first, last, oldest = self._rows(
            "SELECT COUNT(*), MIN(seq), MAX(seq), MIN(created_at) FROM vouch_log_entries "
            "WHERE seq > %s",
            (seq,),
        )[0]
        return (
            int(count),
            None if first is None else int(first),
            None if last is None else int(last),
            None if oldest is None else int(oldest),
        )


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]

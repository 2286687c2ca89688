"""The attestation log's storage interface: one ABC, two backends, chosen by location.

``LogStore`` is what the log's writers (the settlement flow, the relay, the
anchorer) and its readers (the audit, replay, export) use. Two implementations
pass the same conformance suite (``tests/test_store_conformance.py``):

- ``AttestationLog`` (``verifier._log``): one SQLite file, the embedded default;
  appends from several processes are serialized by SQLite's write lock.
- ``PostgresLog`` (``verifier._store_pg``): tables in a PostgreSQL database
  shared by several hosts; appends are serialized by a lock on the one row of
  the log's head (``SELECT ... FOR UPDATE``), so several coordinators and
  workers append one hash chain with contiguous seqs.

``open_log(location)`` picks the backend: a ``postgresql://`` (or ``postgres://``)
URL opens ``PostgresLog`` (psycopg is imported only then, so an auditor who
installed the verifier alone needs it only for a PostgreSQL log); anything
else is a SQLite file path.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._errors import LogIntegrityError

if TYPE_CHECKING:
    from ._log import ChainFinding, LogEntry

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres_url(location: object) -> bool:
    """True when ``location`` is a PostgreSQL connection URL (not a file path)."""
    return isinstance(location, str) and location.startswith(POSTGRES_SCHEMES)


def redact(url: str) -> str:
    """``url`` with its password (if any) replaced by ``***``: what messages may show."""
    url = re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)
    return re.sub(r"(password=)[^&\s]*", r"\1***", url)


class LogStore(ABC):
    """An append-only, hash-chained attestation log (see ``verifier._log`` for the hash rule).

    Rows are ``(seq, execution_id, kind, payload, created_at, prev_hash, entry_hash)``
    tuples, the same in every backend.
    """

    location: str
    """Where the log lives: a file path, or a PostgreSQL URL without its password (printable)."""
    reopen_with: str
    """What ``open_log`` takes to open this log again (another process): may hold a password."""

    @property
    @abstractmethod
    def format_version(self) -> int:
        """The log format version the store carries (0: written before versions were stored)."""

    @abstractmethod
    def close(self) -> None:
        """Release the connection."""

    @abstractmethod
    def append_many(
        self, items: Sequence[tuple[bytes | str, str, dict[str, Any]]]
    ) -> list[LogEntry]:
        """Append several entries in one transaction: all of them are committed, or none.

        Concurrent appenders (threads, processes, hosts) are serialized by the
        database: each batch links to the entry committed just before it.
        """

    @abstractmethod
    def entries(self) -> Iterator[LogEntry]:
        """Every entry, in sequence order."""

    @abstractmethod
    def rows(self) -> list[tuple[Any, ...]]:
        """Every row as a raw tuple, in sequence order."""

    @abstractmethod
    def heads(self) -> list[tuple[int, str, str, str]]:
        """(seq, execution_id, prev_hash, entry_hash) of every row, in order: linkage, no payloads."""

    @abstractmethod
    def executions(self) -> list[tuple[Any, int, int, int]]:
        """(execution_id, first seq, last seq, entries) of every execution."""

    @abstractmethod
    def seqs_of(self, execution_id: Any) -> list[int]:
        """The seqs of one execution's entries, in order (``execution_id`` exactly as stored)."""

    @abstractmethod
    def rows_between(self, first: int, last: int) -> list[tuple[Any, ...]]:
        """The raw rows with ``first <= seq <= last``, in order."""

    @abstractmethod
    def rows_at(self, seqs: Sequence[int]) -> list[tuple[Any, ...]]:
        """The raw rows with these sequence numbers, in order."""

    @abstractmethod
    def by_execution(self, execution_id: bytes | str) -> list[LogEntry]:
        """Every entry of one execution, in order."""

    @abstractmethod
    def entries_after(self, seq: int) -> list[LogEntry]:
        """Every entry with a seq above ``seq``, in order."""

    @abstractmethod
    def tail_after(self, seq: int) -> tuple[int, int | None, int | None, int | None]:
        """(count, first seq, last seq, oldest created_at) of the entries after ``seq``."""

    def append(self, execution_id: bytes | str, kind: str, payload: dict[str, Any]) -> LogEntry:
        """Append one entry; it is acknowledged (returned) only after the commit."""
        return self.append_many([(execution_id, kind, payload)])[0]

    def get(self, seq: int) -> LogEntry:
        """The entry with sequence number ``seq``.

        Raises:
            KeyError: if there is none.
        """
        from ._log import entry_from_row

        rows = self.rows_at([seq])
        if not rows:
            raise KeyError(f"no log entry #{seq}")
        return entry_from_row(rows[0])

    def pending_after(self, seq: int) -> tuple[int, int | None]:
        """(entries after ``seq``, the ``created_at`` of the first of them, or None if none)."""
        count, _, _, oldest = self.tail_after(seq)
        return count, oldest

    def last_seq(self) -> int:
        """The newest entry's seq (0 for an empty log)."""
        return self.tail_after(-(2**62))[2] or 0

    def export_jsonl(self, path: Path | str) -> int:
        """Write every entry, exactly as stored, one JSON object per line; return the count."""
        count = 0
        with open(path, "w", encoding="utf-8") as out:
            for entry in self.entries():
                out.write(entry.model_dump_json() + "\n")
                count += 1
        return count

    def verify_chain(self) -> list[ChainFinding]:
        """Every break in the hash chain, each naming the entry where it shows."""
        from ._log import verify_entries

        return verify_entries(self.entries())

    def __enter__(self) -> LogStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_log(location: str | Path, readonly: bool = False) -> LogStore:
    """The attestation log at ``location``: a PostgreSQL URL or a SQLite file path.

    Args:
        location: ``postgresql://user@host:port/db`` (``VOUCH_LOG_URL``), or a file path.
        readonly: open an existing log for auditing only (never creates tables or files).

    Raises:
        LogIntegrityError: the log cannot be opened or is not a vouch log; or a
            PostgreSQL URL was given and psycopg is not installed (the message
            says how to install it).
    """
    if is_postgres_url(location):
        try:
            from ._store_pg import PostgresLog
        except ImportError as exc:
            raise LogIntegrityError(
                f"{redact(str(location))} is a PostgreSQL log, and reading one needs psycopg "
                f"({exc}): pip install 'psycopg[binary]>=3.2' (or `pip install "
                "'vouch-verifier[postgres]'`), or export the log to a JSON Lines file with "
                "`vouch log export` and audit that after `python -m verifier import`"
            ) from None
        return PostgresLog(str(location), readonly=readonly)
    from ._log import AttestationLog

    return AttestationLog(location, readonly=readonly)

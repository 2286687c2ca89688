"""The attestation log: append-only, hash-chained SQLite, one row per event.

``entry_hash = keccak256(prev_hash ‖ canonical_json({seq, execution_id, kind, payload, created_at}))``;
the first entry's ``prev_hash`` is 32 zero bytes. The payload is stored as its
canonical JSON text, so any edited byte changes either the hash or the canonical form.

The file carries its format version in SQLite's ``user_version`` (``LOG_FORMAT``),
checked on every open; see docs/log.md.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from ._canonical import canonical_json, keccak, parse_canonical
from ._errors import LogIntegrityError
from ._store import LogStore

GENESIS = "0x" + "00" * 32
LOG_FORMAT = 1
"""The log format this code reads and writes (SQLite ``PRAGMA user_version``).

0 is a log written before the version was stored: the same format as 1, stamped
1 the next time it is opened for writing.
"""
_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    seq INTEGER PRIMARY KEY,
    execution_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    prev_hash TEXT NOT NULL,
    entry_hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_by_execution ON entries (execution_id);
"""
_COLUMNS = "seq, execution_id, kind, payload, created_at, prev_hash, entry_hash"


class LogEntry(BaseModel):
    """One row of the log, as stored."""

    model_config = ConfigDict(frozen=True)

    seq: int
    execution_id: str
    kind: str
    payload_text: str
    created_at: int
    prev_hash: str
    entry_hash: str

    @cached_property
    def _value(self) -> tuple[Any, str | None]:
        """The stored payload parsed once, and its canonical text (None if it does not parse)."""
        return parse_canonical(self.payload_text)

    @property
    def payload(self) -> dict[str, Any]:
        """The payload, parsed (empty if the stored text is not a JSON object)."""
        value = self._value[0]
        return value if isinstance(value, dict) else {}

    @property
    def canonical_payload(self) -> str | None:
        """The canonical JSON of the stored payload's value (None if it does not parse)."""
        return self._value[1]

    def compute_hash(self) -> str:
        """The hash this entry should carry, from its content and ``prev_hash``."""
        canonical = self.canonical_payload
        if canonical is None:
            return ""
        return _hash(
            self.prev_hash, self.seq, self.execution_id, self.kind, canonical, self.created_at
        )

    def is_canonical(self) -> bool:
        """True when the stored payload text is exactly the canonical JSON of its value."""
        return self.canonical_payload == self.payload_text


def chain_hash(
    prev_hash: str, seq: int, execution_id: str, kind: str, payload: Any, created_at: int
) -> str:
    """The entry hash for these fields (see the module docstring)."""
    return _hash(prev_hash, seq, execution_id, kind, canonical_json(payload).decode(), created_at)


def _hash(
    prev_hash: str, seq: int, execution_id: str, kind: str, canonical_payload: str, created_at: int
) -> str:
    """``chain_hash`` from the payload's canonical text, spliced in without re-serializing.

    Equal to ``canonical_json`` of the header: its keys in sorted order are
    created_at, execution_id, kind, payload, seq.
    """
    header = (
        f'{{"created_at":{created_at},"execution_id":{_dumps(execution_id)},'
        f'"kind":{_dumps(kind)},"payload":{canonical_payload},"seq":{seq}}}'
    )
    return "0x" + keccak(bytes.fromhex(prev_hash[2:]) + header.encode("utf-8")).hex()


def entry_digest(
    prev: bytes, seq: int, execution_id: str, kind: str, payload: bytes, created_at: int
) -> bytes:
    """``_hash`` as 32 bytes, from the prev hash's bytes and the canonical payload as UTF-8."""
    if execution_id.isalnum() and kind.isalnum():  # nothing json would escape: no encoder
        head = f'{{"created_at":{created_at},"execution_id":"{execution_id}","kind":"{kind}","payload":'
    else:
        head = (
            f'{{"created_at":{created_at},"execution_id":{_dumps(execution_id)},'
            f'"kind":{_dumps(kind)},"payload":'
        )
    return keccak(b"".join((prev, head.encode("utf-8"), payload, b',"seq":%d}' % seq)))


_PLAIN = re.compile(r"[0-9A-Za-z_.:/-]*")


@lru_cache(maxsize=4_096)  # an execution id recurs in each of its entries, a kind in most
def _dumps(text: str) -> str:
    if _PLAIN.fullmatch(text):  # ids and kinds: nothing to escape, skip the encoder
        return f'"{text}"'
    return json.dumps(text, ensure_ascii=False)


def _hex_id(execution_id: bytes | str) -> str:
    if isinstance(execution_id, bytes):
        return "0x" + execution_id.hex()
    return execution_id.lower() if execution_id.startswith("0x") else "0x" + execution_id.lower()


class Unanchored(BaseModel):
    """The newest entries no onchain anchor covers yet (what ``unanchored_tail`` finds).

    Until an anchor covers them, an operator could rewrite or drop them (and
    re-hash) without the audit noticing: the hash chain alone proves nothing
    against the log's own writer.
    """

    count: int
    first_seq: int | None
    last_seq: int | None
    anchored_up_to: int
    oldest_created_at: int | None
    """unix ms of the oldest unanchored entry (None when every entry is anchored)."""


def unanchored_tail(log: LogStore, anchors: Iterable[Any]) -> Unanchored:
    """How many of the log's newest entries no anchor covers.

    Args:
        log: the attestation log.
        anchors: the anchor records read from the chain (anything with a
            ``to_seq``, e.g. ``AnchorRecord``); covered means ``seq <= max(to_seq)``.
    """
    upto = max((int(a.to_seq) for a in anchors), default=0)
    count, first, last, oldest = log.tail_after(upto)
    return Unanchored(
        count=count, first_seq=first, last_seq=last, anchored_up_to=upto, oldest_created_at=oldest
    )


class ChainFinding(BaseModel):
    """A break in the hash chain at one entry."""

    seq: int
    execution_id: str
    kind: str
    check: Literal["chain"] = "chain"
    detail: str


class AttestationLog(LogStore):
    """An append-only, hash-chained log in one SQLite file (WAL, synchronous=FULL).

    The embedded ``LogStore``; ``open_log`` picks it for a file path.

    Args:
        path: the database file; created unless ``readonly``.
        readonly: open an existing log for auditing only.

    Raises:
        LogIntegrityError: if the file is missing (read-only), unreadable, or not a vouch log.
    """

    def __init__(self, path: Path | str, readonly: bool = False) -> None:
        self.path = Path(path)
        self.location = self.reopen_with = str(self.path)
        self._readonly = readonly
        try:
            self._db = self._connect(readonly)
            self._check_schema(readonly)
        except sqlite3.DatabaseError as exc:
            raise LogIntegrityError(_not_a_database(self.path, exc)) from None

    def _connect(self, readonly: bool) -> sqlite3.Connection:
        if readonly:
            if not self.path.exists():
                raise LogIntegrityError(f"no attestation log at {self.path}")
            db = sqlite3.connect(
                f"file:{self.path}?mode=ro", uri=True, isolation_level=None, timeout=30
            )
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
            db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        return db

    def _check_schema(self, readonly: bool) -> None:
        """Refuse, with what the file is and what to do, anything but a log of ``LOG_FORMAT``.

        A file with no tables at all becomes a new log (unless ``readonly``).
        """
        tables = sorted(
            name
            for (name,) in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        )
        version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
        if not tables and version == 0:
            if readonly:
                raise LogIntegrityError(
                    f"{self.path} is an empty SQLite database, not a vouch attestation log: "
                    "pass the log file (HOME/attestations.db, or one `vouch log import` made)"
                )
            self._db.executescript(
                f"BEGIN IMMEDIATE;{_SCHEMA}PRAGMA user_version = {LOG_FORMAT};\nCOMMIT;"
            )
            return
        check_format(self.path, version)
        if "entries" not in tables:
            raise LogIntegrityError(
                f"{self.path} is not a vouch attestation log (no entries table): it is an SQLite "
                f"database with tables {', '.join(tables[:8])}{_guess(tables)}; pass the log "
                "file (HOME/attestations.db, or one `vouch log import` made)"
            )
        columns = [row[1] for row in self._db.execute("PRAGMA table_info(entries)")]
        if columns != [c.strip() for c in _COLUMNS.split(",")]:
            raise LogIntegrityError(
                f"{self.path} is not a vouch attestation log: its entries table has columns "
                f"({', '.join(columns)}), a vouch log's are ({_COLUMNS})"
            )
        if version == 0 and not readonly:  # written before the version was stored: stamp it
            self._db.execute(f"PRAGMA user_version = {LOG_FORMAT}")

    @property
    def format_version(self) -> int:
        """The log format version the file carries (0: written before versions were stored)."""
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def close(self) -> None:
        """Close the database connection."""
        self._db.close()

    def append(self, execution_id: bytes | str, kind: str, payload: dict[str, Any]) -> LogEntry:
        """Append one entry; it is acknowledged (returned) only after the commit."""
        return self.append_many([(execution_id, kind, payload)])[0]

    def append_many(
        self, items: Sequence[tuple[bytes | str, str, dict[str, Any]]]
    ) -> list[LogEntry]:
        """Append several entries in one transaction: all of them are committed, or none."""
        if self._readonly:
            raise LogIntegrityError(f"{self.location} was opened read-only: nothing appended")
        texts = [(_hex_id(e), kind, canonical_json(p).decode()) for e, kind, p in items]
        self._db.execute("BEGIN IMMEDIATE")
        try:
            last = self._db.execute(
                "SELECT seq, entry_hash FROM entries ORDER BY seq DESC LIMIT 1"
            ).fetchone()
            seq, prev = (last[0], last[1]) if last else (0, GENESIS)
            entries = chained(seq, prev, texts)
            self._insert(entries)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return entries

    def entries(self) -> Iterator[LogEntry]:
        """Every entry, in sequence order."""
        for row in self._db.execute(f"SELECT {_COLUMNS} FROM entries ORDER BY seq"):  # noqa: S608
            yield entry_from_row(row)

    def rows(self) -> list[tuple[Any, ...]]:
        """Every row as a raw tuple (cheap to ship to worker processes), in sequence order."""
        return list(self._db.execute(f"SELECT {_COLUMNS} FROM entries ORDER BY seq"))  # noqa: S608

    def heads(self) -> list[tuple[int, str, str, str]]:
        """(seq, execution_id, prev_hash, entry_hash) of every row, in order: linkage, no payloads."""
        return list(
            self._db.execute(
                "SELECT seq, execution_id, prev_hash, entry_hash FROM entries ORDER BY seq"
            )
        )

    def executions(self) -> list[tuple[Any, int, int, int]]:
        """(execution_id, first seq, last seq, entries) of every execution (from the index alone).

        The execution_id as stored (normally text): what splitting a log by execution needs.
        """
        return list(
            self._db.execute(
                "SELECT execution_id, MIN(seq), MAX(seq), COUNT(*) FROM entries GROUP BY execution_id"
            )
        )

    def seqs_of(self, execution_id: Any) -> list[int]:
        """The seqs of one execution's entries, in order (``execution_id`` exactly as stored)."""
        rows = self._db.execute(
            "SELECT seq FROM entries WHERE execution_id = ? ORDER BY seq", (execution_id,)
        )
        return [seq for (seq,) in rows]

    def rows_between(self, first: int, last: int) -> list[tuple[Any, ...]]:
        """The raw rows with ``first <= seq <= last``, in order."""
        return list(
            self._db.execute(
                f"SELECT {_COLUMNS} FROM entries WHERE seq BETWEEN ? AND ? ORDER BY seq",  # noqa: S608
                (first, last),
            )
        )

    def rows_at(self, seqs: Sequence[int]) -> list[tuple[Any, ...]]:
        """The raw rows with these sequence numbers, in order."""
        out: list[tuple[Any, ...]] = []
        for start in range(0, len(seqs), 500):  # SQLite caps bound parameters
            chunk = seqs[start : start + 500]
            marks = ",".join("?" * len(chunk))
            out += self._db.execute(
                f"SELECT {_COLUMNS} FROM entries WHERE seq IN ({marks})",  # noqa: S608
                tuple(chunk),
            )
        return sorted(out)

    def get(self, seq: int) -> LogEntry:
        """The entry with sequence number ``seq``.

        Raises:
            KeyError: if there is none.
        """
        row = self._db.execute(f"SELECT {_COLUMNS} FROM entries WHERE seq = ?", (seq,)).fetchone()  # noqa: S608
        if row is None:
            raise KeyError(f"no log entry #{seq}")
        return entry_from_row(row)

    def by_execution(self, execution_id: bytes | str) -> list[LogEntry]:
        """Every entry of one execution, in order."""
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM entries WHERE execution_id = ? ORDER BY seq",  # noqa: S608
            (_hex_id(execution_id),),
        )
        return [entry_from_row(row) for row in rows]

    def entries_after(self, seq: int) -> list[LogEntry]:
        """Every entry with a seq above ``seq``, in order."""
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM entries WHERE seq > ? ORDER BY seq",  # noqa: S608
            (seq,),
        )
        return [entry_from_row(row) for row in rows]

    def pending_after(self, seq: int) -> tuple[int, int | None]:
        """(entries after ``seq``, the ``created_at`` of the first of them, or None if none)."""
        count, oldest = self._db.execute(
            "SELECT COUNT(*), MIN(created_at) FROM entries WHERE seq > ?", (seq,)
        ).fetchone()
        return int(count), (int(oldest) if oldest is not None else None)

    def tail_after(self, seq: int) -> tuple[int, int | None, int | None, int | None]:
        """(count, first seq, last seq, oldest created_at) of the entries after ``seq``."""
        count, first, last, oldest = self._db.execute(
            "SELECT COUNT(*), MIN(seq), MAX(seq), MIN(created_at) FROM entries WHERE seq > ?",
            (seq,),
        ).fetchone()
        oldest = oldest if isinstance(oldest, int) else None  # text in an edited log
        return int(count), first, last, oldest

    def last_seq(self) -> int:
        """The newest entry's seq (0 for an empty log)."""
        row = self._db.execute("SELECT MAX(seq) FROM entries").fetchone()
        return int(row[0] or 0)

    def export_jsonl(self, path: Path | str) -> int:
        """Write every entry, exactly as stored, one JSON object per line; return the count."""
        count = 0
        with open(path, "w", encoding="utf-8") as out:
            for entry in self.entries():
                out.write(entry.model_dump_json() + "\n")
                count += 1
        return count

    @classmethod
    def import_jsonl(cls, source: Path | str, destination: Path | str) -> AttestationLog:
        """Rebuild a log from an export, keeping every hash as exported (nothing is re-hashed).

        The whole export is verified first (``read_export``: each line an entry,
        seqs contiguous from 1, each link and each content hash intact); only
        then is the log written, to a temporary file in the destination's folder
        that is linked into place when complete. On any failure nothing is left
        behind. An export edited and then re-hashed from the edit on still
        imports: only the onchain anchors (``vouch audit``) can tell.

        Raises:
            LogIntegrityError: ``destination`` already exists, or the export is not
                an intact log (the message names each bad line and why).
        """
        target = Path(destination)
        if target.exists():
            raise LogIntegrityError(f"{target} already exists; import into a new file")
        from ._log_export import read_export  # the export reader imports this module

        entries = read_export(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.import-{os.getpid()}-{time.time_ns()}")
        try:
            db = sqlite3.connect(temporary, isolation_level=None)
            try:
                db.execute("PRAGMA journal_mode=DELETE")  # one self-contained file to link
                db.executescript(_SCHEMA)
                db.execute("BEGIN IMMEDIATE")
                db.executemany(
                    f"INSERT INTO entries ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
                    [_row(e) for e in entries],
                )
                db.execute(f"PRAGMA user_version = {LOG_FORMAT}")
                db.execute("COMMIT")
            finally:
                db.close()
            _fsync(temporary)
            try:
                os.link(temporary, target)  # atomic, and never over a file made meanwhile
            except FileExistsError:
                raise LogIntegrityError(
                    f"{target} appeared during the import; import into a new file"
                ) from None
        finally:
            temporary.unlink(missing_ok=True)
            for suffix in ("-journal", "-wal", "-shm"):
                Path(f"{temporary}{suffix}").unlink(missing_ok=True)
        return cls(target)

    def _insert(self, entries: Sequence[LogEntry]) -> None:
        """Insert rows exactly as given (inside the caller's transaction)."""
        self._db.executemany(
            f"INSERT INTO entries ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
            [_row(e) for e in entries],
        )

    def verify_chain(self) -> list[ChainFinding]:
        """Every break in the hash chain, each naming the entry where it shows."""
        return verify_entries(self.entries())


def verify_entries(
    entries: Iterable[LogEntry], *, linkage: bool = True, content: bool = True
) -> list[ChainFinding]:
    """Every break in the hash chain of ``entries`` (in seq order).

    ``linkage`` checks that seqs are contiguous and each prev_hash is the hash of
    the entry before; ``content`` that each entry's own hash and canonical form
    hold. The two are independent, so a big log can check content in parallel.
    """
    findings: list[ChainFinding] = []
    prev_seq, prev_hash = 0, GENESIS
    for entry in entries:
        problems = _linkage_breaks(entry, prev_seq, prev_hash) if linkage else []
        problems += _content_breaks(entry) if content else []
        findings += [
            ChainFinding(seq=entry.seq, execution_id=entry.execution_id, kind=entry.kind, detail=p)
            for p in problems
        ]
        prev_seq, prev_hash = entry.seq, entry.entry_hash
    return findings


def _linkage_breaks(entry: LogEntry, prev_seq: int, prev_hash: str) -> list[str]:
    problems = []
    if entry.seq != prev_seq + 1:
        problems.append(f"entries #{prev_seq + 1}..#{entry.seq - 1} are missing (deleted?)")
    if entry.prev_hash != prev_hash:
        problems.append(
            "prev_hash does not match the entry before it (deleted, inserted or reordered)"
        )
    return problems


def _content_breaks(entry: LogEntry) -> list[str]:
    problem = content_problem(
        entry.seq,
        entry.execution_id,
        entry.kind,
        entry.payload_text,
        entry.canonical_payload,
        entry.created_at,
        entry.prev_hash,
        entry.entry_hash,
    )
    return [problem] if problem else []


def content_problem(
    seq: int,
    execution_id: str,
    kind: str,
    text: str,
    canonical: str | None,
    created_at: int,
    prev_hash: str,
    entry_hash: str,
) -> str:
    """What breaks one entry's content ('' if nothing): its hash, then its canonical form.

    ``canonical`` is the canonical text of the stored payload's value (None if
    the payload does not parse), computed once by the caller for both checks.
    """
    if canonical is None:
        computed = ""
    else:
        try:
            computed = _hash(prev_hash, seq, execution_id, kind, canonical, created_at)
        except ValueError:
            return f"prev_hash {prev_hash[:20]!r} is not a 0x-hex hash (edited)"
    if computed != entry_hash:
        return "content does not match its hash (edited)"
    if canonical != text:
        return "payload text is not canonical JSON (edited)"
    return ""


def check_format(path: Path | str, version: int) -> None:
    """Refuse a log format this code does not read, saying what to do.

    Raises:
        LogIntegrityError: ``version`` is neither 0 (unversioned, same as 1) nor ``LOG_FORMAT``.
    """
    if version in (0, LOG_FORMAT):
        return
    if version > LOG_FORMAT:
        raise LogIntegrityError(
            f"{path} is a vouch log of format version {version}, written by a newer vouch; "
            f"this one reads format {LOG_FORMAT}: upgrade vouch (pip install -U vouch) to "
            "read or audit it"
        )
    if 0 < version < LOG_FORMAT:  # pragma: no cover - no older format exists yet
        raise LogIntegrityError(
            f"{path} is a vouch log of the older format version {version}; this vouch reads "
            f"format {LOG_FORMAT}: export it with the vouch that wrote it, then `vouch log import`"
        )
    raise LogIntegrityError(
        f"{path} carries an unknown log format version {version} (SQLite user_version); "
        f"vouch logs carry 1..{LOG_FORMAT}: it is not a vouch log, or it was altered"
    )


def _not_a_database(path: Path, exc: sqlite3.DatabaseError) -> str:
    """What ``path`` is, when SQLite cannot read it, and what to do."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(64)
    except OSError:
        head = b""
    if head.lstrip().startswith(b"{"):
        return (
            f"{path} is not a readable attestation log: it looks like a JSON Lines export; "
            f"import it first: `vouch log import {path} --into NEW.db` "
            "(or `python -m verifier import`), then pass NEW.db"
        )
    return (
        f"{path} is not a readable attestation log: {exc} (it starts with {head[:16]!r}); "
        "pass the log file (HOME/attestations.db, or one `vouch log import` made)"
    )


def _guess(tables: list[str]) -> str:
    if {"runs", "steps"} <= set(tables):
        return " (a vouch runs database, HOME/runs.db?)"
    return ""


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _row(e: LogEntry) -> tuple[Any, ...]:
    return (e.seq, e.execution_id, e.kind, e.payload_text, e.created_at, e.prev_hash, e.entry_hash)


def entry_from_row(row: tuple[Any, ...]) -> LogEntry:
    seq, execution_id, kind, payload, created_at, prev_hash, entry_hash = row
    return LogEntry.model_construct(  # types are forced right here; no validation needed
        seq=int(seq),
        execution_id=str(execution_id),
        kind=str(kind),
        payload_text=str(payload),
        created_at=int(created_at),
        prev_hash=str(prev_hash),
        entry_hash=str(entry_hash),
    )


def chained(seq: int, prev: str, texts: Sequence[tuple[str, str, str]]) -> list[LogEntry]:
    """The entries ``texts`` (execution id, kind, canonical payload) make after ``seq``/``prev``.

    One timestamp for the batch; each entry's hash covers the previous one's. Every
    store appends through this, so the hash chain is built in one place.
    """
    created = time.time_ns() // 1_000_000
    entries = []
    for exec_hex, kind, text in texts:
        seq += 1
        entry_hash = _hash(prev, seq, exec_hex, kind, text, created)
        entries.append(
            LogEntry(
                seq=seq,
                execution_id=exec_hex,
                kind=kind,
                payload_text=text,
                created_at=created,
                prev_hash=prev,
                entry_hash=entry_hash,
            )
        )
        prev = entry_hash
    return entries

"""Vector stores: records with metadata, recalled by cosine similarity under metadata filters.

A filter is a dict of metadata key to condition; all conditions must hold. A
condition is a plain value (equality) or one operator dict: ``{"$in": [...]}``,
``{"$ne": v}``, ``{"$gte": v}``, ``{"$lte": v}``. A record without the key
never matches (except ``$ne``, which it does).
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
import threading
from abc import ABC, abstractmethod
from array import array
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ._errors import VectorStoreError

Scalar = str | int | float | bool
Filter = dict[str, Any]
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_OPS = {"$in", "$ne", "$gte", "$lte"}


class VectorRecord(BaseModel):
    """One stored item: its text, its vector, and metadata to filter on."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(min_length=1)
    text: str
    vector: list[float]
    metadata: dict[str, Scalar] = Field(default_factory=dict)


class Hit(BaseModel):
    """A recalled record and its cosine similarity to the query (1 is identical)."""

    id: str
    text: str
    metadata: dict[str, Scalar]
    score: float


class VectorStore(ABC):
    """Where long-term memory lives. Every implementation passes the same conformance suite."""

    dimensions: int

    @abstractmethod
    def upsert(self, records: list[VectorRecord]) -> None:
        """Store records, replacing any with the same id."""

    @abstractmethod
    def query(self, vector: list[float], k: int = 5, where: Filter | None = None) -> list[Hit]:
        """The ``k`` most similar records matching ``where``, best first (ties by id)."""

    @abstractmethod
    def get(self, record_id: str) -> VectorRecord | None:
        """One record by id, or None."""

    @abstractmethod
    def delete(self, ids: list[str]) -> int:
        """Delete records by id; returns how many existed."""

    @abstractmethod
    def count(self, where: Filter | None = None) -> int:
        """How many records match ``where`` (all when None)."""

    def close(self) -> None:  # noqa: B027 - optional hook, most stores hold nothing
        """Release resources."""

    def _check(self, vector: list[float]) -> None:
        if len(vector) != self.dimensions:
            raise VectorStoreError(
                f"vector has {len(vector)} dimensions, store holds {self.dimensions}; "
                "use the same embedder for storing and recalling"
            )


def check_filter(where: Filter | None) -> Filter:
    """Validate a filter's keys and operators; returns it (empty when None)."""
    for key, condition in (where or {}).items():
        if not _KEY.match(key):
            raise VectorStoreError(f"bad metadata key in filter: {key!r} (letters, digits, _)")
        if isinstance(condition, dict) and (len(condition) != 1 or not set(condition) <= _OPS):
            raise VectorStoreError(
                f"bad condition for {key!r}: {condition!r}; use a value or one of {sorted(_OPS)}"
            )
    return where or {}


def matches(metadata: dict[str, Scalar], where: Filter | None) -> bool:
    """Whether ``metadata`` satisfies ``where``."""
    for key, condition in check_filter(where).items():
        present, value = key in metadata, metadata.get(key)
        if not isinstance(condition, dict):
            ok = present and _eq(value, condition)
        elif "$ne" in condition:
            ok = not present or not _eq(value, condition["$ne"])
        elif "$in" in condition:
            ok = present and any(_eq(value, option) for option in condition["$in"])
        elif "$gte" in condition:
            ok = present and _ordered(value, condition["$gte"], lambda a, b: a >= b)
        else:
            ok = present and _ordered(value, condition["$lte"], lambda a, b: a <= b)
        if not ok:
            return False
    return True


def _eq(a: Any, b: Any) -> bool:
    """Equality where booleans never equal numbers (as in JSON, unlike Python)."""
    return isinstance(a, bool) == isinstance(b, bool) and bool(a == b)


def _ordered(value: Any, bound: Any, compare: Any) -> bool:
    if isinstance(value, bool) or isinstance(bound, bool):
        return False
    try:
        return bool(compare(value, bound))
    except TypeError:
        return False


def _norm(vector: list[float] | array[float]) -> float:
    return math.sqrt(sum(v * v for v in vector))


def _cosine(
    query: list[float], qnorm: float, vector: list[float] | array[float], vnorm: float
) -> float:
    if not qnorm or not vnorm:
        return 0.0
    dot: float = sum(a * b for a, b in zip(query, vector, strict=True))
    return dot / (qnorm * vnorm)


def _top(hits: list[Hit], k: int) -> list[Hit]:
    return sorted(hits, key=lambda h: (-h.score, h.id))[:k]


class InMemoryVectorStore(VectorStore):
    """A dict in memory: for tests and short-lived runs."""

    def __init__(self, dimensions: int) -> None:
        self.dimensions = dimensions
        self._records: dict[str, VectorRecord] = {}

    def upsert(self, records: list[VectorRecord]) -> None:
        """Store records, replacing any with the same id."""
        for record in records:
            self._check(record.vector)
        self._records.update({r.id: r for r in records})

    def query(self, vector: list[float], k: int = 5, where: Filter | None = None) -> list[Hit]:
        """The ``k`` most similar records matching ``where``."""
        self._check(vector)
        qnorm = _norm(vector)
        hits = [
            Hit(
                id=r.id,
                text=r.text,
                metadata=r.metadata,
                score=_cosine(vector, qnorm, r.vector, _norm(r.vector)),
            )
            for r in self._records.values()
            if matches(r.metadata, where)
        ]
        return _top(hits, k)

    def get(self, record_id: str) -> VectorRecord | None:
        """One record by id, or None."""
        return self._records.get(record_id)

    def delete(self, ids: list[str]) -> int:
        """Delete records by id."""
        return sum(self._records.pop(i, None) is not None for i in ids)

    def count(self, where: Filter | None = None) -> int:
        """How many records match."""
        return sum(matches(r.metadata, where) for r in self._records.values())


_SCHEMA = """
CREATE TABLE IF NOT EXISTS vectors (
    id TEXT PRIMARY KEY,
    text TEXT NOT NULL,
    metadata TEXT NOT NULL,
    vector BLOB NOT NULL,
    norm REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS store_info (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class SQLiteVectorStore(VectorStore):
    """The default long-term store: SQLite (WAL), vectors as float32 blobs, cosine in Python.

    Filters run in SQL (``json_extract`` on the metadata column); similarity is
    computed over the rows that pass, which is fine up to tens of thousands of
    records. The file remembers its dimensions and refuses vectors of another size.

    Args:
        path: the database file (created when missing).
        dimensions: the vector size of the embedder in use.
    """

    def __init__(self, path: Path | str, dimensions: int) -> None:
        self.dimensions = dimensions
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._claim_dimensions()

    def _claim_dimensions(self) -> None:
        self._db.execute(
            "INSERT OR IGNORE INTO store_info VALUES ('dimensions', ?)", (str(self.dimensions),)
        )
        (stored,) = self._db.execute(
            "SELECT value FROM store_info WHERE key = 'dimensions'"
        ).fetchone()
        if int(stored) != self.dimensions:
            raise VectorStoreError(
                f"{self.path} holds {stored}-dimensional vectors, not {self.dimensions}; "
                "use the embedder it was built with, or a new file"
            )

    def upsert(self, records: list[VectorRecord]) -> None:
        """Store records, replacing any with the same id (one transaction)."""
        for record in records:
            self._check(record.vector)
        rows = [
            (
                r.id,
                r.text,
                json.dumps(r.metadata, sort_keys=True),
                array("f", r.vector).tobytes(),
                _norm(r.vector),
            )
            for r in records
        ]
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?, ?, ?)", rows)
            self._db.execute("COMMIT")

    def query(self, vector: list[float], k: int = 5, where: Filter | None = None) -> list[Hit]:
        """The ``k`` most similar records matching ``where``."""
        self._check(vector)
        qnorm = _norm(vector)
        clause, params = _sql_filter(where)
        with self._lock:
            rows = self._db.execute(
                f"SELECT id, text, metadata, vector, norm FROM vectors{clause}", params
            ).fetchall()
        hits = [
            Hit(
                id=rid,
                text=text,
                metadata=json.loads(meta),
                score=_cosine(vector, qnorm, array("f", blob), norm),
            )
            for rid, text, meta, blob, norm in rows
        ]
        return _top(hits, k)

    def get(self, record_id: str) -> VectorRecord | None:
        """One record by id, or None."""
        with self._lock:
            row = self._db.execute(
                "SELECT id, text, metadata, vector FROM vectors WHERE id = ?", (record_id,)
            ).fetchone()
        if row is None:
            return None
        rid, text, meta, blob = row
        return VectorRecord(
            id=rid, text=text, metadata=json.loads(meta), vector=list(array("f", blob))
        )

    def delete(self, ids: list[str]) -> int:
        """Delete records by id."""
        with self._lock:
            before = self._db.total_changes
            self._db.executemany("DELETE FROM vectors WHERE id = ?", [(i,) for i in ids])
            return self._db.total_changes - before

    def count(self, where: Filter | None = None) -> int:
        """How many records match."""
        clause, params = _sql_filter(where)
        with self._lock:
            (n,) = self._db.execute(f"SELECT COUNT(*) FROM vectors{clause}", params).fetchone()
        return int(n)

    def close(self) -> None:
        """Close the database."""
        self._db.close()


def _sql_filter(where: Filter | None) -> tuple[str, list[Any]]:
    parts: list[str] = []
    params: list[Any] = []
    for key, condition in check_filter(where).items():
        field = f"json_extract(metadata, '$.{key}')"  # key checked against _KEY above
        typed = f"json_type(metadata, '$.{key}')"
        if not isinstance(condition, dict):
            parts.append(f"({field} = ? AND {typed} IN {_kinds(condition)})")
            params.append(condition)
        elif "$ne" in condition:
            value = condition["$ne"]
            parts.append(f"({typed} IS NULL OR NOT ({field} = ? AND {typed} IN {_kinds(value)}))")
            params.append(value)
        elif "$in" in condition:
            values = list(condition["$in"])
            ors = " OR ".join(f"({field} = ? AND {typed} IN {_kinds(v)})" for v in values)
            parts.append(f"({ors or '0'})")
            params += values
        else:
            op, value = ("$gte", ">=") if "$gte" in condition else ("$lte", "<=")
            bound = condition[op]
            parts.append(f"({field} {value} ? AND {typed} IN {_kinds(bound)})")
            params.append(bound)
    return (" WHERE " + " AND ".join(parts), params) if parts else ("", [])


def _kinds(value: Any) -> str:
    """The JSON types a value compares with: numbers with numbers, booleans with booleans."""
    if isinstance(value, bool):
        return "('true', 'false')"
    if isinstance(value, int | float):
        return "('integer', 'real')"
    return "('text')"

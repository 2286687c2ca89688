"""The LogStore conformance suite: the same tests against the SQLite file and PostgreSQL.

Each backend must keep one hash chain with contiguous seqs, also when several
processes append at once, refuse writes when read-only, keep a failed batch
out entirely, refuse a newer format, and let the chain check find an edit.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from vouch.verifier import LogStore, open_log
from vouch.verifier._errors import LogIntegrityError
from vouch.verifier._log import GENESIS, LOG_FORMAT, unanchored_tail

BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(params=BACKENDS)
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "attestations.db")
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def store(location: str) -> Iterator[LogStore]:
    log = open_log(location)
    yield log
    log.close()


def _fill(log: LogStore) -> None:
    log.append("0xaa", "proposal", {"trade": 1, "note": "é"})
    log.append_many([("0xaa", "consensus", {"value": [1, 2]}), (b"\xbb", "report", {})])
    log.append("0xAA", "submission", {"ok": True})


def test_appends_chain_and_read_back_alike(store: LogStore) -> None:
    assert store.last_seq() == 0
    assert store.tail_after(0) == (0, None, None, None)
    _fill(store)
    entries = list(store.entries())
    assert [e.seq for e in entries] == [1, 2, 3, 4]
    assert entries[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.entry_hash for a, b in zip(entries, entries[1:], strict=False))
    assert all(e.compute_hash() == e.entry_hash and e.is_canonical() for e in entries)
    assert store.verify_chain() == []
    assert [e.seq for e in store.by_execution("0xAA")] == [1, 2, 4]
    assert store.by_execution(b"\xbb")[0].kind == "report"
    assert store.get(3).execution_id == "0xbb"
    with pytest.raises(KeyError):
        store.get(9)
    assert store.rows() == list(store.rows_between(1, 4))
    assert [r[0] for r in store.rows_at([4, 2])] == [2, 4]
    assert [h[0] for h in store.heads()] == [1, 2, 3, 4]
    assert sorted(store.executions()) == [("0xaa", 1, 4, 3), ("0xbb", 3, 3, 1)]
    assert store.seqs_of("0xaa") == [1, 2, 4]
    assert [e.seq for e in store.entries_after(2)] == [3, 4]
    count, first, last, oldest = store.tail_after(2)
    assert (count, first, last) == (2, 3, 4) and oldest == entries[2].created_at
    assert store.pending_after(4) == (0, None)
    assert store.last_seq() == 4
    assert store.format_version == LOG_FORMAT

    class Anchor:
        to_seq = 3

    assert unanchored_tail(store, [Anchor()]).count == 1


def test_export_is_identical_across_backends(store: LogStore, tmp_path: Path) -> None:
    _fill(store)
    out = tmp_path / "export.jsonl"
    assert store.export_jsonl(out) == 4
    assert len(out.read_text().splitlines()) == 4
    from vouch.verifier._log import AttestationLog

    with AttestationLog.import_jsonl(out, tmp_path / "imported.db") as imported:
        hashes = [e.entry_hash for e in imported.entries()]
    assert hashes == [e.entry_hash for e in store.entries()]


def test_a_failed_batch_leaves_nothing(store: LogStore) -> None:
    store.append("0x01", "proposal", {})
    with pytest.raises(TypeError):
        store.append_many([("0x01", "a", {"ok": 1}), ("0x01", "b", {"bad": object()})])
    assert store.last_seq() == 1
    store.append("0x01", "after", {})
    assert store.verify_chain() == [] and store.last_seq() == 2


def test_read_only_refuses_writes_and_missing_logs(location: str) -> None:
    with pytest.raises(LogIntegrityError):
        open_log(location, readonly=True)  # nothing there yet: never created by a reader
    with open_log(location) as writer:
        writer.append("0x01", "proposal", {})
    with open_log(location, readonly=True) as reader:
        with pytest.raises(LogIntegrityError, match="read-only"):
            reader.append("0x01", "proposal", {})
        assert reader.last_seq() == 1


def test_an_edit_is_found_by_the_chain_check(store: LogStore, location: str) -> None:
    _fill(store)
    sql = "UPDATE {} SET payload = '{{\"trade\":2}}' WHERE seq = 1"
    if location.startswith("postgresql://"):
        with psycopg.connect(location, autocommit=True) as db:
            db.execute(sql.format("vouch_log_entries").encode())
    else:
        import sqlite3

        with sqlite3.connect(location) as db:
            db.execute(sql.format("entries"))
    with open_log(location, readonly=True) as reread:
        findings = reread.verify_chain()
    assert [(f.seq, f.detail) for f in findings] == [
        (1, "content does not match its hash (edited)")
    ]


def test_postgres_refuses_a_newer_format(pg_url: str) -> None:
    with open_log(pg_url) as log:
        log.append("0x01", "proposal", {})
    with psycopg.connect(pg_url, autocommit=True) as db:
        db.execute("UPDATE vouch_log_meta SET value = '99' WHERE key = 'format'")
    with pytest.raises(LogIntegrityError, match="format version 99"):
        open_log(pg_url, readonly=True)


def test_postgres_errors_name_the_url_without_its_password(pg_server: object) -> None:
    url = "postgresql://alice:s3cret@127.0.0.1:1/none?connect_timeout=2"
    with pytest.raises(LogIntegrityError) as caught:
        open_log(url)
    assert "s3cret" not in str(caught.value)
    assert "postgresql://alice:***@127.0.0.1:1/none" in str(caught.value)


APPENDER = textwrap.dedent(
    """
    import sys
    from vouch.verifier import open_log
    location, worker, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    log = open_log(location)
    for i in range(count):
        if i % 5 == 4:
            log.append_many([("0x" + worker * 4, "batch", {"i": i, "j": j}) for j in range(3)])
        else:
            log.append("0x" + worker * 4, "single", {"worker": worker, "i": i})
    log.close()
    """
)


@pytest.mark.slow
def test_four_processes_append_one_contiguous_chain(location: str) -> None:
    open_log(location).close()  # the tables exist before the race (each process could, too)
    per = 60
    procs = [
        subprocess.Popen([sys.executable, "-c", APPENDER, location, f"{w:02x}", str(per)])
        for w in range(4)
    ]
    assert [p.wait(timeout=300) for p in procs] == [0, 0, 0, 0]
    with open_log(location, readonly=True) as log:
        entries = list(log.entries())
        findings = log.verify_chain()
        mine = {w: log.by_execution("0x" + f"{w:02x}" * 4) for w in range(4)}
    expected = 4 * (per // 5 * 4 + per // 5 * 3)
    assert [e.seq for e in entries] == list(range(1, expected + 1))
    assert findings == []
    by_worker = {w: [e.payload.get("i") for e in seen] for w, seen in mine.items()}
    for seen in by_worker.values():  # each process's entries in its own order, batches whole
        assert seen == sorted(seen)
        assert len(seen) == per // 5 * 4 + per // 5 * 3
    batches = [e.seq for e in entries if e.kind == "batch"]
    runs = [batches[i : i + 3] for i in range(0, len(batches), 3)]
    assert all(r == list(range(r[0], r[0] + 3)) for r in runs)  # a batch is never interleaved


def test_postgres_tables_can_be_set_up_by_racing_processes(pg_url: str) -> None:
    procs = [
        subprocess.Popen([sys.executable, "-c", APPENDER, pg_url, f"{w:02x}", "3"])
        for w in range(4)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    with open_log(pg_url, readonly=True) as log:
        assert log.last_seq() == 12 and log.verify_chain() == []

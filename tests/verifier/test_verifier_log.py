"""The attestation log: hash chain, tamper evidence, concurrent writers, clear errors."""

from __future__ import annotations

import json
import multiprocessing
import shutil
import sqlite3
import threading
from pathlib import Path

import pytest
from Crypto.Hash import keccak as pycryptodome_keccak

from vouch.verifier import AttestationLog, LogEntry, LogIntegrityError, VerifierError

ZERO = "0x" + "00" * 32
EXEC_A = "0x" + "aa" * 32
EXEC_B = "0x" + "bb" * 32


def k(data: bytes) -> bytes:
    return pycryptodome_keccak.new(digest_bits=256, data=data).digest()


def expected_hash(
    prev_hash: str, seq: int, execution: str, kind: str, payload: object, ms: int
) -> str:
    """The rule of docs/internals.md, written out with the standard library and pycryptodome."""
    header = {
        "seq": seq,
        "execution_id": execution,
        "kind": kind,
        "payload": payload,
        "created_at": ms,
    }
    text = json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "0x" + k(bytes.fromhex(prev_hash[2:]) + text.encode("utf-8")).hex()


def fill(path: Path, n: int = 6) -> AttestationLog:
    log = AttestationLog(path)
    for i in range(n):
        execution = bytes.fromhex(EXEC_A[2:]) if i % 2 == 0 else EXEC_B
        log.append(execution, f"kind{i}", {"i": i, "note": "é" * i, "big": 10**30 + i})
    return log


def named(log: AttestationLog) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    for finding in log.verify_chain():
        found.setdefault(finding.seq, []).append(finding.detail)
    return found


def tamper(path: Path, *statements: str, params: tuple[object, ...] = ()) -> AttestationLog:
    with sqlite3.connect(path) as db:
        for statement in statements:
            db.execute(statement, params if "?" in statement else ())
    return AttestationLog(path, readonly=True)


def test_appended_entries_form_the_documented_hash_chain(tmp_path: Path) -> None:
    log = fill(tmp_path / "log.db")
    entries = list(log.entries())
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5, 6]
    assert entries[0].prev_hash == ZERO
    for before, entry in zip([None, *entries], entries, strict=False):
        assert entry.prev_hash == (before.entry_hash if before else ZERO)
        assert entry.payload == json.loads(entry.payload_text)
        assert entry.entry_hash == expected_hash(
            entry.prev_hash,
            entry.seq,
            entry.execution_id,
            entry.kind,
            entry.payload,
            entry.created_at,
        )
        assert entry.compute_hash() == entry.entry_hash
    assert entries[0].created_at > 1_600_000_000_000  # unix milliseconds
    assert log.verify_chain() == []


def test_entry_hash_fixed_vector_from_the_spec() -> None:
    payload = {"mode": "median", "value": 3000000000000000000000, "f": 1, "note": "é"}
    args = (ZERO, 1, "0x" + "ab" * 32, "consensus", payload, 1800000000000)
    pinned = "0x33b8c993fff11b712c3ff461e6c19f943292a7276f344f3825595e87354df115"
    assert expected_hash(*args) == pinned
    entry = LogEntry(
        seq=1,
        execution_id="0x" + "ab" * 32,
        kind="consensus",
        payload_text=json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False),
        created_at=1800000000000,
        prev_hash=ZERO,
        entry_hash=pinned,
    )
    assert entry.compute_hash() == pinned


def test_payloads_are_stored_as_canonical_json_text(tmp_path: Path) -> None:
    log = AttestationLog(tmp_path / "log.db")
    log.append(EXEC_A, "proposal", {"b": [1, 2], "a": "é", "c": b"\x01\xff"})
    with sqlite3.connect(tmp_path / "log.db") as db:
        (text,) = db.execute("SELECT payload FROM entries WHERE seq = 1").fetchone()
    assert text == '{"a":"é","b":[1,2],"c":"0x01ff"}'
    with pytest.raises(TypeError):
        log.append(EXEC_A, "proposal", {"price": 1.5})
    assert [e.seq for e in log.entries()] == [1]  # a refused append leaves nothing behind


def test_get_and_by_execution(tmp_path: Path) -> None:
    log = fill(tmp_path / "log.db")
    assert log.get(3).kind == "kind2"
    with pytest.raises(KeyError):
        log.get(99)
    assert [e.seq for e in log.by_execution(EXEC_A)] == [1, 3, 5]
    assert [e.seq for e in log.by_execution(bytes.fromhex(EXEC_B[2:]))] == [2, 4, 6]
    assert [e.seq for e in log.by_execution(EXEC_B.upper().replace("0X", "0x"))] == [2, 4, 6]


def test_the_database_is_wal_with_full_sync(tmp_path: Path) -> None:
    fill(tmp_path / "log.db", 1)
    with sqlite3.connect(tmp_path / "log.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        columns = [row[1] for row in db.execute("PRAGMA table_info(entries)")]
    assert columns[:1] == ["seq"]
    assert {"execution_id", "kind", "payload", "created_at", "prev_hash", "entry_hash"} <= set(
        columns
    )


def test_an_acknowledged_entry_is_visible_to_another_connection(tmp_path: Path) -> None:
    log = AttestationLog(tmp_path / "log.db")
    entry = log.append(EXEC_A, "proposal", {"x": 1})
    with sqlite3.connect(tmp_path / "log.db") as db:
        row = db.execute("SELECT entry_hash FROM entries WHERE seq = ?", (entry.seq,)).fetchone()
    assert row == (entry.entry_hash,)


@pytest.mark.parametrize(
    "edit",
    [
        "UPDATE entries SET payload = replace(payload, '1000000000000000000000000000002', "
        "'1000000000000000000000000000003') WHERE seq = 3",
        "UPDATE entries SET payload = replace(payload, '\"i\":2', '\"i\":7') WHERE seq = 3",
        "UPDATE entries SET payload = substr(payload, 2) WHERE seq = 3",
        "UPDATE entries SET kind = 'kindX' WHERE seq = 3",
        "UPDATE entries SET created_at = created_at + 1 WHERE seq = 3",
        "UPDATE entries SET execution_id = '0x' || substr(execution_id, 4) || 'c' WHERE seq = 3",
    ],
)
def test_an_edited_entry_is_named_and_only_it(tmp_path: Path, edit: str) -> None:
    fill(tmp_path / "log.db")
    log = tamper(tmp_path / "log.db", edit)
    assert list(named(log)) == [3]


def test_a_one_byte_payload_edit_is_named(tmp_path: Path) -> None:
    fill(tmp_path / "log.db")
    with sqlite3.connect(tmp_path / "log.db") as db:
        (text,) = db.execute("SELECT payload FROM entries WHERE seq = 4").fetchone()
    data = bytearray(text.encode())
    at = data.index(b'"i":3') + 4
    data[at] = ord("8")
    log = tamper(
        tmp_path / "log.db", "UPDATE entries SET payload = ? WHERE seq = 4", params=(data.decode(),)
    )
    assert list(named(log)) == [4]


def test_a_re_hashed_edit_still_breaks_the_link_to_the_next_entry(tmp_path: Path) -> None:
    fill(tmp_path / "log.db")
    entry = AttestationLog(tmp_path / "log.db").get(3)
    payload = {**entry.payload, "i": 99}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    forged = expected_hash(
        entry.prev_hash, 3, entry.execution_id, entry.kind, payload, entry.created_at
    )
    log = tamper(
        tmp_path / "log.db",
        "UPDATE entries SET payload = ?, entry_hash = ? WHERE seq = 3",
        params=(text, forged),
    )
    assert list(named(log)) == [4]


def test_a_deleted_middle_entry_is_named_at_the_gap(tmp_path: Path) -> None:
    fill(tmp_path / "log.db")
    log = tamper(tmp_path / "log.db", "DELETE FROM entries WHERE seq = 3")
    found = named(log)
    assert list(found) == [4]
    assert any("3" in detail for detail in found[4])


def test_swapped_contents_of_two_rows_are_both_named(tmp_path: Path) -> None:
    fill(tmp_path / "log.db")
    cols = "execution_id, kind, payload, created_at, prev_hash, entry_hash"
    with sqlite3.connect(tmp_path / "log.db") as db:
        two = db.execute(f"SELECT {cols} FROM entries WHERE seq = 2").fetchone()
        five = db.execute(f"SELECT {cols} FROM entries WHERE seq = 5").fetchone()
        setter = ", ".join(f"{c.strip()} = ?" for c in cols.split(","))
        db.execute(f"UPDATE entries SET {setter} WHERE seq = 2", five)
        db.execute(f"UPDATE entries SET {setter} WHERE seq = 5", two)
    found = named(AttestationLog(tmp_path / "log.db", readonly=True))
    assert {2, 5} <= set(found) <= {2, 3, 5, 6}


def test_reordered_adjacent_entries_are_named(tmp_path: Path) -> None:
    fill(tmp_path / "log.db")
    log = tamper(
        tmp_path / "log.db",
        "UPDATE entries SET seq = -1 WHERE seq = 3",
        "UPDATE entries SET seq = 3 WHERE seq = 4",
        "UPDATE entries SET seq = 4 WHERE seq = -1",
    )
    assert {3, 4} <= set(named(log))


def test_an_inserted_entry_is_named(tmp_path: Path) -> None:
    fill(tmp_path / "log.db")
    entry = AttestationLog(tmp_path / "log.db").get(2)
    payload = {"forged": True}
    text = json.dumps(payload, separators=(",", ":"))
    # A self-consistent entry after #2; every later row is shifted up by one.
    forged = expected_hash(entry.entry_hash, 3, EXEC_A, "proposal", payload, entry.created_at)
    log = tamper(
        tmp_path / "log.db",
        "UPDATE entries SET seq = -seq WHERE seq >= 3",
        "UPDATE entries SET seq = 1 - seq WHERE seq < 0",
        f"INSERT INTO entries (seq, execution_id, kind, payload, created_at, prev_hash, entry_hash)"
        f" VALUES (3, '{EXEC_A}', 'proposal', '{text}', {entry.created_at},"
        f" '{entry.entry_hash}', '{forged}')",
    )
    assert [e.seq for e in log.entries()] == list(range(1, 8))
    assert list(named(log))[:1] == [4]  # the first original entry after the insertion breaks


def test_an_appended_forgery_with_a_wrong_link_is_named(tmp_path: Path) -> None:
    fill(tmp_path / "log.db")
    payload = {"forged": True}
    forged = expected_hash(ZERO, 7, EXEC_A, "proposal", payload, 1)
    log = tamper(
        tmp_path / "log.db",
        "INSERT INTO entries (seq, execution_id, kind, payload, created_at, prev_hash, entry_hash)"
        f" VALUES (7, '{EXEC_A}', 'proposal', '{{\"forged\":true}}', 1, '{ZERO}', '{forged}')",
    )
    assert list(named(log)) == [7]


def _write_from_process(path: str, worker: int, count: int) -> None:
    log = AttestationLog(path)
    for i in range(count):
        log.append(bytes([worker]) * 32, "event", {"worker": worker, "i": i})


def test_threads_and_processes_appending_at_once_keep_one_contiguous_chain(
    tmp_path: Path,
) -> None:
    path = tmp_path / "log.db"
    AttestationLog(path)
    count = 25
    spawn = multiprocessing.get_context("spawn")
    processes = [
        spawn.Process(target=_write_from_process, args=(str(path), w, count)) for w in (10, 11, 12)
    ]
    threads = [
        threading.Thread(target=_write_from_process, args=(str(path), w, count)) for w in range(4)
    ]
    for worker in [*processes, *threads]:
        worker.start()
    for thread in threads:
        thread.join()
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    log = AttestationLog(path, readonly=True)
    entries = list(log.entries())
    assert [e.seq for e in entries] == list(range(1, 7 * count + 1))
    assert log.verify_chain() == []
    written = {(e.payload["worker"], e.payload["i"]) for e in entries}
    assert written == {(w, i) for w in (0, 1, 2, 3, 10, 11, 12) for i in range(count)}


def test_a_copy_opens_read_only_and_verifies_like_the_original(tmp_path: Path) -> None:
    fill(tmp_path / "log.db").close()  # the writer is done: everything is in the main file
    shutil.copy(tmp_path / "log.db", tmp_path / "copy.db")
    copy = AttestationLog(tmp_path / "copy.db", readonly=True)
    assert [e.entry_hash for e in copy.entries()] == [
        e.entry_hash for e in AttestationLog(tmp_path / "log.db").entries()
    ]
    assert copy.verify_chain() == []
    with pytest.raises(LogIntegrityError, match="opened read-only: nothing appended"):
        copy.append(EXEC_A, "proposal", {})
    assert len(list(copy.entries())) == len(list(AttestationLog(tmp_path / "log.db").entries()))


def test_files_that_are_not_vouch_logs_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(LogIntegrityError, match="no attestation log"):
        AttestationLog(tmp_path / "missing.db", readonly=True)
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE entries (x)")
    with pytest.raises(LogIntegrityError, match="not a vouch"):
        AttestationLog(other, readonly=True)
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"definitely not sqlite\x00" * 200)
    with pytest.raises(LogIntegrityError) as caught:
        AttestationLog(garbage, readonly=True)
    assert str(garbage) in str(caught.value)
    assert issubclass(LogIntegrityError, VerifierError)

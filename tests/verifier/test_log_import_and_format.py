"""Log format version on open; `import_jsonl` verifies the whole export before writing anything.

The attacks: an export edited (and re-hashed or not), a duplicated, dropped or
reordered line, garbage, deep nesting; each refused naming the line and why,
leaving no file behind; and a log of another format version or not a log at all.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from vouch.verifier import AttestationLog, LogEntry, LogIntegrityError
from vouch.verifier._log import LOG_FORMAT, chain_hash

EXEC = "0x" + "ab" * 32


def make_export(tmp_path: Path, n: int = 6) -> tuple[Path, list[str]]:
    log = AttestationLog(tmp_path / "source.db")
    for i in range(n):
        log.append(EXEC, f"kind{i}", {"i": i, "note": "é" * i, "amount": 10**30 + i})
    out = tmp_path / "log.jsonl"
    assert log.export_jsonl(out) == n
    log.close()
    return out, out.read_text(encoding="utf-8").splitlines()


def write(tmp_path: Path, lines: list[str], name: str = "edited.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def leftovers(tmp_path: Path) -> list[str]:
    """Files an import may have left in the folder (the source log and exports aside)."""
    return sorted(
        p.name
        for p in tmp_path.iterdir()
        if not p.name.startswith("source.db") and not p.name.endswith(".jsonl")
    )


def refused(tmp_path: Path, export: Path) -> str:
    target = tmp_path / "copy.db"
    with pytest.raises(LogIntegrityError) as caught:
        AttestationLog.import_jsonl(export, target)
    assert not target.exists(), "a failed import must leave nothing behind"
    assert leftovers(tmp_path) == []
    return str(caught.value)


def rehash_from(lines: list[str], start: int) -> list[str]:
    """The attacker's tool: recompute every hash from line ``start`` (0-based) on."""
    out = lines[:start]
    prev = json.loads(lines[start - 1])["entry_hash"] if start else "0x" + "00" * 32
    for line in lines[start:]:
        e = json.loads(line)
        e["prev_hash"] = prev
        e["entry_hash"] = chain_hash(
            prev,
            e["seq"],
            e["execution_id"],
            e["kind"],
            json.loads(e["payload_text"]),
            e["created_at"],
        )
        prev = e["entry_hash"]
        out.append(json.dumps(e, ensure_ascii=False))
    return out


def test_an_intact_export_imports_with_every_hash_and_the_format_version(tmp_path: Path) -> None:
    export, _ = make_export(tmp_path)
    copy = AttestationLog.import_jsonl(export, tmp_path / "copy.db")
    source = AttestationLog(tmp_path / "source.db", readonly=True)
    assert list(copy.entries()) == list(source.entries())
    assert copy.verify_chain() == []
    assert copy.format_version == LOG_FORMAT
    copy.close()
    assert leftovers(tmp_path) == ["copy.db"]  # no temporary file, journal or WAL left over


def test_an_edited_line_is_refused_naming_it_and_the_hash_mismatch(tmp_path: Path) -> None:
    export, lines = make_export(tmp_path)
    lines[3] = lines[3].replace("amount", "amounu")  # sorted keys: still canonical
    message = refused(tmp_path, write(tmp_path, lines))
    assert "line 4: entry #4: hash mismatch" in message
    assert "line 5" not in message and "line 3" not in message


def test_an_edited_and_re_hashed_line_breaks_the_link_of_the_next(tmp_path: Path) -> None:
    export, lines = make_export(tmp_path)
    edited = json.loads(lines[2])
    edited["payload_text"] = edited["payload_text"].replace('"i":2', '"i":9')
    lines[2] = json.dumps(edited, ensure_ascii=False)
    lines = rehash_from(lines, 2)[:3] + lines[3:]  # re-hash the edited entry only
    message = refused(tmp_path, write(tmp_path, lines))
    assert (
        "line 4: broken link: entry #4's prev_hash is not the hash of entry #3 (line 3)" in message
    )
    assert "line 3" not in message.replace("(line 3)", "")


def test_a_duplicated_line_is_reported_without_a_traceback_and_nothing_is_written(
    tmp_path: Path,
) -> None:
    export, lines = make_export(tmp_path)
    lines.insert(3, lines[2])
    message = refused(tmp_path, write(tmp_path, lines))
    assert "line 4: duplicated line (entry #3 again, as on line 3)" in message


def test_a_second_different_entry_with_a_used_seq_is_named(tmp_path: Path) -> None:
    export, lines = make_export(tmp_path)
    other = json.loads(lines[1])
    other["kind"] = "forged"
    lines.append(json.dumps(other, ensure_ascii=False))
    message = refused(tmp_path, write(tmp_path, lines))
    assert "line 7: a second entry #2 (the first is on line 2)" in message


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda ls: ls[:2] + ls[3:],
            "line 3: seq gap: entry #4 follows #2 (line 2); entries #3..#3 are missing",
        ),
        (lambda ls: [ls[0], ls[2], ls[1], *ls[3:]], "line 2: seq gap: entry #3 follows #1"),
        (lambda ls: ls[1:], "line 1: seq gap: entry #2 follows #0"),
        (lambda ls: [*ls[:2], "{not json", *ls[2:]], "line 3: bad JSON"),
        (lambda ls: [*ls[:2], '{"seq": "3"}', *ls[3:]], "line 3: not a log entry"),
        (
            lambda ls: [*ls[:1], ls[1].replace('"seq":2', '"seq":"2"'), *ls[2:]],
            "line 2: not a log entry: seq",
        ),
        (
            lambda ls: [*ls[:1], "[" * 100_000 + "]" * 100_000, *ls[1:]],
            "line 2: nested deeper than",
        ),
    ],
    ids=[
        "dropped",
        "reordered",
        "first-dropped",
        "bad-json",
        "missing-fields",
        "string-seq",
        "deep",
    ],
)
def test_every_broken_export_is_refused_naming_the_line_and_why(
    tmp_path: Path, edit: object, expected: str
) -> None:
    export, lines = make_export(tmp_path)
    message = refused(tmp_path, write(tmp_path, edit(lines)))  # type: ignore[operator]
    assert expected in message, message
    assert "Traceback" not in message


def test_a_deeply_nested_payload_re_hashed_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    export, lines = make_export(tmp_path, 2)
    e = json.loads(lines[1])
    e["payload_text"] = '{"x":' + "[" * 80_000 + "]" * 80_000 + "}"
    lines[1] = json.dumps(e)
    message = refused(tmp_path, write(tmp_path, lines))
    assert "line 2: entry #2: payload nested deeper than 64 levels" in message


def test_import_refuses_an_existing_destination_and_leaves_it_alone(tmp_path: Path) -> None:
    export, _ = make_export(tmp_path)
    target = tmp_path / "taken.db"
    target.write_bytes(b"precious")
    with pytest.raises(LogIntegrityError, match="already exists; import into a new file"):
        AttestationLog.import_jsonl(export, target)
    assert target.read_bytes() == b"precious"


def test_a_whole_re_hashed_edit_imports_the_anchors_are_what_catch_it(tmp_path: Path) -> None:
    """Documented limit: an export carries no secret; only the onchain anchors pin its content."""
    export, lines = make_export(tmp_path)
    e = json.loads(lines[2])
    e["payload_text"] = e["payload_text"].replace('"i":2', '"i":9')
    lines[2] = json.dumps(e, ensure_ascii=False)
    copy = AttestationLog.import_jsonl(write(tmp_path, rehash_from(lines, 2)), tmp_path / "c.db")
    assert copy.verify_chain() == [] and copy.get(3).payload["i"] == 9


# -- the format version, checked on open -------------------------------------------------


def test_a_new_log_carries_the_format_version(tmp_path: Path) -> None:
    log = AttestationLog(tmp_path / "log.db")
    log.append(EXEC, "k", {})
    with sqlite3.connect(tmp_path / "log.db") as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == LOG_FORMAT == 1


def test_a_log_of_a_newer_format_is_refused_saying_so_and_what_to_do(tmp_path: Path) -> None:
    AttestationLog(tmp_path / "log.db").append(EXEC, "k", {})
    with sqlite3.connect(tmp_path / "log.db") as db:
        db.execute(f"PRAGMA user_version = {LOG_FORMAT + 1}")
    for readonly in (True, False):
        with pytest.raises(LogIntegrityError) as caught:
            AttestationLog(tmp_path / "log.db", readonly=readonly)
        message = str(caught.value)
        assert f"format version {LOG_FORMAT + 1}, written by a newer vouch" in message
        assert "upgrade vouch" in message


def test_an_unknown_format_version_is_refused(tmp_path: Path) -> None:
    AttestationLog(tmp_path / "log.db").append(EXEC, "k", {})
    with sqlite3.connect(tmp_path / "log.db") as db:
        db.execute("PRAGMA user_version = -7")
    with pytest.raises(LogIntegrityError, match="unknown log format version -7"):
        AttestationLog(tmp_path / "log.db", readonly=True)


def test_a_log_written_before_versions_opens_and_is_stamped_on_write(tmp_path: Path) -> None:
    log = AttestationLog(tmp_path / "old.db")
    log.append(EXEC, "k", {"a": 1})
    log.close()
    with sqlite3.connect(tmp_path / "old.db") as db:
        db.execute("PRAGMA user_version = 0")
    assert AttestationLog(tmp_path / "old.db", readonly=True).format_version == 0
    assert AttestationLog(tmp_path / "old.db").format_version == LOG_FORMAT


def test_files_that_are_not_logs_say_what_they_are(tmp_path: Path) -> None:
    runs = tmp_path / "runs.db"
    with sqlite3.connect(runs) as db:
        db.execute("CREATE TABLE runs (run_id TEXT)")
        db.execute("CREATE TABLE steps (run_id TEXT)")
    for readonly in (True, False):
        with pytest.raises(LogIntegrityError, match=r"tables runs, steps \(a vouch runs database"):
            AttestationLog(runs, readonly=readonly)
    with sqlite3.connect(runs) as db:  # opening it for writing created nothing in it
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
    assert tables == {"runs", "steps"}
    export, _ = make_export(tmp_path, 1)
    with pytest.raises(LogIntegrityError, match="looks like a JSON Lines export; import it first"):
        AttestationLog(export, readonly=True)
    empty = tmp_path / "empty.db"
    empty.touch()
    with pytest.raises(LogIntegrityError, match="empty SQLite database"):
        AttestationLog(empty, readonly=True)
    wrong = tmp_path / "wrong.db"
    with sqlite3.connect(wrong) as db:
        db.execute("CREATE TABLE entries (seq INTEGER, body TEXT)")
    with pytest.raises(LogIntegrityError, match=r"its entries table has columns \(seq, body\)"):
        AttestationLog(wrong, readonly=True)


def test_log_entry_round_trips_through_an_export_line() -> None:
    e = LogEntry(
        seq=1,
        execution_id=EXEC,
        kind="k",
        payload_text="{}",
        created_at=1,
        prev_hash="0x" + "00" * 32,
        entry_hash="0x" + "11" * 32,
    )
    assert LogEntry.model_validate_json(e.model_dump_json(), strict=True) == e

"""The audit's shortcuts agree with the general code they stand in for."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from coincurve import PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from vouch.verifier import _batch
from vouch.verifier._canonical import dump_parsed, keccak, parse_exact
from vouch.verifier._log import GENESIS, _hash, content_problem, entry_digest
from vouch.verifier._signing import HALF_N, SECP256K1_N
from vouch.verifier.audit._read import _observation_json, _read

names = st.text(max_size=10) | st.sampled_from(["0x" + "ab" * 32, "observations", "é", 'a"b', "\\"])
json_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=6)


@given(
    prev=st.binary(min_size=32, max_size=32),
    seq=st.integers(min_value=0, max_value=2**63),
    execution_id=names,
    kind=names,
    payload=st.text(max_size=40),
    created_at=st.integers(min_value=0, max_value=2**63),
)
def test_entry_digest_is_the_entry_hash(
    prev: bytes, seq: int, execution_id: str, kind: str, payload: str, created_at: int
) -> None:
    want = _hash("0x" + prev.hex(), seq, execution_id, kind, payload, created_at)
    got = entry_digest(prev, seq, execution_id, kind, payload.encode(), created_at)
    assert "0x" + got.hex() == want


observations = st.fixed_dictionaries(
    {
        "feed": st.text(max_size=8) | json_scalars,
        "node": st.text(max_size=8) | json_scalars,
        "observed_at": st.integers() | json_scalars,
        "request_id": st.text(max_size=8) | json_scalars,
        "value": st.integers() | st.booleans() | json_scalars,
    },
    optional={"extra": json_scalars},
)


@given(observations | st.lists(json_scalars, max_size=3) | json_scalars)
def test_observation_json_is_dump_parsed(observation: Any) -> None:
    assert _observation_json(observation) == dump_parsed(observation)


KEY = PrivateKey(keccak(b"audit-fast"))
words = st.sampled_from(
    [0, 1, HALF_N - 1, HALF_N, HALF_N + 1, SECP256K1_N - 1, SECP256K1_N, 2**256 - 1]
) | st.integers(min_value=0, max_value=2**256 - 1)


@given(
    r=words,
    s=words,
    v=st.integers(min_value=0, max_value=255),
    offset=st.sampled_from([0, 27]),
    length=st.sampled_from([65, 64, 66]),
)
def test_recover_agrees_with_recover_one_on_any_signature(
    r: int, s: int, v: int, offset: int, length: int
) -> None:
    message = keccak(r.to_bytes(32, "big"))
    signature = (r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([v]))[:length]
    signature += bytes(max(0, length - len(signature)))
    assert _batch.recover(message, signature, offset) == _batch.recover_one(
        message, signature, offset
    )


@given(st.binary(min_size=32, max_size=32), st.sampled_from([0, 27]))
def test_recover_agrees_with_recover_one_on_real_signatures(message: bytes, offset: int) -> None:
    raw = KEY.sign_recoverable(message, hasher=None)
    signature = raw[:64] + bytes([raw[64] + offset])
    got = _batch.recover(message, signature, offset)
    assert got == _batch.recover_one(message, signature, offset)
    assert got == keccak(KEY.public_key.format(compressed=False)[1:])[-20:]


def reference_read(rows: list[tuple[Any, ...]]) -> tuple[list[tuple[Any, ...]], dict[int, str]]:
    """The audit's reading of rows before the shortcuts: json alone, content_problem per entry."""
    entries, broken = [], {}
    for row in rows:
        seq, execution_id, kind, text = int(row[0]), str(row[1]), str(row[2]), str(row[3])
        created_at, prev_hash, entry_hash = int(row[4]), str(row[5]), str(row[6])
        value, canonical = parse_exact(text)
        problem = content_problem(
            seq, execution_id, kind, text, canonical, created_at, prev_hash, entry_hash
        )
        if problem:
            broken[seq] = problem
        payload = value if isinstance(value, dict) else {}
        entries.append((seq, execution_id, kind, payload, created_at, entry_hash))
    return entries, broken


payload_values = st.recursive(
    json_scalars | st.sampled_from([3000 * 10**18, 2**64, -(2**63) - 1, "\ud800", "a.b"]),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3)
    ),
    max_leaves=8,
)
edits = st.sampled_from(["none", "none", "none", "spaces", "float", "hash", "prev", "garbage"])


@settings(max_examples=300)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["observations", "report", "consensus", "x y"]), payload_values, edits
        ),
        min_size=1,
        max_size=40,
    )
)
def test_read_finds_what_json_alone_and_content_problem_find(
    items: list[tuple[str, Any, str]],
) -> None:
    rows, prev = [], GENESIS
    for seq, (kind, value, edit) in enumerate(items, start=1):
        if not isinstance(value, dict):
            value = {"v": value}  # noqa: PLW2901
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        execution_id = "0x" + keccak(bytes([seq % 3])).hex()
        try:
            entry_hash = _hash(prev, seq, execution_id, kind, text, 1_800_000_000_000)
        except UnicodeEncodeError:  # a lone surrogate: no hash at all (the audit fails on it)
            entry_hash = "0x" + "22" * 32
        stored_prev = prev
        if edit == "spaces":
            text = json.dumps(value, sort_keys=True, ensure_ascii=False)
        elif edit == "float":
            text = text[:-1] + ',"zz":1.5}' if value else '{"zz":1.5}'
        elif edit == "hash":
            entry_hash = "0x" + keccak(entry_hash.encode()).hex()
        elif edit == "prev":
            stored_prev = "0x" + "11" * 32
        elif edit == "garbage":
            text = text[:-1]
        rows.append((seq, execution_id, kind, text, 1_800_000_000_000, stored_prev, entry_hash))
        prev = entry_hash
    try:
        want_entries, want_broken = reference_read(rows)
    except UnicodeEncodeError:
        with pytest.raises(UnicodeEncodeError):
            _read(rows)
        return
    got_entries, got_broken = _read(rows)
    assert got_broken == want_broken
    assert [tuple(e) for e in got_entries] == want_entries


def test_parallel_linkage_at_part_edges_is_the_serial_linkage(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import sqlite3

    from vouch.verifier import AttestationLog, audit

    monkeypatch.setattr(_batch, "PARALLEL_THRESHOLD", 100)
    log = AttestationLog(tmp_path / "edges.db")
    items: list[tuple[bytes | str, str, dict[str, Any]]] = []
    for n in range(150):  # interleaved executions, so some straddle the parts
        items += [
            (keccak(bytes([n % 7, n // 7])), kind, {"n": n, "tx_hash": "", "error": "x"})
            for kind in ("proposal", "submission")
        ]
    log.append_many(items)
    log.close()
    # _plan's parts once seq 1 is gone: 32 equal seq spans from seq 2 to the last one
    low, high = 2, len(items)
    width = -(-(high - low + 1) // (2 * 16))
    first = [low + k * width for k in range(32)]  # the first seq of each part
    deleted = (1, first[1] - 1, first[2], first[5] - 1)  # ends of parts 0 and 4, start of 2
    broken = (first[3], first[4] + 1)  # a part's first row, a second row
    with sqlite3.connect(tmp_path / "edges.db") as db:
        db.execute("DELETE FROM entries WHERE seq IN (?, ?, ?, ?)", deleted)
        for seq in broken:
            db.execute("UPDATE entries SET prev_hash = '0x' WHERE seq = ?", (seq,))
    log = AttestationLog(tmp_path / "edges.db", readonly=True)
    serial = audit(log, None, workers=1)
    parallel = audit(log, None, workers=2)
    assert serial.results == parallel.results
    chain = {f.seq for f in parallel.failures if f.check == "chain"}
    assert chain == {2, first[1], first[2] + 1, first[5], *broken}


def test_a_prev_hash_that_is_not_hex_is_a_chain_finding_not_a_crash(  # type: ignore[no-untyped-def]
    tmp_path: Path, monkeypatch
) -> None:
    import sqlite3

    from vouch.verifier import AttestationLog, audit

    monkeypatch.setattr(_batch, "PARALLEL_THRESHOLD", 100)
    log = AttestationLog(tmp_path / "zz.db")
    log.append_many([(keccak(bytes([n % 5])), "proposal", {"n": n}) for n in range(120)])
    log.close()
    with sqlite3.connect(tmp_path / "zz.db") as db:
        db.execute("UPDATE entries SET prev_hash = '0xzz' WHERE seq IN (3, 90)")
        db.execute(
            "UPDATE entries SET prev_hash = 'nothex', payload = '{\"n\": 60}' WHERE seq = 61"
        )
    log = AttestationLog(tmp_path / "zz.db", readonly=True)
    serial = audit(log, None, workers=1)
    assert serial.results == audit(log, None, workers=2).results
    chain = {f.seq: f.detail for f in serial.failures if f.check == "chain"}
    assert set(chain) == {3, 90, 61}, chain
    assert all("prev_hash" in detail for detail in chain.values())

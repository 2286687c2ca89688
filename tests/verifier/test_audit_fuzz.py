"""No input crashes the audit: arbitrary bytes and JSON shapes in entries, re-hashed or not.

An audit that raises is worse than one that fails: the operator decides what
the auditor sees. Whatever an entry holds, every check either passes, fails or
is skipped, naming the entry, and the CLI exits 0, 1 or 2.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vouch.verifier import AttestationLog, audit, chain_hash
from vouch.verifier._canonical import canonical_json
from vouch.verifier._cli import main

from ..scripts import ROOT, load_script

KINDS = [
    "proposal",
    "observations",
    "consensus",
    "skipped",
    "report",
    "submission",
    "hitl",
    "retry",
    "aborted",
    "refund",
]
KEYS = [
    "observations",
    "observation",
    "signature",
    "don",
    "forwarder",
    "don_id",
    "config_version",
    "raw",
    "context",
    "signatures",
    "signers",
    "tx_hash",
    "block_number",
    "status",
    "mode",
    "value",
    "f",
    "observations_seq",
    "proposal",
    "action_hash",
    "trade_id",
    "decision",
    "approver",
    "digest",
    "gate",
    "rule",
    "why",
    "feed",
    "earlier_seqs",
    "evidence",
    "absent",
    "chain_id",
    "receiver",
]
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**300), 2**300)
    | st.text(max_size=20)
    | st.sampled_from(["0x", "0x" + "ab" * 32, "0x" + "12" * 20, "settled", "median"])
)
shapes = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=5), inner, max_size=5)
    ),
    max_leaves=25,
)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[Any, Any]]:
    bench = load_script(ROOT / "scripts" / "bench" / "audit.py", "audit_bench")
    path = tmp_path_factory.mktemp("fuzz") / "base.db"
    signers, _ = bench.generate(path, 2)  # 10 entries, two executions
    return path, {(1, 1): (bench.F, signers)}


def crafted(base: Path, seq: int, kind: str | None, payload: Any, rehash: bool) -> Path:
    path = Path(tempfile.mkdtemp()) / "fuzz.db"
    shutil.copy(base, path)
    with sqlite3.connect(path) as db:
        rows = list(db.execute("SELECT * FROM entries ORDER BY seq"))
        db.execute("DELETE FROM entries")
        prev = "0x" + "00" * 32
        for row in rows:
            n, execution, old_kind, text, created, stored_prev, stored_hash = row
            if n == seq:
                old_kind = kind or old_kind
                text = payload
            if rehash and not isinstance(text, bytes):
                try:
                    value = json.loads(text) if isinstance(text, str) else text
                    text = canonical_json(value).decode()
                    stored_hash = chain_hash(prev, n, execution, old_kind, value, created)
                    stored_prev = prev
                except (ValueError, TypeError, RecursionError):
                    pass
            db.execute(
                "INSERT INTO entries VALUES (?, ?, ?, ?, ?, ?, ?)",
                (n, execution, old_kind, text, created, stored_prev, stored_hash),
            )
            prev = stored_hash
    return path


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    seq=st.integers(1, 10),
    kind=st.none() | st.sampled_from(KINDS) | st.text(max_size=8),
    payload=shapes.map(json.dumps)
    | st.text(max_size=60)
    | st.binary(max_size=60)
    | shapes.map(lambda v: {"k": v} if not isinstance(v, dict) else v).map(json.dumps),
    rehash=st.booleans(),
)
def test_any_entry_content_is_a_finding_never_a_crash(
    base: tuple[Path, dict[Any, Any]], seq: int, kind: str | None, payload: Any, rehash: bool
) -> None:
    path = crafted(base[0], seq, kind, payload, rehash)
    report = audit(AttestationLog(path, readonly=True), None, signers=base[1])
    assert report.entries == 10
    assert {r.status for r in report.results} <= {"ok", "fail", "skip"}
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = main(["audit", str(path), "--json", "--workers", "1"])
    assert code in (0, 1, 2)
    doc = json.loads(out.getvalue())  # JSON whatever the outcome
    assert doc["entries"] == 10 if code != 2 else "cannot_audit" in doc
    shutil.rmtree(path.parent)


@pytest.mark.parametrize(
    "payload",
    [
        "[" * 80_000 + "]" * 80_000,
        '{"a":' * 80_000 + "1" + "}" * 80_000,
        '["' + "[" * 80_000 + '"]',  # brackets inside a string: not deep, just odd
    ],
    ids=["list", "object", "in a string"],
)
def test_the_cli_survives_80000_levels_in_a_child_process(
    base: tuple[Path, dict[Any, Any]], payload: str
) -> None:
    path = crafted(base[0], 3, None, payload, rehash=False)
    done = subprocess.run(
        [sys.executable, "-m", "vouch.verifier", "audit", str(path), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 1, done.stderr[-2000:]  # a finding, not SIGSEGV (-11)
    failing = [r for r in json.loads(done.stdout)["results"] if r["status"] == "fail"]
    assert any(r["seq"] == 3 for r in failing)

"""The audit bench's floor does the audit's library work and reports exactly the audit's checks.

The floor is the bound the bench holds the audit against; if it skipped a
recovery or a hash, or the audit grew a check the floor does not report, the
floor would flatter or shame the audit for the wrong reason.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from types import ModuleType

import pytest

from vouch.verifier import AttestationLog, audit

from ..scripts import ROOT, load_script

BENCH = ROOT / "scripts" / "bench" / "audit.py"
EXECUTIONS = 30  # 150 entries, 150 signatures


@pytest.fixture(scope="module")
def bench_log(tmp_path_factory: pytest.TempPathFactory) -> tuple[ModuleType, Path, list[str], int]:
    bench = load_script(BENCH, "audit_bench")  # its pool pickles floor_part by module name
    path = tmp_path_factory.mktemp("floor") / "bench.db"
    signers, pairs = bench.generate(path, EXECUTIONS)
    return bench, path, signers, len(pairs)


def test_the_floor_recovers_every_signature_and_reports_each_check_the_audit_does(
    bench_log: tuple[ModuleType, Path, list[str], int],
) -> None:
    bench, path, signers, signatures = bench_log
    entries = EXECUTIONS * 5
    recovered, found = bench.floor_part((str(path), 1, entries))
    assert recovered == signatures
    report = audit(AttestationLog(path, readonly=True), None, signers={(1, 1): (bench.F, signers)})
    assert report.ok
    assert sorted((f[0], f[3], f[4]) for f in found) == sorted(
        (r.seq, r.check, r.status) for r in report.results
    )
    wall, cpu = bench.floor(path, entries, 2, signatures)
    assert wall > 0 and cpu > 0


def test_the_floor_stops_on_an_edited_entry(
    bench_log: tuple[ModuleType, Path, list[str], int], tmp_path: Path
) -> None:
    bench = bench_log[0]
    edited = tmp_path / "edited.db"
    bench.generate(edited, EXECUTIONS)
    with sqlite3.connect(edited) as db:  # same canonical shape, another trade id: the hash breaks
        db.execute(
            "UPDATE entries SET payload = replace(payload, '\"trade_id\":7', '\"trade_id\":8') "
            "WHERE seq = 31"
        )
    with pytest.raises(AssertionError):
        bench.floor_part((str(edited), 1, EXECUTIONS * 5))

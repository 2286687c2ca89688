"""What `vouch audit` shows a person: a tally per check, the failed checks, a verdict that scales.

A log of thousands of entries must not become a table of every check: the
tallies and the failures are what a person reads; ``--verbose``, ``--json``
and ``--html`` carry everything.
"""

from __future__ import annotations

import sqlite3
from io import StringIO
from pathlib import Path

import pytest
from rich.console import Console

from vouch._auditing import SHOWN_ENTRIES, SHOWN_FAILURES, show_report
from vouch.verifier import AttestationLog, AuditReport, audit
from vouch.verifier._cli import NAMED_ENTRIES, summary

from .scripts import ROOT, load_script

EXECUTIONS = 60  # 300 entries


@pytest.fixture(scope="module")
def bench_log(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    bench = load_script(ROOT / "scripts" / "bench" / "audit.py", "audit_bench")
    path = tmp_path_factory.mktemp("output") / "log.db"
    signers, _ = bench.generate(path, EXECUTIONS)
    return path, {(1, 1): (bench.F, signers)}


def edited_copy(path: Path, tmp_path: Path, *statements: str) -> AttestationLog:
    """A copy of the log at ``path`` with ``statements`` run on it."""
    edited = tmp_path / "edited.db"
    with sqlite3.connect(path) as source, sqlite3.connect(edited) as copy:
        source.backup(copy)
    with sqlite3.connect(edited) as db:
        for statement in statements:
            db.execute(statement)
    return AttestationLog(edited, readonly=True)


EDIT_GAS = (  # a content break in every submission: 60
    "UPDATE entries SET payload = replace(payload, '\"gas_used\":190000', "
    "'\"gas_used\":190001') WHERE kind = 'submission'"
)


def shown(report: AuditReport, path: Path, verbose: bool = False) -> str:
    out = StringIO()
    show_report(Console(file=out, width=200, color_system=None), report, path, verbose)
    return out.getvalue()


def test_a_clean_log_shows_one_row_per_check_with_its_counts(
    bench_log: tuple[Path, dict],
) -> None:
    path, signers = bench_log
    report = audit(AttestationLog(path, readonly=True), None, signers=signers)
    text = shown(report, path)
    tallies = report.by_check()
    assert list(tallies) == [
        "chain",
        "action hash",
        "trade terms",
        "observation signatures",
        "signers configured",
        "consensus parameters",
        "consensus recomputed",
        "report signatures",
        "report binding",
        "report contents",
        "transaction",
        "entry sequence",
    ]
    assert (tallies["chain"].ok, tallies["transaction"].skip) == (300, 60)
    assert (tallies["entry sequence"].ok, tallies["action hash"].ok) == (60, 60)
    assert tallies["transaction"].skipped_because == "no chain to check against"
    rows = [line for line in text.splitlines() if line.startswith("│")]
    assert len(rows) == len(tallies)  # no row per entry
    assert "│ chain" in text and "300" in rows[0]
    assert "no chain to check against" in text
    # offline: never a green "all passed"
    assert "✓" not in text and "all 960 checks passed" not in text
    assert (
        "! not verified against a chain: 960 offline checks passed on 300 entries (120 skipped)"
        in text
    )
    assert "against: offline" in text
    assert "#17" not in text  # entries are not listed when nothing failed
    assert text.count("#") < 5 < shown(report, path, verbose=True).count("#17")


def test_many_failures_list_the_first_and_count_the_rest(
    bench_log: tuple[Path, dict], tmp_path: Path
) -> None:
    path, signers = bench_log
    edited = edited_copy(
        path,
        tmp_path,
        EDIT_GAS,
        # and every observation entry's feed name: 60 more, 120 in all
        'UPDATE entries SET payload = replace(payload, \'"feed":"ETH/USD","observations"\', '
        '\'"feed":"BTC/USD","observations"\') WHERE kind = \'observations\'',
    )
    report = audit(edited, None, signers=signers)
    failures = report.failures
    assert len(failures) == 120 > SHOWN_FAILURES
    assert report.by_check()["chain"].fail == 120
    text = shown(report, edited.path)
    listed = [line for line in text.splitlines() if "FAIL" in line]
    assert len(listed) == SHOWN_FAILURES
    assert "#2 " in listed[0] and "content does not match its hash" in listed[0]
    assert "… and 20 more failed checks: --verbose, --json or --html FILE lists them all" in text
    verdict = text.strip().splitlines()[-1]
    assert verdict.startswith(
        "✗ 120 failed checks in 300 entries; first failing entries in log order: #2, #5, "
    )
    assert verdict.count("#") == SHOWN_ENTRIES and "(120 entries in all)" in verdict
    everything = shown(report, edited.path, verbose=True)
    assert sum("FAIL" in line for line in everything.splitlines()) == 120
    assert "more failed checks" not in everything


def test_the_standalone_verifiers_summary_tallies_and_names_at_most_twenty_entries(
    bench_log: tuple[Path, dict], tmp_path: Path
) -> None:
    path, signers = bench_log
    edited = edited_copy(path, tmp_path, EDIT_GAS)
    lines = summary(audit(edited, None, signers=signers))
    assert sum("\tFAIL\t" in line for line in lines) == 60
    chain = next(line for line in lines if line.startswith("chain "))
    assert chain.split() == ["chain", "ok", "240", "fail", "60", "skip", "0"]
    assert lines[-1].startswith(
        "FAILED: 60 checks in 300 entries; first failing entries in log order: #5, #10, "
    )
    assert lines[-1].count("#") == NAMED_ENTRIES and lines[-1].endswith("(60 entries in all)")

"""Every example runs as its docstring says, and none answers bad arguments with a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
NEEDS_ARGUMENTS = {"hitl_payout.py"}


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=240, cwd=cwd, check=False
    )


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.py")))
def test_an_example_without_arguments_runs_or_prints_its_usage(name: str, tmp_path: Path) -> None:
    result = run(str(EXAMPLES / name), cwd=tmp_path)
    assert "Traceback" not in result.stderr, result.stderr
    if name in NEEDS_ARGUMENTS:
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith(f"usage: python examples/{name}")
    else:
        assert result.returncode == 0, result.stderr


def test_hitl_payout_pauses_then_pays_once_after_approval(tmp_path: Path) -> None:
    db, ledger = tmp_path / "runs.db", tmp_path / "payouts.log"
    paused = run(str(EXAMPLES / "hitl_payout.py"), str(db), str(ledger), cwd=tmp_path)
    assert paused.returncode == 0, paused.stderr
    run_id, status = paused.stdout.split()[:2]
    assert status == "interrupted" and not ledger.exists()  # waiting for a human
    vouch = Path(sys.executable).with_name("vouch")
    approve = [str(vouch), "runs", "approve", run_id, "--db", str(db)]
    approved = subprocess.run(
        approve, capture_output=True, text=True, timeout=240, cwd=tmp_path, check=False
    )
    assert approved.returncode == 0, approved.stdout + approved.stderr
    assert ledger.read_text().count("paid 5000 to 0xSupplier") == 1

"""`vouch runs` on a PostgreSQL run store (VOUCH_RUNS_URL): submit queues a run the workers can take."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from vouch.agents import open_checkpoints, run_leases


def _vouch(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vouch", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_submit_queues_a_run_that_list_and_show_read_back(pg_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "VOUCH_HOME": str(tmp_path / "home"), "VOUCH_RUNS_URL": pg_url}
    env["COLUMNS"] = "200"
    queued = _vouch(env, "runs", "submit", "Sell 1 WETH for USDC", "--run-id", "queued-1")
    assert queued.returncode == 0, queued.stdout + queued.stderr
    assert "run queued-1 queued in postgresql://postgres@/" in queued.stdout
    store = open_checkpoints(pg_url)
    record = store.load_run("queued-1")
    assert record.status == "running" and record.entrypoint == "vouch._flow:build_executor"
    assert run_leases(store).claimable(["running"]) == ["queued-1"]
    store.close()
    assert not (tmp_path / "home" / "runs.db").exists()  # nothing went to the SQLite default
    listed = _vouch(env, "runs", "list")
    assert listed.returncode == 0 and "queued-1" in listed.stdout, listed.stdout + listed.stderr
    assert "queued: `vouch runs work`" in listed.stdout
    shown = _vouch(env, "runs", "show", "queued-1")
    assert shown.returncode == 0 and "Sell 1 WETH" in shown.stdout, shown.stdout + shown.stderr


def test_a_bad_runs_url_is_refused_naming_the_variable(tmp_path: Path) -> None:
    env = {**os.environ, "VOUCH_HOME": str(tmp_path), "VOUCH_RUNS_URL": "mysql://x:pw@y/z"}
    env["COLUMNS"] = "300"
    done = _vouch(env, "runs", "list")
    assert done.returncode != 0
    assert "VOUCH_RUNS_URL" in done.stdout + done.stderr
    assert "a 'mysql' URL is not a PostgreSQL URL" in done.stdout + done.stderr
    assert "pw" not in done.stdout + done.stderr

"""Ctrl-C while `vouch runs approve` drives a run: exit 130, no traceback, the run and how to resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow]

FLOW = """
import asyncio, sys
from vouch.agents import Executor, Plan, SQLiteCheckpointStore, Step


def build(store):
    async def slow(ctx):
        async def go(key):
            await asyncio.sleep(900)  # a long irreversible action: Ctrl-C lands here
            return "went"
        return await ctx.effect("go", go, {"what": "go"}, irreversible=True)

    return Executor({"slow": slow}, store=store, entrypoint=__file__ + ":build")


if __name__ == "__main__":
    store = SQLiteCheckpointStore(sys.argv[1])
    plan = Plan(goal="go slowly", steps=[Step(id="wait", task="go", agent="slow")])
    outcome = asyncio.run(build(store).run(plan, run_id="slow-run"))
    print(outcome.status)
"""


def vouch(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vouch", "runs", *args, "--db", str(db)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "250"},
        check=False,
    )


def test_ctrl_c_names_the_run_its_step_and_the_resume_command(tmp_path: Path) -> None:
    flow, db = tmp_path / "slow_flow.py", tmp_path / "runs.db"
    flow.write_text(textwrap.dedent(FLOW))
    started = subprocess.run(
        [sys.executable, str(flow), str(db)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert started.stdout.strip() == "interrupted", started.stderr
    approving = subprocess.Popen(
        [sys.executable, "-m", "vouch", "runs", "approve", "slow-run", "--db", str(db)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # a shell's background job ignores SIGINT and children inherit that: restore Ctrl-C
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # noqa: PLW1509
    )
    lock = tmp_path / "runs.locks" / "slow-run"
    deadline = time.monotonic() + 300
    while not (lock.exists() and lock.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "running in process" in vouch(db, "list").stdout  # the lock says a process drives it
    time.sleep(1.0)
    approving.send_signal(signal.SIGINT)
    out, err = approving.communicate(timeout=120)
    assert approving.returncode == 130, out + err
    assert "Traceback" not in err
    assert "run slow-run stopped in step wait" in err
    assert "vouch runs resume slow-run" in err
    listed = vouch(db, "list").stdout
    assert "interrupted in step wait (its process stopped)" in listed, listed

"""`vouch runs` on a PostgreSQL run store (VOUCH_RUNS_URL): submit queues a run the workers can take."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

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


HOLDER = """
import sys, time
from vouch.agents import LeaseKeeper, open_checkpoints, run_leases

store = open_checkpoints(sys.argv[1])
leases = run_leases(store)
lease = leases.claim(sys.argv[2], "host-a:4242", 30.0)  # what a worker does
assert lease is not None
with LeaseKeeper(leases, lease, 30.0):
    print("held", flush=True)
    sys.stdin.readline()  # until the test says so
print("released", flush=True)
"""


@pytest.mark.slow  # processes holding leases for seconds: the full suite, not test-fast
@pytest.mark.parametrize("backend", ["postgres", "sqlite"])
def test_resume_and_approve_take_the_runs_lease(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A worker holds a run (on another host, for PostgreSQL): resume and approve are refused."""
    from vouch.agents import PendingAction, RunRecord

    home = tmp_path / "home"
    env = {**os.environ, "VOUCH_HOME": str(home), "COLUMNS": "300"}
    if backend == "postgres":
        location = env["VOUCH_RUNS_URL"] = str(request.getfixturevalue("pg_url"))
    else:
        env.pop("VOUCH_RUNS_URL", None)
        location = str(home / "runs.db")
    store = open_checkpoints(location)
    pending = PendingAction(key="0xk", step_id="settle", kind="irreversible", summary="settle")
    store.save_run(RunRecord(run_id="held-1", goal="g", status="interrupted", pending=[pending]))
    store.save_run(RunRecord(run_id="done-1", goal="g", status="done"))
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, location, "held-1"],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdin is not None
        assert holder.stdout.readline().strip() == "held", holder.communicate()
        for args in (("runs", "resume", "held-1"), ("runs", "approve", "held-1")):
            refused = _vouch(env, *args)
            said = refused.stdout + refused.stderr
            assert refused.returncode != 0, said
            assert "run held-1 is being driven by host-a:4242 (lease epoch 1)" in said, said
            assert "lease expires at" in said and "UTC (in " in said, said
        assert store.load_decisions("held-1") == {}  # the refused approve decided nothing
        holder.stdin.write("\n")
        holder.stdin.flush()
        assert holder.communicate(timeout=30)[0].strip().endswith("released")
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.communicate()
    done = _vouch(env, "runs", "resume", "done-1")  # free: taken, worked under, released
    assert done.returncode == 0, done.stdout + done.stderr
    assert "run done-1 is done: nothing to resume" in done.stdout
    assert run_leases(store).holder("done-1") is None
    if backend == "postgres":  # the lease, not a file lock only this host sees
        assert not (home / "runs.locks").exists()
    store.close()


FIRST_WORKER = """
import sys
from vouch import load_settings
from vouch._workers import Worker

worker = Worker(load_settings(), owner="host-a:1111", ttl=30.0)
print("ready", flush=True)
sys.stdin.readline()
worker.close()
print("closed", flush=True)
"""


@pytest.mark.slow  # worker processes on one key: the full suite, not test-fast
def test_a_second_worker_on_the_same_deployer_key_is_refused(pg_url: str, tmp_path: Path) -> None:
    """Two workers on one key collide on nonces: the second is refused at start-up."""
    home = tmp_path / "home"
    env = {**os.environ, "VOUCH_HOME": str(home), "VOUCH_RUNS_URL": pg_url, "COLUMNS": "300"}
    first = subprocess.Popen(
        [sys.executable, "-c", FIRST_WORKER],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert first.stdout is not None and first.stdin is not None
        assert first.stdout.readline().strip() == "ready", first.communicate()
        second = _vouch(env, "runs", "work", "--idle-exit", "0.2")
        said = second.stdout + second.stderr
        assert second.returncode != 0, said
        assert "deployer key 0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266" in said, said
        assert "in use by live worker host-a:1111" in said, said
        assert "its own funded key (VOUCH_DEPLOYER_KEYSTORE)" in said, said
        # a worker with its own key starts beside it
        own = tmp_path / "own.json"
        own.write_text('{"address": "1111111111111111111111111111111111111111"}')
        alone = _vouch(
            {**env, "VOUCH_DEPLOYER_KEYSTORE": str(own)}, "runs", "work", "--idle-exit", "0.2"
        )
        assert alone.returncode == 0, alone.stdout + alone.stderr
        first.stdin.write("\n")
        first.stdin.flush()
        assert first.communicate(timeout=30)[0].strip().endswith("closed")
    finally:
        if first.poll() is None:
            first.kill()
            first.communicate()
    after = _vouch(env, "runs", "work", "--idle-exit", "0.2")  # the key is free again
    assert after.returncode == 0, after.stdout + after.stderr

"""A paused worker that lost its lease writes nothing when it wakes (lease fencing).

Worker A drives a settlement run from a PostgreSQL run store and log; right
after the engine recorded the escrow effect it stops itself (SIGSTOP: a GC
pause, a frozen VM, a partition). Its lease expires; worker B claims the run
(epoch 2), resumes it and finishes it. Then A gets SIGCONT. Without fencing,
A went on driving the run: it overwrote B's finished run header and appended
its own trace. With fencing, A's first write is refused by the store (the
lease's epoch is no longer A's): A stops with ``LeaseLost`` naming the run, its
token and the new holder, writes nothing and sends nothing, and exits 0. The
run settled exactly once and ``vouch audit --log postgresql://...`` passes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import psycopg
import pytest

from vouch import load_settings
from vouch.agents import open_checkpoints
from vouch.verifier import open_log

from .test_worker_takeover import _environ, _events

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WORKER = """
import json, os, signal, sys
from vouch import load_settings
from vouch.agents._checkpoint_pg import PostgresCheckpointStore
from vouch._flow import Services, sign_decision
from vouch._workers import Worker

owner, mode = sys.argv[1], sys.argv[2]

if mode == "stop":  # freeze right after the engine recorded the escrow's idempotency key
    original = PostgresCheckpointStore.record_effect

    def record_then_freeze(self, key, run_id, result):
        original(self, key, run_id, result)
        if isinstance(result, dict) and "job" in result:  # the escrow step's effect
            print(json.dumps({"stopped_after": key}), flush=True)
            os.kill(os.getpid(), signal.SIGSTOP)

    PostgresCheckpointStore.record_effect = record_then_freeze

settings = load_settings()


def approve(executor, outcome):
    services = Services(settings)
    for action in outcome.pending:
        signed = sign_decision(services, outcome.run_id, action, True, "approved by the test")
        executor.decide(outcome.run_id, action.key, True, "test", by=signed["approver"])
    return True


# one deployer key: B waits for A's key lease (a dead A frees it after its ttl)
worker = Worker(settings, owner=owner, ttl=3.0, on_pause=approve, wait_for_key=120)
done = worker.work(runs=1, idle_exit=120, poll=0.3)
for worked in done:
    outcome = worked.outcome
    print(json.dumps({"owner": worked.owner, "epoch": worked.epoch, "lost": worked.lost,
                      "error": getattr(worked, "error", None),
                      "status": outcome.status if outcome else None,
                      "settle": outcome.outputs.get("settle") if outcome else None},
                     default=str), flush=True)
"""


def _worker(tmp: Path, env: dict[str, str], owner: str, mode: str) -> subprocess.Popen[str]:
    script = tmp / "fenced_worker.py"
    script.write_text(textwrap.dedent(WORKER))
    return subprocess.Popen(
        [sys.executable, str(script), owner, mode],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _rows(url: str, run_id: str) -> dict[str, Any]:
    """Everything of the run in the store, to compare before and after A wakes."""
    with psycopg.connect(url) as db:
        return {
            table: db.execute(
                f"SELECT * FROM {table} WHERE run_id = %s ORDER BY 1, 2",  # noqa: S608
                (run_id,),
            ).fetchall()
            for table in ("vouch_runs", "vouch_steps", "vouch_decisions", "vouch_effects")
        } | {
            "traces": db.execute(
                "SELECT count(*) FROM vouch_traces WHERE run_id = %s", (run_id,)
            ).fetchone()
        }


def test_a_paused_worker_that_lost_its_lease_writes_nothing_when_it_wakes(
    evm: Any, tmp_path: Path, pg_url: str
) -> None:
    from vouch._demo import DEFAULT_GOAL
    from vouch._workers import submit

    start = evm.w3.eth.block_number + 1
    env = _environ(evm, pg_url)
    settings = load_settings(home=evm.settings.home, runs_url=pg_url, log_url=pg_url)
    record = submit(settings, DEFAULT_GOAL, run_id="fenced-run")
    store = open_checkpoints(pg_url)

    a = _worker(tmp_path, env, "worker-a", "stop")
    b = None
    try:
        assert a.stdout is not None
        line = a.stdout.readline()  # A froze after this line
        assert line, a.communicate()
        stopped_key = json.loads(line)["stopped_after"]
        b = _worker(tmp_path, env, "worker-b", "live")
        b_out, b_err = b.communicate(timeout=400)
        assert b.returncode == 0, b_out + b_err
        before = _rows(pg_url, record.run_id)
        with open_log(pg_url, readonly=True) as log:
            entries_before = [e.entry_hash for e in log.entries()]
        blocks_before = evm.w3.eth.block_number
        os.kill(a.pid, signal.SIGCONT)
        a_out, a_err = a.communicate(timeout=120)
    finally:
        for proc in (a, b):
            if proc is not None and proc.poll() is None:
                os.kill(proc.pid, signal.SIGCONT)
                proc.kill()
                proc.communicate()
    result = json.loads(b_out.strip().splitlines()[-1])
    assert result["owner"] == "worker-b" and result["epoch"] == 2 and not result["lost"]
    assert result["status"] == "done", result

    # A woke and wrote nothing, logged nothing, sent nothing
    assert a.returncode == 0, a_out + a_err
    assert _rows(pg_url, record.run_id) == before, a_out
    with open_log(pg_url, readonly=True) as log:
        assert [e.entry_hash for e in log.entries()] == entries_before
        kinds = [e.kind for e in log.entries()]
        assert log.verify_chain() == []
    assert evm.w3.eth.block_number == blocks_before
    assert kinds == ["proposal", "hitl", "observations", "consensus", "report", "submission"]

    # it stopped with a named error and exited cleanly
    stale = json.loads(a_out.strip().splitlines()[-1])
    assert stale["owner"] == "worker-a" and stale["lost"] and stale["epoch"] == 1, stale
    assert "LeaseLost" in stale["error"] and "fenced-run" in stale["error"], stale
    assert "last held by worker-b" in stale["error"], stale

    # the run settled exactly once, with the escrow A had recorded
    seen, escrow = store.effect(stopped_key)
    trade_id = escrow["job"]["trade_id"]
    assert seen and escrow["execution"]["execution_id"] == result["settle"]["execution_id"]
    created = _events(evm, "SettlementGate", "TradeCreated", start)
    assert [int(e["args"]["tradeId"]) for e in created] == [trade_id]
    assert len(_events(evm, "SettlementGate", "TradeFunded", start)) == 1
    assert len(_events(evm, "SettlementGate", "TradeSettled", start)) == 1
    assert len(_events(evm, "Forwarder", "ReportProcessed", start)) == 1
    assert store.load_run(record.run_id).status == "done"
    store.close()

    audit = subprocess.run(
        [sys.executable, "-m", "vouch", "audit", "--log", pg_url],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert audit.returncode == 0, audit.stdout + audit.stderr

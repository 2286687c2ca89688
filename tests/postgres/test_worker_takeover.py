"""Two workers share one PostgreSQL run store and log; one is killed (kill -9) mid-run.

A settlement run is queued (``vouch._workers.submit``). Worker A claims it by
lease and drives it with the real flow (offline model, the session's anvil,
deployment and DON); it SIGKILLs itself right after the engine recorded the
escrow effect's idempotency key. Worker B, started while A holds the lease,
gets nothing until A's lease expires, then claims the run (lease epoch 2),
resumes it from the PostgreSQL checkpoint and finishes it. Exactly one trade
is opened, funded and settled and one report reaches the forwarder; the log on
PostgreSQL has each step once, contiguous seqs, and ``vouch audit --log
postgresql://...`` passes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from vouch import load_settings
from vouch.agents import open_checkpoints, run_leases
from vouch.verifier import open_log

from ..conftest import PASSWORD

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WORKER = """
import json, os, signal, sys
from vouch import load_settings
from vouch.agents._checkpoint_pg import PostgresCheckpointStore
from vouch._flow import Services, sign_decision
from vouch._workers import Worker

owner, mode = sys.argv[1], sys.argv[2]
kill_after_escrow = mode == "kill"

if mode == "kill-mid-escrow":  # die after the seller opened the trade, before the buyer funds it
    from vouch._settlement import ChainSubmitter

    def die_before_funding(self, gate, buyer, trade_id):
        print(json.dumps({"killed_before_funding": trade_id}), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)

    ChainSubmitter._fund = die_before_funding

if kill_after_escrow:  # die right after the engine recorded the escrow's idempotency key
    original = PostgresCheckpointStore.record_effect

    def record_then_die(self, key, run_id, result):
        original(self, key, run_id, result)
        if isinstance(result, dict) and "job" in result:  # the escrow step's effect
            print(json.dumps({"killed_after": key}), flush=True)
            os.kill(os.getpid(), signal.SIGKILL)

    PostgresCheckpointStore.record_effect = record_then_die

settings = load_settings()


def approve(executor, outcome):
    services = Services(settings)
    for action in outcome.pending:
        signed = sign_decision(services, outcome.run_id, action, True, "approved by the test")
        executor.decide(outcome.run_id, action.key, True, "test", by=signed["approver"])
    return True


# one deployer key (B waits for A's key lease: a dead A frees it after its ttl),
# unless VOUCH_DEPLOYER_KEYSTORE gives this worker its own
worker = Worker(settings, owner=owner, ttl=3.0, on_pause=approve, wait_for_key=120)
done = worker.work(runs=1, idle_exit=120, poll=0.3)
for worked in done:
    print(json.dumps({"owner": worked.owner, "epoch": worked.epoch, "lost": worked.lost,
                      "status": worked.outcome.status, "reason": worked.outcome.reason,
                      "settle": worked.outcome.outputs.get("settle")}, default=str), flush=True)
"""


def _environ(evm: Any, url: str) -> dict[str, str]:
    return {
        **os.environ,
        "VOUCH_HOME": str(evm.settings.home),
        "VOUCH_KEYSTORE_PASSWORD": PASSWORD,
        "VOUCH_APPROVAL_THRESHOLD": "0",  # the session gate's policy: keep it
        "VOUCH_LOG_URL": url,
        "VOUCH_RUNS_URL": url,
        "COLUMNS": "200",
    }


def _worker(tmp: Path, env: dict[str, str], owner: str, mode: str) -> subprocess.Popen[str]:
    script = tmp / "worker.py"
    script.write_text(textwrap.dedent(WORKER))
    return subprocess.Popen(
        [sys.executable, str(script), owner, mode],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _events(evm: Any, name: str, event: str, start: int) -> list[Any]:
    return list(getattr(evm.contract(name).events, event)().get_logs(from_block=start))


def test_a_killed_workers_run_is_finished_once_by_another(
    evm: Any, tmp_path: Path, pg_url: str
) -> None:
    from vouch._demo import DEFAULT_GOAL
    from vouch._workers import submit

    start = evm.w3.eth.block_number + 1
    env = _environ(evm, pg_url)
    settings = load_settings(home=evm.settings.home, runs_url=pg_url, log_url=pg_url)
    record = submit(settings, DEFAULT_GOAL, run_id="shared-run")
    store = open_checkpoints(pg_url)
    leases = run_leases(store)

    a = _worker(tmp_path, env, "worker-a", "kill")
    b = None
    try:
        deadline = time.monotonic() + 60
        while leases.holder(record.run_id) is None:  # A holds the lease before B starts
            assert a.poll() is None, a.communicate()
            assert time.monotonic() < deadline, "worker A never claimed the run"
            time.sleep(0.1)
        b = _worker(tmp_path, env, "worker-b", "live")
        a_out, a_err = a.communicate(timeout=300)
        assert a.returncode == -signal.SIGKILL, a_out + a_err
        killed_key = json.loads(a_out.strip().splitlines()[-1])["killed_after"]
        b_out, b_err = b.communicate(timeout=400)
        assert b.returncode == 0, b_out + b_err
    finally:
        for proc in (a, b):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.communicate()
    result = json.loads(b_out.strip().splitlines()[-1])
    assert result["owner"] == "worker-b" and result["epoch"] == 2 and not result["lost"]
    assert result["status"] == "done", result

    # the escrow A recorded was not done again; one trade, one report, one settlement
    seen, escrow = store.effect(killed_key)
    trade_id = escrow["job"]["trade_id"]
    assert seen and escrow["execution"]["execution_id"] == result["settle"]["execution_id"]
    created = _events(evm, "SettlementGate", "TradeCreated", start)
    assert [int(e["args"]["tradeId"]) for e in created] == [trade_id]
    assert len(_events(evm, "SettlementGate", "TradeFunded", start)) == 1
    settled = _events(evm, "SettlementGate", "TradeSettled", start)
    assert [int(e["args"]["tradeId"]) for e in settled] == [trade_id]
    assert len(_events(evm, "Forwarder", "ReportProcessed", start)) == 1
    assert store.load_run(record.run_id).status == "done"
    assert leases.holder(record.run_id) is None  # B released it

    with open_log(pg_url, readonly=True) as log:
        kinds = [e.kind for e in log.entries()]
        assert log.verify_chain() == []
    assert kinds == ["proposal", "hitl", "observations", "consensus", "report", "submission"]
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
    assert "s3cret" not in audit.stdout


def test_a_worker_with_its_own_key_finishes_a_half_open_escrow_as_the_same_parties(
    evm: Any, tmp_path: Path, pg_url: str
) -> None:
    """A dies after its seller opened the trade and before the buyer funded it; B sends
    from another deployer key (one key per worker, as the key lease asks) and must act as
    the same derived parties: it adopts and funds A's trade instead of opening a second."""
    from eth_account import Account

    from vouch._demo import DEFAULT_GOAL
    from vouch._workers import submit

    start = evm.w3.eth.block_number + 1
    env = _environ(evm, pg_url)
    own = Account.create()
    keystore = tmp_path / "worker-b.json"
    keystore.write_text(
        json.dumps(Account.encrypt(own.key, PASSWORD, kdf="scrypt", iterations=2**10))
    )
    funder = evm.w3.eth.accounts[0]
    evm.w3.eth.wait_for_transaction_receipt(
        evm.w3.eth.send_transaction({"from": funder, "to": own.address, "value": 10**20})
    )
    settings = load_settings(home=evm.settings.home, runs_url=pg_url, log_url=pg_url)
    record = submit(settings, DEFAULT_GOAL, run_id="half-open")
    store = open_checkpoints(pg_url)
    leases = run_leases(store)

    a = _worker(tmp_path, env, "worker-a", "kill-mid-escrow")
    b = None
    try:
        a_out, a_err = a.communicate(timeout=300)
        assert a.returncode == -signal.SIGKILL, a_out + a_err
        opened = json.loads(a_out.strip().splitlines()[-1])["killed_before_funding"]
        b = _worker(tmp_path, {**env, "VOUCH_DEPLOYER_KEYSTORE": str(keystore)}, "worker-b", "live")
        b_out, b_err = b.communicate(timeout=400)
        assert b.returncode == 0, b_out + b_err
    finally:
        for proc in (a, b):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.communicate()
    result = json.loads(b_out.strip().splitlines()[-1])
    assert result["owner"] == "worker-b" and result["status"] == "done", result

    created = _events(evm, "SettlementGate", "TradeCreated", start)
    assert [int(e["args"]["tradeId"]) for e in created] == [opened]
    assert len(_events(evm, "SettlementGate", "TradeFunded", start)) == 1
    settled = _events(evm, "SettlementGate", "TradeSettled", start)
    assert [int(e["args"]["tradeId"]) for e in settled] == [opened]
    assert leases.holder(record.run_id) is None
    with open_log(pg_url, readonly=True) as log:
        assert log.verify_chain() == []
    store.close()

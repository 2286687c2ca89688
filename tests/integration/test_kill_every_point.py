"""kill -9 at every point of a settlement; resumed at once and after the observation age.

The child process runs the real settlement run (offline model, the session's
anvil and deployment) against a DON of real node processes whose
``max_observation_age`` is 5 s (the same keys as the session's DON, its own
ports: a controllable clock), and SIGKILLs itself at one point: before the
escrow is sent, after each escrow transaction, after the escrow is logged,
during observation (signed observations in hand, none logged), after the
observations are logged, after consensus, after the report is logged (before
it is sent), after it is mined (before the submission is logged), after the
settlement returned (before the engine recorded it). A second process resumes
the run, either at once or after more than the observation age: every honest
node's earlier answer is stale by then, so a resume that reused the earlier
round's cached observations could never settle. Each case ends with exactly
one trade settled by exactly one report, and ``vouch audit`` exits 0.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from vouch import Stack
from vouch.cre_adapters import DonConfig, DonSupervisor

from ..conftest import PASSWORD, Env
from .helpers import align_clock
from .test_resume_after_kill import assert_one_settlement, kinds

pytestmark = [pytest.mark.integration, pytest.mark.slow]
MAX_AGE = 5

CHILD = """
import asyncio, json, os, signal, sys
from pathlib import Path

from vouch.agents import SQLiteCheckpointStore
from vouch.cre_adapters import Coordinator, DonConfig, ReportDelivery, SettlementWorkflow
from vouch.cre_adapters.evm import ChainWriter
from vouch.verifier import AttestationLog
from vouch import Stack, load_settings
from vouch._demo import DEFAULT_GOAL
from vouch._flow import Services, offline_model, settlement_executor, settlement_planner, sign_decision
from vouch._settlement import ChainSubmitter

home, log_path, db, don_file, mode, kill_at = sys.argv[1:7]
run_id = "killed-run"


def die():
    os.kill(os.getpid(), signal.SIGKILL)


def patch(cls, name, before=False, when=lambda *args: True):
    original = getattr(cls, name)
    if asyncio.iscoroutinefunction(original):
        async def wrapped(*args, **kwargs):
            if before and when(*args):
                die()
            result = await original(*args, **kwargs)
            if when(*args):
                die()
            return result
    else:
        def wrapped(*args, **kwargs):
            if before and when(*args):
                die()
            result = original(*args, **kwargs)
            if when(*args):
                die()
            return result
    setattr(cls, name, wrapped)


def tx(name):
    return lambda self, fn, *rest: fn.fn_name == name


POINTS = {
    "before-escrow": (ChainWriter, "transact", True, tx("createTrade")),
    "createTrade": (ChainWriter, "transact", False, tx("createTrade")),
    "fundTrade": (ChainWriter, "transact", False, tx("fundTrade")),
    "escrowed": (ChainSubmitter, "escrow", False, None),
    "observing": (Coordinator, "observe_round", False, None),
    "observed": (SettlementWorkflow, "_log_observations", False, None),
    "consensus": (SettlementWorkflow, "_build", False, None),
    "report-logged": (SettlementWorkflow, "_log_report", False, None),
    "report-mined": (ReportDelivery, "_send", False, None),
    "settled": (ChainSubmitter, "settle", False, None),
}
if kill_at in POINTS:
    cls, name, before, when = POINTS[kill_at]
    patch(cls, name, before, when or (lambda *args: True))

settings = load_settings(home=home)
stack = Stack(settings)
chain = stack.chain_up()
artifacts = stack.artifacts()
deployment = stack.require_deployment(chain, artifacts)
don = DonConfig.load(Path(don_file))
log = AttestationLog(log_path)
writer = stack.writer(chain, artifacts)
workflow = SettlementWorkflow(don, deployment, artifacts, writer, log, timeout=5.0)
submitter = ChainSubmitter(
    workflow, writer, artifacts, deployment, log, lambda k, d: None,
    party_secret=stack.deployer_key(chain),
)
services = Services(settings, submitter=submitter, log_path=Path(log_path))
model = offline_model()
executor = settlement_executor(services, model, SQLiteCheckpointStore(db))


async def main():
    if mode == "run":
        plan = await settlement_planner(model).plan(DEFAULT_GOAL)
        outcome = await executor.run(plan, run_id=run_id)
    else:
        outcome = await executor.resume(run_id)
    while outcome.status == "interrupted":
        for action in outcome.pending:
            signed = sign_decision(services, run_id, action, True, "approved by the test")
            executor.decide(run_id, action.key, True, "test", by=signed["approver"])
        outcome = await executor.resume(run_id)
    last = submitter.last_outcome
    print(json.dumps({
        "status": outcome.status,
        "reason": outcome.reason,
        "trade_id": submitter.last_trade_id,
        "outcome": last.model_dump(mode="json") if last else None,
    }))


asyncio.run(main())
"""

POINTS = [
    "before-escrow",
    "createTrade",
    "fundTrade",
    "escrowed",
    "observing",
    "observed",
    "consensus",
    "report-logged",
    "report-mined",
    "settled",
]


@pytest.fixture(scope="module")
def short_lived_don(env: Env, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The session DON's nodes and keys on new ports, observations stale after MAX_AGE s."""
    base = tmp_path_factory.mktemp("short-don")
    stack = Stack(env.settings)
    ports = iter(_free_ports(len(env.don.nodes)))
    nodes = [n.model_copy(update={"port": next(ports)}) for n in env.don.nodes]
    don = env.don.model_copy(update={"nodes": nodes, "max_observation_age": MAX_AGE})
    don = DonConfig.model_validate(don.model_dump())
    config = base / "don.json"
    don.save(config)
    supervisor: DonSupervisor = stack.supervisor(don, config, base / "run")
    supervisor.start()
    try:
        yield config
    finally:
        supervisor.stop()


def _free_ports(n: int) -> list[int]:
    import socket

    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def child(evm: Env, tmp: Path, don: Path, mode: str, kill_at: str = "none") -> Any:
    script = tmp / "child.py"
    script.write_text(textwrap.dedent(CHILD))
    environ = {**os.environ, "VOUCH_KEYSTORE_PASSWORD": PASSWORD, "VOUCH_APPROVAL_THRESHOLD": "0"}
    args = [str(evm.settings.home), str(tmp / "attestations.db"), str(tmp / "runs.db"), str(don)]
    return subprocess.run(
        [sys.executable, str(script), *args, mode, kill_at],
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.parametrize("delay", ["at-once", "late"])
@pytest.mark.parametrize("kill_at", POINTS)
def test_killed_anywhere_then_resumed_settles_exactly_once(
    evm: Env, tmp_path: Path, short_lived_don: Path, kill_at: str, delay: str
) -> None:
    start = evm.w3.eth.block_number + 1
    first = child(evm, tmp_path, short_lived_don, "run", kill_at)
    assert first.returncode == -signal.SIGKILL, first.stdout + first.stderr
    listed = subprocess.run(
        [sys.executable, "-m", "vouch", "runs", "list", "--db", str(tmp_path / "runs.db")],
        env={**os.environ, "COLUMNS": "250"},
        capture_output=True,
        text=True,
        check=False,
    )
    step = "escrow" if kill_at in POINTS[:4] else "settle"
    assert f"interrupted in step {step} (its process stopped)" in listed.stdout, listed.stdout
    if delay == "late":
        time.sleep(MAX_AGE + 1.5)  # every observation of the killed round is stale now
    align_clock(evm)
    resumed = child(evm, tmp_path, short_lived_don, "resume")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    result: dict[str, Any] = json.loads(resumed.stdout.strip().splitlines()[-1])
    assert result["status"] == "done", result
    assert_one_settlement(evm, tmp_path, start, result)
    log = kinds(tmp_path / "attestations.db")
    assert len({e for e, _, _ in log}) == 1
    assert [k for _, k, _ in log].count("proposal") == 1
    assert [k for _, k, _ in log].count("hitl") == 1
    assert [k for _, k, _ in log][-1] == "submission"
    rounds = [k for _, k, _ in log].count("observations")
    retries = [k for _, k, _ in log].count("retry")
    assert retries == rounds - 1  # every DON round after the first follows a retry entry

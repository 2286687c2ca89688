"""Faults as real nodes fail, over real node processes and loopback HTTP.

- an equivocator is consistent per asker and different across askers; the
  coordinator's echo (two askers) catches it, and the log keeps both signed
  answers as evidence that ``verifier._evidence`` turns into proof;
- a slow node costs its delay once, as a slow link and as a slow server;
- ``down`` as a killed process, and ``crash-mid-round`` (answers observe,
  dies before signing): the round settles with f such nodes.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from vouch.cre_adapters import (
    Coordinator,
    FaultSpec,
    ObserveRequest,
    QuorumNotReached,
    SettlementJob,
    SettlementWorkflow,
    set_fault,
)
from vouch.cre_adapters._spawn import alive
from vouch.verifier import AttestationLog, SignedObservation
from vouch.verifier._evidence import examine_evidence

from ..integration.helpers import open_trade
from .conftest import SetFault, own_don

pytestmark = pytest.mark.integration


def settle(env: Any, log: AttestationLog, don: Any = None, spare: int = 0) -> Any:
    trade_id, digest = open_trade(env, log)
    wf = SettlementWorkflow(
        don or env.don, env.deployment, env.artifacts, env.writer, log, timeout=5.0
    )
    wf.coordinator.spare = spare
    return asyncio.run(wf.run(SettlementJob(trade_id=trade_id, action_hash=digest)))


def observations_entry(log: AttestationLog) -> Any:
    return next(e for e in log.entries() if e.kind == "observations")


def test_an_equivocator_is_consistent_per_asker_and_differs_across_askers(
    evm: Any, fault: SetFault
) -> None:
    fault("node-4", mode="equivocate", lie_bps=40)
    url = evm.don.node("node-4").url + "/observe"
    body = {"request_id": f"askers-{time.time_ns()}", "feed": "ETH/USD"}
    with httpx.Client(timeout=5) as one, httpx.Client(timeout=5) as two:
        first = [SignedObservation.model_validate(one.post(url, json=body).json()) for _ in "ab"]
        second = [SignedObservation.model_validate(two.post(url, json=body).json()) for _ in "ab"]
    assert first[0] == first[1], "one asker, asking again, got another answer"
    assert second[0] == second[1]
    assert first[0].observation.value != second[0].observation.value


def test_the_echo_catches_an_equivocator_and_the_log_proves_it(
    evm: Any, log: AttestationLog, fault: SetFault
) -> None:
    fault("node-4", mode="equivocate", lie_bps=40)  # inside the band: only the echo sees it
    # node-1 answers 1.5 s late, so the round's quorum waits for it and node-4's two answers
    # are judged whatever the load (with 3 quick honest answers the round could end first)
    fault("node-1", mode="slow", delay=1.5, slow_at="server")
    asker = Coordinator(evm.don, timeout=5.0, spare=3)  # every node asked at once
    request = ObserveRequest(request_id=f"echo-{time.time_ns()}", feed="ETH/USD")
    seen = asyncio.run(asker.observe_round(request))
    fault("node-1", mode="none")
    node4 = evm.don.node("node-4").address
    assert node4 not in {o.signed.observation.node for o in seen.observed}
    [proof] = [e for e in seen.evidence if e.node == "node-4"]
    assert proof.cause == "equivocation" and len(proof.observations) == 2

    # a fresh coordinator asks node-2, node-3, node-4 first: node-4's answers are judged
    outcome = settle(evm, log)
    assert outcome.status == "settled", outcome.error
    entry = observations_entry(log)
    absent = {a["node"]: a["cause"] for a in entry.payload["absent"]}
    assert absent["node-4"] == "equivocation"
    faults = examine_evidence(log.entries(), signers=evm.don.signers).faults
    assert [(f.address, f.cause) for f in faults] == [(node4, "equivocation")]
    assert len(faults[0].signatures) == 2


@pytest.mark.parametrize("slow_at", ["link", "server"])
def test_a_slow_node_costs_its_delay_once(evm: Any, fault: SetFault, slow_at: str) -> None:
    """node-3 down and node-4 slow by 1.5 s: the round needs node-4, and waits 1.5 s, not 3."""
    fault("node-3", mode="down")
    fault("node-4", mode="slow", delay=1.5, slow_at=slow_at)
    asker = Coordinator(evm.don, timeout=6.0)
    request = ObserveRequest(request_id=f"slow-{time.time_ns()}", feed="ETH/USD")
    started = time.monotonic()
    seen = asyncio.run(asker.observe_round(request))
    took = time.monotonic() - started
    assert evm.don.node("node-4").address in {o.signed.observation.node for o in seen.observed}
    assert 1.5 <= took < 2.75, took  # twice the delay (3 s) is what a queued echo costs
    assert {a.node: a.cause for a in seen.absent}["node-3"] == "down"


def test_a_slow_server_works_late_and_a_slow_link_answers_late(evm: Any, fault: SetFault) -> None:
    """A slow server observes at the later moment; a slow link's answer is of the earlier one."""
    url = evm.don.node("node-4").url + "/observe"
    stamps = {}
    for where in ("link", "server"):
        fault("node-4", mode="slow", delay=2.0, slow_at=where)
        body = {"request_id": f"{where}-{time.time_ns()}", "feed": "ETH/USD"}
        asked = time.time()
        answer = httpx.post(url, json=body, timeout=10).json()
        stamps[where] = answer["observation"]["observed_at"] - asked
    assert stamps["link"] < 1.0 <= stamps["server"], stamps


def test_down_as_a_killed_process(evm: Any, log: AttestationLog, tmp_path: Path) -> None:
    with own_don(evm, tmp_path) as (don, supervisor):
        pid = supervisor.pids()["node-2"]
        set_fault(don, "node-2", FaultSpec(mode="down", kill=True))
        deadline = time.monotonic() + 10
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(pid), "down --kill left the process running"
        outcome = settle(evm, log, don)
        assert outcome.status == "settled", outcome.error
        absent = {a["node"]: a["cause"] for a in observations_entry(log).payload["absent"]}
        assert absent.get("node-2") in ("down", "not-asked")
        assert "node-2" not in supervisor.running()


def test_crash_mid_round_answers_observe_then_dies_before_signing(
    evm: Any, log: AttestationLog, tmp_path: Path
) -> None:
    with own_don(evm, tmp_path) as (don, supervisor):
        pid = supervisor.pids()["node-1"]
        set_fault(don, "node-1", FaultSpec(mode="crash-mid-round"))
        outcome = settle(evm, log, don, spare=3)  # every node asked to sign at once
        assert outcome.status == "settled", outcome.error
        observers = {
            o["observation"]["node"] for o in observations_entry(log).payload["observations"]
        }
        deadline = time.monotonic() + 10
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(pid), "crash-mid-round survived a sign request"
        assert don.node("node-1").address not in outcome.signers
        assert observers, "the round had its observations"


def test_signers_cross_check_catches_an_equivocator_the_coordinator_let_through(
    evm: Any, log: AttestationLog, tmp_path: Path
) -> None:
    """No echo (a careless or colluding coordinator): each signer asks the observers itself."""
    with own_don(evm, tmp_path, echo=False, cross_check=True) as (don, _):
        set_fault(don, "node-4", FaultSpec(mode="equivocate", lie_bps=40))
        trade_id, digest = open_trade(evm, log)
        wf = SettlementWorkflow(don, evm.deployment, evm.artifacts, evm.writer, log, timeout=5)
        with pytest.raises(QuorumNotReached) as info:  # node-2, node-3, node-4 observe first
            asyncio.run(wf.run(SettlementJob(trade_id=trade_id, action_hash=digest)))
    error = info.value
    assert error.stage == "collecting report signatures"
    assert "equivocated" in str(error) and don.node("node-4").address in str(error)
    assert "submission" not in [e.kind for e in log.entries()]

"""Rounds are attempts: a retried execution gets a fresh round, whatever the delay.

A settlement cut short after its nodes observed, then resumed later than the
DON's ``max_observation_age``, must get fresh observations (a new round id per
attempt), not the answers the nodes cached for the first attempt.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from vouch.cre_adapters import QuorumNotReached, SettlementJob, SettlementWorkflow
from vouch.verifier import AttestationLog

from ..integration.helpers import open_trade
from .conftest import own_don

pytestmark = pytest.mark.integration

MAX_AGE = 2


class Crash(Exception):
    """The process dies here (raised from the event sink: no ``aborted`` entry is written)."""


def crash_at(stage: str) -> Any:
    def sink(kind: str, data: dict[str, Any]) -> None:
        if kind == stage:
            raise Crash(stage)

    return sink


def test_a_retry_after_more_than_the_observation_age_gets_fresh_observations(
    evm: Any, log: AttestationLog, tmp_path: Path
) -> None:
    trade_id, digest = open_trade(evm, log)
    job = SettlementJob(trade_id=trade_id, action_hash=digest)
    with own_don(evm, tmp_path, max_observation_age=MAX_AGE) as (don, _):
        first = SettlementWorkflow(
            don, evm.deployment, evm.artifacts, evm.writer, log, on_event=crash_at("consensus")
        )
        ref = first.new_execution(job)
        with pytest.raises(Crash):
            asyncio.run(first.run(job, ref))
        time.sleep(MAX_AGE + 1.5)
        again = SettlementWorkflow(don, evm.deployment, evm.artifacts, evm.writer, log)
        outcome = asyncio.run(again.run(job, ref))
    assert outcome.status == "settled", outcome.error
    rounds = [e for e in log.by_execution(ref.execution_id) if e.kind == "observations"]
    assert len(rounds) == 2
    ids = [e.payload["request_id"] for e in rounds]
    assert ids[0] != ids[1]
    assert [e.payload["attempt"] for e in rounds] == [1, 2]
    for entry in rounds:
        assert {o["observation"]["request_id"] for o in entry.payload["observations"]} == {
            entry.payload["request_id"]
        }


def test_an_attempt_killed_before_it_logged_anything_is_not_answered_from_the_cache(
    evm: Any, log: AttestationLog, tmp_path: Path
) -> None:
    """Killed while observing: no trace in the log, yet the next run is a new round."""
    trade_id, digest = open_trade(evm, log)
    job = SettlementJob(trade_id=trade_id, action_hash=digest)
    with own_don(evm, tmp_path, max_observation_age=MAX_AGE) as (don, _):
        first = SettlementWorkflow(
            don, evm.deployment, evm.artifacts, evm.writer, log, on_event=crash_at("observing")
        )
        ref = first.new_execution(job)
        # the nodes observe the round the killed attempt would have asked about
        asyncio.run(first.coordinator.observe(first.observe_request(job, ref, attempt=1)))
        time.sleep(MAX_AGE + 1.5)
        again = SettlementWorkflow(don, evm.deployment, evm.artifacts, evm.writer, log)
        outcome = asyncio.run(again.run(job, ref, attempt=1))
    assert outcome.status == "settled", outcome.error


def test_stale_answers_are_named_stale_and_the_hint_does_not_blame_down_nodes(
    evm: Any, log: AttestationLog, tmp_path: Path
) -> None:
    """Every node answering from a round observed too long ago: named stale, per node."""
    trade_id, digest = open_trade(evm, log)
    job = SettlementJob(trade_id=trade_id, action_hash=digest)
    with own_don(evm, tmp_path, max_observation_age=MAX_AGE) as (don, _):
        wf = SettlementWorkflow(don, evm.deployment, evm.artifacts, evm.writer, log)
        ref = wf.new_execution(job)
        request = wf.observe_request(job, ref, attempt=1)
        asyncio.run(wf.coordinator.observe(request))
        time.sleep(MAX_AGE + 1.5)
        with pytest.raises(QuorumNotReached) as info:
            asyncio.run(wf.coordinator.observe(request))
    error = info.value
    assert set(error.causes.values()) == {"stale"}, error.failures
    assert "may be down" not in str(error)
    assert "new attempt" in str(error)

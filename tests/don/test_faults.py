"""Every fault mode over real node processes and loopback HTTP, on the session DON (n=4, f=1).

For each mode: f faulty nodes -> the trade settles at a price inside the
honest nodes' range and the faulty node is not in the observation set;
f+1 faulty nodes -> QuorumNotReached naming exactly the faulty nodes, no
transaction sent, the trade still funded, the log ends with "aborted".

Byzantine lies are the one mode where "f+1 faulty" has no general remedy: a
median over 2f+1 observations is wrong once f+1 of them lie together. vouch
adds a band check (every observation in the consensus set lies within
``observation_band_bps`` of the set's median, re-checked by every signer), so
f+1 liars far outside the band cannot assemble 2f+1 agreeing observations
with the honest nodes, and the round is refused. When the liars disagree
with each other the honest camp is the largest and the liars are named;
when they coordinate, the coordinator sees two equal camps, cannot tell
which one is honest, and says so. Liars who stay inside the band are not
detectable at all; the band bounds how far they move the price.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from vouch.cre_adapters import (
    FieldObservations,
    QuorumNotReached,
    ReportSignRequest,
    SettlementJob,
    SettlementOutcome,
    SettlementWorkflow,
)
from vouch.verifier import (
    AttestationLog,
    ReportMetadata,
    SignedObservation,
    median,
    recover_observation_signer,
    workflow_id,
)

from ..integration.helpers import open_trade
from .conftest import SetFault

pytestmark = pytest.mark.integration

FUNDED = 2
TIMEOUT = 1.0

FAULTS: dict[str, tuple[dict[str, Any], str]] = {
    "down": ({"mode": "down"}, "unreachable"),
    "slow": ({"mode": "slow", "delay": 1.5}, f"no answer within {TIMEOUT}s"),
    "flaky": ({"mode": "flaky", "error_rate": 1.0}, "HTTP 500: injected error"),
    "stale": ({"mode": "stale", "stale_by": 3600}, "stale: observed 360"),  # 3600s, 3601s when slow
    "equivocate": ({"mode": "equivocate", "lie_bps": 300}, "equivocated"),
    "bad-signature": ({"mode": "bad-signature"}, "bad signature"),
    "wrong-key": ({"mode": "wrong-key"}, "not its key"),
}
SIGNING_FAULTS = ("down", "slow", "bad-signature", "wrong-key")
CAUSE = {
    "down": "down",
    "slow": "slow",
    "flaky": "error",
    "stale": "stale",
    "equivocate": "equivocation",
    "bad-signature": "bad-signature",
    "wrong-key": "wrong-key",
}


def run(env: Any, log: AttestationLog, trade: tuple[int, str] | None = None) -> SettlementOutcome:
    trade_id, digest = trade or open_trade(env, log)
    wf = SettlementWorkflow(
        env.don, env.deployment, env.artifacts, env.writer, log, timeout=TIMEOUT
    )
    return asyncio.run(wf.run(SettlementJob(trade_id=trade_id, action_hash=digest)))


def refused(env: Any, log: AttestationLog) -> QuorumNotReached:
    """Open a trade, attest it expecting a refusal, check nothing was submitted."""
    trade = open_trade(env, log)
    nonce = env.w3.eth.get_transaction_count(env.writer.address)
    with pytest.raises(QuorumNotReached) as info:
        run(env, log, trade)
    error = info.value
    assert env.w3.eth.get_transaction_count(env.writer.address) == nonce
    assert trade_status(env, trade[0]) == FUNDED
    kinds = [e.kind for e in log.entries()]
    assert kinds[-1] == "aborted" and "submission" not in kinds
    return error


def observed(log: AttestationLog) -> dict[str, int]:
    """Signer address -> value, from the observation set the round used."""
    entry = next(e for e in log.entries() if e.kind == "observations")
    return {
        o["observation"]["node"]: o["observation"]["value"] for o in entry.payload["observations"]
    }


def trade_status(env: Any, trade_id: int) -> int:
    return int(env.contract("SettlementGate").functions.getTrade(trade_id).call()[-1])


@pytest.mark.parametrize("mode", [*FAULTS, "lie"])
def test_f_faulty_nodes_still_settle_inside_the_honest_range(
    evm: Any, log: AttestationLog, fault: SetFault, mode: str
) -> None:
    spec = FAULTS[mode][0] if mode in FAULTS else {"mode": "lie", "lie_bps": 5000}
    if mode == "flaky":
        spec = {"mode": "flaky", "error_rate": 0.5, "seed": 1}
    fault("node-4", **spec)
    outcome = run(evm, log)
    assert outcome.status == "settled", outcome.error
    values = observed(log)
    faulty = evm.don.node("node-4").address
    if mode != "flaky":  # a flaky node's answers that do get through are honest ones
        assert faulty not in values
    if mode in SIGNING_FAULTS:  # stale, lying or equivocating nodes may sign the honest report
        assert faulty not in outcome.signers
    assert min(values.values()) <= outcome.price <= max(values.values())


@pytest.mark.parametrize("mode", list(FAULTS))
def test_f_plus_1_faulty_nodes_are_refused_by_name_and_nothing_is_submitted(
    evm: Any, log: AttestationLog, fault: SetFault, mode: str
) -> None:
    spec, reason = FAULTS[mode]
    for name in ("node-3", "node-4"):
        fault(name, **spec)
    error = refused(evm, log)
    assert set(error.failures) == {"node-3", "node-4"}
    assert all(reason in why for why in error.failures.values()), error.failures
    assert error.causes == {"node-3": CAUSE[mode], "node-4": CAUSE[mode]}
    assert f"2 {CAUSE[mode]}" in str(error)  # the hint is about what happened
    assert error.needed == 3 and error.got == 2
    assert "node-3" in str(error) and "node-4" in str(error)


def test_f_plus_1_liars_that_disagree_are_named_as_outside_the_honest_group(
    evm: Any, log: AttestationLog, fault: SetFault
) -> None:
    fault("node-3", mode="lie", lie_bps=5000)
    fault("node-4", mode="lie", lie_bps=-4000)
    error = refused(evm, log)
    assert set(error.failures) == {"node-3", "node-4"}
    assert all("largest agreeing group (node-1, node-2)" in why for why in error.failures.values())
    assert error.causes == {"node-3": "out-of-band", "node-4": "out-of-band"}
    assert "no 2f+1 observations agree" in str(error)


def test_f_plus_1_coordinated_liars_are_refused_but_cannot_be_told_from_the_honest(
    evm: Any, log: AttestationLog, fault: SetFault
) -> None:
    """Two camps of two: refused (nothing submitted); which camp lies is not knowable."""
    fault("node-3", mode="lie", lie_bps=5000)
    fault("node-4", mode="lie", lie_bps=5000)
    error = refused(evm, log)
    assert error.got == 2 and len(error.failures) == 2


def test_f_plus_1_liars_inside_the_band_are_undetectable_and_move_the_price_at_most_the_band(
    evm: Any, log: AttestationLog, fault: SetFault
) -> None:
    fault("node-3", mode="lie", lie_bps=60)
    fault("node-4", mode="lie", lie_bps=60)
    outcome = run(evm, log)
    assert outcome.status == "settled"
    values = observed(log)
    band = evm.don.observation_band_bps
    honest = [v for a, v in values.items() if a in evm.don.signers[:2]]
    assert honest, "at least one honest node is in every 2f+1 set"
    assert abs(outcome.price - honest[0]) * 10_000 <= 2 * band * honest[0]


def test_slow_node_does_not_slow_the_round(evm: Any, log: AttestationLog, fault: SetFault) -> None:
    import time

    fault("node-4", mode="slow", delay=5)
    started = time.monotonic()
    outcome = run(evm, log)
    assert outcome.status == "settled"
    assert time.monotonic() - started < 3


def test_the_log_carries_each_observers_answer_latency(evm: Any, log: AttestationLog) -> None:
    outcome = run(evm, log)
    assert outcome.status == "settled"
    entry = next(e for e in log.entries() if e.kind == "observations")
    observers = {o["observation"]["node"] for o in entry.payload["observations"]}
    assert set(entry.payload["latency_ms"]) == observers == set(entry.payload["latency_us"])
    assert all(isinstance(v, int) and v > 0 for v in entry.payload["latency_us"].values())


# equivocation toward different askers ----------------------------------------------------


def ask_observation(env: Any, name: str, request_id: str) -> SignedObservation:
    """One asker's own request to node ``name`` (a fresh client: a different asker each call)."""
    body = {"request_id": request_id, "feed": "ETH/USD"}
    with httpx.Client(timeout=5) as client:
        answer = client.post(env.don.node(name).url + "/observe", json=body)
    assert answer.status_code == 200, answer.text
    return SignedObservation.model_validate(answer.json())


def feeds_sign_request(
    env: Any, request_id: str, observations: list[SignedObservation]
) -> ReportSignRequest:
    meta = ReportMetadata(
        version=1,
        execution_id=bytes(32),
        timestamp=int(time.time()),
        don_id=env.don.don_id,
        config_version=env.don.config_version,
        workflow_id=workflow_id("equivocat"),
        workflow_name="equivocat",
        workflow_owner="0x" + "00" * 20,
        report_id=b"\x00\x03",
    )
    values = [o.observation.value for o in observations]
    field = FieldObservations(
        feed="ETH/USD", mode="median", value=median(values), observations=observations
    )
    return ReportSignRequest(
        request_id=request_id,
        fields=[field],
        metadata=meta,
        receiver="0x" + "00" * 20,
        action_hash="0x" + "00" * 32,
        sequence=1,
    )


def test_an_equivocator_gives_two_askers_two_validly_signed_answers(
    evm: Any, log: AttestationLog, fault: SetFault
) -> None:
    """What equivocation is: two askers of one round hold two different answers, both signed."""
    fault("node-4", mode="equivocate", lie_bps=40)
    request_id = f"two-askers-{time.time_ns()}"
    first, second = (ask_observation(evm, "node-4", request_id) for _ in range(2))
    assert first.observation.value != second.observation.value
    node4 = evm.don.node("node-4").address
    assert recover_observation_signer(first) == recover_observation_signer(second) == node4
    honest = [ask_observation(evm, "node-1", request_id) for _ in range(2)]
    assert honest[0] == honest[1]  # an honest node gives every asker the same signed answer
    outcome = run(evm, log)  # the coordinator's echo sees both answers and drops the node
    assert outcome.status == "settled" and node4 not in observed(log)


def test_a_signer_refuses_a_second_conflicting_observation_of_one_node_for_one_round(
    evm: Any, fault: SetFault
) -> None:
    fault("node-4", mode="equivocate", lie_bps=40)  # both answers stay inside the band
    request_id = f"conflict-{time.time_ns()}"
    honest = [ask_observation(evm, name, request_id) for name in ("node-2", "node-3")]
    first, second = (ask_observation(evm, "node-4", request_id) for _ in range(2))
    signer = evm.don.node("node-1").url + "/sign/report"
    with httpx.Client(timeout=5) as client:
        one = feeds_sign_request(evm, request_id, [*honest, first])
        answer = client.post(signer, content=one.model_dump_json())
        assert answer.status_code == 200, answer.text  # one answer of node-4: nothing to see
        other = feeds_sign_request(evm, request_id, [*honest, second])
        answer = client.post(signer, content=other.model_dump_json())
    assert answer.status_code == 409, "node-1 signed a set with node-4's second, other answer"
    assert "node-4" in answer.json()["error"] or second.observation.node in answer.json()["error"]


# flaky at a realistic rate -----------------------------------------------------------------


def test_f_flaky_nodes_at_half_the_requests_never_stop_a_round(
    evm: Any, log: AttestationLog, fault: SetFault
) -> None:
    """A failed answer brings in the next node: with f flaky nodes every round settles."""
    for seed in range(4):
        fault("node-4", mode="flaky", error_rate=0.5, seed=seed)
        outcome = run(evm, log)
        assert outcome.status == "settled", (seed, outcome.error)


def test_f_plus_1_flaky_nodes_at_half_the_requests_settle_honestly_or_are_refused_by_name(
    evm: Any, log: AttestationLog, fault: SetFault
) -> None:
    """No guarantee either way, but never a wrong price and never an honest node blamed."""
    results = []
    for seed in range(4):
        fault("node-3", mode="flaky", error_rate=0.5, seed=seed)
        fault("node-4", mode="flaky", error_rate=0.5, seed=seed + 100)
        trade = open_trade(evm, log)
        try:
            outcome = run(evm, log, trade)
        except QuorumNotReached as error:
            assert set(error.failures) <= {"node-3", "node-4"}, error.failures  # noqa: PT017
            assert all("injected error" in why for why in error.failures.values())  # noqa: PT017
            assert trade_status(evm, trade[0]) == FUNDED
            results.append("refused")
            continue
        assert outcome.status == "settled", outcome.error
        results.append("settled")
    assert len(results) == 4

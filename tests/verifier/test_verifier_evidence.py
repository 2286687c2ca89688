"""vouch.verifier._evidence: what a round's logged signed answers prove about faulty nodes.

Entries are written to a real attestation log; every observation is signed
by a real key. The attacks: a coordinator (or an operator editing the log)
claiming faults the signatures do not show, or attributing one node's
signature to another.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from hypothesis import given, settings
from hypothesis import strategies as st

from vouch.verifier import AttestationLog, Observation, sign_observation
from vouch.verifier._evidence import examine_evidence, proven_faults

ROUND = "x" + "ab" * 20 + ".2.0badc0de"
EXEC = "0x" + "ab" * 32
KEYS = [Account.create() for _ in range(4)]
ADDRESSES = [a.address for a in KEYS]
NOW = 1_800_000_000
RULES = {"max_observation_age": 30, "observation_band_bps": 100}


def signed(i: int, value: int, at: int = NOW, round_id: str = ROUND) -> dict[str, Any]:
    obs = Observation(
        request_id=round_id, feed="ETH/USD", value=value, observed_at=at, node=ADDRESSES[i]
    )
    return sign_observation(obs, bytes(KEYS[i].key)).model_dump(mode="json")


def item(i: int, cause: str, *observations: dict[str, Any]) -> dict[str, Any]:
    return {
        "node": f"node-{i + 1}",
        "address": ADDRESSES[i],
        "cause": cause,
        "observations": list(observations),
    }


def entry(tmp_path: Path, evidence: list[dict[str, Any]], **extra: Any) -> AttestationLog:
    log = AttestationLog(tmp_path / "log.db")
    payload = {
        "request_id": ROUND,
        "attempt": 2,
        "feed": "ETH/USD",
        "observations": [signed(0, 3000_00), signed(1, 3001_00), signed(2, 2999_00)],
        "absent": [{"node": "node-4", "address": ADDRESSES[3], "cause": "down", "detail": "x"}],
        "evidence": evidence,
        "don": {"don_id": 1, **RULES},
        **extra,
    }
    log.append(bytes.fromhex(EXEC[2:]), "observations", payload)
    return log


def test_two_signed_answers_of_one_key_for_one_round_prove_equivocation(tmp_path: Path) -> None:
    log = entry(tmp_path, [item(3, "equivocation", signed(3, 3000_00), signed(3, 3100_00))])
    [fault] = proven_faults(log.entries())
    assert (fault.cause, fault.address, fault.node) == ("equivocation", ADDRESSES[3], "node-4")
    assert len(fault.signatures) == 2 and fault.execution_id == EXEC


def test_an_answer_conflicting_with_the_nodes_answer_in_the_set_proves_equivocation(
    tmp_path: Path,
) -> None:
    log = entry(tmp_path, [item(2, "equivocation", signed(2, 2800_00))])
    [fault] = proven_faults(log.entries())
    assert fault.cause == "equivocation" and fault.address == ADDRESSES[2]


def test_stale_and_out_of_band_are_proven_against_the_set_and_the_logged_rules(
    tmp_path: Path,
) -> None:
    log = entry(
        tmp_path,
        [item(3, "stale", signed(3, 3000_00, at=NOW - 3600))],
    )
    assert [f.cause for f in proven_faults(log.entries())] == ["stale"]
    log2 = entry(tmp_path / "b", [item(3, "out-of-band", signed(3, 4500_00))])
    assert [f.cause for f in proven_faults(log2.entries())] == ["out-of-band"]


@pytest.mark.parametrize(
    ("cause", "value", "at"),
    [("stale", 3000_00, NOW - 5), ("out-of-band", 3000_50, NOW), ("equivocation", 3000_00, NOW)],
)
def test_a_claim_its_own_signature_does_not_show_is_a_problem_not_a_fault(
    tmp_path: Path, cause: str, value: int, at: int
) -> None:
    log = entry(tmp_path, [item(3, cause, signed(3, value, at=at))])
    report = examine_evidence(log.entries())
    assert report.faults == []
    if cause != "equivocation":  # one honest answer is no equivocation, and nothing to flag
        assert len(report.problems) == 1 and report.problems[0].node == "node-4"


def test_another_nodes_signature_cannot_be_pinned_on_a_node(tmp_path: Path) -> None:
    """The operator takes node-3's stale answer and names node-4: refused as a problem."""
    framed = item(3, "stale", signed(2, 3000_00, at=NOW - 3600))
    report = examine_evidence(entry(tmp_path, [framed]).entries())
    assert report.faults == []
    assert "not by the named" in report.problems[0].problem


def test_evidence_of_a_key_outside_the_pinned_dons_signers_is_a_problem(tmp_path: Path) -> None:
    log = entry(tmp_path, [item(3, "equivocation", signed(3, 1), signed(3, 2))])
    report = examine_evidence(log.entries(), signers=ADDRESSES[:3])
    assert report.faults == [] and "pinned DON" in report.problems[0].problem


def test_an_earlier_rounds_observation_proves_nothing_about_this_round(tmp_path: Path) -> None:
    old = "x" + "ab" * 20 + ".1.00000000"
    log = entry(tmp_path, [item(3, "stale", signed(3, 3000_00, at=NOW - 3600, round_id=old))])
    report = examine_evidence(log.entries())
    assert report.faults == [] and "not this one" in report.problems[0].problem


def test_absent_nodes_are_claims(tmp_path: Path) -> None:
    report = examine_evidence(entry(tmp_path, []).entries())
    assert [(c.node, c.cause) for c in report.claims] == [("node-4", "down")]
    assert report.faults == [] and report.problems == []


def test_faulty_nodes_per_execution(tmp_path: Path) -> None:
    log = entry(
        tmp_path,
        [
            item(3, "equivocation", signed(3, 3000_00), signed(3, 3100_00)),
        ],
    )
    assert examine_evidence(log.entries()).faulty_nodes(EXEC) == {ADDRESSES[3]: {"equivocation"}}


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(evidence=JSON, absent=JSON, observations=JSON)
def test_any_payload_shape_is_examined_without_raising(
    tmp_path_factory: pytest.TempPathFactory, evidence: Any, absent: Any, observations: Any
) -> None:
    log = AttestationLog(tmp_path_factory.mktemp("h") / "log.db")
    payload = {"request_id": ROUND, "feed": "ETH/USD", "observations": observations}
    payload.update({"evidence": evidence, "absent": absent, "don": RULES})
    log.append(bytes(32), "observations", payload)
    report = examine_evidence(log.entries())
    assert report.faults == []

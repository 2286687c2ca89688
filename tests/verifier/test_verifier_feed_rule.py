"""A feed round's verdict (report or skip) must follow from its logged deviation/heartbeat rule.

Each consensus (or skipped) entry of a feed workflow logs the rule's thresholds,
the earlier report it compared against (seq, value, time) and when it decided;
the audit recomputes the verdict and checks what it compared against is in the log.
Forged logs are appended through ``AttestationLog.append``: the hash chain holds,
only the rule check can catch them.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from eth_account import Account
from hypothesis import given
from hypothesis import strategies as st

import vouch.verifier._log
from vouch.cre_adapters import ReportTrigger
from vouch.verifier import (
    AttestationLog,
    Observation,
    audit,
    keccak,
    replay,
    report_verdict,
    sign_observation,
)

KEYS = [bytes([i]) * 32 for i in range(1, 5)]
NODES = [Account.from_key(k).address for k in KEYS]
DON = {"don_id": 1, "config_version": 1, "forwarder": "0x" + "11" * 20, "chain_id": 1}
SIGNERS = {(1, 1): (1, NODES)}
RULE = {"deviation_bps": 50, "heartbeat": 3600}


def observations(value: int) -> dict[str, Any]:
    signed = [
        sign_observation(
            Observation(request_id="w1", feed="ETH/USD", value=v, observed_at=1, node=node), key
        ).model_dump(mode="json")
        for key, node, v in zip(KEYS, NODES, [value, value, value + 1], strict=False)
    ]
    return {"feed": "ETH/USD", "observations": signed, "don": DON}


def feed_log(
    path: Path, rounds: list[tuple[int, int]], monkeypatch: pytest.MonkeyPatch
) -> AttestationLog:
    """Rounds of (value, unix time) through the rule, logged as FeedWorkflow logs them."""
    log = AttestationLog(path)
    last: tuple[int, int, int] | None = None
    for n, (value, now) in enumerate(rounds):
        monkeypatch.setattr(
            vouch.verifier._log, "time", SimpleNamespace(time_ns=lambda now=now: now * 10**9)
        )
        exec_id = keccak(b"round %d" % n)
        seq = log.append(exec_id, "observations", observations(value)).seq
        why = report_verdict(50, 3600, last[:2] if last else None, value, now)
        previous = {"value": last[0], "at": last[1], "seq": last[2]} if last else None
        payload = {
            "mode": "median",
            "feed": "ETH/USD",
            "value": value,
            "observations_seq": seq,
            "f": 1,
            "why": why,
            "rule": {**RULE, "previous": previous, "at": now},
        }
        entry = log.append(exec_id, "consensus" if why else "skipped", payload)
        if why:
            last = (value, now, entry.seq)
    return log


T0 = 1_700_000_000
HONEST = [(3000, T0), (3001, T0 + 10), (3100, T0 + 20), (3100, T0 + 20 + 3600)]


def rule_checks(log: AttestationLog) -> dict[int, tuple[str, str]]:
    report = audit(log, None, signers=SIGNERS)
    return {f.seq: (f.status, f.detail) for f in report.results if f.check == "feed rule"}


def test_each_verdict_recomputes_from_the_logged_rule(tmp_path: Path, monkeypatch) -> None:
    log = feed_log(tmp_path / "feed.db", HONEST, monkeypatch)
    report = audit(log, None, signers=SIGNERS)
    assert report.ok, report.failures
    checks = rule_checks(log)
    assert [status for status, _ in checks.values()] == ["ok"] * 4
    details = [detail for _, detail in checks.values()]
    assert details[0].endswith("against no earlier report: first report")
    assert details[1] == f"deviation 50 bps, heartbeat 3600s, against #2 (3000 at {T0}): skip"
    assert details[2].endswith(f"against #2 (3000 at {T0}): deviation: moved more than 50 bps")
    assert details[3].endswith(
        f"against #6 (3100 at {T0 + 20}): heartbeat: 3600s since the last report"
    )


def forged(tmp_path: Path, monkeypatch, seq: int, change) -> dict[int, tuple[str, str]]:  # type: ignore[no-untyped-def]
    """The honest rounds re-appended with entry ``seq`` changed by ``change(kind, payload)``."""
    honest = feed_log(tmp_path / "honest.db", HONEST, monkeypatch)
    log = AttestationLog(tmp_path / "forged.db")
    for entry in honest.entries():
        kind, payload = entry.kind, entry.payload
        when = entry.created_at * 10**6  # as logged: a forger re-appends at the original time
        if entry.seq == seq:
            kind = change(payload) or kind
        monkeypatch.setattr(vouch.verifier._log, "time", SimpleNamespace(time_ns=lambda t=when: t))
        log.append(entry.execution_id, kind, payload)
    return rule_checks(log)


def _report_a_small_move(payload: dict[str, Any]) -> str:
    payload["why"] = "deviation: moved more than 50 bps"
    return "consensus"


def _skip_a_big_move(payload: dict[str, Any]) -> str:
    payload["why"] = None
    return "skipped"


def _lower_the_threshold(payload: dict[str, Any]) -> None:
    payload["rule"]["deviation_bps"] = 1  # would justify reporting the 3001
    payload["why"] = "deviation: moved more than 1 bps"


def _compare_against_another_value(payload: dict[str, Any]) -> None:
    payload["rule"]["previous"]["value"] = 2000


def _compare_against_a_missing_report(payload: dict[str, Any]) -> None:
    payload["rule"]["previous"]["seq"] = 4  # a skipped entry, not a report


def _backdate_the_decision(payload: dict[str, Any]) -> None:
    payload["rule"]["at"] -= 7200  # an hour before the report it compares against


def _drop_the_rule(payload: dict[str, Any]) -> None:
    del payload["rule"]


def _claim_a_heartbeat(payload: dict[str, Any]) -> None:
    payload["why"] = "heartbeat: 3600s since the last report"


@pytest.mark.parametrize(
    ("seq", "change", "says"),
    [
        (4, _report_a_small_move, "the rule says 'skip'"),
        (6, _skip_a_big_move, "the rule says 'deviation: moved more than 50 bps'"),
        (4, _lower_the_threshold, "the thresholds differ from those of #2"),
        (6, _compare_against_another_value, "#2 did not report ETH/USD = 2000"),
        (6, _compare_against_a_missing_report, "#4 is no earlier report of ETH/USD"),
        (8, _backdate_the_decision, "yet logged at"),
        (6, _drop_the_rule, "without the rule's parameters in the log"),
        (6, _claim_a_heartbeat, "the log says consensus 'heartbeat"),
    ],
    ids=[
        "report-a-small-move",
        "skip-a-big-move",
        "lower-the-threshold",
        "other-previous-value",
        "previous-not-a-report",
        "backdated-decision",
        "rule-dropped",
        "heartbeat-claimed",
    ],
)
def test_a_verdict_that_does_not_follow_from_the_rule_is_named(
    tmp_path: Path, monkeypatch, seq: int, change, says: str
) -> None:
    checks = forged(tmp_path, monkeypatch, seq, change)
    status, detail = checks[seq]
    assert status == "fail" and says in detail, detail
    assert all(s == "ok" for n, (s, _) in checks.items() if n < seq)


def test_a_round_without_a_rule_always_reports(tmp_path: Path) -> None:
    log = AttestationLog(tmp_path / "feed.db")
    exec_id = keccak(b"always")
    seq = log.append(exec_id, "observations", observations(3000)).seq
    base = {"mode": "median", "feed": "ETH/USD", "value": 3000, "observations_seq": seq, "f": 1}
    log.append(exec_id, "consensus", {**base, "why": "always", "rule": None})
    log.append(exec_id, "skipped", {**base, "why": None, "rule": None})
    checks = rule_checks(log)
    assert checks[2] == ("ok", "no deviation/heartbeat rule: reports every round")
    assert checks[3][0] == "fail"


@given(
    deviation=st.integers(0, 10_000),
    heartbeat=st.integers(1, 10**9),
    previous=st.none() | st.tuples(st.integers(-(10**30), 10**30), st.integers(0, 2**40)),
    value=st.integers(-(10**30), 10**30),
    now=st.integers(0, 2**41),
)
def test_the_audit_applies_exactly_the_rule_the_dons_workflow_applies(
    deviation: int, heartbeat: int, previous: tuple[int, int] | None, value: int, now: int
) -> None:
    rule = ReportTrigger(deviation_bps=deviation, heartbeat=heartbeat)
    assert report_verdict(deviation, heartbeat, previous, value, now) == rule.should_report(
        previous, value, now
    )


def test_replay_recomputes_the_verdict_too(tmp_path: Path, monkeypatch) -> None:
    honest = feed_log(tmp_path / "feed.db", HONEST, monkeypatch)
    skipped = next(e for e in honest.entries() if e.kind == "skipped")
    assert replay(honest, skipped.execution_id).matches
    forged(tmp_path, monkeypatch, skipped.seq, _report_a_small_move)
    result = replay(AttestationLog(tmp_path / "forged.db"), skipped.execution_id)
    assert result.divergences == [
        "the rule of ETH/USD says 'skip', entry #4 says consensus 'deviation: moved more than 50 bps'"
    ]

"""Round ids and attempt numbers (pure)."""

from __future__ import annotations

import pytest

from vouch.cre_adapters import ObserveRequest, parse_round, round_id
from vouch.cre_adapters._rounds import earlier_round, next_attempt

EXEC = bytes.fromhex("ab" * 32)


def test_a_round_id_names_execution_attempt_and_a_fresh_nonce() -> None:
    one, two = round_id("x", EXEC, 3), round_id("x", EXEC, 3)
    assert one != two, "two rounds of one attempt number share a round id"
    parsed = parse_round(one)
    assert parsed is not None and (parsed.prefix, parsed.attempt) == ("x", 3)
    assert parsed.execution == EXEC.hex()[:40] and str(parsed) == one
    ObserveRequest(request_id=one, feed="ETH/USD")  # a valid request id on the wire


def test_bad_attempts_and_foreign_ids_are_refused() -> None:
    with pytest.raises(ValueError, match="outside"):
        round_id("x", EXEC, 0)
    assert parse_round("x" + "ab" * 20) is None  # an old-format id
    assert parse_round("two-askers-1") is None


def test_an_answer_of_an_earlier_attempt_is_named_as_such() -> None:
    old, new = round_id("x", EXEC, 1), round_id("x", EXEC, 2)
    assert "cached answer of attempt 1" in (earlier_round(old, new) or "")
    assert earlier_round(round_id("x", bytes(32), 1), new) is None  # another execution
    assert earlier_round("foreign", new) is None


def test_next_attempt_counts_logged_rounds_old_entries_as_one() -> None:
    assert next_attempt([]) == 1
    assert next_attempt([("proposal", {}), ("observations", {})]) == 2  # an old entry
    logged = [("observations", {"attempt": 1}), ("retry", {"attempt": 2}), ("aborted", {})]
    assert next_attempt(logged) == 3
    assert next_attempt([("retry", {})]) == 1  # an old retry entry did not start a round
    assert next_attempt([("observations", {"attempt": True})]) == 2  # not an integer: one

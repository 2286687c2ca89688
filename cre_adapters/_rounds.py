"""Rounds and attempts: every DON round of an execution has a round id used nowhere else.

A round id is what nodes cache their one answer under and what they sign
into every observation (``request_id``)::

    <prefix><first 40 hex of the execution id>.<attempt>.<nonce>

``attempt`` counts the DON rounds of one execution (1, 2, ...; logged in the
``observations``, ``consensus``, ``report``, ``aborted`` and ``retry``
entries); ``nonce`` is 8 random hex digits drawn per round, so a round id is
never reused even when an attempt number is (an attempt killed before it
logged anything leaves no trace to count). A resumed execution therefore
always gets fresh observations, however long after the last attempt.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

_ROUND = re.compile(r"^([a-z])([0-9a-f]{40})\.([0-9]{1,6})\.([0-9a-f]{8})$")
ATTEMPT_KINDS = frozenset({"observations", "consensus", "report", "aborted", "retry", "skipped"})
MAX_ATTEMPT = 999_999


@dataclass(frozen=True)
class RoundId:
    """A parsed round id: its prefix, execution prefix, attempt and nonce."""

    prefix: str
    execution: str
    attempt: int
    nonce: str

    def __str__(self) -> str:
        return f"{self.prefix}{self.execution}.{self.attempt}.{self.nonce}"


def round_id(prefix: str, exec_id: bytes, attempt: int, nonce: str | None = None) -> str:
    """The round id of attempt ``attempt`` of execution ``exec_id`` (a fresh nonce if None).

    Raises:
        ValueError: ``attempt`` outside 1..999999, or a malformed prefix or nonce.
    """
    if not 1 <= attempt <= MAX_ATTEMPT:
        raise ValueError(f"attempt {attempt} is outside 1..{MAX_ATTEMPT}")
    text = f"{prefix}{exec_id.hex()[:40]}.{attempt}.{nonce or secrets.token_hex(4)}"
    if _ROUND.match(text) is None:
        raise ValueError(f"{text!r} is not a round id (prefix: one letter, nonce: 8 hex digits)")
    return text


def parse_round(text: str) -> RoundId | None:
    """``text`` as a round id, or None when it is not one (an old or a foreign request id)."""
    found = _ROUND.match(text)
    if found is None:
        return None
    prefix, execution, attempt, nonce = found.groups()
    return RoundId(prefix, execution, int(attempt), nonce)


def earlier_round(answered: str, asked: str) -> str | None:
    """Why ``answered`` (an observation's round) is another round of ``asked``'s execution, or None.

    A node that answers round ``asked`` with an observation of another attempt
    of the same execution hands back a cached answer instead of observing.
    """
    mine, theirs = parse_round(asked), parse_round(answered)
    if (
        mine is None
        or theirs is None
        or (mine.prefix, mine.execution)
        != (
            theirs.prefix,
            theirs.execution,
        )
    ):
        return None
    if theirs.attempt < mine.attempt:
        return f"its cached answer of attempt {theirs.attempt} (round {answered})"
    return f"an answer of another round of this execution ({answered}, attempt {theirs.attempt})"


def attempt_of(payload: Mapping[str, Any], kind: str) -> int | None:
    """The attempt an entry of ``kind`` belongs to (an old entry without one: 1), or None."""
    if kind not in ATTEMPT_KINDS:
        return None
    value = payload.get("attempt")
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    return None if kind == "retry" else 1  # an old retry entry did not start a round itself


def next_attempt(entries: Iterable[tuple[str, Mapping[str, Any]]]) -> int:
    """1 + the highest attempt among an execution's ``(kind, payload)`` entries (1 if none)."""
    seen = [a for kind, payload in entries if (a := attempt_of(payload, kind)) is not None]
    return min(max(seen, default=0) + 1, MAX_ATTEMPT)


__all__ = ["RoundId", "earlier_round", "next_attempt", "parse_round", "round_id"]

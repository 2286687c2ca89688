"""Aggregation an auditor can recompute from signed observations: median, identical, mode.

The DON's nodes and coordinator aggregate with these very functions, so an
audit recomputes exactly what the network decided.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from ._canonical import canonical_json, keccak
from ._errors import ConsensusError

MODES = ("median", "identical", "mode")


def quorum_size(f: int) -> int:
    """Observations needed to tolerate f faulty nodes: 2f+1."""
    return 2 * f + 1


def median(values: Sequence[int]) -> int:
    """The upper median (``sorted(values)[n // 2]``), as OCR's median: always an observed value.

    Raises:
        ConsensusError: if ``values`` is empty.
    """
    if not values:
        raise ConsensusError("no observations to take the median of")
    return sorted(values)[len(values) // 2]


def _groups(values: Sequence[Any]) -> list[tuple[int, bytes, Any]]:
    """(count, hash, value) per distinct value (keccak of its canonical JSON), most frequent first."""
    counts: Counter[bytes] = Counter()
    first: dict[bytes, Any] = {}
    for value in values:
        digest = keccak(canonical_json(value))
        counts[digest] += 1
        first.setdefault(digest, value)
    return sorted(((c, h, first[h]) for h, c in counts.items()), key=lambda g: (-g[0], g[1]))


def identical(values: Sequence[Any], f: int) -> Any:
    """The value at least f+1 observations carry byte for byte.

    Raises:
        ConsensusError: no value has f+1 votes, or two values tie for the most.
    """
    if not values:
        raise ConsensusError("no observations to compare")
    groups = _groups(values)
    count, _, value = groups[0]
    if count < f + 1:
        raise ConsensusError(f"no value given by f+1 = {f + 1} nodes (largest group: {count})")
    if len(groups) > 1 and groups[1][0] == count:
        raise ConsensusError(f"two different values each given by {count} nodes")
    return value


def most_frequent(values: Sequence[Any], f: int, min_count: int | None = None) -> Any:
    """The most frequent value with at least ``min_count`` (default f+1) votes.

    Ties go to the smallest canonical JSON, so everyone picks the same one.

    Raises:
        ConsensusError: the most frequent value has too few votes.
    """
    if not values:
        raise ConsensusError("no observations to count")
    groups = _groups(values)
    top = groups[0][0]
    needed = min_count if min_count is not None else f + 1
    if top < needed:
        raise ConsensusError(f"most frequent value has {top} votes, {needed} needed")
    return min((v for c, _, v in groups if c == top), key=canonical_json)


def recompute(mode: str, values: Sequence[Any], f: int) -> Any:
    """The outcome of ``mode`` over ``values`` (median, identical or mode), as the DON computed it.

    Raises:
        ConsensusError: an unknown mode, or the mode's own rule is not met.
    """
    if mode == "median":
        return median(values)
    if mode == "identical":
        return identical(values, f)
    if mode == "mode":
        return most_frequent(values, f)
    raise ConsensusError(f"unknown consensus mode {mode!r}; the audit knows {', '.join(MODES)}")


def report_verdict(
    deviation_bps: int, heartbeat: int, previous: tuple[int, int] | None, value: int, now: int
) -> str | None:
    """Why a feed reports ``value`` at ``now``, or None to skip: Chainlink's deviation/heartbeat rule.

    The rule the DON's feed workflows apply (``cre_adapters.ReportTrigger``),
    word for word, so an audit can recompute each logged verdict.

    Args:
        deviation_bps: report when the value moved more than this, in basis points.
        heartbeat: report when this many seconds passed since the last report.
        previous: (value, unix time) of the last report it compares against; None for the first.
        value: the new consensus value.
        now: the unix time of the decision.
    """
    if previous is None:
        return "first report"
    last_value, last_at = previous
    if now - last_at >= heartbeat:
        return f"heartbeat: {now - last_at}s since the last report"
    if abs(value - last_value) * 10_000 > deviation_bps * abs(last_value):
        return f"deviation: moved more than {deviation_bps} bps"
    return None

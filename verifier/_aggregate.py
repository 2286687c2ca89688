"""Per-field aggregation of a workflow capability's results (CRE's consensus aggregations).

A capability call inside a workflow callback runs on every node; each node
signs one observation per field of its result. The field's declared
aggregation turns the signed values into the one value every node continues
with. Nodes, the coordinator and the audit all call ``aggregate_field``, so a
consensus value is recomputed from the signed observations the same way
everywhere.

A field's value is signed as an integer: an integer result as itself, any
other JSON value as ``field_int(value)`` (keccak of its canonical JSON), with
the value itself logged beside it and checked against that hash.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ._canonical import canonical_json, keccak
from ._errors import ConsensusError

Kind = Literal["median", "identical", "mode", "common_prefix", "common_suffix"]
KINDS: tuple[Kind, ...] = ("median", "identical", "mode", "common_prefix", "common_suffix")
CALL_FIELD = "#call"  # every step's pseudo-field: the hash of the capability call itself


class AggregationError(ConsensusError):
    """The nodes' values of a field do not meet its aggregation's rule; ``nodes`` are the odd ones."""

    def __init__(self, message: str, nodes: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.nodes = list(nodes)


@dataclass(frozen=True)
class Aggregation:
    """How one field's values from the nodes become one value.

    Attributes:
        kind: ``median`` (integers; the lower median of an even count),
            ``identical`` (one value from at least f+1 nodes and no other value
            from f+1), ``mode`` (the most frequent value, held by at least f+1
            nodes), ``common_prefix`` / ``common_suffix`` (strings or lists: the
            longest prefix/suffix at least f+1 values share).
        tolerance_bps: median only: every value counted must lie within this
            many basis points of the median, and at least 2f+1 must; the nodes
            outside are named when there are too few inside.
        tolerance: median only: the same, as an absolute difference.
    """

    kind: Kind
    tolerance_bps: int | None = None
    tolerance: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The aggregation as logged (``kind`` plus the tolerances that are set)."""
        out: dict[str, Any] = {"kind": self.kind}
        if self.tolerance_bps is not None:
            out["tolerance_bps"] = self.tolerance_bps
        if self.tolerance is not None:
            out["tolerance"] = self.tolerance
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Aggregation:
        """The aggregation a log entry or request names (refuses an unknown kind)."""
        kind = data.get("kind")
        if kind not in KINDS:
            raise AggregationError(f"unknown aggregation {kind!r}; one of {', '.join(KINDS)}")
        bps, tol = data.get("tolerance_bps"), data.get("tolerance")
        for name, value in (("tolerance_bps", bps), ("tolerance", tol)):
            if value is not None and (type(value) is not int or value < 0):  # noqa: E721
                raise AggregationError(f"{name} must be a non-negative integer, not {value!r}")
        return cls(kind=kind, tolerance_bps=bps, tolerance=tol)


def field_int(value: Any) -> int:
    """The integer a node signs for a field value: an int as itself, anything else hashed."""
    if type(value) is int:  # noqa: E721 - bool is hashed, not signed as 0/1
        return value
    return int.from_bytes(keccak(b"vouch.field.v1" + canonical_json(value)), "big")


def aggregate_field(aggregation: Aggregation, values: Sequence[tuple[str, Any]], f: int) -> Any:
    """The consensus value of one field from ``(node, value)`` pairs, at most one per node.

    Raises:
        AggregationError: fewer than 2f+1 values, or the rule is not met (the
            nodes whose values kept it from being met are named).
    """
    quorum = 2 * f + 1
    if len(values) < quorum:
        raise AggregationError(f"{len(values)} values, consensus needs 2f+1 = {quorum}")
    kind = aggregation.kind
    if kind == "median":
        return _median(aggregation, values, f)
    if kind in ("identical", "mode"):
        return _most_frequent(kind, values, f)
    return _common(kind == "common_suffix", values, f)


def _median(aggregation: Aggregation, values: Sequence[tuple[str, Any]], f: int) -> int:
    odd = [node for node, v in values if type(v) is not int]  # noqa: E721
    if odd:
        raise AggregationError(f"median needs integers; not from {', '.join(odd)}", odd)
    ordered = sorted(int(v) for _, v in values)
    mid = ordered[(len(ordered) - 1) // 2]
    if aggregation.tolerance_bps is None and aggregation.tolerance is None:
        return mid
    outside = [(node, v) for node, v in values if not _within(aggregation, int(v), mid)]
    if len(values) - len(outside) < 2 * f + 1:
        named = ", ".join(f"{node}={v}" for node, v in outside)
        raise AggregationError(
            f"values disagree beyond the tolerance ({_tolerance_text(aggregation)}) of the "
            f"median {mid}: {named}; {len(values) - len(outside)} within, 2f+1 = {2 * f + 1} "
            "needed",
            [node for node, _ in outside],
        )
    return mid


def _within(aggregation: Aggregation, value: int, mid: int) -> bool:
    diff = abs(value - mid)
    if aggregation.tolerance is not None and diff > aggregation.tolerance:
        return False
    if aggregation.tolerance_bps is not None:
        return diff * 10_000 <= aggregation.tolerance_bps * abs(mid)
    return True


def _tolerance_text(aggregation: Aggregation) -> str:
    parts = []
    if aggregation.tolerance_bps is not None:
        parts.append(f"{aggregation.tolerance_bps} bps")
    if aggregation.tolerance is not None:
        parts.append(f"±{aggregation.tolerance}")
    return ", ".join(parts)


def _most_frequent(kind: str, values: Sequence[tuple[str, Any]], f: int) -> Any:
    keys = [canonical_json(v) for _, v in values]
    counts = Counter(keys).most_common()
    best, count = counts[0]
    runner_up = counts[1][1] if len(counts) > 1 else 0
    if count < f + 1 or (kind == "identical" and runner_up >= f + 1) or runner_up == count:
        others = [node for (node, _), key in zip(values, keys, strict=True) if key != best]
        raise AggregationError(
            f"{kind}: no value is held by f+1 = {f + 1} nodes alone "
            f"(the most common by {count}, the next by {runner_up}); differing: "
            + ", ".join(others),
            others,
        )
    return next(v for (_, v), key in zip(values, keys, strict=True) if key == best)


def _common(suffix: bool, values: Sequence[tuple[str, Any]], f: int) -> Any:
    odd = [node for node, v in values if not isinstance(v, str | list)]
    if odd:
        raise AggregationError(f"common prefix/suffix needs strings or lists: {odd}", odd)
    items = [v[::-1] if suffix else v for _, v in values]
    best: Any = items[0][:0]
    for candidate in items:
        for length in range(len(candidate), len(best), -1):
            head = candidate[:length]
            if sum(1 for other in items if other[:length] == head) >= f + 1:
                best = head
                break
    return best[::-1] if suffix else best


__all__ = [
    "CALL_FIELD",
    "KINDS",
    "Aggregation",
    "AggregationError",
    "aggregate_field",
    "field_int",
]

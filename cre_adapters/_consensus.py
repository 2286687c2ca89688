"""Aggregation modes behind one interface, and the report trigger rules of data feeds.

Every mode turns the values of at least 2f+1 signed observations into one
outcome that every node can re-derive. ``Median`` is ``verifier.median``
itself (the audit recomputes exactly that); the others are for values an
auditor compares by hash:

- ``Median``: upper median of integers; bounded by honest values when at most f lie.
- ``Identical``: the value at least f+1 nodes gave byte for byte (keccak of its
  canonical JSON); refuses when no such value exists or two values tie.
- ``Mode``: the most frequent categorical value with at least ``min_count``
  (default f+1) votes; ties go to the smallest canonical encoding.
- ``PerField``: a structured observation (a JSON object), each field with its own mode.

``ReportTrigger`` is the deviation/heartbeat rule: report only when the value
moved by more than ``deviation_bps`` or ``heartbeat`` seconds passed.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from vouch.verifier import (
    ConsensusError,
    canonical_json,
    identical,
    keccak,
    median,
    most_frequent,
    quorum_size,
)

from ._errors import ConsensusFailed


class Aggregator(ABC):
    """One consensus mode: many observed values in, one outcome out.

    Subclasses implement ``_aggregate``; ``aggregate`` checks the quorum first,
    so no mode ever decides on fewer than 2f+1 observations.
    """

    name: str = "?"

    def aggregate(self, values: Sequence[Any], f: int) -> Any:
        """The outcome of ``values`` in a DON tolerating ``f`` faults.

        Raises:
            ConsensusFailed: fewer than 2f+1 values, or the mode's own rule is not met.
        """
        if len(values) < quorum_size(f):
            raise ConsensusFailed(
                self.name, f"{len(values)} observations, 2f+1 = {quorum_size(f)} needed"
            )
        return self._aggregate(list(values), f)

    @abstractmethod
    def _aggregate(self, values: list[Any], f: int) -> Any:
        """The mode's rule, on at least 2f+1 values."""


class Median(Aggregator):
    """Upper median of integers: ``verifier.median``, so the audit recomputes the same."""

    name = "median"

    def _aggregate(self, values: list[Any], f: int) -> Any:
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            raise ConsensusFailed(self.name, "median needs integer values")
        return median(values)


def value_hash(value: Any) -> bytes:
    """keccak256 of the canonical JSON of ``value``: what ``Identical`` compares."""
    return keccak(canonical_json(value))


class Identical(Aggregator):
    """The value at least f+1 nodes gave, compared by hash; refuses on a tie or no such value."""

    name = "identical"

    def _aggregate(self, values: list[Any], f: int) -> Any:
        try:
            return identical(values, f)
        except ConsensusError as exc:
            raise ConsensusFailed(self.name, str(exc)) from None


class Mode(Aggregator):
    """The most frequent categorical value; at least ``min_count`` (default f+1) votes.

    Ties between equally frequent values go to the smallest canonical JSON, so
    every node picks the same one.
    """

    name = "mode"

    def __init__(self, min_count: int | None = None) -> None:
        self.min_count = min_count

    def _aggregate(self, values: list[Any], f: int) -> Any:
        try:
            return most_frequent(values, f, self.min_count)
        except ConsensusError as exc:
            raise ConsensusFailed(self.name, str(exc)) from None


class PerField(Aggregator):
    """Structured observations (JSON objects): each field aggregated by its own mode.

    Args:
        fields: field name to the aggregator of that field; every observation must have them all.
    """

    name = "per-field"

    def __init__(self, fields: Mapping[str, Aggregator]) -> None:
        self.fields = dict(fields)

    def _aggregate(self, values: list[Any], f: int) -> Any:
        out: dict[str, Any] = {}
        for field, mode in sorted(self.fields.items()):
            column = []
            for value in values:
                if not isinstance(value, Mapping) or field not in value:
                    raise ConsensusFailed(self.name, f"an observation lacks field {field!r}")
                column.append(value[field])
            try:
                out[field] = mode.aggregate(column, f)
            except ConsensusFailed as exc:
                raise ConsensusFailed(self.name, f"field {field!r}: {exc.reason}") from None
        return out


class ReportTrigger(BaseModel):
    """Deviation and heartbeat, as Chainlink data feeds: report when either fires.

    Args:
        deviation_bps: report when the value moved more than this, in basis points.
        heartbeat: report when this many seconds passed since the last report.
    """

    model_config = ConfigDict(frozen=True)

    deviation_bps: int = Field(default=50, ge=0)
    heartbeat: int = Field(default=3600, ge=1)

    def should_report(self, last: tuple[int, int] | None, value: int, now: int) -> str | None:
        """Why to report ``value`` at ``now`` given ``last`` = (value, time), or None to skip."""
        if last is None:
            return "first report"
        last_value, last_at = last
        if now - last_at >= self.heartbeat:
            return f"heartbeat: {now - last_at}s since the last report"
        moved = abs(value - last_value) * 10_000
        if moved > self.deviation_bps * abs(last_value):
            return f"deviation: moved more than {self.deviation_bps} bps"
        return None


def consistent_subset(values: Sequence[int], size: int, band_bps: int) -> list[int] | None:
    """Indices of ``size`` values that all lie within ``band_bps`` of their own median.

    Of all such windows (in sorted order) the tightest wins, ties to the lowest;
    None when there is none. This is how the coordinator keeps outliers out of
    the observation set, and what every signing node re-checks.
    """
    order = sorted(range(len(values)), key=lambda i: (values[i], i))
    best: tuple[int, list[int]] | None = None
    for start in range(len(order) - size + 1):
        window = order[start : start + size]
        if within_band([values[i] for i in window], band_bps):
            spread = values[window[-1]] - values[window[0]]
            if best is None or spread < best[0]:
                best = (spread, window)
    return None if best is None else sorted(best[1])


def within_band(values: Sequence[int], band_bps: int) -> bool:
    """True when every value lies within ``band_bps`` of the values' median."""
    mid = median(values)
    return all(abs(v - mid) * 10_000 <= band_bps * abs(mid) for v in values)


MODES: Mapping[str, type[Aggregator]] = {"median": Median, "identical": Identical, "mode": Mode}

__all__ = [
    "MODES",
    "Aggregator",
    "Identical",
    "Median",
    "Mode",
    "PerField",
    "ReportTrigger",
    "consistent_subset",
    "value_hash",
    "within_band",
]

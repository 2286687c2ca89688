"""Aggregation an auditor can recompute: the median of signed observations."""

from __future__ import annotations

from collections.abc import Sequence

from ._errors import ConsensusError


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

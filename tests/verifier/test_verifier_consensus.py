"""The median an auditor recomputes, and the quorum it needs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vouch.verifier import ConsensusError, VerifierError, median, quorum_size

prices = st.integers(-(2**255), 2**256 - 1)


def test_upper_median_as_ocr() -> None:
    assert median([5]) == 5
    assert median([3, 1, 2]) == 2
    assert median([4, 1, 3, 2]) == 3  # upper median of an even count, never an average
    assert median([10**30, 1, 10**30 + 1]) == 10**30


def test_median_of_nothing_is_a_consensus_error() -> None:
    with pytest.raises(ConsensusError):
        median([])
    assert issubclass(ConsensusError, VerifierError)


@pytest.mark.parametrize(("f", "q"), [(0, 1), (1, 3), (2, 5), (10, 21)])
def test_quorum_is_2f_plus_1(f: int, q: int) -> None:
    assert quorum_size(f) == q


@given(st.lists(prices, min_size=1, max_size=30))
def test_median_is_an_observed_value_with_half_on_each_side(values: list[int]) -> None:
    m = median(values)
    assert m in values
    assert sum(v < m for v in values) <= len(values) // 2
    assert sum(v > m for v in values) <= (len(values) - 1) // 2
    assert median(list(reversed(values))) == m


@given(st.data(), st.integers(0, 5))
def test_at_most_f_liars_cannot_move_the_median_outside_the_honest_range(
    data: st.DataObject, f: int
) -> None:
    n = data.draw(st.integers(3 * f + 1, 3 * f + 4), label="n")
    liars = data.draw(st.integers(0, f), label="liars")
    honest = data.draw(st.lists(prices, min_size=n - liars, max_size=n - liars), label="honest")
    lies = data.draw(st.lists(prices, min_size=liars, max_size=liars), label="lies")
    values = data.draw(st.permutations(honest + lies), label="order")
    assert min(honest) <= median(values) <= max(honest)


@given(st.data(), st.integers(1, 5))
def test_the_bound_also_holds_for_any_quorum_of_2f_plus_1(data: st.DataObject, f: int) -> None:
    liars = data.draw(st.integers(0, f))
    honest = data.draw(st.lists(prices, min_size=2 * f + 1 - liars, max_size=2 * f + 1 - liars))
    lies = data.draw(
        st.lists(st.sampled_from([-(2**255), 2**256 - 1]), min_size=liars, max_size=liars)
    )
    assert min(honest) <= median(honest + lies) <= max(honest)

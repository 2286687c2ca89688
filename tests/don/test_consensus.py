"""Aggregation modes: one conformance suite every mode passes, then each mode's own promises."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vouch.cre_adapters import (
    Aggregator,
    ConsensusFailed,
    Identical,
    Median,
    Mode,
    PerField,
    ReportTrigger,
    consistent_subset,
    within_band,
)
from vouch.verifier import median as verifier_median

ONE = 10**18

# each mode with a generator of a unanimous-enough honest sample for it
MODES: dict[str, tuple[Callable[[], Aggregator], Callable[[int], Any]]] = {
    "median": (Median, lambda i: 3_000 * ONE + i),
    "identical": (Identical, lambda i: {"root": "0x" + "ab" * 32}),
    "mode": (Mode, lambda i: "FILLED"),
    "per-field": (
        lambda: PerField({"status": Mode(), "price": Median()}),
        lambda i: {"status": "FILLED", "price": 3_000 * ONE + i},
    ),
}


@pytest.fixture(params=list(MODES))
def mode(request: pytest.FixtureRequest) -> tuple[Aggregator, Callable[[int], Any]]:
    make, sample = MODES[request.param]
    return make(), sample


# conformance: every mode --------------------------------------------------------------


@pytest.mark.parametrize("f", [1, 2, 3])
def test_refuses_fewer_than_2f_plus_1_observations(mode: Any, f: int) -> None:
    agg, sample = mode
    with pytest.raises(ConsensusFailed, match="2f\\+1"):
        agg.aggregate([sample(i) for i in range(2 * f)], f)


@pytest.mark.parametrize("f", [1, 2, 3])
def test_honest_quorum_gives_an_outcome_every_node_derives_alike(mode: Any, f: int) -> None:
    agg, sample = mode
    values = [sample(i) for i in range(3 * f + 1)]
    outcomes = {
        repr(agg.aggregate(random.Random(s).sample(values, len(values)), f)) for s in range(5)
    }
    assert len(outcomes) == 1  # order of arrival does not matter


def test_outcome_is_built_from_observed_values(mode: Any) -> None:
    agg, sample = mode
    values = [sample(i) for i in range(4)]
    outcome = agg.aggregate(values, 1)
    if isinstance(outcome, dict):
        for field, value in outcome.items():
            assert value in [v[field] for v in values]
    else:
        assert outcome in values


def test_failure_names_the_mode(mode: Any) -> None:
    agg, sample = mode
    with pytest.raises(ConsensusFailed) as info:
        agg.aggregate([sample(0)], 1)
    assert info.value.mode == agg.name and agg.name in str(info.value)


# median -------------------------------------------------------------------------------

honest_values = st.integers(min_value=1, max_value=10**30)


@settings(max_examples=300, deadline=None)
@given(
    f=st.integers(1, 10),
    data=st.data(),
)
def test_median_lies_between_honest_values_when_at_most_f_lie(f: int, data: st.DataObject) -> None:
    size = data.draw(st.integers(2 * f + 1, 3 * f + 1))
    liars = data.draw(st.integers(0, f))
    honest = data.draw(st.lists(honest_values, min_size=size - liars, max_size=size - liars))
    lies = data.draw(st.lists(st.integers(0, 10**40), min_size=liars, max_size=liars))
    outcome = Median().aggregate(data.draw(st.permutations(honest + lies)), f)
    assert min(honest) <= outcome <= max(honest)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 10**30), min_size=3, max_size=31))
def test_median_is_verifiers_median(values: list[int]) -> None:
    assert Median().aggregate(values, 1) == verifier_median(values)


def test_median_refuses_non_integers() -> None:
    with pytest.raises(ConsensusFailed, match="integer"):
        Median().aggregate([1, 2, 3.5], 1)


# identical ----------------------------------------------------------------------------

small = st.sampled_from(["a", "b", "c", 1, {"x": 1}, {"x": 2}])


@settings(max_examples=300, deadline=None)
@given(f=st.integers(1, 5), data=st.data())
def test_identical_never_reports_a_value_fewer_than_f_plus_1_nodes_gave(
    f: int, data: st.DataObject
) -> None:
    values = data.draw(st.lists(small, min_size=2 * f + 1, max_size=3 * f + 1))
    try:
        outcome = Identical().aggregate(values, f)
    except ConsensusFailed:
        return
    assert sum(1 for v in values if v == outcome) >= f + 1


def test_identical_compares_by_hash_of_canonical_json() -> None:
    # key order does not matter, types do
    assert Identical().aggregate([{"a": 1, "b": 2}, {"b": 2, "a": 1}, "x"], 1) == {"a": 1, "b": 2}
    with pytest.raises(ConsensusFailed, match="f\\+1"):
        Identical().aggregate([1, "1", 2], 1)


def test_identical_refuses_a_tie() -> None:
    with pytest.raises(ConsensusFailed, match="two different values"):
        Identical().aggregate(["a", "a", "b", "b"], 1)


# mode and per-field -------------------------------------------------------------------


def test_mode_takes_the_most_frequent_and_breaks_ties_alike() -> None:
    assert Mode().aggregate(["SELL", "BUY", "BUY", "HOLD"], 1) == "BUY"
    assert Mode().aggregate(["SELL", "SELL", "BUY", "BUY"], 1) == "BUY"  # smallest encoding
    with pytest.raises(ConsensusFailed, match="votes"):
        Mode().aggregate(["A", "B", "C"], 1)


def test_per_field_runs_each_fields_own_mode() -> None:
    agg = PerField({"side": Mode(), "price": Median(), "venue": Identical()})
    rows = [
        {"side": "BUY", "price": 10, "venue": "x"},
        {"side": "BUY", "price": 12, "venue": "x"},
        {"side": "SELL", "price": 900, "venue": "y"},
    ]
    assert agg.aggregate(rows, 1) == {"side": "BUY", "price": 12, "venue": "x"}


def test_per_field_names_the_field_that_failed() -> None:
    agg = PerField({"side": Identical()})
    with pytest.raises(ConsensusFailed, match="field 'side'"):
        agg.aggregate([{"side": "A"}, {"side": "B"}, {"side": "C"}], 1)
    with pytest.raises(ConsensusFailed, match="lacks field 'side'"):
        agg.aggregate([{"side": "A"}, {"side": "A"}, {}], 1)


# deviation / heartbeat ----------------------------------------------------------------


def test_report_trigger_fires_on_deviation_or_heartbeat_only() -> None:
    rule = ReportTrigger(deviation_bps=50, heartbeat=3600)
    assert rule.should_report(None, 100, 0) == "first report"
    assert rule.should_report((10_000, 0), 10_049, 10) is None
    assert "deviation" in (rule.should_report((10_000, 0), 10_051, 10) or "")
    assert "deviation" in (rule.should_report((10_000, 0), 9_940, 10) or "")
    assert "heartbeat" in (rule.should_report((10_000, 0), 10_000, 3600) or "")


# the band check the coordinator and the signers share ---------------------------------


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(st.integers(1, 10**6), min_size=3, max_size=12),
    band=st.integers(0, 2_000),
)
def test_consistent_subset_is_within_band_and_of_the_asked_size(
    values: list[int], band: int
) -> None:
    picked = consistent_subset(values, 3, band)
    if picked is not None:
        assert len(set(picked)) == 3
        assert within_band([values[i] for i in picked], band)


def test_consistent_subset_keeps_outliers_out() -> None:
    values = [3000, 4500, 3001, 3002]
    assert consistent_subset(values, 3, 100) == [0, 2, 3]
    assert consistent_subset([3000, 4500, 1800, 3001], 3, 100) is None

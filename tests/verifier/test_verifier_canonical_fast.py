"""parse_canonical's orjson fast path gives exactly the answers of the json-only path."""

from __future__ import annotations

import json
import math
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vouch.verifier._canonical import MISS, parse_canonical, parse_exact, parse_fast, shape_problem

# every code point, lone surrogates included (json reads and writes them, orjson refuses them)
chars = st.characters(codec=None, categories=None)
texts = st.text(alphabet=chars, max_size=12) | st.sampled_from(
    [
        "",
        "é",
        "\x00",
        "\x1f",
        "\x7f",
        "\u2028",
        "\ud800",
        "\U0001f600",
        '"',
        "\\",
        "/",
        "a.b",
        "e+1",
    ]
)
integers = st.integers() | st.sampled_from(
    [2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1, 10**18, 10**19, -(10**19)]
    + [3000 * 10**18, -0]
)
scalars = st.none() | st.booleans() | integers | texts
with_floats = scalars | st.floats(allow_nan=False, allow_infinity=False)


def values(leaves: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.recursive(
        leaves,
        lambda children: (
            st.lists(children, max_size=4) | st.dictionaries(texts, children, max_size=5)
        ),
        max_leaves=20,
    )


def reference(text: str) -> tuple[Any, str | None]:
    """The json module alone: no float, no NaN/Infinity; sorted, compact, unescaped UTF-8."""

    def refuse(token: str) -> Any:
        raise ValueError(token)

    try:
        value = json.loads(text, parse_float=refuse, parse_constant=refuse)
    except ValueError:
        return None, None
    return value, json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def same(a: Any, b: Any) -> bool:
    """Equal with the same types all the way down (True is not 1) and the same key order."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def check(text: str) -> None:
    want = reference(text)
    for got in (parse_canonical(text), parse_exact(text)):
        assert same(got[0], want[0]), (text, got, want)
        assert got[1] == want[1], (text, got, want)


def variants(value: Any) -> list[str]:
    """The canonical text of ``value`` and non-canonical spellings of it."""
    out = [json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)]
    out.append(json.dumps(value, sort_keys=True, ensure_ascii=False))  # spaces
    out.append(json.dumps(value, separators=(",", ":"), ensure_ascii=False))  # unsorted
    out.append(json.dumps(value, sort_keys=True, separators=(",", ":")))  # \\u escapes
    out.append(" " + out[0])
    out.append(out[0] + "\n")
    return out


@settings(max_examples=600)
@given(values(scalars))
def test_canonical_and_edited_texts_parse_as_with_json_alone(value: Any) -> None:
    for text in variants(value):
        check(text)


@settings(max_examples=300)
@given(values(with_floats))
def test_texts_with_floats_are_refused_as_with_json_alone(value: Any) -> None:
    for text in variants(value):
        check(text)


@settings(max_examples=300)
@given(
    st.text(alphabet=st.sampled_from('{}[]:,"\\0123456789.eE+-truefalsnl \tx\u00e9'), max_size=24)
)
def test_json_like_noise_parses_as_with_json_alone(text: str) -> None:
    check(text)


@pytest.mark.parametrize(
    "text",
    [
        '{"a":1,"a":2}',  # duplicate keys: the last wins, still not canonical
        '{"a":2}',
        "-0",
        "[-0]",
        "18446744073709551615",
        "18446744073709551616",
        "-9223372036854775808",
        "-9223372036854775809",
        "-9999999999999999999",
        '{"v":3000000000000000000000}',
        "1e400",
        "[1e-400]",
        "1.0",
        "[1E5]",
        '{"a":NaN}',
        "Infinity",
        '"\\ud800"',
        '"\\ud83d\\ude00"',
        '"\U0001f600"',
        '"\\u00e9"',
        '"\\/"',
        '"\\b\\f\\n\\r\\t\\u0000\\u001f\x7f"',
        '"\t"',
        "[1,]",
        "",
        " ",
        "[" * 64 + "]" * 64,  # as deep as a payload may nest
    ],
)
def test_edge_cases_parse_as_with_json_alone(text: str) -> None:
    check(text)


@pytest.mark.parametrize("depth", [65, 300, 80_000])
def test_deeper_than_64_is_refused_before_json_recurses(depth: int) -> None:
    # py_ecc lifts the recursion limit to 100,000: json's parser would overflow the C stack
    text = "[" * depth + "]" * depth
    assert parse_exact(text) == (None, None)
    if depth > 1024:  # orjson (parse_fast) bounds itself at 1024 and then misses
        assert parse_canonical(text)[1] is None
    assert shape_problem(text) == "nested deeper than 64 levels"
    nested_in_strings = '["' + "[" * 1000 + '"]'  # brackets inside a string do not nest
    assert shape_problem(nested_in_strings) is None


def test_canonical_text_is_returned_without_a_second_dump() -> None:
    text = '{"a":[1,{"b":"é"}],"c":null,"d":true}'
    assert parse_canonical(text) == ({"a": [1, {"b": "é"}], "c": None, "d": True}, text)
    assert parse_fast(text.encode()) == {"a": [1, {"b": "é"}], "c": None, "d": True}


@pytest.mark.parametrize("text", ['{"v":3000000000000000000000}', '{"a":1.5}', '{"b":1,"a":2}'])
def test_what_orjson_cannot_vouch_for_is_a_miss(text: str) -> None:
    assert parse_fast(text.encode()) is MISS


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_orjson_writes_every_float_with_a_point_or_a_signed_exponent(value: float) -> None:
    # parse_fast's float check relies on it: digits alone are never a float
    out = orjson.dumps(value)
    assert b"." in out or b"e+" in out or b"e-" in out
    assert math.isfinite(value)

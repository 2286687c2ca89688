"""canonical_json and keccak: the primitives every vouch hash is built from."""

from __future__ import annotations

import json

import pytest
from Crypto.Hash import keccak as pycryptodome_keccak
from hypothesis import given
from hypothesis import strategies as st

from vouch.verifier import canonical_json, keccak
from vouch.verifier._canonical import dump_parsed, parse_json

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def reference_keccak(data: bytes) -> bytes:
    return pycryptodome_keccak.new(digest_bits=256, data=data).digest()


def test_keccak_matches_the_ethereum_empty_string_vector() -> None:
    assert keccak(b"").hex() == "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"


@given(st.binary(max_size=300))
def test_keccak_agrees_with_an_independent_implementation(data: bytes) -> None:
    assert keccak(data) == reference_keccak(data)


def test_canonical_json_sorts_keys_has_no_spaces_and_keeps_utf8() -> None:
    value = {"b": 1, "a": {"z": [1, 2], "y": "é"}, "c": b"\xab\x01"}
    assert canonical_json(value) == '{"a":{"y":"é","z":[1,2]},"b":1,"c":"0xab01"}'.encode()


def test_canonical_json_keeps_big_integers_exact() -> None:
    big = 3000 * 10**18 * 2**80
    assert canonical_json({"v": big}) == b'{"v":' + str(big).encode() + b"}"


@pytest.mark.parametrize("value", [1.5, {"a": 0.0}, [1, [2.0]], {"a": {"b": [float("nan")]}}])
def test_canonical_json_refuses_floats_anywhere(value: object) -> None:
    with pytest.raises(TypeError, match="float"):
        canonical_json(value)


@given(json_values)
def test_canonical_json_is_a_fixed_point_of_parse_and_reserialize(value: object) -> None:
    text = canonical_json(value)
    assert json.loads(text) == value
    assert canonical_json(json.loads(text)) == text


@pytest.mark.parametrize("text", ['{"a":1.5}', '{"a":NaN}', '{"a":[-Infinity]}', '{"a":1e3}'])
def test_stored_text_with_a_float_or_constant_is_refused_on_parse(text: str) -> None:
    # NaN and Infinity would otherwise re-serialize to themselves and pass as canonical
    with pytest.raises(ValueError, match="not canonical JSON"):
        parse_json(text)


@given(json_values)
def test_parse_then_dump_equals_canonical_json(value: object) -> None:
    text = canonical_json(value)
    assert dump_parsed(parse_json(text.decode())) == text

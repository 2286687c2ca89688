"""The audit's shortcuts agree with the general code they stand in for."""

from __future__ import annotations

from typing import Any

from coincurve import PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from verifier import _batch
from verifier._audit import _observation_json
from verifier._canonical import dump_parsed, keccak
from verifier._log import _hash, entry_digest
from verifier._signing import HALF_N, SECP256K1_N

names = st.text(max_size=10) | st.sampled_from(["0x" + "ab" * 32, "observations", "é", 'a"b', "\\"])
json_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=6)


@given(
    prev=st.binary(min_size=32, max_size=32),
    seq=st.integers(min_value=0, max_value=2**63),
    execution_id=names,
    kind=names,
    payload=st.text(max_size=40),
    created_at=st.integers(min_value=0, max_value=2**63),
)
def test_entry_digest_is_the_entry_hash(
    prev: bytes, seq: int, execution_id: str, kind: str, payload: str, created_at: int
) -> None:
    want = _hash("0x" + prev.hex(), seq, execution_id, kind, payload, created_at)
    got = entry_digest(prev, seq, execution_id, kind, payload.encode(), created_at)
    assert "0x" + got.hex() == want


observations = st.fixed_dictionaries(
    {
        "feed": st.text(max_size=8) | json_scalars,
        "node": st.text(max_size=8) | json_scalars,
        "observed_at": st.integers() | json_scalars,
        "request_id": st.text(max_size=8) | json_scalars,
        "value": st.integers() | st.booleans() | json_scalars,
    },
    optional={"extra": json_scalars},
)


@given(observations | st.lists(json_scalars, max_size=3) | json_scalars)
def test_observation_json_is_dump_parsed(observation: Any) -> None:
    assert _observation_json(observation) == dump_parsed(observation)


KEY = PrivateKey(keccak(b"audit-fast"))
words = st.sampled_from(
    [0, 1, HALF_N - 1, HALF_N, HALF_N + 1, SECP256K1_N - 1, SECP256K1_N, 2**256 - 1]
) | st.integers(min_value=0, max_value=2**256 - 1)


@given(
    r=words,
    s=words,
    v=st.integers(min_value=0, max_value=255),
    offset=st.sampled_from([0, 27]),
    length=st.sampled_from([65, 64, 66]),
)
def test_recover_agrees_with_recover_one_on_any_signature(
    r: int, s: int, v: int, offset: int, length: int
) -> None:
    message = keccak(r.to_bytes(32, "big"))
    signature = (r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([v]))[:length]
    signature += bytes(max(0, length - len(signature)))
    assert _batch.recover(message, signature, offset) == _batch.recover_one(
        message, signature, offset
    )


@given(st.binary(min_size=32, max_size=32), st.sampled_from([0, 27]))
def test_recover_agrees_with_recover_one_on_real_signatures(message: bytes, offset: int) -> None:
    raw = KEY.sign_recoverable(message, hasher=None)
    signature = raw[:64] + bytes([raw[64] + offset])
    got = _batch.recover(message, signature, offset)
    assert got == _batch.recover_one(message, signature, offset)
    assert got == keccak(KEY.public_key.format(compressed=False)[1:])[-20:]

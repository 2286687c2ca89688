"""Report signatures (raw, low-s, v in {0,1}) and observation signatures (EIP-191, domain-separated)."""

from __future__ import annotations

import contextlib
import json

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from hypothesis import given, settings
from hypothesis import strategies as st

from vouch.verifier import (
    Observation,
    SignatureError,
    SignedObservation,
    VerifierError,
    canonical_json,
    keccak,
    recover_observation_signer,
    recover_report_signer,
    sign_observation,
    sign_report,
)

N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
keys = st.integers(1, N - 1).map(lambda n: n.to_bytes(32, "big"))
digests = st.binary(min_size=32, max_size=32)


def parts(signature: bytes) -> tuple[int, int, int]:
    return (
        int.from_bytes(signature[:32], "big"),
        int.from_bytes(signature[32:64], "big"),
        signature[64],
    )


@settings(max_examples=60, deadline=None)
@given(key=keys, digest=digests)
def test_report_signature_round_trip_is_low_s_with_v_0_or_1(key: bytes, digest: bytes) -> None:
    signature = sign_report(digest, key)
    r, s, v = parts(signature)
    assert len(signature) == 65
    assert v in (0, 1)
    assert 0 < s <= N // 2
    assert recover_report_signer(digest, signature) == Account.from_key(key).address


@settings(max_examples=20, deadline=None)
@given(key=keys, digest=digests)
def test_report_signature_is_what_ecrecover_with_v_plus_27_accepts(
    key: bytes, digest: bytes
) -> None:
    signature = sign_report(digest, key)
    r, s, v = parts(signature)
    recovered = Account._recover_hash(digest, vrs=(v + 27, r, s))
    assert recovered == Account.from_key(key).address


@settings(max_examples=20, deadline=None)
@given(key=keys, digest=digests)
def test_the_high_s_twin_of_a_valid_signature_is_refused(key: bytes, digest: bytes) -> None:
    r, s, v = parts(sign_report(digest, key))
    twin = r.to_bytes(32, "big") + (N - s).to_bytes(32, "big") + bytes([1 - v])
    # The twin is a valid secp256k1 signature of the same key (malleability) ...
    assert Account._recover_hash(digest, vrs=(28 - v, r, N - s)) == Account.from_key(key).address
    # ... which vouch refuses.
    with pytest.raises(SignatureError, match="high s"):
        recover_report_signer(digest, twin)


@pytest.mark.parametrize("v", [2, 26, 27, 28, 255])
def test_v_outside_0_1_is_refused(v: int) -> None:
    signature = sign_report(b"\x09" * 32, b"\x07" * 32)
    with pytest.raises(SignatureError, match="v must be"):
        recover_report_signer(b"\x09" * 32, signature[:64] + bytes([v]))


@pytest.mark.parametrize("length", [0, 64, 66, 130])
def test_wrong_length_is_refused(length: int) -> None:
    signature = (sign_report(b"\x09" * 32, b"\x07" * 32) * 3)[:length]
    with pytest.raises(SignatureError, match="65 bytes"):
        recover_report_signer(b"\x09" * 32, signature)


def test_unrecoverable_signatures_are_signature_errors() -> None:
    digest = b"\x09" * 32
    with pytest.raises(SignatureError):
        recover_report_signer(digest, bytes(32) + (1).to_bytes(32, "big") + b"\x00")  # r = 0
    # r = 5 is not the x coordinate of any curve point.
    with pytest.raises(SignatureError, match="recover"):
        recover_report_signer(digest, (5).to_bytes(32, "big") + (1).to_bytes(32, "big") + b"\x00")
    with pytest.raises(SignatureError, match="32 bytes"):
        recover_report_signer(b"\x09" * 31, sign_report(digest, b"\x07" * 32))
    assert issubclass(SignatureError, VerifierError)


def test_a_signature_over_another_digest_recovers_someone_else() -> None:
    key = b"\x07" * 32
    signature = sign_report(b"\x01" * 32, key)
    assert recover_report_signer(b"\x02" * 32, signature) != Account.from_key(key).address


def observation(key: bytes, value: int = 3000 * 10**18) -> Observation:
    return Observation(
        request_id="req-1",
        feed="ETH/USD",
        value=value,
        observed_at=1_800_000_000,
        node=Account.from_key(key).address.lower(),
    )


def test_observation_digest_is_domain_separated_canonical_json() -> None:
    obs = observation(b"\x05" * 32)
    body = canonical_json(obs.model_dump(mode="json"))
    assert body.startswith(b'{"feed":"ETH/USD","node":"0x')
    assert obs.node == Account.from_key(b"\x05" * 32).address
    assert obs.digest() == keccak(b"vouch.observation.v1\x00" + body)


@settings(max_examples=300, deadline=None)
@given(
    request_id=st.text(min_size=1, max_size=128),
    feed=st.text(min_size=1, max_size=32),
    value=st.integers(-(2**300), 2**300),
    observed_at=st.integers(0, 2**70),
    raw=st.binary(min_size=20, max_size=20),
)
def test_observation_digest_is_the_canonical_json_for_any_fields(
    request_id: str, feed: str, value: int, observed_at: int, raw: bytes
) -> None:
    obs = Observation(
        request_id=request_id,
        feed=feed,
        value=value,
        observed_at=observed_at,
        node="0x" + raw.hex(),
    )
    body = canonical_json(obs.model_dump(mode="json"))  # the spec's rule, written the slow way
    assert obs.digest() == keccak(b"vouch.observation.v1\x00" + body)


@settings(max_examples=30, deadline=None)
@given(key=keys, value=st.integers(-(2**255), 2**256))
def test_observation_signature_round_trip(key: bytes, value: int) -> None:
    signed = sign_observation(observation(key, value), key)
    assert len(signed.signature) == 65 and signed.signature[64] in (27, 28)
    # It is a plain EIP-191 personal signature over the 32-byte digest.
    message = encode_defunct(primitive=signed.observation.digest())
    assert Account.recover_message(message, signature=signed.signature) == signed.observation.node
    assert recover_observation_signer(signed) == signed.observation.node
    again = SignedObservation.model_validate(json.loads(signed.model_dump_json()))
    assert again == signed
    assert recover_observation_signer(again) == signed.observation.node


@pytest.mark.parametrize(
    "change",
    [
        {"value": 3001 * 10**18},
        {"feed": "BTC/USD"},
        {"request_id": "req-2"},
        {"observed_at": 1_800_000_001},
    ],
)
def test_a_tampered_observation_no_longer_recovers_its_node(change: dict[str, object]) -> None:
    key = b"\x05" * 32
    signed = sign_observation(observation(key), key)
    forged = SignedObservation(
        observation=signed.observation.model_copy(update=change), signature=signed.signature
    )
    with contextlib.suppress(SignatureError):
        assert recover_observation_signer(forged) != signed.observation.node


def test_claiming_another_node_does_not_make_it_the_signer() -> None:
    key, other = b"\x05" * 32, b"\x06" * 32
    signed = sign_observation(observation(key), key)
    forged = SignedObservation(
        observation=signed.observation.model_copy(update={"node": Account.from_key(other).address}),
        signature=signed.signature,
    )
    assert recover_observation_signer(forged) != Account.from_key(other).address


def test_observation_signatures_are_not_report_signatures() -> None:
    key = b"\x05" * 32
    signed = sign_observation(observation(key), key)
    with pytest.raises(SignatureError):  # v is 27/28 here, never 0/1
        recover_report_signer(signed.observation.digest(), signed.signature)


def test_malformed_observation_signatures_are_signature_errors() -> None:
    key = b"\x05" * 32
    signed = sign_observation(observation(key), key)
    r, s, v = parts(signed.signature)
    cases = [
        signed.signature[:64],
        signed.signature[:64] + b"\x01",
        r.to_bytes(32, "big") + (N - s).to_bytes(32, "big") + bytes([55 - v]),
    ]
    for bad in cases:
        with pytest.raises(SignatureError):
            recover_observation_signer(
                SignedObservation(observation=signed.observation, signature=bad)
            )


@pytest.mark.parametrize("coincurve", [True, False], ids=["libsecp256k1", "pure-python"])
def test_batch_recovery_matches_eth_account_with_and_without_coincurve(
    coincurve: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    import vouch.verifier._batch as batch

    if not coincurve:
        monkeypatch.setattr(batch, "_CCPublicKey", None)
    account = Account.from_key(b"\x07" * 32)
    for n in range(5):
        message = bytes([n]) * 32
        signed = Account.unsafe_sign_hash(message, account.key)
        got = batch.recover_one(message, signed.signature, 27)
        assert isinstance(got, bytes)
        assert "0x" + got.hex() == account.address.lower()
    bad = bytearray(Account.unsafe_sign_hash(b"\x01" * 32, account.key).signature)
    bad[64] = 29
    assert "v must be" in str(batch.recover_one(b"\x01" * 32, bytes(bad), 27))
    if coincurve:  # the C call reads exactly 32 bytes: a short hash must never reach it
        assert "32 bytes" in str(batch.recover_one(b"\x01" * 31, bytes(bad[:64]) + b"\x1b", 27))

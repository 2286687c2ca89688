"""Signing and recovering report and observation signatures (secp256k1, low-s only)."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ._canonical import canonical_json, keccak
from ._errors import SignatureError
from ._types import Address, HexBytes, to_checksum

_json_str = json.JSONEncoder(ensure_ascii=False).encode  # a str exactly as canonical_json writes it

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
HALF_N = SECP256K1_N // 2
OBSERVATION_DOMAIN = b"vouch.observation.v1\x00"

# EIP-191 version 0x45 ("E") over a 32-byte digest, as eth_account's encode_defunct(primitive=)
EIP191_PREFIX = b"\x19Ethereum Signed Message:\n32"

# coincurve (libsecp256k1) signs and recovers; eth-account / eth-keys are the pure-Python
# fallback, imported only without it (they take ~1 CPU-s to import: a node signs with
# coincurve and never loads them)
_CCPublicKey: Any
_CCPrivateKey: Any
try:
    from coincurve import PrivateKey as _CCPrivateKey
    from coincurve import PublicKey as _CCPublicKey
except ImportError:  # pragma: no cover - exercised only without coincurve
    _CCPublicKey = _CCPrivateKey = None


def _split(signature: bytes, v_offset: int) -> tuple[int, int, int]:
    if len(signature) != 65:
        raise SignatureError(f"signature must be 65 bytes, got {len(signature)}")
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    v = signature[64] - v_offset
    if v not in (0, 1):
        raise SignatureError(
            f"signature v must be {v_offset} or {v_offset + 1}, got {signature[64]}"
        )
    if not 0 < r < SECP256K1_N or not 0 < s < SECP256K1_N:
        raise SignatureError("signature r or s is out of range")
    if s > HALF_N:
        raise SignatureError("signature has a high s value (malleable); only low-s is accepted")
    return r, s, v


def _recover(digest: bytes, r: int, s: int, v: int) -> str:
    rs = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    try:
        if _CCPublicKey is not None:
            public = _CCPublicKey.from_signature_and_message(rs + bytes([v]), digest, hasher=None)
            raw = bytes(public.format(compressed=False)[1:])
        else:  # pragma: no cover - exercised only without coincurve
            from eth_keys import keys

            raw = bytes(
                keys.Signature(vrs=(v, r, s)).recover_public_key_from_msg_hash(digest).to_bytes()
            )
    except Exception as exc:  # noqa: BLE001 - backends raise many kinds
        raise SignatureError(f"signature does not recover: {exc}") from None
    return str(to_checksum(keccak(raw)[-20:]))


def _sign_digest(digest: bytes, private_key: bytes) -> tuple[int, int, int]:
    """(r, s, v ∈ {0, 1}) of a deterministic (RFC 6979) secp256k1 signature of ``digest``."""
    if _CCPrivateKey is not None:
        rsv = _CCPrivateKey(bytes(private_key)).sign_recoverable(digest, hasher=None)
        return int.from_bytes(rsv[:32], "big"), int.from_bytes(rsv[32:64], "big"), rsv[64]
    from eth_account import Account  # pragma: no cover - exercised only without coincurve

    signed = Account.unsafe_sign_hash(digest, private_key)  # pragma: no cover
    return int(signed.r), int(signed.s), int(signed.v) - 27  # pragma: no cover


def sign_report(digest: bytes, private_key: bytes) -> bytes:
    """Sign a report digest: 65 bytes r ‖ s ‖ v with v ∈ {0, 1}, always low-s (Keystone layout)."""
    r, s, v = _sign_digest(digest, private_key)
    if s > HALF_N:  # eth-keys already normalizes; keep the invariant explicit
        s, v = SECP256K1_N - s, 1 - v
    return r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([v])


def recover_report_signer(digest: bytes, signature: bytes) -> str:
    """The checksum address that signed ``digest``.

    Raises:
        SignatureError: on a wrong length, v not in {0, 1}, a high s, or no recovery.
    """
    if len(digest) != 32:
        raise SignatureError(f"digest must be 32 bytes, got {len(digest)}")
    return _recover(digest, *_split(signature, 0))


class Observation(BaseModel):
    """One node's value of one feed for one request."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    request_id: str = Field(min_length=1, max_length=128)
    feed: str = Field(min_length=1, max_length=32)
    value: int
    observed_at: int = Field(ge=0)
    node: Address

    def digest(self) -> bytes:
        """keccak256(domain ‖ canonical JSON of the observation)."""
        value, observed_at = self.value, self.observed_at
        if type(value) is not int or type(observed_at) is not int:  # noqa: E721 - bool is no int here
            return keccak(OBSERVATION_DOMAIN + canonical_json(self.model_dump(mode="json")))
        # the canonical JSON of these five fields written out (sorted keys, no spaces): every
        # signer checks 2f+1 of these per report, and model_dump + json.dumps cost ~4x this
        text = (
            f'{{"feed":{_json_str(self.feed)},"node":{_json_str(self.node)},'
            f'"observed_at":{observed_at},"request_id":{_json_str(self.request_id)},'
            f'"value":{value}}}'
        )
        return keccak(OBSERVATION_DOMAIN + text.encode("utf-8"))


class SignedObservation(BaseModel):
    """An observation and its node's EIP-191 signature (65 bytes, v ∈ {27, 28})."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    observation: Observation
    signature: HexBytes


def sign_observation(observation: Observation, private_key: bytes) -> SignedObservation:
    """Sign an observation with EIP-191 over its domain-separated digest."""
    r, s, v = _sign_digest(keccak(EIP191_PREFIX + observation.digest()), private_key)
    if s > HALF_N:  # both backends give low-s; keep the invariant explicit
        s, v = SECP256K1_N - s, 1 - v
    signature = r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([v + 27])
    return SignedObservation(observation=observation, signature=signature)


def recover_observation_signer(signed: SignedObservation) -> str:
    """The address that signed the observation.

    Raises:
        SignatureError: if the signature is malformed, high-s, or does not recover.
    """
    r, s, v = _split(signed.signature, 27)
    return _recover(keccak(EIP191_PREFIX + signed.observation.digest()), r, s, v)

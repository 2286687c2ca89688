"""The nodes' coincurve signer and raw-address recovery agree with verifier byte for byte."""

from __future__ import annotations

import time

import pytest
from eth_account import Account

from vouch.cre_adapters._signer import SECP256K1_N, Signer, address_bytes, observation_signer
from vouch.verifier import (
    Observation,
    SignatureError,
    SignedObservation,
    recover_observation_signer,
    recover_report_signer,
    sign_observation,
    sign_report,
)


def observation(address: str, value: int = 3_000 * 10**18) -> Observation:
    return Observation(
        request_id="r-1", feed="ETH/USD", value=value, observed_at=int(time.time()), node=address
    )


@pytest.mark.parametrize("seed", range(8))
def test_signatures_are_verifiers_byte_for_byte(seed: int) -> None:
    account = Account.from_key(bytes([seed + 1]) * 32)
    key = bytes(account.key)
    obs = observation(account.address, 10**18 + seed)
    assert Signer(key).observation(obs) == sign_observation(obs, key)
    digest = bytes([seed]) * 32
    assert Signer(key).report(digest) == sign_report(digest, key)
    assert recover_report_signer(digest, Signer(key).report(digest)) == account.address


def test_raw_recovery_names_the_same_signer_as_verifier() -> None:
    account = Account.create()
    signed = Signer(bytes(account.key)).observation(observation(account.address))
    assert observation_signer(signed) == address_bytes(recover_observation_signer(signed))


def _with_signature(signed: SignedObservation, signature: bytes) -> SignedObservation:
    return SignedObservation(observation=signed.observation, signature=signature)


def test_raw_recovery_refuses_what_verifier_refuses() -> None:
    account = Account.create()
    signed = Signer(bytes(account.key)).observation(observation(account.address))
    sig = bytes(signed.signature)
    s = int.from_bytes(sig[32:64], "big")
    high_s = sig[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - sig[64]])
    for bad, needle in (
        (sig[:64], "65 bytes"),
        (sig[:64] + b"\x01", "v must be 27 or 28"),
        (bytes(32) + sig[32:], "out of range"),
        (high_s, "high s"),
    ):
        forged = _with_signature(signed, bad)
        with pytest.raises(SignatureError, match=needle):
            observation_signer(forged)
        with pytest.raises(SignatureError):
            recover_observation_signer(forged)

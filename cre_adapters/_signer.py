"""A node's signing key held as a libsecp256k1 key: the same signatures as ``verifier``, faster.

``verifier.sign_observation`` goes through eth-account (about 180 us a
signature); a node signs once per answer, so it signs with coincurve directly
(about 25 us). RFC 6979 nonces and low-s normalisation are libsecp256k1's in
both paths, so the bytes are identical: ``tests/don/test_signer.py`` checks it.
"""

from __future__ import annotations

from coincurve import PrivateKey, PublicKey

from vouch.verifier import Observation, SignatureError, SignedObservation, keccak

EIP191_PREFIX = b"\x19Ethereum Signed Message:\n32"
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


class Signer:
    """Signs observations (EIP-191, v in {27, 28}) and report digests (Keystone, v in {0, 1})."""

    def __init__(self, private_key: bytes) -> None:
        self._key = PrivateKey(private_key)

    def _sign(self, digest: bytes) -> tuple[bytes, int]:
        signature = self._key.sign_recoverable(digest, hasher=None)
        return signature[:64], signature[64]

    def observation(self, observation: Observation) -> SignedObservation:
        """``verifier.sign_observation(observation, key)``, byte for byte."""
        rs, v = self._sign(keccak(EIP191_PREFIX + observation.digest()))
        return SignedObservation.model_construct(
            observation=observation, signature=rs + bytes([v + 27])
        )

    def report(self, digest: bytes) -> bytes:
        """``verifier.sign_report(digest, key)``, byte for byte."""
        rs, v = self._sign(digest)
        return rs + bytes([v])


def observation_signer(signed: SignedObservation) -> bytes:
    """The 20 raw bytes of the address that signed ``signed``.

    ``verifier.recover_observation_signer`` with the same rules (65 bytes,
    v in {27, 28}, 0 < r, s < n, low s only) minus the checksum formatting:
    a signer checking 2f+1 observations per report compares raw addresses.

    Raises:
        SignatureError: if the signature is malformed, high-s, or does not recover.
    """
    signature = bytes(signed.signature)
    if len(signature) != 65:
        raise SignatureError(f"signature must be 65 bytes, got {len(signature)}")
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    v = signature[64] - 27
    if v not in (0, 1):
        raise SignatureError(f"signature v must be 27 or 28, got {signature[64]}")
    if not 0 < r < SECP256K1_N or not 0 < s < SECP256K1_N:
        raise SignatureError("signature r or s is out of range")
    if s > SECP256K1_N // 2:
        raise SignatureError("signature has a high s value (malleable); only low-s is accepted")
    message = keccak(EIP191_PREFIX + signed.observation.digest())
    try:
        public = PublicKey.from_signature_and_message(
            signature[:64] + bytes([v]), message, hasher=None
        )
    except Exception as exc:  # noqa: BLE001 - coincurve raises plain exceptions
        raise SignatureError(f"signature does not recover: {exc}") from None
    return keccak(public.format(compressed=False)[1:])[-20:]


def address_bytes(address: str) -> bytes:
    """``0x``-hex address to its 20 raw bytes."""
    return bytes.fromhex(address[2:])


__all__ = ["Signer", "address_bytes", "observation_signer"]

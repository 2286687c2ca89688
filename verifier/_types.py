"""Pydantic field types: bytes that travel as 0x-hex, checksum addresses."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

from ._canonical import keccak

_HEX = frozenset("0123456789abcdef")


def to_checksum(address: str | bytes) -> str:
    """EIP-55 checksum form of a 20-byte address given as bytes or 0x-hex.

    Raises:
        ValueError: if ``address`` is not 20 bytes / 40 hex digits, or its mixed case is a wrong checksum.
    """
    if isinstance(address, str):
        return _checksum_text(address)  # the same few DON addresses arrive in every message
    return _checksum(address)


@lru_cache(maxsize=4096)
def _checksum_text(address: str) -> str:
    return _checksum(address)


def _checksum(address: str | bytes) -> str:
    if isinstance(address, bytes | bytearray):
        if len(address) != 20:
            raise ValueError(f"an address is 20 bytes, got {len(address)}")
        lower = address.hex()
    else:
        text = address[2:] if address[:2] in ("0x", "0X") else address
        lower = text.lower()
        if len(lower) != 40 or not _HEX.issuperset(lower):
            raise ValueError(f"{address!r} is not an Ethereum address")
    digest = keccak(lower.encode("ascii")).hex()
    checksummed = "0x" + "".join(
        c.upper() if d in "89abcdef" else c for c, d in zip(lower, digest[:40], strict=True)
    )
    if (
        isinstance(address, str)
        and text != lower
        and text != text.upper()
        and "0x" + text != checksummed
    ):
        raise ValueError(f"{address!r} has a wrong EIP-55 checksum")
    return checksummed


def _to_bytes(value: Any) -> Any:
    if isinstance(value, str):
        text = value[2:] if value.startswith(("0x", "0X")) else value
        try:
            return bytes.fromhex(text)
        except ValueError:
            raise ValueError(f"{value[:20]!r} is not hex") from None
    return value


def _to_address(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not an Ethereum address")
    return to_checksum(value)


HexBytes = Annotated[
    bytes,
    BeforeValidator(_to_bytes),
    PlainSerializer(lambda b: "0x" + b.hex(), return_type=str, when_used="json"),
]
Address = Annotated[str, BeforeValidator(_to_address)]

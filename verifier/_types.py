"""Pydantic field types: bytes that travel as 0x-hex, checksum addresses."""

from __future__ import annotations

from typing import Annotated, Any

from eth_utils import is_address, to_checksum_address
from pydantic import BeforeValidator, PlainSerializer


def _to_bytes(value: Any) -> Any:
    if isinstance(value, str):
        text = value[2:] if value.startswith(("0x", "0X")) else value
        try:
            return bytes.fromhex(text)
        except ValueError:
            raise ValueError(f"{value[:20]!r} is not hex") from None
    return value


def _to_address(value: Any) -> str:
    if not isinstance(value, str) or not is_address(value):
        raise ValueError(f"{value!r} is not an Ethereum address")
    return str(to_checksum_address(value))


HexBytes = Annotated[
    bytes,
    BeforeValidator(_to_bytes),
    PlainSerializer(lambda b: "0x" + b.hex(), return_type=str, when_used="json"),
]
Address = Annotated[str, BeforeValidator(_to_address)]

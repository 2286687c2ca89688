"""Canonical JSON and keccak: the two primitives every hash in vouch is built from."""

from __future__ import annotations

import json
import json.encoder
from typing import Any

try:  # safe-pysha3 is ~7x faster per call than eth-hash's pycryptodome backend
    from sha3 import keccak_256 as _keccak_256

    def keccak(data: bytes) -> bytes:
        """keccak256 of ``data`` (32 bytes)."""
        return _keccak_256(data).digest()  # type: ignore[no-any-return]

except ImportError:  # pragma: no cover - exercised only without safe-pysha3
    from eth_hash.auto import keccak as _keccak

    def keccak(data: bytes) -> bytes:
        """keccak256 of ``data`` (32 bytes)."""
        return bytes(_keccak(data))


def _reject(value: Any) -> Any:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    raise TypeError(f"{type(value).__name__} is not canonical JSON")


def _no_floats(value: Any) -> None:
    if isinstance(value, float):
        raise TypeError(
            f"float {value!r} is not canonical JSON: use an integer with explicit decimals"
        )
    if isinstance(value, dict):
        for item in value.values():
            _no_floats(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _no_floats(item)


def _no_float(text: str) -> Any:
    raise ValueError(f"float {text} is not canonical JSON: use an integer with explicit decimals")


_DECODER = json.JSONDecoder(parse_float=_no_float, parse_constant=_no_float)
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
_scan = _DECODER.scan_once  # type: ignore[attr-defined]
# The C encoder ``_ENCODER.encode`` builds on every call, built once: no circular-reference
# markers (a parsed JSON value has no cycles), same separators, key order and string escaping.
_c_make_encoder: Any = getattr(json.encoder, "c_make_encoder", None)
_encode_parsed: Any = (
    _c_make_encoder(
        None, _ENCODER.default, json.encoder.encode_basestring, None, ":", ",", True, False, True
    )
    if _c_make_encoder is not None
    else None
)


def parse_json(text: str) -> Any:
    """Parse JSON that must be canonical-able: a float is rejected with ValueError."""
    try:  # the common case without the decoder's Python wrapper: a value filling all of text
        value, end = _scan(text, 0)
    except (StopIteration, ValueError):
        end = -1
    if end == len(text):
        return value
    return _DECODER.decode(text)  # the authority: leading/trailing whitespace, extra data, errors


def canonical_text(value: Any) -> str:
    """canonical_json of a value from ``parse_json`` as text (known float-free: no second scan)."""
    if _encode_parsed is None or isinstance(value, str):  # pragma: no cover - no C encoder
        return _ENCODER.encode(value)
    return "".join(_encode_parsed(value, 0))


def dump_parsed(value: Any) -> bytes:
    """canonical_json of a value from ``parse_json`` (known float-free: no second scan)."""
    return canonical_text(value).encode("utf-8")


def parse_canonical(text: str) -> tuple[Any, str | None]:
    """``text`` parsed, and the canonical JSON of its value as text (None, None if it does not parse).

    ``parse_json`` then ``canonical_text``, inlined: the audit calls this once per entry.
    """
    try:
        value, end = _scan(text, 0)
    except (StopIteration, ValueError):
        end = -1
    if end != len(text):
        try:
            value = _DECODER.decode(text)
        except ValueError:
            return None, None
    if _encode_parsed is None or isinstance(value, str):  # pragma: no cover - no C encoder
        return value, _ENCODER.encode(value)
    return value, "".join(_encode_parsed(value, 0))


def canonical_json(value: Any) -> bytes:
    """Serialize ``value`` canonically: sorted keys, no spaces, UTF-8, bytes as 0x-hex, no floats.

    Raises:
        TypeError: on a float or a value JSON cannot represent.
    """
    _no_floats(value)
    text = json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_reject
    )
    return text.encode("utf-8")

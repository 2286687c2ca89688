"""Canonical JSON and keccak: the two primitives every hash in vouch is built from."""

from __future__ import annotations

import json
import json.encoder
import re
from typing import Any, Final

_loads: Any
_dumps: Any
try:  # orjson parses and re-dumps ~4x faster; every answer it gives is checked below
    from orjson import OPT_SORT_KEYS as _SORT
    from orjson import dumps as _dumps
    from orjson import loads as _loads
except ImportError:  # pragma: no cover - exercised only without orjson
    _loads = _dumps = None

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


# how canonical JSON writes a str (ensure_ascii=False): the encoder ``canonical_text`` uses
encode_str: Any = json.encoder.encode_basestring
_DECODER = json.JSONDecoder(parse_float=_no_float, parse_constant=_no_float)
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
_scan = _DECODER.scan_once  # type: ignore[attr-defined]
# The C encoder ``_ENCODER.encode`` builds on every call, built once: no circular-reference
# markers (a parsed JSON value has no cycles), same separators, key order and string escaping.
_c_make_encoder: Any = getattr(json.encoder, "c_make_encoder", None)
_encode_parsed: Any = (
    _c_make_encoder(None, _ENCODER.default, encode_str, None, ":", ",", True, False, True)
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


MISS: Final[Any] = object()  # parse_fast's "ask parse_canonical"


def parse_fast(data: bytes) -> Any:
    """The value of ``data`` (UTF-8 JSON text) when that text is already canonical, else ``MISS``.

    orjson's parse and sorted compact dump, trusted only when the dump is the
    input byte for byte and carries no float: then the input holds only what
    orjson and json read alike (ints within 64 bits, strings, bools, null,
    arrays, objects with unique sorted keys) and both write it alike (same
    escapes, keys in code point order), so the value and the canonical text are
    exactly ``parse_canonical``'s. Anything else is a ``MISS``, never an
    error: text that does not parse, is not canonical, holds a float or an
    integer beyond 64 bits (orjson reads those as floats, which then dump
    with a '.', or an exponent with its sign, unlike the digits they came from).
    """
    if _loads is None:  # pragma: no cover - no orjson
        return MISS
    try:
        value = _loads(data)
        if _dumps(value, option=_SORT) != data:
            return MISS
    except (ValueError, TypeError):  # orjson.JSONDecodeError, JSONEncodeError (deep nesting)
        return MISS
    # a float (one byte at a time: memchr, where a two-byte search crawls over hex digits)
    if b"." in data or b"+" in data or (b"-" in data and b"e-" in data):
        return MISS
    return value


def parse_canonical(text: str) -> tuple[Any, str | None]:
    """``text`` parsed, and the canonical JSON of its value as text (None, None if it does not parse).

    ``parse_fast`` when it can answer (the canonical text is then ``text`` itself),
    else ``parse_json`` then ``canonical_text``, inlined.
    """
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: only json reads that
        pass
    else:
        value = parse_fast(data)
        if value is not MISS:
            return value, text
    return parse_exact(text)


MAX_DEPTH: Final = 64  # no vouch payload nests deeper; json's parser would recurse past the C stack
MAX_CHARS: Final = 16 * 2**20  # nor is any this long
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKETS = re.compile(r"[\[\]{}]")


def shape_problem(text: str) -> str | None:
    """Why ``text`` is refused before parsing (too long, nested too deep), or None.

    json's parser recurses per nesting level and py_ecc (imported by web3) lifts
    the recursion limit to 100,000, so a payload nested 80,000 deep would
    overflow the C stack: a crash, not an error. This is checked first.
    """
    if len(text) > MAX_CHARS:
        return f"{len(text):,} characters, over the {MAX_CHARS:,} a payload may have"
    if text.count("[") + text.count("{") <= MAX_DEPTH:  # cannot nest deeper: no scan
        return None
    depth = deepest = 0
    for bracket in _BRACKETS.findall(_STRING.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            return f"nested deeper than {MAX_DEPTH} levels"
    return None


def parse_exact(text: str) -> tuple[Any, str | None]:
    """``parse_canonical`` with json alone: the authority ``parse_fast`` agrees with.

    A text ``shape_problem`` refuses does not parse: (None, None).
    """
    if shape_problem(text) is not None:
        return None, None
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

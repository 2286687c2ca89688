"""Reading the log: each row parsed once, its hash and canonical form checked; report fields."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any, NamedTuple, Protocol

from .. import _batch
from .._canonical import (
    MISS,
    dump_parsed,
    encode_str,
    keccak,
    parse_exact,
    parse_fast,
    shape_problem,
)
from .._errors import EncodingError
from .._log import GENESIS, content_problem, entry_digest
from .._report import METADATA_LENGTH
from .._signing import OBSERVATION_DOMAIN
from ._types import _EIP191_PREFIX, Row


class _Entry(NamedTuple):
    """One row as the audit reads it: the payload parsed once, plain fields (no model)."""

    seq: int
    execution_id: str
    kind: str
    payload: dict[str, Any]
    created_at: int
    entry_hash: str


# _Entry(...) without the Python frame of the generated __new__ (one tuple per entry)
_new_entry: Callable[[tuple[Any, ...]], _Entry] = partial(tuple.__new__, _Entry)
_EXACT_RUN = 32  # a kind whose payload orjson could not vouch for: go straight to json this often


class _HasPayload(Protocol):
    @property
    def payload(self) -> dict[str, Any]: ...


def _read(rows: list[Row]) -> tuple[list[_Entry], dict[int, str]]:
    """The entries of ``rows``, and each broken entry's content problem (hash, canonical form).

    The same checks as ``LogEntry.compute_hash`` and ``is_canonical``, with the
    canonical text computed once per entry for both: by ``parse_fast`` where it
    vouches for the stored text (the canonical text is then the text itself,
    hashed as the bytes it was checked as), else by ``parse_exact``. A kind
    whose payloads carry what orjson cannot read (integers past 64 bits, as
    most observations do) skips ``parse_fast`` for a while after each miss.
    """
    entries: list[_Entry] = []
    broken = {}
    append, new_entry, fast, exact, miss = entries.append, _new_entry, parse_fast, parse_exact, MISS
    digest_of, fromhex = entry_digest, bytes.fromhex
    skip: dict[str, int] = {}
    last_hash, last_digest = None, b""  # the entry before, when its stored hash held
    ids: dict[str, str] = {}  # one str per execution: findings pickle (and unpickle) it once
    for row in rows:
        seq, execution_id, kind, text = int(row[0]), str(row[1]), str(row[2]), str(row[3])
        prev_hash, entry_hash = str(row[5]), str(row[6])
        execution_id = ids.setdefault(execution_id, execution_id)
        try:
            created_at = int(row[4])
        except (TypeError, ValueError):  # text in an integer column: an edit, not a crash
            broken[seq] = f"created_at {str(row[4])[:24]!r} is not an integer (edited)"
            append(new_entry((seq, execution_id, kind, {}, -1, entry_hash)))
            last_hash = None
            continue
        value = miss
        if not skip.get(kind):
            try:
                data = text.encode("utf-8")
            except UnicodeEncodeError:
                pass
            else:
                value = fast(data)
                if value is miss:
                    skip[kind] = _EXACT_RUN
        else:
            skip[kind] -= 1
        if value is miss:
            shape = shape_problem(text)
            if shape is not None:  # refused before json's recursive parser sees it
                broken[seq] = f"payload refused unparsed: {shape} (not a vouch entry)"
                append(new_entry((seq, execution_id, kind, {}, created_at, entry_hash)))
                last_hash = None
                continue
            value, canonical = exact(text)
            encoded = None
            if canonical == text:
                try:  # noqa: SIM105 - per entry: a plain try is cheaper than contextlib.suppress
                    encoded = text.encode("utf-8")
                except UnicodeEncodeError:  # a lone surrogate: hashing it fails as it always did
                    pass
            if encoded is None:  # unreadable or not canonical: content_problem says which
                problem = content_problem(
                    seq, execution_id, kind, text, canonical, created_at, prev_hash, entry_hash
                )
                if problem:
                    broken[seq] = problem
                last_hash = None
                payload = value if isinstance(value, dict) else {}
                append(new_entry((seq, execution_id, kind, payload, created_at, entry_hash)))
                continue
            data = encoded
        # canonical: only the hash to check, over the bytes of the text
        try:
            prev = last_digest if prev_hash == last_hash else fromhex(prev_hash[2:])
        except ValueError:
            broken[seq] = f"prev_hash {prev_hash[:20]!r} is not a 0x-hex hash (edited)"
            last_hash = None
        else:
            digest = digest_of(prev, seq, execution_id, kind, data, created_at)
            if "0x" + digest.hex() == entry_hash:
                last_hash, last_digest = entry_hash, digest
            else:
                broken[seq] = "content does not match its hash (edited)"
                last_hash = None
        payload = value if isinstance(value, dict) else {}
        append(new_entry((seq, execution_id, kind, payload, created_at, entry_hash)))
    return entries, broken


def _submitted(entries: list[_Entry]) -> list[str]:
    """The transaction hash of every submission entry that names one."""
    return [
        tx_hash
        for e in entries
        if e.kind == "submission"
        and isinstance(tx_hash := e.payload.get("tx_hash"), str)
        and tx_hash
    ]


def _observation_job(signed: dict[str, Any]) -> tuple[str, _batch.Job]:
    """(claimed node, recovery job) of one signed observation of an observations entry."""
    observation = signed["observation"]
    digest = keccak(OBSERVATION_DOMAIN + _observation_json(observation))
    message = keccak(_EIP191_PREFIX + digest)
    return str(observation["node"]), (message, _bytes(signed["signature"]), 27)


_OBSERVATION_KEYS = frozenset(("feed", "node", "observed_at", "request_id", "value"))


def _observation_json(observation: Any) -> bytes:
    """``dump_parsed(observation)``: an observation as nodes write it, spelled out directly.

    Its five keys in sorted order, strings escaped by the encoder ``dump_parsed``
    uses and plain ints as ``int.__repr__`` writes them; any other shape is
    ``dump_parsed``'s.
    """
    if type(observation) is dict and observation.keys() == _OBSERVATION_KEYS:
        feed, node, at = observation["feed"], observation["node"], observation["observed_at"]
        request_id, value = observation["request_id"], observation["value"]
        if (
            type(feed) is str
            and type(node) is str
            and type(request_id) is str
            and type(at) is int
            and type(value) is int
        ):
            text = (
                f'{{"feed":{encode_str(feed)},"node":{encode_str(node)},"observed_at":{at},'
                f'"request_id":{encode_str(request_id)},"value":{value}}}'
            )
            return text.encode("utf-8")
    return dump_parsed(observation)


class _ReportFields(NamedTuple):
    """The fields of a report the audit compares, sliced straight from the bytes.

    The bytes are authenticated by the signatures; this only reads them (fast),
    rejecting anything that is not a well-formed Keystone report body.
    """

    don_id: int
    config_version: int
    chain_id: int
    receiver: bytes
    action_hash: bytes
    payload: bytes

    @classmethod
    def parse(cls, raw: bytes) -> _ReportFields:
        body = raw[METADATA_LENGTH:]
        if len(raw) < METADATA_LENGTH or len(body) < 5 * 32 or body[32:44] != bytes(12):
            raise EncodingError(f"report of {len(raw)} bytes is not a vouch report")
        offset = int.from_bytes(body[128:160], "big")
        length = (
            int.from_bytes(body[offset : offset + 32], "big") if offset + 32 <= len(body) else -1
        )
        payload = body[offset + 32 : offset + 32 + length]
        if length < 0 or len(payload) != length:
            raise EncodingError("report body's payload is cut short")
        return cls(
            int.from_bytes(raw[37:41], "big"),  # don_id
            int.from_bytes(raw[41:45], "big"),  # config_version
            int.from_bytes(body[0:32], "big"),  # chain_id
            body[44:64],  # receiver
            body[96:128],  # action_hash
            payload,
        )


def _bytes(text: str) -> bytes:
    return bytes.fromhex(text[2:] if text.startswith("0x") else text)


def _linkage(
    heads: Iterable[tuple[int, Any, Any, Any]], prev_seq: int = 0, prev_hash: Any = GENESIS
) -> dict[int, str]:
    """Linkage problems (gaps, prev_hash mismatches) by seq, from the columns that carry them.

    ``heads``: (seq, execution id, prev_hash, entry_hash) in seq order, after
    the row ``prev_seq`` whose hash is ``prev_hash`` (by default, the genesis).
    """
    problems: dict[int, list[str]] = defaultdict(list)
    for seq, _, prev, entry_hash in heads:
        if seq != prev_seq + 1:
            problems[seq].append(f"entries #{prev_seq + 1}..#{seq - 1} are missing (deleted?)")
        if prev != prev_hash:
            problems[seq].append(
                "prev_hash does not match the entry before it (deleted, inserted or reordered)"
            )
        prev_seq, prev_hash = seq, entry_hash
    return {seq: "; ".join(p) for seq, p in problems.items()}

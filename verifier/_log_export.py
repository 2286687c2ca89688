"""Reading a log export (JSON Lines): every line checked before anything is written.

``read_export`` is what ``AttestationLog.import_jsonl`` verifies an export with: each
line one entry, no line longer than ``MAX_EXPORT_LINE``, no payload nested deeper than
``MAX_PAYLOAD_DEPTH`` (both refused before parsing), seqs contiguous from 1, each link
and each content hash intact.
"""

from __future__ import annotations

import re
from pathlib import Path

from ._errors import LogIntegrityError
from ._log import GENESIS, LogEntry

MAX_EXPORT_LINE = 16 * 1024 * 1024
"""Longest line ``import_jsonl`` reads (bytes); a longer one is refused, never parsed."""
MAX_PAYLOAD_DEPTH = 64
"""Deepest JSON nesting of an imported payload; deeper is refused before it is parsed."""

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKETS = re.compile(r"[\[\]{}]")


def _too_deep(text: str, limit: int) -> bool:
    """True when JSON ``text`` nests more than ``limit`` arrays/objects (strings skipped)."""
    if text.count("[") + text.count("{") <= limit:  # the common case: cannot be that deep
        return False
    depth = 0
    for match in _BRACKETS.finditer(_STRING.sub("", text)):
        if match.group() in "[{":
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


_SHOWN_PROBLEMS = 10


def read_export(source: Path | str) -> list[LogEntry]:
    """Every entry of a JSON Lines export, after checking it is an intact log.

    Each non-blank line must be one entry (strict types, at most
    ``MAX_EXPORT_LINE`` bytes, payload nested at most ``MAX_PAYLOAD_DEPTH``
    deep); seqs run 1, 2, 3... with no repeat or gap; each ``prev_hash`` is the
    hash of the entry before; each ``entry_hash`` recomputes from its content
    and the payload text is canonical.

    Raises:
        LogIntegrityError: naming each bad line (the first ten) and why; or the
            file cannot be read.
    """
    problems: list[str] = []
    entries: list[LogEntry] = []
    lines_of: dict[int, tuple[int, LogEntry]] = {}  # seq -> the line it was read from, entry
    prev_seq, prev_hash, prev_line = 0, GENESIS, 0
    try:
        handle = open(source, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise LogIntegrityError(f"cannot read the export {source}: {exc.strerror}") from None
    with handle:
        number = 0
        while True:
            raw = handle.readline(MAX_EXPORT_LINE + 1)
            if not raw:
                break
            number += 1
            if len(raw) > MAX_EXPORT_LINE:
                problems.append(f"line {number}: longer than {MAX_EXPORT_LINE} bytes (refused)")
                while raw and not raw.endswith(b"\n"):  # skip the rest of the line
                    raw = handle.readline(MAX_EXPORT_LINE + 1)
                continue
            if not raw.strip():
                continue
            entry, problem = _parse_line(raw)
            if entry is None:
                problems.append(f"line {number}: {problem}")
                continue
            seq = entry.seq
            if seq in lines_of:
                first, earlier = lines_of[seq]
                same = earlier == entry
                problems.append(
                    f"line {number}: duplicated line (entry #{seq} again, as on line {first})"
                    if same
                    else f"line {number}: a second entry #{seq} (the first is on line {first})"
                )
                continue
            lines_of[seq] = number, entry
            if seq != prev_seq + 1:
                problems.append(
                    f"line {number}: seq gap: entry #{seq} follows #{prev_seq}"
                    + (f" (line {prev_line})" if prev_line else "")
                    + (
                        f"; entries #{prev_seq + 1}..#{seq - 1} are missing"
                        if seq > prev_seq + 1
                        else "; lines are out of order"
                    )
                )
            elif entry.prev_hash != prev_hash:
                before = f"entry #{prev_seq} (line {prev_line})" if prev_line else "the genesis"
                problems.append(
                    f"line {number}: broken link: entry #{seq}'s prev_hash is not the hash of "
                    f"{before}: an entry before it was edited and re-hashed, removed or inserted"
                )
            content = _content_of_line(entry)
            if content:
                problems.append(f"line {number}: entry #{seq}: {content}")
            entries.append(entry)
            prev_seq, prev_hash, prev_line = seq, entry.entry_hash, number
            if len(problems) > _SHOWN_PROBLEMS:
                break
    if problems:
        shown = "\n  ".join(problems[:_SHOWN_PROBLEMS])
        more = " (and more)" if len(problems) > _SHOWN_PROBLEMS else ""
        raise LogIntegrityError(
            f"{source} is not an intact log export; nothing was written:\n  {shown}{more}"
        )
    return entries


def _parse_line(raw: bytes) -> tuple[LogEntry | None, str]:
    """The entry on one export line, or None and why it is not one."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 text (byte {exc.start})"
    if _too_deep(text, MAX_PAYLOAD_DEPTH + 2):
        return None, f"nested deeper than {MAX_PAYLOAD_DEPTH} levels (refused before parsing)"
    try:
        return LogEntry.model_validate_json(text, strict=True), ""
    except ValueError as exc:
        errors = getattr(exc, "errors", None)
        first = errors()[0] if callable(errors) else None
        if first is not None and first.get("type", "").startswith("json"):
            return None, f"bad JSON: {first.get('msg', exc)}"
        if first is not None:
            where = ".".join(str(p) for p in first.get("loc", ())) or "the line"
            return None, f"not a log entry: {where}: {first.get('msg', exc)}"
        return None, f"not a log entry: {exc}"


def _content_of_line(entry: LogEntry) -> str:
    """Why one imported entry's content does not hold ('' if it does)."""
    if _too_deep(entry.payload_text, MAX_PAYLOAD_DEPTH):
        return f"payload nested deeper than {MAX_PAYLOAD_DEPTH} levels (refused before parsing)"
    if not re.fullmatch(r"0x[0-9a-f]{64}", entry.prev_hash) or not re.fullmatch(
        r"0x[0-9a-f]{64}", entry.entry_hash
    ):
        return "prev_hash and entry_hash must be 0x and 64 lowercase hex digits"
    if entry.canonical_payload is None:
        return "hash mismatch: payload_text is not JSON (edited)"
    if entry.compute_hash() != entry.entry_hash:
        return "hash mismatch: its content does not recompute to its entry_hash (edited)"
    if not entry.is_canonical():
        return "payload_text is not canonical JSON (edited)"
    return ""

"""The operator as attacker: edit a copy of a log, then re-hash the whole chain as they would.

After ``rehashed`` the hash chain is whole again, so only the checks against the
pinned deployment, the chain and the entry grammar can catch the edit.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vouch.verifier import canonical_json, chain_hash

Row = list[Any]  # seq, execution_id, kind, payload (dict), created_at


def rows_of(path: Path) -> list[Row]:
    with sqlite3.connect(path) as db:
        return [
            [seq, ex, kind, json.loads(payload), created]
            for seq, ex, kind, payload, created in db.execute(
                "SELECT seq, execution_id, kind, payload, created_at FROM entries ORDER BY seq"
            )
        ]


def rehashed(path: Path, tmp_path: Path, edit: Callable[[list[Row]], list[Row]]) -> Path:
    """A copy edited by ``edit``, renumbered (references to seqs follow) and re-hashed end to end."""
    copy = tmp_path / f"attack{len(list(tmp_path.iterdir()))}.db"
    shutil.copy(path, copy)
    rows = edit(rows_of(path))
    renumber = {row[0]: n for n, row in enumerate(rows, start=1)}
    with sqlite3.connect(copy) as db:
        db.execute("DELETE FROM entries")
        prev = "0x" + "00" * 32
        for seq, (old, execution, kind, payload, created) in enumerate(rows, start=1):
            if "observations_seq" in payload:  # the attacker keeps references consistent
                payload["observations_seq"] = renumber.get(payload["observations_seq"], 0)
            del old
            entry_hash = chain_hash(prev, seq, execution, kind, payload, created)
            db.execute(
                "INSERT INTO entries VALUES (?, ?, ?, ?, ?, ?, ?)",
                (seq, execution, kind, canonical_json(payload).decode(), created, prev, entry_hash),
            )
            prev = entry_hash
    return copy

"""Automatic anchoring: every ``anchor_every`` new entries the settlement flow anchors the log onchain.

Real anvil and DON (the session's), real AttestationAnchor; `vouch audit` then
checks every anchored range, and a log whose newest entries were dropped (its
hash chain still intact) is caught by the anchor alone.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from verifier import AttestationLog, Web3ChainReader, leaf, merkle_root
from vouch import ChainSubmitter

from ..conftest import PASSWORD
from .helpers import proposal, workflow

pytestmark = [pytest.mark.integration, pytest.mark.slow]
EVERY = 7  # a settlement logs 5 entries: the 2nd and 4th settlements anchor, the others wait


def vouch_audit(env: Any, log: Path, *args: str) -> subprocess.CompletedProcess[str]:
    environ = {
        **os.environ,
        "VOUCH_HOME": str(env.settings.home),
        "VOUCH_KEYSTORE_PASSWORD": PASSWORD,
        "VOUCH_APPROVAL_THRESHOLD": "0",
        "COLUMNS": "200",
    }
    return subprocess.run(
        [sys.executable, "-m", "vouch", "audit", "--log", str(log), *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_settlement_flow_anchors_every_n_entries_and_the_audit_holds_it_to_them(
    evm: Any, tmp_path: Path
) -> None:
    anchor = evm.contract("AttestationAnchor")
    assert anchor.functions.anchoredUpTo().call() == 0  # type: ignore[attr-defined]
    log = AttestationLog(tmp_path / "attestations.db")
    events: list[dict[str, Any]] = []
    sub = ChainSubmitter(
        workflow(evm, log),
        evm.writer,
        evm.artifacts,
        evm.deployment,
        log,
        lambda kind, data: events.append(data) if kind == "anchored" else None,
        anchor_every=EVERY,
    )
    expected, lengths, upto = [], [], 0
    for _ in range(4):
        asyncio.run(sub.submit(proposal()))
        length = len(list(log.entries()))
        lengths.append(length)
        if length - upto >= EVERY:  # the rule: anchor once N entries wait
            expected.append((upto + 1, length))
            upto = length
    assert lengths == [5, 10, 15, 20]
    assert expected == [(1, 10), (11, 20)]
    assert [(e["from_seq"], e["to_seq"]) for e in events] == expected

    entries = {e.seq: e for e in log.entries()}
    onchain = Web3ChainReader(evm.w3).anchors(evm.deployment.address("AttestationAnchor"))
    assert [(r.index, r.from_seq, r.to_seq) for r in onchain] == [(0, 1, 10), (1, 11, 20)]
    for record in onchain:
        span = [entries[s] for s in range(record.from_seq, record.to_seq + 1)]
        root = merkle_root([leaf(e.seq, bytes.fromhex(e.entry_hash[2:])) for e in span])
        assert record.root == "0x" + root.hex() and record.head_hash == span[-1].entry_hash
    assert anchor.functions.anchoredUpTo().call() == 20  # type: ignore[attr-defined]

    clean = vouch_audit(evm, log.path, "--json")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    anchored = [r for r in json.loads(clean.stdout)["results"] if r["check"] == "anchored"]
    assert [r["status"] for r in anchored] == ["ok"] * 20
    assert {r["detail"] for r in anchored} == {"anchor #0", "anchor #1"}

    # drop the newest settlement: the hash chain of what is left is intact, the anchor is not
    truncated = tmp_path / "truncated.db"
    with sqlite3.connect(log.path) as source, sqlite3.connect(truncated) as copy:
        source.backup(copy)
        copy.execute("DELETE FROM entries WHERE seq > 15")
    result = vouch_audit(evm, truncated)
    assert result.returncode == 1, result.stdout
    out = result.stdout.replace("\n", "")
    assert "entries #16..#20 were anchored onchain but are missing from the log" in out

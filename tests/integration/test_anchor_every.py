"""Automatic anchoring: once ``anchor_every`` entries wait, or the oldest is ``anchor_seconds`` old.

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
import time
from pathlib import Path
from typing import Any

import pytest

from vouch import ChainSubmitter
from vouch._anchor import AnchorPolicy, anchor_everything
from vouch.verifier import AttestationLog, Web3ChainReader, leaf, merkle_root
from vouch.verifier._log import unanchored_tail

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
        check=False,
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


class Clock:
    """A clock the test moves by hand (unix seconds)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def test_the_settlement_flow_anchors_by_time_when_fewer_than_n_entries_wait(
    evm: Any, tmp_path: Path
) -> None:
    anchor = evm.contract("AttestationAnchor")
    log = AttestationLog(tmp_path / "attestations.db")
    events: list[dict[str, Any]] = []
    clock = Clock()
    policy = AnchorPolicy(every=1_000, seconds=60, clock=clock)
    sub = ChainSubmitter(
        workflow(evm, log),
        evm.writer,
        evm.artifacts,
        evm.deployment,
        log,
        lambda kind, data: events.append(data) if kind == "anchored" else None,
        policy,
    )
    asyncio.run(sub.submit(proposal()))  # 5 entries, seconds old: neither N nor T reached
    assert events == [] and anchor.functions.anchoredUpTo().call() == 0  # type: ignore[attr-defined]
    clock.now = time.time() + 61  # the oldest waiting entry is now older than T (however long
    # the first settlement took: its escrow transactions come before its first entry)
    asyncio.run(sub.submit(proposal()))
    assert [(e["from_seq"], e["to_seq"]) for e in events] == [(1, 10)]
    assert anchor.functions.anchoredUpTo().call() == 10  # type: ignore[attr-defined]
    reader = Web3ChainReader(evm.w3)
    tail = unanchored_tail(log, reader.anchors(evm.deployment.address("AttestationAnchor")))
    assert tail.count == 0 and tail.anchored_up_to == 10
    clock.now = time.time()  # back to now: the next entries are seconds old
    asyncio.run(sub.submit(proposal()))  # fresh entries again: they wait
    tail = unanchored_tail(log, reader.anchors(evm.deployment.address("AttestationAnchor")))
    assert (tail.count, tail.first_seq, tail.last_seq) == (5, 11, 15)
    assert len(events) == 1


def test_maybe_anchor_does_nothing_when_another_writer_anchored_first(
    evm: Any, tmp_path: Path
) -> None:
    log = AttestationLog(tmp_path / "attestations.db")
    for i in range(3):
        log.append("0x" + "cd" * 32, "note", {"i": i})
    due = AnchorPolicy(every=1)
    assert anchor_everything(log, evm.writer, evm.artifacts, evm.deployment) is not None
    assert due.maybe_anchor(log, evm.writer, evm.artifacts, evm.deployment) is None
    log.append("0x" + "cd" * 32, "note", {"i": 3})
    result = due.maybe_anchor(log, evm.writer, evm.artifacts, evm.deployment)
    assert result is not None and (result.from_seq, result.to_seq) == (4, 4)


MODULE = """
from vouch.cre_adapters.workflow import Runtime, Workflow, interval, median

workflow = Workflow("anchored")


@workflow.handler(interval(1))
def tick(rt: Runtime, event: dict) -> dict:
    return rt.http.fetch(
        "URL/price",
        parse=lambda r: {"price": r.json()["price"]},
        aggregate={"price": median()},
    )
"""


def test_a_workflow_run_anchors_the_home_log_by_the_policy_and_down_has_nothing_left(
    evm: Any, tmp_path: Path
) -> None:
    """`vouch workflow run MODULE` (the home's log) anchors after each execution by time."""
    from tests.workflows.helpers import http_server, price

    from ..conftest import copy_cache
    from .helpers import vouch_cli

    home = tmp_path / "home"
    copy_cache(evm.settings.home / "cache", home)
    environ = {
        **os.environ,
        "VOUCH_HOME": str(home),
        "VOUCH_RPC_URL": evm.chain.url,
        "VOUCH_KEYSTORE_PASSWORD": PASSWORD,
        "VOUCH_ANCHOR_EVERY": "1000",  # never by count here:
        "VOUCH_ANCHOR_SECONDS": "0.001",  # by time, at the end of each round
        "COLUMNS": "200",
    }
    module = tmp_path / "anchored.py"
    try:
        with http_server(lambda seen, i: (200, price(3000 * 10**18), 0)) as server:
            module.write_text(MODULE.replace("URL", server.url))
            result = vouch_cli(
                environ, "workflow", "run", str(module), "--max-firings", "2", timeout=240
            )
        assert result.returncode == 0, result.stdout + result.stderr
        anchored = [line for line in result.stdout.splitlines() if line.startswith("anchored:")]
        assert len(anchored) == 2, result.stdout
        log = AttestationLog(home / "attestations.db", readonly=True)
        manifest = json.loads((home / "deployments" / "31337.json").read_text())
        records = Web3ChainReader(evm.w3).anchors(manifest["contracts"]["AttestationAnchor"])
        assert [r.to_seq for r in records][-1] == log.last_seq()
        assert unanchored_tail(log, records).count == 0
    finally:
        down = vouch_cli(environ, "down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert "log: every entry already anchored" in down.stdout


def test_a_worker_whose_key_does_not_own_the_anchor_settles_and_leaves_anchoring_to_the_owner(
    evm: Any, tmp_path: Path
) -> None:
    """One key per worker (docs/deploy.md): a worker sending from its own key is not the
    AttestationAnchor's owner. Its anchor transaction would revert (OwnableUnauthorizedAccount)
    and take the settle step down with it; instead it settles, says why it did not anchor,
    and the owner anchors the waiting entries later."""
    from eth_account import Account

    from vouch.cre_adapters.evm import ChainWriter

    anchor = evm.contract("AttestationAnchor")
    own = Account.create()
    evm.w3.eth.wait_for_transaction_receipt(
        evm.w3.eth.send_transaction(
            {"from": evm.w3.eth.accounts[0], "to": own.address, "value": 10**20}
        )
    )
    worker = ChainWriter(evm.w3, bytes(own.key), evm.writer.decoder)
    log = AttestationLog(tmp_path / "attestations.db")
    events: list[tuple[str, dict[str, Any]]] = []
    sub = ChainSubmitter(
        workflow(evm, log),
        worker,
        evm.artifacts,
        evm.deployment,
        log,
        lambda kind, data: events.append((kind, data)),
        anchor_every=3,
    )
    outcome = asyncio.run(sub.submit(proposal()))
    assert outcome["status"] == "settled", outcome
    assert anchor.functions.anchoredUpTo().call() == 0  # type: ignore[attr-defined]
    skipped = [data for kind, data in events if kind == "anchor-skipped"]
    assert len(skipped) == 1 and own.address.lower() in skipped[0]["reason"].lower()
    assert "owner" in skipped[0]["reason"]
    # the owner (the deployer) anchors what waits
    result = anchor_everything(log, evm.writer, evm.artifacts, evm.deployment)
    assert result is not None and (result.from_seq, result.to_seq) == (1, 5)

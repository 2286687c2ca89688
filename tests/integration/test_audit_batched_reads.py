"""Against a real chain, the audit reads logged transactions in JSON-RPC batches, same findings.

An auditor over a remote RPC waits on round trips: two per logged
submission, one by one, is what made long logs slow to audit. Batched, the
receipts and calldata of every submission arrive in one request per batch;
a batch the chain answers with an error (a transaction it does not know)
falls back to one by one, and the findings never change.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from web3 import HTTPProvider, Web3

from vouch.verifier import AttestationLog, Web3ChainReader, audit

from .helpers import settle

pytestmark = pytest.mark.integration

PER_TX = {"eth_getTransactionReceipt", "eth_getTransactionByHash"}


class CountingProvider(HTTPProvider):
    """The real HTTP provider, counting what it sends: single requests by method, and batches."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.single: Counter[str] = Counter()
        self.batches: list[Counter[str]] = []

    def make_request(self, method: Any, params: Any) -> Any:
        self.single[str(method)] += 1
        return super().make_request(method, params)

    def make_batch_request(self, requests: Any) -> Any:
        self.batches.append(Counter(str(method) for method, _ in requests))
        return super().make_batch_request(requests)


class OneByOne(Web3ChainReader):
    """The reader without fetching ahead: every transaction asked for alone."""

    def prefetch(self, tx_hashes: Sequence[str]) -> None:
        pass


def reader(evm: Any, kind: type[Web3ChainReader] = Web3ChainReader, **options: Any) -> Any:
    provider = CountingProvider(evm.w3.provider.endpoint_uri)
    return kind(Web3(provider), **options), provider


def findings(log: AttestationLog, chain: Web3ChainReader, evm: Any) -> list[tuple[Any, ...]]:
    gate = evm.deployment.address("SettlementGate")
    report = audit(log, chain, forwarder=evm.deployment.address("Forwarder"), gate=gate)
    return sorted(tuple(r) for r in report.results)


def test_submissions_are_read_in_batches_with_the_findings_of_one_by_one(
    evm: Any, log: AttestationLog
) -> None:
    for _ in range(3):
        assert settle(evm, log).status == "settled"
    batched, counted = reader(evm, batch=2)  # 3 transactions: a batch of 2, then 1
    alone, counted_alone = reader(evm, OneByOne)
    assert findings(log, batched, evm) == findings(log, alone, evm)
    assert all(r[4] == "ok" for r in findings(log, batched, evm) if r[3] == "transaction")
    assert not PER_TX & set(counted.single)
    assert [dict(b) for b in counted.batches[:2]] == [
        {"eth_getTransactionReceipt": 2, "eth_getTransactionByHash": 2},
        {"eth_getTransactionReceipt": 1, "eth_getTransactionByHash": 1},
    ]
    assert counted_alone.single["eth_getTransactionReceipt"] == 3 and not counted_alone.batches


def test_a_batch_naming_an_unknown_transaction_falls_back_one_by_one(
    evm: Any, log: AttestationLog, tmp_path: Path
) -> None:
    for _ in range(2):
        assert settle(evm, log).status == "settled"
    edited = tmp_path / "edited.db"
    with sqlite3.connect(log.path) as source, sqlite3.connect(edited) as copy:
        source.backup(copy)
    with sqlite3.connect(edited) as db:  # the first submission names a transaction never sent
        (tx_hash,) = db.execute(
            "SELECT json_extract(payload, '$.tx_hash') FROM entries WHERE kind = 'submission'"
        ).fetchone()
        db.execute(
            "UPDATE entries SET payload = replace(payload, ?, ?) WHERE kind = 'submission'",
            (tx_hash, "0x" + "ab" * 32),
        )
    edited_log = AttestationLog(edited, readonly=True)
    batched, counted = reader(evm)
    got = findings(edited_log, batched, evm)
    assert got == findings(edited_log, reader(evm, OneByOne)[0], evm)
    assert any(r[3] == "transaction" and "is not on the chain" in r[5] for r in got)
    assert len(counted.batches) == 1  # refused as a whole, then asked for one by one
    assert counted.single["eth_getTransactionReceipt"] == 2

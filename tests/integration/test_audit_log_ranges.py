"""Against an RPC that caps eth_getLogs, the audit reads events in ranges it accepts, missing none.

Public RPCs refuse a getLogs over too many blocks; an auditor with only an
RPC URL must still see every event. The reader halves a refused range until
it is answered, and reads each contract from the block its code first
appears in (block 0 where the RPC keeps no old state). The RPC here is the
real anvil behind ``RpcProxy``, which refuses as a hosted RPC does.
"""

from __future__ import annotations

from typing import Any

import pytest
from web3 import Web3

from vouch.verifier import AttestationLog, Web3ChainReader, audit

from ..rpc_proxy import RpcProxy
from .helpers import ONE, hand_made_report, open_trade, settle, signed_by

pytestmark = pytest.mark.integration


@pytest.fixture
def proxy(evm: Any):
    def make(**options: Any) -> RpcProxy:
        made.append(RpcProxy(evm.w3.provider.endpoint_uri, **options))
        return made[-1]

    made: list[RpcProxy] = []
    yield make
    for p in made:
        p.close()


def results(log: AttestationLog, chain: Web3ChainReader, evm: Any) -> list[tuple[Any, ...]]:
    report = audit(
        log,
        chain,
        forwarder=evm.deployment.address("Forwarder"),
        gate=evm.deployment.address("SettlementGate"),
    )
    return sorted(tuple(r) for r in report.results)


def test_refused_ranges_are_halved_until_answered_and_no_event_is_missed(
    evm: Any, log: AttestationLog, proxy: Any
) -> None:
    for _ in range(2):
        assert settle(evm, log).status == "settled"
    capped = proxy(max_log_blocks=4)
    reader = Web3ChainReader(Web3(Web3.HTTPProvider(capped.url)))
    assert results(log, reader, evm) == results(log, Web3ChainReader(evm.w3), evm)
    wide = [(low, high) for low, high in capped.log_ranges() if high - low + 1 > 4]
    assert len(wide) == capped.refused >= 1  # every range over the cap was refused, and no other
    assert reader.span is not None and reader.span <= 4
    again = Web3ChainReader(Web3(Web3.HTTPProvider(capped.url)))
    again.span = 4
    before = len(capped.log_ranges())
    events = again.report_events(evm.deployment.address("Forwarder"))
    assert len(events) == 2  # both settlements' ReportProcessed, read in ranges of 4
    ranges = capped.log_ranges()[before:]
    assert ranges[-1][1] == evm.w3.eth.block_number
    assert all(b[0] == a[1] + 1 for a, b in zip(ranges, ranges[1:], strict=False))  # no gap


def created(w3: Web3, address: str) -> int:
    """The first block with code at ``address``, by looking at every block."""
    return next(b for b in range(w3.eth.block_number + 1) if w3.eth.get_code(address, b))


def test_each_contract_is_read_from_its_creation_and_every_event_still_counts(
    evm: Any, log: AttestationLog, proxy: Any
) -> None:
    assert settle(evm, log).status == "settled"
    # a report the log does not explain: its ReportProcessed must raise an alarm
    trade_id, digest = open_trade(evm, log)
    raw, context, to_sign = hand_made_report(evm, trade_id, digest, 3_000 * ONE)
    forwarder = evm.contract("Forwarder")
    gate = evm.deployment.address("SettlementGate")
    evm.writer.transact(
        forwarder.functions.report(gate, raw, context, signed_by(evm.node_keys()[:2], to_sign)),
        gas=1_000_000,
    )
    archive, pruned = proxy(), proxy(archive=False)
    found = results(log, Web3ChainReader(Web3(Web3.HTTPProvider(archive.url))), evm)
    starts = {  # web3 sends the address as a list of one
        Web3.to_checksum_address(c["params"][0]["address"][0]): int(c["params"][0]["fromBlock"], 16)
        for c in archive.calls
        if c["method"] == "eth_getLogs"
    }
    assert starts == {a: created(evm.w3, a) for a in (forwarder.address, gate)}
    assert min(starts.values()) > 0
    assert found == results(log, Web3ChainReader(Web3(Web3.HTTPProvider(pruned.url))), evm)
    assert pruned.refused >= 1 and {low for low, _ in pruned.log_ranges()} == {0}
    assert found == results(log, Web3ChainReader(evm.w3), evm)
    alarms = [r for r in found if r[0] == 0 and r[4] == "fail"]
    assert any("has no log entry" in r[5] for r in alarms)

"""Audit against an honest in-memory chain: a well-formed execution passes, forgeries are named.

Forged logs are written through ``AttestationLog.append`` so their hash chain is
intact: only the semantic checks (signatures, signer set, median, report
contents, transaction) can catch them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from eth_abi import encode as abi_encode
from eth_account import Account

from vouch.verifier import (
    AnchorRecord,
    AttestationLog,
    AuditReport,
    ChainReader,
    ConfigEvent,
    ExecutionEvent,
    Observation,
    ReportBody,
    ReportEvent,
    ReportMetadata,
    SettlementPayload,
    Web3ChainReader,
    audit,
    canonical_json,
    config_digest,
    encode_report,
    execution_id,
    keccak,
    median,
    report_context,
    report_digest,
    sign_observation,
    sign_report,
    workflow_id,
)

NODE_KEYS = [bytes([i]) * 32 for i in range(1, 5)]  # n = 4, f = 1
NODES = [Account.from_key(k).address for k in NODE_KEYS]
STRANGER_KEY = b"\x42" * 32
F = 1
CHAIN_ID = 31337
DON_ID, CONFIG_VERSION = 1, 1
FORWARDER = "0x4B20993Bc481177ec7E8f571ceCaE8A9e22C02db"
RECEIVER = "0xAb8483F64d9C6d1EcF9b849Ae677dD3315835cb2"
OWNER = "0x5B38Da6a701c568545dCfcB03FcB875f56beddC4"
TX_HASH = "0x" + "7e" * 32
BLOCK = 12
GAS = 210_000
GATE = "0x" + "6a" * 20
GATEWAY = "0x" + "9b" * 20
REPORT_SELECTOR = keccak(b"report(address,bytes,bytes,bytes[])")[:4]
REPORT_PROCESSED = keccak(b"ReportProcessed(address,bytes32,bytes2,bool)")
PRICES = [3000 * 10**18, 3002 * 10**18, 2999 * 10**18]


def hexs(data: bytes) -> str:
    return "0x" + data.hex()


@dataclass
class Tx:
    calldata: bytes
    block: int
    status: int
    delivered: bool


@dataclass
class FakeChain(ChainReader):
    """An honest in-memory chain: one forwarder with one DON config, and the transactions sent."""

    with_history: bool = True
    configs: dict[tuple[str, int, int], tuple[int, list[str]]] = field(default_factory=dict)
    txs: dict[str, Tx] = field(default_factory=dict)
    gate_log: list[ExecutionEvent] = field(default_factory=list)
    gateway_log: list[ExecutionEvent] = field(default_factory=list)
    forwarder_log: list[ReportEvent] = field(default_factory=list)

    def get_config(self, forwarder: str, don_id: int, config_version: int) -> tuple[int, list[str]]:
        return self.configs.get((forwarder.lower(), don_id, config_version), (0, []))

    def get_receipt(self, tx_hash: str) -> Mapping[str, Any] | None:
        tx = self.txs.get(tx_hash.lower())
        if tx is None:
            return None
        event = {
            "topics": [REPORT_PROCESSED, b"\x00" * 32, b"\x00" * 32, b"\x00" * 32],
            "data": abi_encode(["bool"], [tx.delivered]),
        }
        return {"status": tx.status, "blockNumber": tx.block, "gasUsed": GAS, "logs": [event]}

    def get_transaction_input(self, tx_hash: str) -> bytes | None:
        tx = self.txs.get(tx_hash.lower())
        return None if tx is None else tx.calldata

    def config_history(self, forwarder: str) -> list[ConfigEvent]:
        if not self.with_history:
            return []
        return [
            ConfigEvent(block=1, don_id=d, config_version=v, f=f, signers=s)
            for (fwd, d, v), (f, s) in self.configs.items()
            if fwd == forwarder.lower()
        ]

    def report_events(self, forwarder: str) -> list[ReportEvent]:
        return list(self.forwarder_log)

    def anchors(self, anchor: str) -> list[AnchorRecord]:
        return []

    def approvals(self, gate: str) -> list[Any]:
        return []

    def gate_events(self, gate: str) -> list[ExecutionEvent]:
        return list(self.gate_log)

    def gateway_events(self, gateway: str) -> list[ExecutionEvent]:
        return list(self.gateway_log)


def honest_chain(with_history: bool = True) -> FakeChain:
    chain = FakeChain(with_history=with_history)
    chain.configs[(FORWARDER.lower(), DON_ID, CONFIG_VERSION)] = (F, list(NODES))
    return chain


def report_calldata(raw: bytes, context: bytes, signatures: list[bytes]) -> bytes:
    args = abi_encode(
        ["address", "bytes", "bytes", "bytes[]"], [RECEIVER, raw, context, signatures]
    )
    return REPORT_SELECTOR + args


@dataclass
class Execution:
    """The five payloads of one settlement, built with real signatures; tests edit them."""

    exec_id: bytes
    proposal: dict[str, Any]
    observations: dict[str, Any]
    consensus: dict[str, Any]
    report: dict[str, Any]
    submission: dict[str, Any]
    raw: bytes
    context: bytes
    digest: bytes
    signatures: list[bytes]


def build_execution(
    trade_id: int = 7, round_: int = 0, prices: list[int] | None = None
) -> Execution:
    prices = prices or PRICES
    proposal = {
        "kind": "settlement",
        "params": {"base_amount": 10**18, "min_price": 1, "max_price": 10**24, "trade": trade_id},
        "facts": [{"feed": "ETH/USD", "aggregation": "median"}],
        "rationale": "free text, outside the action hash",
        "trace_hash": None,
    }
    body = {k: v for k, v in proposal.items() if k not in ("rationale", "trace_hash")}
    action = keccak(canonical_json(body))
    exec_id = execution_id(workflow_id("settlement"), action, round_)
    signed = [
        sign_observation(
            Observation(
                request_id=f"req-{trade_id}",
                feed="ETH/USD",
                value=price,
                observed_at=1_800_000_000,
                node=node,
            ),
            key,
        )
        for key, node, price in zip(NODE_KEYS[:3], NODES[:3], prices, strict=True)
    ]
    price = median(prices)
    meta = ReportMetadata(
        execution_id=exec_id,
        timestamp=1_800_000_000,
        don_id=DON_ID,
        config_version=CONFIG_VERSION,
        workflow_id=workflow_id("settlement"),
        workflow_name="settlement",
        workflow_owner=OWNER,
        report_id=b"\x00\x01",
    )
    body = ReportBody(
        chain_id=CHAIN_ID,
        receiver=RECEIVER,
        timestamp=1_800_000_000,
        action_hash=action,
        payload=SettlementPayload(trade_id=trade_id, price=price).encode(),
    )
    raw = encode_report(meta, body)
    digest_ = config_digest(CHAIN_ID, FORWARDER, DON_ID, CONFIG_VERSION, F, NODES)
    context = report_context(digest_, trade_id)
    digest = report_digest(raw, context)
    signatures = [sign_report(digest, key) for key in NODE_KEYS[1:3]]  # f+1 = 2
    don = {
        "don_id": DON_ID,
        "config_version": CONFIG_VERSION,
        "forwarder": FORWARDER,
        "chain_id": CHAIN_ID,
    }
    return Execution(
        exec_id=exec_id,
        proposal={"proposal": proposal, "action_hash": hexs(action), "trade_id": trade_id},
        observations={"observations": [o.model_dump(mode="json") for o in signed], "don": don},
        consensus={"mode": "median", "value": price, "observations_seq": 0, "f": F},
        report={
            "raw": hexs(raw),
            "context": hexs(context),
            "signatures": [hexs(s) for s in signatures],
            "receiver": RECEIVER,
            **don,
        },
        submission={
            "tx_hash": TX_HASH,
            "block_number": BLOCK,
            "status": "settled",
            "receipt_status": 1,
            "gas_used": GAS,
            "forwarder": FORWARDER,
            "error": None,
        },
        raw=raw,
        context=context,
        digest=digest,
        signatures=signatures,
    )


def record(log: AttestationLog, ex: Execution, chain: FakeChain | None = None) -> dict[str, int]:
    """Append the execution in order; send its transaction to ``chain``; return kind -> seq."""
    seqs = {"proposal": log.append(ex.exec_id, "proposal", ex.proposal).seq}
    seqs["observations"] = log.append(ex.exec_id, "observations", ex.observations).seq
    if not ex.consensus["observations_seq"]:
        ex.consensus["observations_seq"] = seqs["observations"]
    seqs["consensus"] = log.append(ex.exec_id, "consensus", ex.consensus).seq
    seqs["report"] = log.append(ex.exec_id, "report", ex.report).seq
    seqs["submission"] = log.append(ex.exec_id, "submission", ex.submission).seq
    if chain is not None:
        chain.txs[TX_HASH] = Tx(report_calldata(ex.raw, ex.context, ex.signatures), BLOCK, 1, True)
    return seqs


def statuses(report: AuditReport) -> dict[tuple[int, str], str]:
    return {(r.seq, r.check): r.status for r in report.results}


def failed(report: AuditReport) -> set[tuple[int, str, str]]:
    return {(r.seq, r.kind, r.check) for r in report.results if r.status == "fail"}


def audit_forged(
    tmp_path: Path, forge: Callable[[Execution], None]
) -> tuple[AuditReport, dict[str, int]]:
    log = AttestationLog(tmp_path / "log.db")
    ex = build_execution()
    chain = honest_chain()
    forge(ex)
    seqs = record(log, ex, chain)
    return audit(log, chain), seqs


EXPECTED_CHECKS = {
    "observations": {"observation signatures", "signers configured"},
    "consensus": {"consensus recomputed", "consensus parameters"},
    "report": {"report signatures", "report contents"},
    "submission": {"transaction"},
}


@pytest.mark.parametrize("with_history", [True, False], ids=["ConfigSet history", "getConfig"])
def test_a_well_formed_execution_passes_every_check(tmp_path: Path, with_history: bool) -> None:
    log = AttestationLog(tmp_path / "log.db")
    chain = honest_chain(with_history)
    seqs = record(log, build_execution(), chain)
    report = audit(log, chain)
    assert report.ok, failed(report)
    assert report.entries == 5
    got = statuses(report)
    # the in-memory chain reads no TradeCreated events: the trade-terms half is skipped
    assert got.pop((1, "trade terms")) == "skip"
    assert all(status == "ok" for status in got.values()), got
    for kind, seq in seqs.items():
        assert got[(seq, "chain")] == "ok"
        for check in EXPECTED_CHECKS.get(kind, set()):
            assert got[(seq, check)] == "ok", (kind, check)
    assert {r.execution_id for r in report.results} == {hexs(build_execution().exec_id)}


def test_two_executions_are_audited_independently(tmp_path: Path) -> None:
    log = AttestationLog(tmp_path / "log.db")
    chain = honest_chain()
    record(log, build_execution(trade_id=7), chain)
    bad = build_execution(trade_id=8)
    bad.consensus["value"] += 1
    seqs = record(log, bad)  # its transaction is the first one's: it must not check out either
    report = audit(log, chain)
    assert {seq for seq, _, _ in failed(report)} == {
        seqs["consensus"],
        seqs["report"],
        seqs["submission"],
    }


def test_offline_audit_skips_what_needs_the_chain(tmp_path: Path) -> None:
    log = AttestationLog(tmp_path / "log.db")
    seqs = record(log, build_execution())
    report = audit(log, None)
    got = statuses(report)
    assert report.ok  # skipped is not failed ...
    assert got[(seqs["observations"], "signers configured")] == "skip"  # ... and not ok
    assert got[(seqs["report"], "report signatures")] == "skip"
    assert got[(seqs["submission"], "transaction")] == "skip"
    assert got[(seqs["observations"], "observation signatures")] == "ok"
    assert got[(seqs["consensus"], "consensus recomputed")] == "ok"
    assert got[(seqs["report"], "report contents")] == "ok"


def test_offline_audit_with_a_signer_set_checks_the_signers(tmp_path: Path) -> None:
    log = AttestationLog(tmp_path / "log.db")
    seqs = record(log, build_execution())
    report = audit(log, None, signers={(DON_ID, CONFIG_VERSION): (F, NODES)})
    got = statuses(report)
    assert got[(seqs["observations"], "signers configured")] == "ok"
    assert got[(seqs["report"], "report signatures")] == "ok"
    assert got[(seqs["submission"], "transaction")] == "skip"
    strangers = [Account.from_key(bytes([i]) * 32).address for i in range(20, 24)]
    pinned = audit(log, None, signers={(DON_ID, CONFIG_VERSION): (F, strangers)})
    assert failed(pinned) == {
        (seqs["observations"], "observations", "signers configured"),
        (seqs["report"], "report", "report signatures"),
    }


def swap_in_a_foreign_signature(ex: Execution) -> None:
    ex.signatures[1] = sign_report(ex.digest, STRANGER_KEY)
    ex.report["signatures"][1] = hexs(ex.signatures[1])


def sign_another_digest(ex: Execution) -> None:
    ex.report["signatures"][0] = hexs(sign_report(b"\x01" * 32, NODE_KEYS[1]))


def sign_twice(ex: Execution) -> None:
    ex.report["signatures"][1] = ex.report["signatures"][0]


def sign_three_times(ex: Execution) -> None:
    ex.report["signatures"].append(hexs(sign_report(ex.digest, NODE_KEYS[3])))


def sign_once(ex: Execution) -> None:
    del ex.report["signatures"][1]


def high_s_twin(ex: Execution) -> None:
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    sig = ex.signatures[0]
    s = int.from_bytes(sig[32:64], "big")
    ex.report["signatures"][0] = hexs(sig[:32] + (n - s).to_bytes(32, "big") + bytes([1 - sig[64]]))


@pytest.mark.parametrize(
    "forge",
    [
        swap_in_a_foreign_signature,
        sign_another_digest,
        sign_twice,
        sign_three_times,
        sign_once,
        high_s_twin,
    ],
)
def test_bad_report_signatures_are_named_at_the_report(
    tmp_path: Path, forge: Callable[[Execution], None]
) -> None:
    report, seqs = audit_forged(tmp_path, forge)
    assert (seqs["report"], "report", "report signatures") in failed(report)
    assert (seqs["report"], "chain") not in {(s, c) for s, _, c in failed(report)}


def replace_an_observation_value(ex: Execution) -> None:
    ex.observations["observations"][0]["observation"]["value"] = 2000 * 10**18


def replace_an_observation_by_a_stranger(ex: Execution) -> None:
    obs = Observation.model_validate(ex.observations["observations"][0]["observation"])
    stranger = Account.from_key(STRANGER_KEY).address
    forged = sign_observation(obs.model_copy(update={"node": stranger}), STRANGER_KEY)
    ex.observations["observations"][0] = forged.model_dump(mode="json")


def claim_another_node(ex: Execution) -> None:
    ex.observations["observations"][0]["observation"]["node"] = NODES[3]


def duplicate_an_observation(ex: Execution) -> None:
    ex.observations["observations"][2] = ex.observations["observations"][1]


def drop_an_observation(ex: Execution) -> None:
    del ex.observations["observations"][2]
    ex.consensus["value"] = median(PRICES[:2])


@pytest.mark.parametrize(
    ("forge", "check"),
    [
        (replace_an_observation_value, "observation signatures"),
        (claim_another_node, "observation signatures"),
        (replace_an_observation_by_a_stranger, "signers configured"),
        (duplicate_an_observation, "signers configured"),
        (drop_an_observation, "signers configured"),
    ],
)
def test_bad_observations_are_named_at_the_observations(
    tmp_path: Path, forge: Callable[[Execution], None], check: str
) -> None:
    report, seqs = audit_forged(tmp_path, forge)
    assert (seqs["observations"], "observations", check) in failed(report)


def edit_consensus_value(ex: Execution) -> None:
    ex.consensus["value"] += 1


def point_consensus_elsewhere(ex: Execution) -> None:
    ex.consensus["observations_seq"] = 1


def test_an_edited_consensus_value_is_named(tmp_path: Path) -> None:
    report, seqs = audit_forged(tmp_path, edit_consensus_value)
    assert (seqs["consensus"], "consensus", "consensus recomputed") in failed(report)
    # The honest report now disagrees with the logged consensus, and says so.
    assert (seqs["report"], "report", "report contents") in failed(report)


@pytest.mark.parametrize(
    ("f", "detail"), [(0, "logged f=0, the DON config has f=1"), ("1", "no integer f")]
)
def test_a_consensus_with_other_parameters_than_the_don_config_is_named(
    tmp_path: Path, f: object, detail: str
) -> None:
    report, seqs = audit_forged(tmp_path, lambda ex: ex.consensus.update(f=f))
    failures = {(r.seq, r.check): r.detail for r in report.failures}
    assert detail in failures[(seqs["consensus"], "consensus parameters")]


def test_a_consensus_over_other_observations_is_named(tmp_path: Path) -> None:
    report, seqs = audit_forged(tmp_path, point_consensus_elsewhere)
    assert {s for s, _, _ in failed(report)} == {seqs["consensus"]}


def test_a_report_whose_price_is_not_the_consensus_is_named(tmp_path: Path) -> None:
    def forge(ex: Execution) -> None:
        ex.consensus["value"] = PRICES[1]
        ex.observations["observations"].reverse()  # the median is still PRICES[0]

    report, seqs = audit_forged(tmp_path, forge)
    assert (seqs["consensus"], "consensus", "consensus recomputed") in failed(report)


@pytest.mark.parametrize(
    "change",
    [{"receiver": OWNER}, {"chain_id": 1}],
    ids=["receiver", "chain id"],
)
def test_a_report_body_for_another_target_is_named(tmp_path: Path, change: dict[str, Any]) -> None:
    report, seqs = audit_forged(tmp_path, lambda ex: ex.report.update(change))
    assert (seqs["report"], "report", "report contents") in failed(report)


def test_a_proposal_with_another_action_hash_is_caught(tmp_path: Path) -> None:
    report, seqs = audit_forged(
        tmp_path, lambda ex: ex.proposal.update({"action_hash": hexs(b"\x99" * 32)})
    )
    assert failed(report)
    assert {kind for _, kind, _ in failed(report)} <= {"proposal", "report"}


@pytest.mark.parametrize(
    "change",
    [
        {"block_number": BLOCK + 1},
        {"receipt_status": 0},
        {"status": "refused"},
        {"tx_hash": "0x" + "00" * 32},
        {"gas_used": GAS - 1},
    ],
    ids=["block", "receipt status", "delivery status", "unknown tx", "gas used"],
)
def test_a_submission_that_disagrees_with_the_chain_is_named(
    tmp_path: Path, change: dict[str, Any]
) -> None:
    report, seqs = audit_forged(tmp_path, lambda ex: ex.submission.update(change))
    assert failed(report) == {(seqs["submission"], "submission", "transaction")}


def test_a_transaction_that_carried_another_report_is_named(tmp_path: Path) -> None:
    log = AttestationLog(tmp_path / "log.db")
    chain = honest_chain()
    ex = build_execution()
    seqs = record(log, ex, chain)
    other = build_execution(trade_id=8)
    chain.txs[TX_HASH] = Tx(
        report_calldata(other.raw, other.context, other.signatures), BLOCK, 1, True
    )
    report = audit(log, chain)
    assert failed(report) == {(seqs["submission"], "submission", "transaction")}


def test_a_tampered_row_fails_both_the_chain_and_the_semantic_check(tmp_path: Path) -> None:
    log = AttestationLog(tmp_path / "log.db")
    chain = honest_chain()
    seqs = record(log, build_execution(), chain)
    price = str(median(PRICES))
    with sqlite3.connect(tmp_path / "log.db") as db:
        db.execute(
            "UPDATE entries SET payload = replace(payload, ?, ?) WHERE seq = ?",
            (price, str(int(price) + 1), seqs["consensus"]),
        )
    report = audit(AttestationLog(tmp_path / "log.db", readonly=True), chain)
    assert (seqs["consensus"], "consensus", "chain") in failed(report)
    assert (seqs["consensus"], "consensus", "consensus recomputed") in failed(report)


def test_an_unreadable_payload_fails_instead_of_crashing(tmp_path: Path) -> None:
    log = AttestationLog(tmp_path / "log.db")
    log.append(b"\x01" * 32, "report", {"raw": "0x1234"})
    log.append(b"\x01" * 32, "consensus", {"mode": "median"})
    log.append(b"\x01" * 32, "observations", {"observations": "nope"})
    report = audit(log, honest_chain())
    assert {seq for seq, _, _ in failed(report)} == {1, 2, 3}


def test_a_transaction_that_is_not_a_report_call_is_named(tmp_path: Path) -> None:
    log = AttestationLog(tmp_path / "log.db")
    chain = honest_chain()
    seqs = record(log, build_execution(), chain)
    chain.txs[TX_HASH].calldata = b"\xa9\x05\x9c\xbb" + chain.txs[TX_HASH].calldata[4:]
    report = audit(log, chain)
    assert failed(report) == {(seqs["submission"], "submission", "transaction")}


def test_findings_say_ok_only_when_the_check_passed(tmp_path: Path) -> None:
    log = AttestationLog(tmp_path / "log.db")
    seqs = record(log, build_execution())
    by_check = {(r.seq, r.check): r for r in audit(log, None).results}
    assert by_check[(seqs["consensus"], "consensus recomputed")].ok
    assert not by_check[(seqs["submission"], "transaction")].ok  # skipped
    forged = build_execution()
    forged.consensus["value"] += 1
    record(log, forged)
    assert not all(r.ok for r in audit(log, None).results)


class _Eth:
    def __init__(self, txs: dict[str, bytes]) -> None:
        self.txs = txs

    def get_transaction(self, tx_hash: str) -> dict[str, bytes]:
        if tx_hash not in self.txs:
            raise LookupError(tx_hash)
        return {"input": self.txs[tx_hash]}


class _W3:
    def __init__(self, txs: dict[str, bytes]) -> None:
        self.eth = _Eth(txs)


def test_web3_reader_finds_the_raw_report_in_forwarder_report_calldata() -> None:
    ex = build_execution()
    calldata = report_calldata(ex.raw, ex.context, ex.signatures)
    reader = Web3ChainReader(_W3({TX_HASH: calldata, "0x01": b"\x00" * 4}))  # type: ignore[arg-type]
    assert reader.get_transaction_input(TX_HASH) == calldata
    assert reader.get_report_call(TX_HASH) == ex.raw
    assert reader.get_report_call("0x01") is None  # not a report call
    assert reader.get_report_call("0x02") is None  # unknown transaction


def alarms(report: AuditReport) -> list[str]:
    return [r.detail for r in report.failures if r.check == "explained by the log"]


def test_gate_settlements_and_gateway_executions_outside_the_log_are_alarms(
    tmp_path: Path,
) -> None:
    log = AttestationLog(tmp_path / "log.db")
    chain = honest_chain()
    record(log, build_execution(), chain)
    explained = [
        ExecutionEvent(event="TradeSettled", subject=7, tx_hash=TX_HASH, block=BLOCK),
    ]
    chain.gate_log = explained
    chain.gateway_log = [
        ExecutionEvent(
            event="MessageExecuted", subject="0x" + "aa" * 32, tx_hash=TX_HASH, block=BLOCK
        )
    ]
    assert audit(log, chain, gate=GATE, gateway=GATEWAY).ok  # every event is a logged submission
    forged = "0x" + "f0" * 32
    chain.gate_log = [
        *explained,
        ExecutionEvent(event="TradeSettled", subject=9, tx_hash=forged, block=BLOCK + 1),
    ]
    chain.gateway_log = [
        ExecutionEvent(event="MessageExecuted", subject="0x" + "bb" * 32, tx_hash=forged, block=20),
        ExecutionEvent(event="MessageFailed", subject="0x" + "cc" * 32, tx_hash=forged, block=21),
    ]
    found = alarms(audit(log, chain, gate=GATE, gateway=GATEWAY))
    assert len(found) == 3 and all(a.startswith("ALARM") and forged in a for a in found)
    assert "trade #9 settled onchain" in found[0]
    assert "MessageExecuted of message 0xbbbb" in found[1] and "MessageFailed" in found[2]
    assert len(alarms(audit(log, chain, gate=GATE))) == 1  # the gateway's events only with gateway=


def test_a_refund_is_explained_only_for_a_trade_the_log_proposed_and_never_settled(
    tmp_path: Path,
) -> None:
    log = AttestationLog(tmp_path / "log.db")
    chain = honest_chain()
    record(log, build_execution(trade_id=7), chain)  # settled
    refused = build_execution(trade_id=8)
    refused.submission = {"tx_hash": None, "status": "rejected", "error": {"name": "X", "args": {}}}
    record(log, refused)

    def refund(trade_id: int) -> ExecutionEvent:
        return ExecutionEvent(
            event="TradeRefunded", subject=trade_id, tx_hash="0x" + "0d" * 32, block=30
        )

    chain.gate_log = [refund(8)]
    report = audit(log, chain, gate=GATE)
    assert report.ok
    [note] = [r for r in report.results if r.check == "explained by the log"]
    assert note.status == "ok" and "trade #8 refunded" in note.detail
    chain.gate_log = [refund(7), refund(99)]
    found = alarms(audit(log, chain, gate=GATE))
    assert "trade #7 refunded onchain" in found[0] and "yet the log says it settled" in found[0]
    assert found[1].startswith("ALARM: trade #99 refunded onchain") and "no log entry" in found[1]


def test_a_round_run_again_is_audited_round_by_round_and_both_transactions_are_explained(
    tmp_path: Path,
) -> None:
    """Round 1 reported one price and its delivery failed onchain; the retry reported another."""
    log = AttestationLog(tmp_path / "log.db")
    chain = honest_chain()
    first = build_execution(prices=[3100 * 10**18, 3101 * 10**18, 3099 * 10**18])
    second = build_execution()
    assert first.exec_id == second.exec_id and first.consensus["value"] != second.consensus["value"]
    tx_a, tx_b = "0x" + "a1" * 32, "0x" + "b2" * 32
    first.submission.update(tx_hash=tx_a, status="failed")
    second.submission.update(tx_hash=tx_b, block_number=BLOCK + 1)
    log.append(first.exec_id, "proposal", first.proposal)
    seqs: list[dict[str, int]] = []
    for n, ex in enumerate((first, second)):
        if n:
            log.append(ex.exec_id, "retry", {"reason": "cut short", "earlier_seqs": []})
        got = {"observations": log.append(ex.exec_id, "observations", ex.observations).seq}
        ex.consensus["observations_seq"] = got["observations"]
        for kind in ("consensus", "report", "submission"):
            got[kind] = log.append(ex.exec_id, kind, getattr(ex, kind)).seq
        seqs.append(got)
    chain.txs[tx_a] = Tx(
        report_calldata(first.raw, first.context, first.signatures), BLOCK, 1, False
    )
    chain.txs[tx_b] = Tx(
        report_calldata(second.raw, second.context, second.signatures), BLOCK + 1, 1, True
    )
    chain.forwarder_log = [
        ReportEvent(
            tx_hash=tx, block=block, receiver=RECEIVER, execution_id=hexs(first.exec_id), result=ok
        )
        for tx, block, ok in ((tx_a, BLOCK, False), (tx_b, BLOCK + 1, True))
    ]
    chain.gate_log = [
        ExecutionEvent(event="TradeSettled", subject=7, tx_hash=tx_b, block=BLOCK + 1)
    ]
    report = audit(log, chain, gate=GATE)
    assert report.ok, failed(report)
    got = statuses(report)
    for round_ in seqs:
        assert got[(round_["report"], "report contents")] == "ok"
        assert got[(round_["submission"], "transaction")] == "ok"
    assert not alarms(report)
    # the first round's report checked against the second round's consensus would fail:
    # an edit that makes them swap shows the pairing is by round, not by the last entry
    first.submission.update(tx_hash=tx_b)
    log2 = AttestationLog(tmp_path / "swapped.db")
    log2.append(first.exec_id, "proposal", first.proposal)
    obs = log2.append(first.exec_id, "observations", first.observations).seq
    first.consensus["observations_seq"] = obs
    log2.append(first.exec_id, "consensus", first.consensus)
    wrong = log2.append(first.exec_id, "submission", first.submission).seq
    log2.append(first.exec_id, "report", first.report)
    assert (wrong, "submission", "transaction") in failed(audit(log2, chain, gate=GATE))


def test_a_retry_is_explained_only_by_a_cut_short_round_of_the_same_execution(
    tmp_path: Path,
) -> None:
    log = AttestationLog(tmp_path / "log.db")
    chain = honest_chain()
    ex = build_execution()
    proposal = log.append(ex.exec_id, "proposal", ex.proposal).seq
    observed = log.append(ex.exec_id, "observations", ex.observations).seq
    cut_short = {"reason": "cut short", "earlier_seqs": [observed]}
    ok = log.append(ex.exec_id, "retry", cut_short).seq
    other = build_execution(trade_id=8)
    foreign = log.append(other.exec_id, "retry", cut_short).seq  # names another execution's entry
    seqs = record(log, ex, chain)
    del seqs["proposal"]
    after = log.append(ex.exec_id, "retry", {"reason": "again", "earlier_seqs": [proposal]}).seq
    report = audit(log, chain)
    got = {(r.seq, r.check): r for r in report.results}
    assert got[(ok, "retry")].status == "ok"
    assert got[(foreign, "retry")].status == "fail"
    assert "not this execution's" in got[(foreign, "retry")].detail
    assert got[(after, "retry")].status == "fail"
    assert "already delivered onchain" in got[(after, "retry")].detail

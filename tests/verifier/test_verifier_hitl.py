"""Human decisions in the log: signed by the approver they name, matched against the gate."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_account import Account

from vouch.verifier import (
    AnchorRecord,
    ApprovalEvent,
    AttestationLog,
    AuditReport,
    ChainReader,
    ConfigEvent,
    ExecutionEvent,
    ReportEvent,
    audit,
    keccak,
    rejection_digest,
)

APPROVER = Account.from_key(b"\x0a" * 32)
STRANGER = Account.from_key(b"\x0b" * 32)
GATE = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
TX = "0x" + "ab" * 32
BLOCK = 40


def gate_digest(trade_id: int) -> bytes:
    return keccak(b"TradeApproval" + trade_id.to_bytes(32, "big"))  # stands in for EIP-712


@dataclass
class GateChain(ChainReader):
    """An honest gate: approvers by block, approval events, settled trades."""

    approvers: dict[str, int] = field(default_factory=lambda: {APPROVER.address: 1})
    events: list[ApprovalEvent] = field(default_factory=list)
    settled: set[int] = field(default_factory=set)

    def get_config(self, forwarder: str, don_id: int, config_version: int) -> tuple[int, list[str]]:
        return 0, []

    def get_receipt(self, tx_hash: str) -> Mapping[str, Any] | None:
        return None

    def config_history(self, forwarder: str) -> list[ConfigEvent]:
        return []

    def report_events(self, forwarder: str) -> list[ReportEvent]:
        return []

    def anchors(self, anchor: str) -> list[AnchorRecord]:
        return []

    def approvals(self, gate: str) -> list[ApprovalEvent]:
        return list(self.events)

    def settled_trades(self, gate: str) -> set[int]:
        return set(self.settled)

    def gate_events(self, gate: str) -> list[ExecutionEvent]:
        return []

    def approval_digest(self, gate: str, trade_id: int, block: int) -> bytes:
        return gate_digest(trade_id)

    def is_approver(self, gate: str, account: str, block: int) -> bool:
        granted = self.approvers.get(account)
        return granted is not None and granted <= block


def approval(trade_id: int = 7, signer: Any = APPROVER, **changes: Any) -> dict[str, Any]:
    digest = gate_digest(trade_id)
    payload = {
        "decision": "approved",
        "run_id": "run-1",
        "action_key": "0x" + "11" * 32,
        "trade_id": trade_id,
        "gate": GATE,
        "chain_id": 31337,
        "note": "",
        "approver": APPROVER.address,
        "digest": "0x" + digest.hex(),
        "signature": "0x" + Account.unsafe_sign_hash(digest, signer.key).signature.hex(),
        "tx_hash": TX,
        "block_number": BLOCK,
    }
    return payload | changes


def rejection(trade_id: int = 8, note: str = "wrong counterparty") -> dict[str, Any]:
    payload = approval(trade_id, decision="rejected", note=note, tx_hash=None)
    digest = rejection_digest(payload)
    payload["digest"] = "0x" + digest.hex()
    payload["signature"] = "0x" + Account.unsafe_sign_hash(digest, APPROVER.key).signature.hex()
    return payload


def run(tmp_path: Path, payloads: list[dict[str, Any]], chain: GateChain) -> AuditReport:
    log = AttestationLog(tmp_path / "log.db")
    for n, payload in enumerate(payloads):
        log.append(keccak(bytes([n])), "hitl", payload)
    return audit(log, chain, gate=GATE)


def checks(report: AuditReport) -> dict[str, tuple[str, str]]:
    return {f.check: (f.status, f.detail) for f in report.results if f.kind in ("hitl", "chain")}


def approved_onchain(trade_id: int = 7) -> GateChain:
    return GateChain(
        events=[
            ApprovalEvent(trade_id=trade_id, approver=APPROVER.address, tx_hash=TX, block=BLOCK)
        ]
    )


def test_an_approval_signed_by_the_approver_and_recorded_by_the_gate_passes(tmp_path: Path) -> None:
    report = run(tmp_path, [approval(), rejection()], approved_onchain())
    # these logs hold decisions alone (no proposal, no DON round): only their sequence fails
    assert {f.check for f in report.failures} == {"entry sequence"}, report.failures
    found = [f for f in report.results if f.check == "decision onchain"]
    assert [f.status for f in found] == ["ok", "ok"]


def test_an_approval_signed_by_someone_else_is_named(tmp_path: Path) -> None:
    report = run(tmp_path, [approval(signer=STRANGER)], approved_onchain())
    status, detail = checks(report)["approver signature"]
    assert status == "fail"
    assert STRANGER.address in detail


def test_an_approver_without_the_role_at_that_block_is_named(tmp_path: Path) -> None:
    chain = approved_onchain()
    chain.approvers[APPROVER.address] = BLOCK + 1  # granted only after the approval
    status, detail = checks(run(tmp_path, [approval()], chain))["decision onchain"]
    assert status == "fail"
    assert "APPROVER_ROLE" in detail


def test_a_signature_over_another_trade_is_not_the_gates_digest(tmp_path: Path) -> None:
    forged = approval(7)
    other = approval(9)
    forged["digest"], forged["signature"] = other["digest"], other["signature"]
    status, detail = checks(run(tmp_path, [forged], approved_onchain()))["decision onchain"]
    assert status == "fail"
    assert "approvalDigest(7)" in detail


def test_a_logged_approval_with_no_event_onchain_is_named(tmp_path: Path) -> None:
    status, detail = checks(run(tmp_path, [approval()], GateChain()))["decision onchain"]
    assert status == "fail"
    assert "no TradeApproved(7" in detail


def test_an_edited_rejection_note_breaks_its_signature(tmp_path: Path) -> None:
    edited = rejection() | {"note": "approved after all"}
    status, detail = checks(run(tmp_path, [edited], GateChain()))["approver signature"]
    assert status == "fail"
    assert "not the digest of this rejection" in detail


def test_a_rejected_trade_that_settled_anyway_is_named(tmp_path: Path) -> None:
    status, detail = checks(run(tmp_path, [rejection(8)], GateChain(settled={8})))[
        "decision onchain"
    ]
    assert status == "fail"
    assert "rejected, yet approved or settled" in detail


def test_an_approval_onchain_that_the_log_does_not_explain_is_an_alarm(tmp_path: Path) -> None:
    chain = approved_onchain(7)
    chain.events.append(
        ApprovalEvent(trade_id=99, approver=STRANGER.address, tx_hash="0x" + "cd" * 32, block=50)
    )
    report = run(tmp_path, [approval()], chain)
    alarms = [f.detail for f in report.failures if f.check == "explained by the log"]
    assert len(alarms) == 1
    assert "trade #99" in alarms[0] and STRANGER.address in alarms[0]


def test_offline_the_signature_is_still_checked(tmp_path: Path) -> None:
    log = AttestationLog(tmp_path / "log.db")
    log.append(keccak(b"x"), "hitl", approval())
    log.append(keccak(b"y"), "hitl", approval(signer=STRANGER))
    found = [(f.seq, f.check, f.status) for f in audit(log).results if f.kind == "hitl"]
    assert (1, "approver signature", "ok") in found
    assert (1, "decision onchain", "skip") in found
    assert (2, "approver signature", "fail") in found

"""Human-in-the-loop decisions as attestations: what an approver signs, and how to check it.

An approval of a SettlementGate trade is the gate's own EIP-712 ``TradeApproval``
digest (``approvalDigest(tradeId)``) signed by an account with APPROVER_ROLE and
recorded onchain by ``approveTrade``. A rejection never reaches the chain, so
the approver signs an EIP-191 message over the canonical JSON of the decision
(run, action, trade, gate, chain, note): ``rejection_digest``. Both land in the
log as one ``hitl`` entry with the signature, so an auditor can attribute every
decision to a key, and check approvals against the chain.
"""

from __future__ import annotations

from typing import Any

from ._canonical import canonical_json, keccak

TRADE_APPROVED = keccak(b"TradeApproved(uint256,address)")
TRADE_SETTLED = keccak(b"TradeSettled(uint256,uint256,uint256,bytes32)")
TRADE_REFUNDED = keccak(b"TradeRefunded(uint256,uint256,uint256)")
MESSAGE_EXECUTED = keccak(b"MessageExecuted(bytes32,uint256,address,uint64)")
MESSAGE_FAILED = keccak(b"MessageFailed(bytes32,uint256,address,bytes)")
APPROVER_ROLE = keccak(b"APPROVER_ROLE")
REJECTION_FIELDS = ("run_id", "action_key", "trade_id", "gate", "chain_id", "note")


def rejection_message(payload: dict[str, Any]) -> bytes:
    """The canonical JSON an approver signs to reject: the decision and what it is about."""
    body = {name: payload[name] for name in REJECTION_FIELDS}
    body["decision"] = "rejected"
    body["gate"] = str(body["gate"]).lower()
    return canonical_json(body)


def rejection_digest(payload: dict[str, Any]) -> bytes:
    """EIP-191 (personal_sign) digest of ``rejection_message(payload)``."""
    return keccak(b"\x19Ethereum Signed Message:\n32" + keccak(rejection_message(payload)))

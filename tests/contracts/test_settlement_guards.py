"""SettlementGate's guard rails, driven through vouch's real settlement flow on anvil.

A trade above the approval threshold is refused onchain (ApprovalRequired, decoded) until an
approver's EIP-712 signature, made with eth-account's typed-data signing, is recorded; then the
DON's next report settles it. A guardian's pause refuses settlement (EnforcedPause) and the
admin's unpause lets it through. A notional limit refuses a settlement that would exceed it.
"""

from __future__ import annotations

from typing import Any

import pytest
from eth_account import Account

from vouch.verifier import AttestationLog

from ..integration.helpers import ONE, open_trade, proposal, run_job

pytestmark = pytest.mark.integration

SETTLED = 3


def _approval(gate: Any, chain_id: int, trade_id: int, key: bytes) -> bytes:
    """The approver's EIP-712 signature over the trade's terms, as a wallet would make it."""
    t = gate.functions.getTrade(trade_id).call()
    seller, buyer, base, base_amount, quote, min_price, max_price, _max_quote, deadline, action = t[
        :10
    ]
    signed = Account.sign_typed_data(
        key,
        domain_data={
            "name": "vouch SettlementGate",
            "version": "1",
            "chainId": chain_id,
            "verifyingContract": gate.address,
        },
        message_types={
            "TradeApproval": [
                {"name": "tradeId", "type": "uint256"},
                {"name": "seller", "type": "address"},
                {"name": "buyer", "type": "address"},
                {"name": "baseToken", "type": "address"},
                {"name": "baseAmount", "type": "uint256"},
                {"name": "quoteToken", "type": "address"},
                {"name": "minPrice", "type": "uint256"},
                {"name": "maxPrice", "type": "uint256"},
                {"name": "deadline", "type": "uint64"},
                {"name": "actionHash", "type": "bytes32"},
            ]
        },
        message_data={
            "tradeId": trade_id,
            "seller": seller,
            "buyer": buyer,
            "baseToken": base,
            "baseAmount": base_amount,
            "quoteToken": quote,
            "minPrice": min_price,
            "maxPrice": max_price,
            "deadline": deadline,
            "actionHash": action,
        },
    )
    assert bytes(signed.message_hash) == gate.functions.approvalDigest(trade_id).call()
    return bytes(signed.signature)


def test_trade_above_threshold_settles_only_after_an_approvers_eip712_signature(
    evm: Any, log: AttestationLog
) -> None:
    gate = evm.contract("SettlementGate")
    approver = Account.create()
    evm.writer.transact(
        gate.functions.grantRole(gate.functions.APPROVER_ROLE().call(), approver.address)
    )
    evm.writer.transact(gate.functions.setApprovalThreshold(evm.deployment.address("WETH"), ONE))

    trade_id, digest = open_trade(evm, log, proposal(amount=1.5))
    refused = run_job(evm, log, trade_id, digest)
    assert refused.status == "refused"
    assert refused.error is not None and refused.error["name"] == "ApprovalRequired"

    signature = _approval(gate, evm.deployment.chain_id, trade_id, approver.key)
    evm.writer.transact(gate.functions.approveTrade(trade_id, signature))
    settled = run_job(evm, log, trade_id, digest)
    assert settled.status == "settled", settled.error
    assert gate.functions.getTrade(trade_id).call()[-1] == SETTLED


def test_guardian_pause_refuses_settlement_until_the_admin_unpauses(
    evm: Any, log: AttestationLog
) -> None:
    gate = evm.contract("SettlementGate")
    trade_id, digest = open_trade(evm, log)
    evm.writer.transact(gate.functions.pause())
    refused = run_job(evm, log, trade_id, digest)
    assert refused.status == "refused"
    assert refused.error is not None and refused.error["name"] == "EnforcedPause"
    evm.writer.transact(gate.functions.unpause())
    assert run_job(evm, log, trade_id, digest).status == "settled"


def test_notional_limit_refuses_a_settlement_that_would_exceed_it(
    evm: Any, log: AttestationLog
) -> None:
    gate = evm.contract("SettlementGate")
    evm.writer.transact(gate.functions.setLimit(evm.deployment.address("WETH"), ONE, 86_400))
    trade_id, digest = open_trade(evm, log, proposal(amount=1.5))
    refused = run_job(evm, log, trade_id, digest)
    assert refused.status == "refused"
    assert refused.error is not None and refused.error["name"] == "NotionalLimitExceeded"
    assert refused.error["args"]["cap"] == ONE
